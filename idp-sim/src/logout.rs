//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the citizen's
//! session at the provider and returns to the client's registered
//! `post_logout_redirect_uri` with `state`. With an `id_token_hint` of the signed-in
//! citizen the session ends at once; otherwise the citizen confirms (a CSRF-protected
//! form), so that no other site can sign them out. A return address that is not
//! registered gets the German error page, never a redirect.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use kopplung_web::shell::{same_token, see_other};
use serde_json::{Value, json};

use crate::authorize::{SESSION_COOKIE, session_of};
use crate::config::Client;
use crate::params::Params;
use crate::{Shared, State as Idp};

/// `GET /abmeldung?…` or `POST /abmeldung` (form-encoded, as the specification allows).
pub async fn endpoint(State(state): State<Shared>, headers: HeaderMap, params: Params) -> Response {
    end_session(&state, &headers, &params)
}

/// Where the logout returns to: a registered URI of a known client, and `state`.
struct Return<'a> {
    uri: Option<&'a str>,
    state: Option<&'a str>,
}

fn end_session(state: &Idp, headers: &HeaderMap, params: &Params) -> Response {
    // The hint is one of our ID tokens, expired or not; it names the client (aud) and
    // the citizen (sub).
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match state
            .keys
            .verify(token)
            .filter(|claims| claims.get("iss") == Some(&json!(state.config.issuer)))
        {
            Some(claims) => Some(claims),
            None => {
                return refused(
                    state,
                    "Der Dienst hat beim Abmelden einen Nachweis geschickt, den das Servicekonto nicht ausgestellt hat. Bitte melden Sie sich im Portal erneut ab; besteht der Fehler weiter, wenden Sie sich an dessen Betreiber.",
                );
            }
        },
    };
    let hinted_client = hint.as_ref().and_then(audience);
    let client_id = match (hinted_client.as_deref(), params.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return refused(
                state,
                "Die Abmeldeanfrage nennt zwei verschiedene Dienste. Bitte melden Sie sich im Portal erneut ab.",
            );
        }
        (a, b) => a.or(b),
    };
    let client = match client_id {
        None => None,
        Some(id) => match state.config.client(id) {
            Some(client) => Some(client),
            None => {
                return refused(
                    state,
                    "Der Dienst, der Sie abmelden möchte, ist beim Servicekonto nicht bekannt. Bitte schließen Sie den Browser, um alle Anmeldungen zu beenden.",
                );
            }
        },
    };
    let back = match checked_return(state, client, params) {
        Ok(back) => back,
        Err(response) => return *response,
    };
    let Some((token, session)) = session_of(state, headers) else {
        // Nobody is signed in here: nothing to end.
        return finish(state, &back, false);
    };
    let same_citizen = match (&hint, client) {
        (Some(claims), Some(client)) => {
            claims.get("sub")
                == Some(&json!(
                    state.keys.subject(session.sign_in.identity.id, &client.id)
                ))
        }
        _ => false,
    };
    if same_citizen {
        state.store.end_session(&token);
        return finish(state, &back, true);
    }
    state.pages.page(
        StatusCode::OK,
        "logout",
        "Abmelden",
        &json!({
            "csrf": session.csrf,
            "client_id": client.map(|c| c.id.as_str()),
            "client": client.map(|c| c.name.as_str()),
            "post_logout_redirect_uri": back.uri,
            "state": back.state,
        }),
    )
}

/// `POST /abmeldung/bestaetigen`: the citizen's answer to the confirmation.
pub async fn confirm(State(state): State<Shared>, headers: HeaderMap, params: Params) -> Response {
    let client = match params.get("client_id").map(|id| state.config.client(id)) {
        Some(None) => {
            return refused(
                &state,
                "Der Dienst, der Sie abmelden möchte, ist beim Servicekonto nicht bekannt. Bitte schließen Sie den Browser, um alle Anmeldungen zu beenden.",
            );
        }
        Some(Some(client)) => Some(client),
        None => None,
    };
    let back = match checked_return(&state, client, &params) {
        Ok(back) => back,
        Err(response) => return *response,
    };
    let Some((token, session)) = session_of(&state, &headers) else {
        return finish(&state, &back, false);
    };
    if !params
        .get("csrf")
        .is_some_and(|csrf| same_token(csrf, &session.csrf))
    {
        return state.pages.error(
            StatusCode::FORBIDDEN,
            "Formular abgelaufen",
            "Das Abmeldeformular gehört nicht zu Ihrer Sitzung. Bitte melden Sie sich im Portal erneut ab.",
        );
    }
    if params.get("aktion") == Some("bleiben") {
        return match back.uri {
            Some(_) => finish(&state, &back, false),
            None => state.pages.message("Sie bleiben angemeldet", "Sie sind beim Servicekonto weiterhin angemeldet. Sie können dieses Fenster schließen."),
        };
    }
    state.store.end_session(&token);
    finish(&state, &back, true)
}

/// The return address, if any: only one registered for the named client.
fn checked_return<'a>(
    state: &Idp,
    client: Option<&Client>,
    params: &'a Params,
) -> Result<Return<'a>, Box<Response>> {
    let back = Return {
        uri: params.get("post_logout_redirect_uri"),
        state: params.get("state"),
    };
    if let Some(uri) = back.uri {
        let registered =
            client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
        if !registered {
            tracing::warn!(client = ?client.map(|c| &c.id), "logout with an unregistered post_logout_redirect_uri refused");
            return Err(Box::new(state.pages.error(
                StatusCode::BAD_REQUEST,
                "Rücksprungadresse nicht zugelassen",
                "Die Adresse, an die das Servicekonto Sie nach dem Abmelden zurückschicken soll, ist für diesen Dienst nicht eingetragen. Zu Ihrem Schutz leiten wir Sie nicht dorthin weiter. Ihre Anmeldung beim Servicekonto besteht weiter; schließen Sie den Browser, um sie zu beenden.",
            )));
        }
    }
    Ok(back)
}

/// Back to the client (with `state`), or the page that says the session is over.
fn finish(state: &Idp, back: &Return<'_>, ended: bool) -> Response {
    let mut response = match back.uri.and_then(|uri| url::Url::parse(uri).ok()) {
        Some(mut url) => {
            if let Some(value) = back.state {
                url.query_pairs_mut().append_pair("state", value);
            }
            see_other(url.as_str())
        }
        None => state.pages.message(
            "Sie sind abgemeldet",
            "Sie sind beim Servicekonto abgemeldet. Sie können dieses Fenster schließen.",
        ),
    };
    if ended {
        let clear = state
            .cookies
            .clear(&state.cookies.host_only(SESSION_COOKIE));
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

fn refused(state: &Idp, message: &str) -> Response {
    state
        .pages
        .error(StatusCode::BAD_REQUEST, "Abmeldung nicht möglich", message)
}

/// The client an ID token was issued to: `aud` as a string, or its only entry.
fn audience(claims: &serde_json::Map<String, Value>) -> Option<String> {
    match claims.get("aud")? {
        Value::String(aud) => Some(aud.clone()),
        Value::Array(list) if list.len() == 1 => list[0].as_str().map(str::to_owned),
        _ => None,
    }
}
