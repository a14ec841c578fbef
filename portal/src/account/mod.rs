//! The Servicekonto: sign-in with a password (argon2id, one login limiter; level basis
//! at most), registration confirmed by e-mail (`registration`), master data to prefill
//! forms. Sign-in at identity providers, the levels and step-up are `crate::oidc`'s.

pub(crate) mod password;
mod purpose;
pub mod registration;
mod reset;

pub use reset::{forgot, forgot_page, reset, reset_page};

pub use purpose::autocomplete;

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::Response;
use kopplung_web::limiter::wait_in_minutes;
use kopplung_web::{Attempt, LoginLimiter};
use serde_json::{Value, json};
use sqlx::Row;

use crate::web::session::{self, Account};
use crate::web::{Failure, NextQuery, Page, Posted, Visit, Visitor, local_next};
use crate::{Shared, db};
use kopplung_web::shell::{form_value, random_hex, see_other};

pub use kopplung_web::shell::password::MIN_PASSWORD_CHARS;
/// Longer passwords are refused before hashing (no argon2 work on megabytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The master data the portal keeps and prefills: shared group -> field names.
pub const MASTER_DATA: &[(&str, &[(&str, &str)])] = &[
    (
        "person",
        &[
            ("familienname", "Familienname"),
            ("vornamen", "Vornamen"),
            ("geburtsdatum", "Geburtsdatum (TT.MM.JJJJ)"),
            ("geburtsort", "Geburtsort"),
        ],
    ),
    (
        "anschrift",
        &[
            ("strasse", "Straße"),
            ("hausnummer", "Hausnummer"),
            ("postleitzahl", "Postleitzahl"),
            ("ort", "Ort"),
        ],
    ),
    (
        "kontakt",
        &[("email", "E-Mail-Adresse"), ("telefon", "Telefonnummer")],
    ),
];

pub use crate::level::label as trust_label;

/// The signed-in account, or a redirect to the sign-in page that comes back to `back`.
pub fn require_account<'a>(visitor: &'a Visitor, back: &str) -> Result<&'a Account, Failure> {
    visitor.account.as_ref().ok_or_else(|| {
        Failure::see_other(format!(
            "/konto/anmelden?weiter={}",
            crate::router_client::encode(back)
        ))
    })
}

/// An attempt against `limiter` for `email` from the visitor's address; refused, a 429
/// whose German message `refused` words with the wait (`5 Minuten`).
pub(crate) fn begin_limited(
    limiter: &LoginLimiter,
    email: &str,
    visitor: &Visitor,
    refused: impl FnOnce(String) -> String,
) -> Result<Attempt, Failure> {
    limiter
        .begin(Some(email), visitor.client, tokio::time::Instant::now())
        .map_err(|r| Failure::too_many(refused(wait_in_minutes(r.wait)), r.wait))
}

/// `GET /konto/anmelden`: the identity providers (asked for `niveau` when given) and
/// the password form.
pub async fn login_page(
    Visit { state, visitor }: Visit,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = local_next(&state, query.weiter.as_deref());
    let level = query.niveau.as_deref().and_then(crate::level::parse);
    state.templates.page(
        &visitor,
        StatusCode::OK,
        "login",
        "Anmelden",
        &json!({
            "csrf": visitor.csrf,
            "next_encoded": crate::router_client::encode(&next),
            "next": next,
            "errors": [],
            "providers": crate::oidc::offers(&state, level, &next, false, false),
        }),
    )
}

/// The address as typed, in the form accounts are kept under.
pub fn normalized_email(pairs: &[(String, String)]) -> String {
    form_value(pairs, "email")
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// Signs `account_id` in: a new session (and CSRF token) replaces the old one.
async fn sign_in(state: &Shared, old: &Visitor, account_id: &str, next: &str) -> Page {
    // What the visitor started anonymously in this session becomes the account's.
    if old.account.is_none()
        && let Some(session_id) = &old.session_id
    {
        sqlx::query(
            "UPDATE drafts SET account_id = ?, session_id = NULL WHERE session_id = ? AND account_id IS NULL",
        )
        .bind(account_id)
        .bind(session_id)
        .execute(&state.db)
        .await?;
    }
    session::delete(state, old).await?;
    let csrf = random_hex(32).map_err(crate::Error::from)?;
    let (token, _) = session::create(state, Some(account_id), &csrf).await?;
    let mut response = see_other(next);
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(state, &token));
    Ok(response)
}

fn login_form(
    state: &Shared,
    visitor: &Visitor,
    status: StatusCode,
    next: &str,
    email: &str,
    message: &str,
) -> Response {
    state.templates.page(
        visitor,
        status,
        "login",
        "Fehler: Anmelden",
        &json!({
            "csrf": visitor.csrf,
            "next_encoded": crate::router_client::encode(next),
            "next": next,
            "email": email,
            "errors": [{"id": "email", "message": message}],
            "providers": crate::oidc::offers(state, None, next, false, false),
        }),
    )
}

/// `POST /konto/anmelden`. Every attempt counts against the account from its start (so
/// parallel guesses gain nothing) and the same two password checks run whether or not
/// the address has an account or a registration waiting: the answer says nothing about
/// either, except "confirm first" to whoever knows a waiting registration's password.
pub async fn login(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let email = normalized_email(&pairs);
    let password = form_value(&pairs, "password").unwrap_or_default();
    let next = local_next(&state, form_value(&pairs, "next"));
    let attempt = begin_limited(&state.limiter, &email, &visitor, |wait| {
        format!(
            "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie {wait} und versuchen Sie es dann erneut."
        )
    })?;
    let account =
        sqlx::query("SELECT id, password_hash FROM accounts WHERE email = ? AND kind = 'password'")
            .bind(&email)
            .fetch_optional(&state.db)
            .await?
            .map(|row| {
                (
                    row.get::<String, _>("id"),
                    row.get::<String, _>("password_hash"),
                )
            });
    let waiting: Option<String> = sqlx::query_scalar(
        "SELECT password_hash FROM registrations WHERE email = ? AND expires_at > ?",
    )
    .bind(&email)
    .bind(db::now())
    .fetch_optional(&state.db)
    .await?;
    let (account_ok, waiting_ok) = if password.len() > MAX_PASSWORD_BYTES {
        (false, false)
    } else {
        password::verify_both(
            password.to_owned(),
            account.as_ref().map(|(_, hash)| hash.clone()),
            waiting.clone(),
        )
        .await
    };
    match account {
        Some((id, _)) if account_ok => {
            attempt.succeeded();
            tracing::info!(account = %id, "signed in");
            sign_in(&state, &visitor, &id, &next).await
        }
        _ if waiting.is_some() && waiting_ok => {
            // Counted as a failure: this must not reset the account's budget.
            let _ = attempt.failed();
            Ok(login_form(
                &state,
                &visitor,
                StatusCode::FORBIDDEN,
                &next,
                &email,
                "Bitte bestätigen Sie zuerst Ihre E-Mail-Adresse: Öffnen Sie den Link in der E-Mail, die wir Ihnen nach der Registrierung geschickt haben. Haben Sie schon ein Servicekonto mit dieser Adresse, melden Sie sich bitte mit dessen Passwort an.",
            ))
        }
        _ => {
            let _ = attempt.failed();
            Ok(login_form(
                &state,
                &visitor,
                StatusCode::UNAUTHORIZED,
                &next,
                &email,
                "E-Mail-Adresse oder Passwort ist nicht richtig. Bitte prüfen Sie Ihre Eingabe. Haben Sie Ihr Passwort vergessen, wählen Sie „Passwort vergessen?“.",
            ))
        }
    }
}

/// `POST /konto/abmelden`: the session ends here; signed in at an identity provider,
/// the citizen goes on to its logout (RP-initiated) and comes back to the start page.
pub async fn logout(Visit { state, visitor }: Visit, Posted(_): Posted) -> Page {
    let provider = crate::oidc::logout_target(&state, &visitor).await?;
    session::delete(&state, &visitor).await?;
    let mut response = see_other(provider.as_deref().unwrap_or("/"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(&state));
    Ok(response)
}

pub async fn overview(
    Visit { state, visitor }: Visit,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Page {
    require_account(&visitor, "/konto")?;
    let next = query
        .get("weiter")
        .map(|w| local_next(&state, Some(w)))
        .filter(|n| n != "/konto");
    state.templates.ok(
        &visitor,
        "account",
        "Mein Servicekonto",
        &json!({
            "current": crate::oidc::signed_in_view(&state, &visitor),
            "confirmed": query.contains_key("bestaetigt"),
            "password_changed": query.contains_key("passwort-geaendert"),
            "next": next,
        }),
    )
}

/// The account's master data (JSON: group -> field -> value).
pub async fn master_data(state: &Shared, account_id: &str) -> Result<Value, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar("SELECT master_data FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_optional(&state.db)
        .await?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({})))
}

fn master_data_view(data: &Value) -> Value {
    let groups: Vec<Value> = MASTER_DATA
        .iter()
        .map(|(group, fields)| {
            let title = match *group {
                "person" => "Angaben zur Person",
                "anschrift" => "Anschrift",
                _ => "Kontakt",
            };
            let fields: Vec<Value> = fields
                .iter()
                .map(|(name, label)| {
                    json!({
                        "id": format!("m-{group}-{name}"),
                        "name": format!("{group}.{name}"),
                        "label": label,
                        "value": data[*group][*name].as_str().unwrap_or_default(),
                        "autocomplete": autocomplete(&format!("{group}.{name}")),
                    })
                })
                .collect();
            json!({ "title": title, "fields": fields })
        })
        .collect();
    json!(groups)
}

pub async fn master_data_page(Visit { state, visitor }: Visit) -> Page {
    let account = require_account(&visitor, "/konto/stammdaten")?;
    let data = master_data(&state, &account.id).await?;
    state.templates.ok(
        &visitor,
        "master_data",
        "Stammdaten",
        &json!({ "csrf": visitor.csrf, "groups": master_data_view(&data), "saved": false }),
    )
}

pub async fn master_data_save(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let account = require_account(&visitor, "/konto/stammdaten")?;
    let mut data = json!({});
    for (group, fields) in MASTER_DATA {
        for (name, _) in *fields {
            let value = form_value(&pairs, &format!("{group}.{name}"))
                .unwrap_or_default()
                .trim();
            if value.chars().count() > 200 {
                return Err(Failure::bad_request(
                    "Eine Ihrer Angaben ist länger als 200 Zeichen. Bitte gehen Sie zurück und kürzen Sie sie.",
                ));
            }
            if !value.is_empty() {
                data[*group][*name] = json!(value);
            }
        }
    }
    sqlx::query("UPDATE accounts SET master_data = ? WHERE id = ?")
        .bind(data.to_string())
        .bind(&account.id)
        .execute(&state.db)
        .await?;
    state.templates.ok(
        &visitor,
        "master_data",
        "Stammdaten gespeichert",
        &json!({ "csrf": visitor.csrf, "groups": master_data_view(&data), "saved": true }),
    )
}
