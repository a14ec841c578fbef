//! Registration, confirmed by e-mail, without telling anyone whether an address has an
//! account: the answer is the same page, status and (a password hash either way) time.
//! A new address gets a mail with a link (a random token, stored hashed, expiring); an
//! address that has an account gets a mail telling its owner to sign in. The link opens
//! a page whose button confirms (a POST), so mail scanners that fetch links confirm
//! nothing; confirming creates the account and signs in.
//!
//! Mails go through the outbox (`crate::mail`): a relay that is down delays them but
//! never fails or blocks the registration.

use axum::extract::Query;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use super::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, normalized_email, password, sign_in};
use crate::mail::{self, Outgoing};
use crate::web::{Failure, NextQuery, Page, Posted, Visit, invalid_fields, local_next};
use crate::{Shared, db};
use kopplung_web::shell::{form_value, is_token, random_hex, see_other, token_id};

/// `GET /konto/registrieren?weiter=`: `weiter` is where the citizen was (a draft, a
/// page that asked to sign in), kept through the confirmation.
pub async fn register_page(
    Visit { state, visitor }: Visit,
    Query(query): Query<NextQuery>,
) -> axum::response::Response {
    let next = local_next(&state, query.weiter.as_deref());
    state.templates.page(
        &visitor,
        StatusCode::OK,
        "register",
        "Servicekonto anlegen",
        &json!({ "csrf": visitor.csrf, "errors": [], "email": "", "next": next }),
    )
}

/// An address lettre can send to, of a sensible length.
pub(crate) fn valid_email(text: &str) -> bool {
    text.len() <= 254 && text.parse::<lettre::Address>().is_ok()
}

fn confirm_mail(state: &Shared, to: &str, code: &ConfirmationCode) -> Outgoing {
    let base = &state.config.public_url;
    let hours = state.config.settings.accounts.confirm_link_hours;
    Outgoing::letter(
        to,
        "Servicekonto: Bitte bestätigen Sie Ihre E-Mail-Adresse",
        &format!(
            "für diese E-Mail-Adresse wurde im Serviceportal die Einrichtung eines Servicekontos begonnen. \
             Bitte bestätigen Sie Ihre E-Mail-Adresse: Öffnen Sie diesen Link und klicken \
             Sie dort auf „E-Mail-Adresse bestätigen“.\n\n\
             {base}/konto/bestaetigen?code={code}\n\n\
             Der Link gilt {hours} Stunden. Danach können Sie sich noch einmal registrieren.\n\n\
             Wenn Sie sich nicht registriert haben, brauchen Sie nichts zu tun: Ohne \
             Bestätigung wird kein Servicekonto eingerichtet.\n\n",
            code = code.as_str()
        ),
    )
}

fn existing_mail(state: &Shared, to: &str) -> Outgoing {
    let base = &state.config.public_url;
    Outgoing::letter(
        to,
        "Servicekonto: Sie haben bereits ein Servicekonto",
        &format!(
            "mit dieser E-Mail-Adresse wollte sich gerade jemand im Serviceportal \
             registrieren. Sie haben mit dieser Adresse bereits ein Servicekonto. Melden \
             Sie sich bitte mit Ihrem Passwort an:\n\n\
             {base}/konto/anmelden\n\n\
             Wenn Sie das nicht waren, brauchen Sie nichts zu tun: Ihr Servicekonto bleibt, \
             wie es ist.\n\n"
        ),
    )
}

/// `POST /konto/registrieren`.
pub async fn register(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let email = normalized_email(&pairs);
    let password = form_value(&pairs, "password").unwrap_or_default();
    let repeated = form_value(&pairs, "password2").unwrap_or_default();
    let next = local_next(&state, form_value(&pairs, "next"));
    let mut errors = Vec::new();
    if !valid_email(&email) {
        errors.push(
            json!({"id": "email", "message": "Bitte geben Sie eine gültige E-Mail-Adresse an, zum Beispiel name@example.org."}),
        );
    }
    if password.len() > MAX_PASSWORD_BYTES {
        errors.push(json!({"id": "password", "message": "Das Passwort ist zu lang. Bitte wählen Sie eines mit höchstens 1024 Zeichen."}));
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        errors.push(json!({"id": "password", "message": format!("Das Passwort ist zu kurz. Bitte wählen Sie eines mit mindestens {MIN_PASSWORD_CHARS} Zeichen.")}));
    } else if password != repeated {
        errors.push(
            json!({"id": "password2", "message": "Die beiden Passwörter stimmen nicht überein. Bitte geben Sie das Passwort zweimal gleich ein."}),
        );
    }
    if !errors.is_empty() {
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "register",
            "Fehler: Servicekonto anlegen",
            &json!({ "csrf": visitor.csrf, "invalid": invalid_fields(&errors), "errors": errors, "email": email, "next": next }),
        ));
    }
    // Each registration costs a password hash and sends a mail: limited per address
    // and per e-mail address, whether or not it has an account.
    let attempt = super::begin_limited(&state.registrations, &email, &visitor, |wait| {
        format!(
            "Zu viele Registrierungen in kurzer Zeit. Bitte warten Sie {wait} und versuchen Sie es dann erneut."
        )
    })?;
    let _ = attempt.failed();
    let hash = password::hash(password.to_owned()).await?;
    let code = ConfirmationCode::new()?;
    let now = db::now();
    let mut tx = db::write_transaction(&state.db).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE email = ?")
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?;
    // Waiting with its password either way (see `super::login`); a link only for a new
    // address.
    sqlx::query(
        "INSERT INTO registrations (email, password_hash, token_hash, created_at, expires_at, next)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash,
           token_hash = excluded.token_hash, created_at = excluded.created_at,
           expires_at = excluded.expires_at, next = excluded.next",
    )
    .bind(&email)
    .bind(&hash)
    .bind(exists.is_none().then(|| code.stored()))
    .bind(now)
    .bind(now + state.config.settings.accounts.confirm_seconds())
    .bind(&next)
    .execute(&mut *tx)
    .await?;
    let mail = match exists {
        None => confirm_mail(&state, &email, &code),
        Some(_) => existing_mail(&state, &email),
    };
    mail::enqueue(&mut *tx, &mail).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!("registration received, mail queued");
    Ok(see_other("/konto/registrieren/gesendet"))
}

/// `GET /konto/registrieren/gesendet`: the same page after every registration.
pub async fn sent(Visit { state, visitor }: Visit) -> Page {
    state.templates.ok(
        &visitor,
        "register_sent",
        "Bitte bestätigen Sie Ihre E-Mail-Adresse",
        &json!({
            "hours": state.config.settings.accounts.confirm_link_hours,
            "viewer": state.mailer.viewer_dir().is_some(),
        }),
    )
}

#[derive(Deserialize)]
pub struct CodeQuery {
    pub(super) code: Option<String>,
}

fn invalid_link() -> Failure {
    Failure::not_found_with(
        "Dieser Bestätigungslink ist ungültig, schon benutzt oder abgelaufen. Bitte registrieren Sie sich noch einmal; Sie bekommen dann einen neuen Link. Haben Sie Ihre Adresse schon bestätigt, melden Sie sich einfach an.",
    )
}

/// The secret of a confirmation link: 256 random bits, hex. Only its SHA-256 is stored.
pub(super) struct ConfirmationCode(String);

impl ConfirmationCode {
    pub(super) fn new() -> Result<Self, crate::Error> {
        Ok(Self(random_hex(32)?))
    }

    /// A code as a link or form brings it, if it can be one.
    pub(super) fn parse(text: &str) -> Option<Self> {
        is_token(text).then(|| Self(text.to_ascii_lowercase()))
    }

    /// What the store keeps of it.
    pub(super) fn stored(&self) -> String {
        token_id(&self.0)
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `GET /konto/bestaetigen?code=`: the page the link opens; it confirms nothing itself.
pub async fn confirm_page(Visit { state, visitor }: Visit, Query(query): Query<CodeQuery>) -> Page {
    let Some(code) = ConfirmationCode::parse(query.code.as_deref().unwrap_or_default()) else {
        return Err(invalid_link());
    };
    let waiting: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM registrations WHERE token_hash = ? AND expires_at > ?")
            .bind(code.stored())
            .bind(db::now())
            .fetch_optional(&state.db)
            .await?;
    if waiting.is_none() {
        return Err(invalid_link());
    }
    state.templates.ok(
        &visitor,
        "confirm",
        "E-Mail-Adresse bestätigen",
        &json!({ "csrf": visitor.csrf, "code": code.as_str() }),
    )
}

/// `POST /konto/bestaetigen`: creates the account and signs in.
pub async fn confirm(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let Some(code) = ConfirmationCode::parse(form_value(&pairs, "code").unwrap_or_default()) else {
        return Err(invalid_link());
    };
    let mut tx = db::write_transaction(&state.db).await?;
    let Some(row) = sqlx::query(
        "SELECT email, password_hash, next FROM registrations WHERE token_hash = ? AND expires_at > ?",
    )
    .bind(code.stored())
    .bind(db::now())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(invalid_link());
    };
    let email: String = row.get("email");
    sqlx::query("DELETE FROM registrations WHERE email = ?")
        .bind(&email)
        .execute(&mut *tx)
        .await?;
    let id = uuid::Uuid::new_v4().to_string();
    let created = sqlx::query(
        "INSERT INTO accounts (id, email, password_hash, trust_level, master_data, created_at)
         VALUES (?, ?, ?, 'basis', ?, ?) ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(&email)
    .bind(row.get::<String, _>("password_hash"))
    .bind(json!({"kontakt": {"email": email}}).to_string())
    .bind(db::now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if created == 0 {
        // Confirmed meanwhile: nothing to create.
        return Ok(see_other("/konto/anmelden"));
    }
    tracing::info!(account = %id, "servicekonto confirmed");
    // The account page says so and leads back to where the registration began.
    let next = local_next(&state, row.get::<Option<String>, _>("next").as_deref());
    let target = if next == "/konto" {
        "/konto?bestaetigt".to_owned()
    } else {
        format!(
            "/konto?bestaetigt&weiter={}",
            crate::router_client::encode(&next)
        )
    };
    sign_in(&state, &visitor, &id, &target).await
}
