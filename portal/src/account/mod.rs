//! The Servicekonto: registration and sign-in (argon2id, rate-limited), master data to
//! prefill forms, and the simulated identification that raises the trust level.

mod limiter;
mod password;

pub use limiter::LoginLimiter;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_transformers::mapping::TrustLevel;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::web::session::{self, Account};
use crate::web::{Failure, Page, Visitor, check_csrf, form_value, see_other};
use crate::{Shared, db};

pub const MIN_PASSWORD_CHARS: usize = 12;
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

pub fn trust_label(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basis => "basis",
        TrustLevel::Substanziell => "substanziell",
        TrustLevel::Hoch => "hoch",
    }
}

/// The signed-in account, or a redirect to the sign-in page that comes back to `back`.
pub fn require_account<'a>(visitor: &'a Visitor, back: &str) -> Result<&'a Account, Box<Response>> {
    visitor.account.as_ref().ok_or_else(|| {
        Box::new(see_other(&format!(
            "/konto/anmelden?weiter={}",
            crate::router_client::encode(back)
        )))
    })
}

/// A relative path inside the portal, or `/konto`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.contains(':') =>
        {
            path.to_owned()
        }
        _ => "/konto".to_owned(),
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    weiter: Option<String>,
}

pub async fn login_page(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<NextQuery>,
) -> Response {
    state.templates.page(
        &visitor,
        StatusCode::OK,
        "login",
        "Anmelden",
        &json!({ "csrf": visitor.csrf, "next": safe_next(query.weiter.as_deref()), "errors": [] }),
    )
}

pub async fn register_page(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    state.templates.page(
        &visitor,
        StatusCode::OK,
        "register",
        "Servicekonto anlegen",
        &json!({ "csrf": visitor.csrf, "errors": [], "email": "" }),
    )
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
        && text.len() <= 254
}

/// 429 with `Retry-After` and a German page.
fn too_many(wait: std::time::Duration, what: &str) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut response = Failure {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!(
            "{what} Bitte warten Sie {minutes} Minute{} und versuchen Sie es dann erneut.",
            if minutes == 1 { "" } else { "n" }
        ),
    }
    .into_response();
    if let Ok(value) = HeaderValue::try_from(wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Signs `account_id` in: a new session replaces the old one.
async fn sign_in(state: &Shared, old: &Visitor, account_id: &str, next: &str) -> Page {
    // What the visitor started anonymously in this session becomes the account's.
    if old.account.is_none() {
        sqlx::query(
            "UPDATE drafts SET account_id = ?, session_id = NULL WHERE session_id = ? AND account_id IS NULL",
        )
        .bind(account_id)
        .bind(&old.session_id)
        .execute(&state.db)
        .await?;
    }
    session::delete(state, old).await?;
    let (token, _) = session::create(state, Some(account_id)).await?;
    let mut response = see_other(next);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(state, &token));
    Ok(response)
}

pub async fn register(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    check_csrf(&visitor, &pairs)?;
    // Registrations cost a password hash each: at most 10 per peer in 15 minutes.
    let register_key = [format!("register:{}", peer.ip())];
    if let Some(wait) = state.limiter.locked(&register_key) {
        return Ok(too_many(
            wait,
            "Zu viele Registrierungen von Ihrem Anschluss.",
        ));
    }
    let email = form_value(&pairs, "email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let password = form_value(&pairs, "password").unwrap_or_default();
    let repeated = form_value(&pairs, "password2").unwrap_or_default();
    let mut errors = Vec::new();
    if !looks_like_email(&email) {
        errors.push(
            json!({"id": "email", "message": "Bitte geben Sie eine gültige E-Mail-Adresse an."}),
        );
    }
    if password.len() > MAX_PASSWORD_BYTES {
        errors.push(json!({"id": "password", "message": "Das Passwort ist zu lang (höchstens 1024 Zeichen)."}));
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        errors.push(json!({"id": "password", "message": format!("Das Passwort muss mindestens {MIN_PASSWORD_CHARS} Zeichen lang sein.")}));
    } else if password != repeated {
        errors.push(
            json!({"id": "password2", "message": "Die beiden Passwörter stimmen nicht überein."}),
        );
    }
    if errors.is_empty() {
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE email = ?")
            .bind(&email)
            .fetch_optional(&state.db)
            .await?;
        if taken.is_some() {
            errors.push(json!({"id": "email", "message": "Für diese E-Mail-Adresse gibt es schon ein Servicekonto. Bitte melden Sie sich an."}));
        }
    }
    if !errors.is_empty() {
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "register",
            "Fehler: Servicekonto anlegen",
            &json!({ "csrf": visitor.csrf, "errors": errors, "email": email }),
        ));
    }
    state.limiter.failed(&register_key);
    let hash = password::hash(password.to_owned()).await?;
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO accounts (id, email, password_hash, trust_level, master_data, created_at) VALUES (?, ?, ?, 'basis', ?, ?)",
    )
    .bind(&id)
    .bind(&email)
    .bind(&hash)
    .bind(json!({"kontakt": {"email": email}}).to_string())
    .bind(db::now())
    .execute(&state.db)
    .await?;
    tracing::info!(account = %id, "servicekonto registered");
    sign_in(&state, &visitor, &id, "/konto").await
}

pub async fn login(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    check_csrf(&visitor, &pairs)?;
    let email = form_value(&pairs, "email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let password = form_value(&pairs, "password").unwrap_or_default();
    let next = safe_next(form_value(&pairs, "next"));
    let keys = [format!("account:{email}"), format!("peer:{}", peer.ip())];
    if let Some(wait) = state.limiter.locked(&keys) {
        return Ok(too_many(wait, "Zu viele fehlgeschlagene Anmeldeversuche."));
    }
    let row = sqlx::query("SELECT id, password_hash FROM accounts WHERE email = ?")
        .bind(&email)
        .fetch_optional(&state.db)
        .await?;
    let (id, hash) = match row {
        Some(row) => (
            Some(row.get::<String, _>("id")),
            row.get::<String, _>("password_hash"),
        ),
        // The same work for unknown addresses: no timing hint whether one exists.
        None => (None, password::DUMMY_HASH.to_owned()),
    };
    let valid =
        password.len() <= MAX_PASSWORD_BYTES && password::verify(password.to_owned(), hash).await;
    match id {
        Some(id) if valid => {
            state.limiter.succeeded(&keys[0]);
            tracing::info!(account = %id, "signed in");
            sign_in(&state, &visitor, &id, &next).await
        }
        _ => {
            state.limiter.failed(&keys);
            Ok(state.templates.page(
                &visitor,
                StatusCode::UNAUTHORIZED,
                "login",
                "Fehler: Anmelden",
                &json!({
                    "csrf": visitor.csrf,
                    "next": next,
                    "email": email,
                    "errors": [{"id": "email", "message": "E-Mail-Adresse oder Passwort sind nicht richtig."}],
                }),
            ))
        }
    }
}

pub async fn logout(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    check_csrf(&visitor, &pairs)?;
    session::delete(&state, &visitor).await?;
    let mut response = see_other("/");
    let secure = if state.secure { "; Secure" } else { "" };
    if let Ok(value) = HeaderValue::try_from(format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        session::COOKIE
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

pub async fn overview(State(state): State<Shared>, Extension(visitor): Extension<Visitor>) -> Page {
    let account = match require_account(&visitor, "/konto") {
        Ok(account) => account,
        Err(redirect) => return Ok(*redirect),
    };
    Ok(state.templates.page(
        &visitor,
        StatusCode::OK,
        "account",
        "Mein Servicekonto",
        &json!({
            "email": account.email,
            "trust_level": trust_label(account.trust_level),
        }),
    ))
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
                        "autocomplete": crate::forms::render::autocomplete(&format!("{group}.{name}")),
                    })
                })
                .collect();
            json!({ "title": title, "fields": fields })
        })
        .collect();
    json!(groups)
}

pub async fn master_data_page(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
) -> Page {
    let account = match require_account(&visitor, "/konto/stammdaten") {
        Ok(account) => account,
        Err(redirect) => return Ok(*redirect),
    };
    let data = master_data(&state, &account.id).await?;
    Ok(state.templates.page(
        &visitor,
        StatusCode::OK,
        "master_data",
        "Stammdaten",
        &json!({ "csrf": visitor.csrf, "groups": master_data_view(&data), "saved": false }),
    ))
}

pub async fn master_data_save(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    check_csrf(&visitor, &pairs)?;
    let account = match require_account(&visitor, "/konto/stammdaten") {
        Ok(account) => account,
        Err(redirect) => return Ok(*redirect),
    };
    let mut data = json!({});
    for (group, fields) in MASTER_DATA {
        for (name, _) in *fields {
            let value = form_value(&pairs, &format!("{group}.{name}"))
                .unwrap_or_default()
                .trim();
            if value.chars().count() > 200 {
                return Err(Failure::bad_request(
                    "Eine Angabe ist zu lang (höchstens 200 Zeichen).",
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
    Ok(state.templates.page(
        &visitor,
        StatusCode::OK,
        "master_data",
        "Stammdaten gespeichert",
        &json!({ "csrf": visitor.csrf, "groups": master_data_view(&data), "saved": true }),
    ))
}

pub async fn identify_page(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<NextQuery>,
) -> Page {
    let account = match require_account(&visitor, "/konto/identifizierung") {
        Ok(account) => account,
        Err(redirect) => return Ok(*redirect),
    };
    Ok(state.templates.page(
        &visitor,
        StatusCode::OK,
        "identify",
        "Identifizieren",
        &json!({
            "csrf": visitor.csrf,
            "trust_level": trust_label(account.trust_level),
            "next": safe_next(query.weiter.as_deref()),
        }),
    ))
}

/// The simulated identification: a method stands for the trust level it reaches
/// (ELSTER certificate: substanziell; Online-Ausweis/eID: hoch). A real portal would
/// hand over to the identity provider here (e.g. BundID) and take its assertion.
pub async fn identify(
    State(state): State<Shared>,
    Extension(visitor): Extension<Visitor>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    check_csrf(&visitor, &pairs)?;
    let account = match require_account(&visitor, "/konto/identifizierung") {
        Ok(account) => account,
        Err(redirect) => return Ok(*redirect),
    };
    let level = match form_value(&pairs, "verfahren") {
        Some("elster") => TrustLevel::Substanziell,
        Some("eid") => TrustLevel::Hoch,
        _ => {
            return Err(Failure::bad_request(
                "Bitte wählen Sie ein Verfahren zur Identifizierung.",
            ));
        }
    };
    let level = level.max(account.trust_level);
    sqlx::query("UPDATE accounts SET trust_level = ? WHERE id = ?")
        .bind(trust_label(level))
        .bind(&account.id)
        .execute(&state.db)
        .await?;
    tracing::info!(account = %account.id, level = trust_label(level), "identified (simulated)");
    Ok(see_other(&safe_next(form_value(&pairs, "next"))))
}
