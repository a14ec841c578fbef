//! The history and audit texts in German, as the console shows them. The hub stores them
//! as it wrote them (English, part of the audit trail's hash chain, never rewritten);
//! the console words the known ones anew when it shows them. What it does not know — a
//! transport's error, a procedure's problem list — it shows as stored.

/// Stored wording (`{}` for a value) and the console's German one, the values in order.
/// The first that matches counts; a value ends where the text after it begins, the last
/// runs to the end.
const TEXTS: &[(&str, &str)] = &[
    ("accepted from client {}", "Angenommen von Client {}"),
    (
        "{} of application {} (referring to event {}) accepted from client {}",
        "Folgenachricht „{}“ zu Antrag {} (zu Ereignis {}) angenommen von Client {}",
    ),
    (
        "{} of application {} accepted from client {}",
        "Folgenachricht „{}“ zu Antrag {} angenommen von Client {}",
    ),
    (
        "message {} rendered, checked and sealed for {}",
        "Nachricht {} erzeugt, geprüft und für {} versiegelt",
    ),
    (
        "message {} rendered and checked for {} (kept at the hub unsealed, for the clerk inbox or a FIT-Connect subscriber)",
        "Nachricht {} für {} erzeugt und geprüft (unversiegelt im Hub aufbewahrt, für den Sachbearbeitungseingang oder einen FIT-Connect-Abonnenten)",
    ),
    (
        "message {} delivered to {} (confirmed by its receipt)",
        "Nachricht {} an {} zugestellt (durch ihre Eingangsbestätigung belegt)",
    ),
    (
        "message {} delivered to {} via {} {}",
        "Nachricht {} an {} zugestellt über {} {}",
    ),
    (
        "message {} ready for {} to collect ({})",
        "Nachricht {} liegt für {} zur Abholung bereit ({})",
    ),
    (
        "message {} collected by {} (pull)",
        "Nachricht {} von {} abgeholt (Abholschnittstelle)",
    ),
    (
        "message {} taken over by clerk {} (manual)",
        "Nachricht {} übernommen von Sachbearbeitung {} (Sachbearbeitungseingang)",
    ),
    (
        "collected by the FIT-Connect subscriber of destination {}",
        "Abgeholt vom FIT-Connect-Abonnenten der Destination {}",
    ),
    (
        "receipt {} from {} about message {}",
        "Eingangsbestätigung {} von {} zu Nachricht {}",
    ),
    (
        "rejection {} from {} about message {}",
        "Ablehnung {} von {} zu Nachricht {}",
    ),
    (
        "event {} from {} about message {}",
        "Ereignis {} von {} zu Nachricht {}",
    ),
    (
        "next attempt requested now by {}",
        "Nächster Zustellversuch sofort angestoßen von {}",
    ),
    (
        "dead letter replayed by {}; message {} goes out again",
        "Unzustellbare Nachricht erneut eingeliefert von {}; Nachricht {} geht erneut hinaus",
    ),
    (
        "reprocessed by {} after the mapping was fixed; message {} is rendered again",
        "Nach Behebung der Abbildung neu verarbeitet von {}; Nachricht {} wird neu erzeugt",
    ),
    (
        "no receipt: message {} resent with the same message id by {}",
        "Keine Eingangsbestätigung: Nachricht {} mit derselben Nachrichten-ID erneut gesendet von {}",
    ),
    (
        "transformed XML of message {} viewed by {} ({}, as sent)",
        "Transformiertes XML der Nachricht {} angesehen von {} ({}, wie gesendet)",
    ),
    (
        "transformed XML of message {} viewed by {} ({}, re-rendered with the mapping in force)",
        "Transformiertes XML der Nachricht {} angesehen von {} ({}, mit der geltenden Abbildung neu erzeugt)",
    ),
    (
        "retention: personal data deleted (form data, {} attachment(s), sealed message, {} document(s), mailbox texts, signed receipts); ids, states and hashes kept",
        "Aufbewahrungsfrist abgelaufen: personenbezogene Daten gelöscht (Formulardaten, {} Anlage(n), versiegelte Nachricht, {} Dokument(e), Postfachtexte, signierte Eingangsbestätigungen); IDs, Status und Hashes bleiben erhalten",
    ),
    (
        "given up after {} attempts; last error: {}",
        "Aufgegeben nach {} Versuchen; letzter Fehler: {}",
    ),
    (
        "procedure {} is no longer configured",
        "Verfahren {} ist nicht mehr konfiguriert",
    ),
    ("no outcome within {}s", "Kein Ergebnis innerhalb von {} s"),
    ("prepare task failed: {}", "Vorbereitung fehlgeschlagen: {}"),
];

/// Who acted, where the stored text names them in English; anything else as it is.
const WHO: &[(&str, &str)] = &[
    (
        "the hub, automatically ({} of {}: no receipt within the deadline)",
        "dem Hub automatisch ({} von {}: keine Eingangsbestätigung innerhalb der Frist)",
    ),
    (
        "{}, with every overdue message of {}",
        "{}, mit allen überfälligen Nachrichten von {}",
    ),
    ("admin console", "Betriebskonsole"),
    ("admin API", "Admin-API"),
];

/// What a receipt's text may carry after its message id, in German.
const RECEIPT_TAILS: &[(&str, &str)] = &[
    ("; document ", "; Dokument "),
    ("; recorded by clerk ", "; erfasst von Sachbearbeitung "),
    (" in the clerk inbox", " im Sachbearbeitungseingang"),
];

/// `stored` in German where the console knows its wording, otherwise as it is.
pub fn german(stored: &str) -> String {
    TEXTS
        .iter()
        .find_map(|(english, german)| {
            let values = matches(english, stored)?;
            let values = values.into_iter().map(|value| {
                let value = WHO
                    .iter()
                    .find_map(|(english, german)| fill(german, &matches(english, value)?))
                    .unwrap_or_else(|| value.to_owned());
                RECEIPT_TAILS
                    .iter()
                    .fold(value, |value, (english, german)| {
                        value.replace(english, german)
                    })
            });
            fill(german, &values.collect::<Vec<_>>())
        })
        .unwrap_or_else(|| stored.to_owned())
}

/// The values of `text` in the places of `pattern`'s `{}`, if it has its wording.
fn matches<'a>(pattern: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let mut parts = pattern.split("{}");
    let first = parts.next().unwrap_or_default();
    let mut rest = text.strip_prefix(first)?;
    let mut values = Vec::new();
    let literals: Vec<&str> = parts.collect();
    for (index, literal) in literals.iter().enumerate() {
        let last = index + 1 == literals.len();
        let end = if last && literal.is_empty() {
            rest.len()
        } else if last {
            // The text ends with the pattern's last words.
            rest.strip_suffix(literal)?.len()
        } else {
            rest.find(literal)?
        };
        let value = &rest[..end];
        if value.is_empty() {
            return None;
        }
        values.push(value);
        rest = &rest[end + literal.len()..];
    }
    (rest.is_empty()).then_some(values)
}

/// `pattern` with its `{}` replaced by `values`, in order.
fn fill<S: AsRef<str>>(pattern: &str, values: &[S]) -> Option<String> {
    let mut out = String::new();
    let mut values = values.iter();
    let mut parts = pattern.split("{}").peekable();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some() {
            out.push_str(values.next()?.as_ref());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_texts_are_worded_in_german() {
        assert_eq!(
            german("accepted from client portal"),
            "Angenommen von Client portal"
        );
        assert_eq!(
            german(
                "message 0191c0de-0000-7000-8000-000000000001 delivered to dresden-maengel via amqp kopplung.dresden-maengel"
            ),
            "Nachricht 0191c0de-0000-7000-8000-000000000001 an dresden-maengel zugestellt über amqp kopplung.dresden-maengel"
        );
        assert_eq!(
            german(
                "receipt r-1 from dresden-maengel about message m-1; document d-1 (SHA-512 ab); recorded by clerk anna in the clerk inbox"
            ),
            "Eingangsbestätigung r-1 von dresden-maengel zu Nachricht m-1; Dokument d-1 (SHA-512 ab); erfasst von Sachbearbeitung anna im Sachbearbeitungseingang"
        );
        assert_eq!(
            german(
                "no receipt: message m-1 resent with the same message id by the hub, automatically (2 of 3: no receipt within the deadline)"
            ),
            "Keine Eingangsbestätigung: Nachricht m-1 mit derselben Nachrichten-ID erneut gesendet von dem Hub automatisch (2 von 3: keine Eingangsbestätigung innerhalb der Frist)"
        );
        assert_eq!(
            german("transformed XML of message m-1 viewed by auditor (admin console, as sent)"),
            "Transformiertes XML der Nachricht m-1 angesehen von auditor (Betriebskonsole, wie gesendet)"
        );
        assert_eq!(
            german("antwort of application a-1 accepted from client portal"),
            "Folgenachricht „antwort“ zu Antrag a-1 angenommen von Client portal"
        );
        assert_eq!(
            german("given up after 5 attempts; last error: connection refused"),
            "Aufgegeben nach 5 Versuchen; letzter Fehler: connection refused"
        );
    }

    #[test]
    fn the_hubs_own_wordings_are_all_known() {
        use kopplung_core::store::rules;
        assert_eq!(
            german(&rules::accepted_detail("portal")),
            "Angenommen von Client portal"
        );
        let (_, replayed) = rules::replayed(true, "operator", "m-1");
        assert!(german(&replayed).starts_with("Unzustellbare Nachricht erneut eingeliefert"));
        let (_, reprocessed) = rules::reprocessed("operator", "m-1");
        assert!(german(&reprocessed).starts_with("Nach Behebung der Abbildung"));
        let (_, resent) = rules::resent("operator", "m-1");
        assert!(german(&resent).starts_with("Keine Eingangsbestätigung"));
        let purge = kopplung_core::audit::content::purge_detail(2, 1);
        assert!(
            german(&purge).starts_with("Aufbewahrungsfrist abgelaufen"),
            "{purge}"
        );
    }

    #[test]
    fn unknown_texts_stay_as_stored() {
        for text in [
            "connection refused",
            "",
            "accepted from client ",
            "message  delivered",
        ] {
            assert_eq!(german(text), text);
        }
    }
}
