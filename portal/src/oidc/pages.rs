//! The pages of signing in at an identity provider: the providers on offer with the
//! levels explained (`/konto/identifizierung`, and the sign-in page's part), the
//! step-up page, and what a sign-in that did not succeed says.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use kopplung_forms::TrustLevel;
use serde_json::{Value, json};

use crate::Shared;
use crate::level::{label as trust_label, parse as parse_level};
use crate::router_client::Service;
use crate::web::{NextQuery, local_next};
use crate::web::{Page, Visit, Visitor};

/// A means of identification's code in words.
pub fn means_label(code: &str) -> &'static str {
    match code {
        "benutzername-passwort" => "Benutzername und Passwort",
        "elster-zertifikat" => "ELSTER-Zertifikat",
        "online-ausweis" => "Online-Ausweisfunktion",
        "eu-eid" => "elektronischer Ausweis aus einem anderen EU-Staat",
        _ => "ein anderes Identifizierungsmittel",
    }
}

/// What a citizen needs for `level`, in words.
fn level_means(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basis => {
            "E-Mail-Adresse und Passwort, zum Beispiel beim Servicekonto dieses Portals"
        }
        TrustLevel::Substanziell => "zum Beispiel ein ELSTER-Zertifikat",
        TrustLevel::Hoch => {
            "die Online-Ausweisfunktion des Personalausweises, der eID-Karte oder des elektronischen Aufenthaltstitels"
        }
    }
}

/// The three levels explained, for the templates.
fn levels() -> Vec<Value> {
    [
        TrustLevel::Basis,
        TrustLevel::Substanziell,
        TrustLevel::Hoch,
    ]
    .into_iter()
    .map(|level| json!({"name": trust_label(level), "means": level_means(level)}))
    .collect()
}

/// The providers that can confirm `level`, each as a sign-in form for the `providers`
/// partial.
pub fn offers(
    state: &Shared,
    level: Option<TrustLevel>,
    next: &str,
    again: bool,
    consent: bool,
) -> Vec<Value> {
    state
        .providers
        .all()
        .iter()
        .filter(|p| level.is_none_or(|level| p.config.highest_level() >= level))
        .map(|p| {
            json!({
                "id": p.config.id,
                "name": p.config.name,
                "niveau": level.map(trust_label).unwrap_or_default(),
                "weiter": next,
                "erneut": again,
                "consent": consent,
            })
        })
        .collect()
}

/// The session's sign-in in words, for the account pages.
pub fn signed_in_view(state: &Shared, visitor: &Visitor) -> Value {
    let Some(account) = &visitor.account else {
        return Value::Null;
    };
    let (means, provider) = match &account.identity {
        Some(identity) => (
            means_label(&identity.means),
            state
                .providers
                .get(&identity.provider)
                .map(|p| p.config.name.clone())
                .unwrap_or_else(|| identity.provider.clone()),
        ),
        None => (
            means_label("benutzername-passwort"),
            "Servicekonto dieses Portals".to_owned(),
        ),
    };
    json!({
        "level": trust_label(account.trust_level),
        "means": means,
        "provider": provider,
        "email": account.email,
        "prefill": account.identity.as_ref().is_some_and(|i| i.prefill),
    })
}

/// `GET /konto/identifizierung`: the identity providers and what the levels mean.
pub async fn identify_page(
    Visit { state, visitor }: Visit,
    Query(query): Query<NextQuery>,
) -> Page {
    let next = local_next(&state, query.weiter.as_deref());
    let needed = query.niveau.as_deref().and_then(parse_level);
    let consent = visitor
        .account
        .as_ref()
        .and_then(|a| a.identity.as_ref())
        .is_some_and(|i| i.prefill);
    let again = visitor.account.is_some();
    state.templates.ok(
        &visitor,
        "identify",
        "Identifizieren",
        &json!({
            "current": signed_in_view(&state, &visitor),
            "levels": levels(),
            "needed": needed.map(trust_label),
            "providers": offers(&state, needed, &next, again, consent),
        }),
    )
}

/// The level a signed-in visitor lacks for `service`: `None` if the session's level
/// suffices (or the service takes anyone).
fn lacking(visitor: &Visitor, service: &Service) -> Option<TrustLevel> {
    if service.anonymous {
        return None;
    }
    let account = visitor.account.as_ref()?;
    (account.trust_level < service.trust_level).then_some(service.trust_level)
}

/// If the session's level is below `service`'s: the page that explains it, with the
/// sign-in at the level needed that comes back to `next` (the page the citizen is on).
pub fn step_up(
    state: &Shared,
    visitor: &Visitor,
    status: StatusCode,
    service: &Service,
    next: &str,
) -> Option<Response> {
    let needed = lacking(visitor, service)?;
    let current = signed_in_view(state, visitor);
    let consent = current["prefill"].as_bool().unwrap_or(false);
    Some(state.templates.page(
        visitor,
        status,
        "step_up",
        "Höheres Vertrauensniveau nötig",
        &json!({
            "service": service.name,
            "needed": trust_label(needed),
            "needed_means": level_means(needed),
            "current": current,
            "providers": offers(state, Some(needed), next, true, consent),
            "back": next,
        }),
    ))
}

/// A sign-in that did not succeed: what happened, and the way to try again or back.
pub fn failed(
    state: &Shared,
    visitor: &Visitor,
    status: StatusCode,
    message: &str,
    retry: &str,
    back: &str,
) -> Response {
    state.templates.page(
        visitor,
        status,
        "sign_in_failed",
        "Anmeldung nicht abgeschlossen",
        &json!({ "message": message, "retry": retry, "back": back }),
    )
}

/// The provider's `error` (RFC 6749, OpenID Connect Core 3.1.2.6) as status and words.
pub fn provider_error(code: &str, provider: &str) -> (StatusCode, String) {
    match code {
        "access_denied" => (
            StatusCode::FORBIDDEN,
            format!(
                "Sie haben die Anmeldung bei {provider} abgebrochen oder nicht zugestimmt. Sie sind deshalb nicht neu angemeldet. Möchten Sie es noch einmal versuchen, wählen Sie „Erneut anmelden“."
            ),
        ),
        "login_required"
        | "interaction_required"
        | "consent_required"
        | "account_selection_required" => (
            StatusCode::FORBIDDEN,
            format!(
                "{provider} verlangt eine neue Anmeldung. Bitte wählen Sie „Erneut anmelden“ und geben Sie dort Ihre Zugangsdaten ein."
            ),
        ),
        "temporarily_unavailable" | "server_error" => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{provider} ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal. Ihre Eingaben im Portal sind gespeichert."
            ),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            format!(
                "Die Anmeldung bei {provider} ist fehlgeschlagen. Bitte versuchen Sie es noch einmal. Gelingt es wieder nicht, wenden Sie sich bitte an den Betreiber des Portals (Kontaktdaten unter „Kontakt“ unten auf jeder Seite)."
            ),
        ),
    }
}

/// The provider confirmed a lower level than was asked for: nothing changes.
pub fn too_low(
    state: &Shared,
    visitor: &Visitor,
    got: TrustLevel,
    needed: TrustLevel,
    retry: &str,
    back: &str,
) -> Response {
    let message = format!(
        "Sie haben sich mit dem Vertrauensniveau „{}“ angemeldet. Nötig ist „{}“, dafür brauchen Sie {}. Ihre Anmeldung im Portal bleibt deshalb, wie sie war. Bitte melden Sie sich noch einmal an und wählen Sie dabei ein passendes Identifizierungsmittel.",
        trust_label(got),
        trust_label(needed),
        level_means(needed)
    );
    state.templates.page(
        visitor,
        StatusCode::FORBIDDEN,
        "sign_in_failed",
        "Vertrauensniveau nicht erreicht",
        &json!({ "message": message, "retry": retry, "back": back, "too_low": true }),
    )
}
