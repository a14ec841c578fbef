//! The pages the law asks of a public portal, from the operator's `[operator]` data:
//! Impressum, Datenschutzerklärung, Erklärung zur Barrierefreiheit and Kontakt, linked
//! in every page's footer. The Datenschutzerklärung's list of what is stored and for how
//! long is generated from the portal's own configuration, so it says what the portal
//! really does.

use serde_json::{Value, json};

use crate::config::Settings;
use crate::web::{Page, Visit};

/// A duration for people, in the dative the sentences use after "nach":
/// "einem Tag", "8 Stunden", "30 Minuten".
fn span(seconds: u64) -> String {
    let (value, one, many) = if seconds >= 86_400 && seconds.is_multiple_of(86_400) {
        (seconds / 86_400, "einem Tag", "Tagen")
    } else if seconds >= 3_600 && seconds.is_multiple_of(3_600) {
        (seconds / 3_600, "einer Stunde", "Stunden")
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        (seconds / 60, "einer Minute", "Minuten")
    } else {
        (seconds, "einer Sekunde", "Sekunden")
    };
    if value == 1 {
        one.to_owned()
    } else {
        format!("{value} {many}")
    }
}

/// What the portal stores, why, and when it goes: one row per kind of data, with the
/// periods of `settings`.
pub fn stored(settings: &Settings) -> Vec<Value> {
    let accounts = &settings.accounts;
    let quotas = &settings.quotas;
    let notifications = &settings.notifications;
    let row =
        |what: &str, why: &str, until: String| json!({"what": what, "why": why, "until": until});
    vec![
        row(
            "Sitzungs-Cookie (eine zufällige Kennung, kein Tracking)",
            "damit das Portal Ihre Eingaben und Ihre Anmeldung zuordnen kann",
            format!(
                "bis zum Ende der Sitzung: spätestens nach {}, angemeldet nach {} ohne Aktivität",
                span(accounts.session_hours.saturating_mul(3_600)),
                span(accounts.idle_timeout_secs)
            ),
        ),
        row(
            "Servicekonto: E-Mail-Adresse, Passwort (nur unumkehrbar verschlüsselt), Angaben zur Person, die Sie eintragen, die Kennung Ihrer Anmeldung bei einem Identitätsanbieter und deren Vertrauensniveau",
            "damit Sie sich anmelden, Entwürfe speichern und Ihre Anträge und Ihr Postfach sehen können",
            "bis Sie Ihr Konto löschen („Mein Servicekonto“ → „Servicekonto löschen“)".to_owned(),
        ),
        row(
            "Link zum Zurücksetzen des Passworts (nur als Hashwert)",
            "damit Sie ein vergessenes Passwort neu festlegen können",
            format!(
                "bis zur Benutzung, sonst gelöscht nach {}",
                span(accounts.reset_link_minutes.saturating_mul(60))
            ),
        ),
        row(
            "Registrierung, deren E-Mail-Adresse noch nicht bestätigt ist",
            "um die Adresse zu bestätigen",
            format!(
                "gelöscht nach {}, wenn die Adresse nicht bestätigt wird",
                span(accounts.confirm_link_hours.saturating_mul(3_600))
            ),
        ),
        row(
            "Entwürfe und ihre Unterlagen mit Servicekonto",
            "damit Sie ein begonnenes Formular später fortsetzen können",
            "bis Sie den Entwurf absenden oder verwerfen".to_owned(),
        ),
        row(
            "Entwürfe und Unterlagen ohne Servicekonto",
            "damit Sie das Formular in dieser Sitzung fortsetzen können",
            format!(
                "bis zum Ende der Sitzung, spätestens gelöscht nach {} ohne Änderung",
                span(quotas.anonymous_expire_secs)
            ),
        ),
        row(
            "Abgesendete Anträge und Meldungen (Ihre Angaben, Unterlagen, Vorgangsnummer, Stand und Nachrichten der Behörde)",
            "damit Sie Stand, Bescheide und Nachrichten in Ihrem Servicekonto sehen; was Sie abgesendet haben, geht an die zuständige Behörde, bei der deren Aufbewahrungsfristen gelten",
            "mit Servicekonto, bis Sie Ihr Servicekonto löschen; ohne Servicekonto bis zum Ende der Sitzung".to_owned(),
        ),
        row(
            "Zahlungen: Kennung der Zahlung und Zahlungsreferenz des Zahlungsdienstes, bei Erstattungen deren Referenz und Betrag (keine Konto- oder Kartendaten)",
            "um die Gebühr dem Vorgang zuzuordnen, sie der Kasse der Behörde zu melden und Erstattungen nachzuweisen",
            "so lange wie der zugehörige Vorgang; Erstattungen ohne Bezug zu Ihrer Person dauerhaft".to_owned(),
        ),
        row(
            "E-Mail-Adresse für Benachrichtigungen ohne Servicekonto",
            "um Ihnen den Stand Ihrer Meldung mitzuteilen",
            format!(
                "gelöscht nach {} ab der Bestätigung, spätestens nach {} ab dem Abschluss des Verfahrens",
                span(notifications.anonymous_keep_days.saturating_mul(86_400)),
                span(notifications.final_grace_days.saturating_mul(86_400))
            ),
        ),
        row(
            "E-Mails, die das Portal an Sie sendet (Bestätigungen, Benachrichtigungen)",
            "um sie zuzustellen, auch wenn der E-Mail-Dienst kurz nicht erreichbar ist",
            format!(
                "bis zur Zustellung; gelingt sie nicht, gelöscht nach {}",
                span(settings.mail.expire_hours.saturating_mul(3_600))
            ),
        ),
        row(
            "IP-Adresse Ihres Geräts",
            "um Missbrauch zu begrenzen (zum Beispiel zu viele Anmeldeversuche); sie wird nur kurz im Arbeitsspeicher gehalten, nicht dauerhaft gespeichert und nicht protokolliert",
            format!(
                "vergessen nach {} ohne weitere Anfrage",
                span(quotas.address_window_secs)
            ),
        ),
    ]
}

/// Joined lines, or `None` for none (the page names the gap).
fn lines(values: &[String]) -> Option<&[String]> {
    (!values.is_empty()).then_some(values)
}

fn view(settings: &Settings) -> Value {
    let operator = &settings.operator;
    json!({
        "name": Some(&operator.name).filter(|v| !v.is_empty()),
        "address": lines(&operator.address),
        "represented_by": Some(&operator.represented_by).filter(|v| !v.is_empty()),
        "email": Some(&operator.email).filter(|v| !v.is_empty()),
        "phone": Some(&operator.phone).filter(|v| !v.is_empty()),
        "website": Some(&operator.website).filter(|v| !v.is_empty()),
        "content_responsible": Some(&operator.content_responsible).filter(|v| !v.is_empty()),
        "register": lines(&operator.register),
        "supervisory_authority": Some(&operator.supervisory_authority).filter(|v| !v.is_empty()),
        "privacy": {
            "officer": lines(&operator.privacy.officer),
            "supervisory_authority": lines(&operator.privacy.supervisory_authority),
            "legal_basis": lines(&operator.privacy.legal_basis),
        },
        "accessibility": {
            "status": match operator.accessibility.status.as_str() {
                "vollständig" => Some("Dieses Portal ist mit den Anforderungen der BITV 2.0 und der EN 301 549 vollständig vereinbar."),
                "teilweise" => Some("Dieses Portal ist mit den Anforderungen der BITV 2.0 und der EN 301 549 teilweise vereinbar. Die Einschränkungen sind unten genannt."),
                "nicht" => Some("Dieses Portal ist mit den Anforderungen der BITV 2.0 und der EN 301 549 nicht vereinbar. Die Einschränkungen sind unten genannt."),
                _ => None,
            },
            "limitations": lines(&operator.accessibility.limitations),
            "method": Some(&operator.accessibility.method).filter(|v| !v.is_empty()),
            "date": Some(&operator.accessibility.date).filter(|v| !v.is_empty()),
            "feedback_email": Some(&operator.accessibility.feedback_email).filter(|v| !v.is_empty()),
            "feedback_phone": Some(&operator.accessibility.feedback_phone).filter(|v| !v.is_empty()),
            "enforcement": lines(&operator.accessibility.enforcement),
        },
        "stored": stored(settings),
        "missing": operator.missing(),
    })
}

/// Renders one of the legal pages.
fn legal(Visit { state, visitor }: Visit, template: &str, title: &str) -> Page {
    state
        .templates
        .ok(&visitor, template, title, &view(&state.config.settings))
}

/// `GET /impressum`.
pub(crate) async fn impressum(visit: Visit) -> Page {
    legal(visit, "impressum", "Impressum")
}

/// `GET /datenschutz`.
pub(crate) async fn privacy(visit: Visit) -> Page {
    legal(visit, "datenschutz", "Datenschutzerklärung")
}

/// `GET /barrierefreiheit`.
pub(crate) async fn accessibility(visit: Visit) -> Page {
    legal(visit, "barrierefreiheit", "Erklärung zur Barrierefreiheit")
}

/// `GET /kontakt`.
pub(crate) async fn contact(visit: Visit) -> Page {
    legal(visit, "kontakt", "Kontakt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_german_words() {
        assert_eq!(span(86_400), "einem Tag");
        assert_eq!(span(3_600), "einer Stunde");
        assert_eq!(span(3 * 86_400), "3 Tagen");
        assert_eq!(span(8 * 3_600), "8 Stunden");
        assert_eq!(span(1_800), "30 Minuten");
        assert_eq!(span(45), "45 Sekunden");
    }

    #[test]
    fn the_privacy_rows_follow_the_configuration() {
        let mut settings = Settings::default();
        settings.quotas.anonymous_expire_secs = 2 * 86_400;
        let rows = stored(&settings);
        let anonymous = rows
            .iter()
            .find(|r| {
                r["what"]
                    .as_str()
                    .unwrap()
                    .starts_with("Entwürfe und Unterlagen ohne")
            })
            .unwrap();
        assert!(anonymous["until"].as_str().unwrap().contains("2 Tagen"));
    }
}
