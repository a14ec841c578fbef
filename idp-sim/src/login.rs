//! The login page: the demo citizen picks a test identity and the means of
//! identification. A means below the level the client asked for is shown as not
//! sufficient and cannot be chosen (nor posted). The form is tied to the browser that
//! started the request (cookie) and carries the request's CSRF token.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use kopplung_web::shell::{cookie, same_token, token_id};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authorize::{BROWSER_COOKIE, Back, SESSION_COOKIE, issue, session_of, unavailable};
use crate::people::{IDENTITIES, Identity, Means};
use crate::store::{Pending, SignIn};
use crate::{Shared, State as Idp};

#[derive(Debug, Deserialize)]
pub struct Request {
    #[serde(default)]
    vorgang: String,
}

/// `GET /anmeldung?vorgang=…`
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(request): Query<Request>,
) -> Response {
    match waiting(&state, &headers, &request.vorgang) {
        Some(pending) => render(&state, &request.vorgang, &pending, &Choice::default(), None),
        None => expired(&state),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    vorgang: String,
    #[serde(default)]
    csrf: String,
    identitaet: Option<String>,
    mittel: Option<String>,
    /// `abbrechen` cancels; anything else signs in.
    aktion: Option<String>,
}

/// `POST /anmeldung`
pub async fn submit(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<Choice>, FormRejection>,
) -> Response {
    let Ok(Form(choice)) = form else {
        return state.pages.error(
            StatusCode::BAD_REQUEST,
            "Formular unvollständig",
            "Das Anmeldeformular kam unvollständig an. Bitte kehren Sie zum Portal zurück und starten Sie die Anmeldung dort neu.",
        );
    };
    let Some(pending) = waiting(&state, &headers, &choice.vorgang) else {
        return expired(&state);
    };
    if !same_token(&choice.csrf, &pending.csrf) {
        return state.pages.error(
            StatusCode::FORBIDDEN,
            "Formular abgelaufen",
            "Das Anmeldeformular gehört nicht zu dieser Anmeldung. Bitte laden Sie die Anmeldeseite neu oder starten Sie die Anmeldung im Portal noch einmal.",
        );
    }
    let back = Back::of(&pending, &state.config.issuer);
    if choice.aktion.as_deref() == Some("abbrechen") {
        state.store.drop_pending(&choice.vorgang);
        return back.error("access_denied", "the citizen cancelled the sign-in");
    }
    let identity = choice.identitaet.as_deref().and_then(Identity::find);
    let means = choice.mittel.as_deref().and_then(Means::from_code);
    let problem = match (identity, means) {
        (None, _) => Some(("identitaet", "Bitte wählen Sie aus, als welche Person Sie sich anmelden.".to_owned())),
        (_, None) => Some(("mittel", "Bitte wählen Sie aus, womit Sie sich ausweisen.".to_owned())),
        (_, Some(means)) => pending.min_level.filter(|level| means.level() < *level).map(|level| {
            ("mittel", format!(
                "Mit „{}“ erreichen Sie das Vertrauensniveau „{}“; diese Anmeldung verlangt mindestens „{}“. Bitte wählen Sie ein anderes Identifizierungsmittel.",
                means.german(), means.level().german(), level.german()
            ))
        }),
    };
    let (Some(identity), Some(means), None) = (identity, means, problem.as_ref()) else {
        return render(&state, &choice.vorgang, &pending, &choice, problem);
    };
    state.store.drop_pending(&choice.vorgang);
    // A new login replaces the browser's session (never two at once).
    if let Some((old, _)) = session_of(&state, &headers) {
        state.store.end_session(&old);
    }
    let sign_in = SignIn {
        identity,
        means,
        auth_time: state.store.now(),
    };
    let Ok(token) = state.store.open_session(sign_in) else {
        return unavailable(&state);
    };
    tracing::info!(client = %pending.request.client_id, amr = means.amr(), "citizen signed in");
    let mut response = issue(&state, &pending, sign_in);
    let value = state
        .cookies
        .set(&state.cookies.host_only(SESSION_COOKIE), &token, None);
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}

/// The waiting request `id`, if this browser started it.
fn waiting(state: &Idp, headers: &HeaderMap, id: &str) -> Option<Pending> {
    let pending = state.store.pending(id)?;
    let browser = cookie(headers, &state.cookies.host_only(BROWSER_COOKIE))?;
    same_token(&token_id(&browser), &pending.browser).then_some(pending)
}

fn expired(state: &Idp) -> Response {
    state.pages.error(
        StatusCode::NOT_FOUND,
        "Anmeldung abgelaufen",
        "Diese Anmeldung ist abgelaufen oder wurde in einem anderen Browser begonnen. Bitte kehren Sie zum Portal zurück und starten Sie die Anmeldung dort neu.",
    )
}

/// The login page, with the citizen's choice so far and what is wrong with it.
fn render(
    state: &Idp,
    id: &str,
    pending: &Pending,
    choice: &Choice,
    problem: Option<(&str, String)>,
) -> Response {
    let chosen_identity = choice.identitaet.as_deref().or(pending.suggested);
    let identities: Vec<Value> = IDENTITIES
        .iter()
        .map(|person| {
            json!({
                "id": person.id,
                "name": format!("{} {}", person.given_name, person.family_name),
                "birthdate": person.german_birthdate(),
                "address": format!("{}, {} {}", person.street_address, person.postal_code, person.locality),
                "checked": chosen_identity == Some(person.id),
            })
        })
        .collect();
    let means: Vec<Value> = Means::ALL
        .iter()
        .map(|means| {
            let sufficient = pending.min_level.is_none_or(|level| means.level() >= level);
            json!({
                "code": means.code(),
                "name": means.german(),
                "explanation": means.explanation(),
                "level": means.level().german(),
                "sufficient": sufficient,
                "checked": sufficient && choice.mittel.as_deref() == Some(means.code()),
            })
        })
        .collect();
    let client = state
        .config
        .client(&pending.request.client_id)
        .map_or(pending.request.client_id.as_str(), |client| {
            client.name.as_str()
        });
    // The error summary links to the first radio button of the group in error.
    let errors: Vec<Value> = problem
        .iter()
        .map(|(field, message)| {
            let first = match *field {
                "identitaet" => IDENTITIES[0].id,
                _ => Means::ALL[0].code(),
            };
            json!({ "field": field, "target": format!("{field}-{first}"), "message": message })
        })
        .collect();
    let error_of = |field: &str| {
        problem
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, message)| message.clone())
    };
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = if problem.is_some() {
        "Fehler: Anmelden beim Servicekonto"
    } else {
        "Anmelden beim Servicekonto"
    };
    state.pages.page(
        status,
        "login",
        title,
        &json!({
            "client": client,
            "vorgang": id,
            "csrf": pending.csrf,
            "required": pending.min_level.map(|level| level.german()),
            "identities": identities,
            "means": means,
            "errors": errors,
            "identity_error": error_of("identitaet"),
            "means_error": error_of("mittel"),
        }),
    )
}
