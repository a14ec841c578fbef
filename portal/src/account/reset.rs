//! A forgotten password, reset by e-mail, without telling anyone whether an address has
//! an account: the request is answered with the same page whatever the address. An
//! address of a password account gets a link (a random token, stored hashed, valid
//! `reset_link_minutes`, one use); the link opens a form for the new password, which
//! ends every session of the account (a stolen one too) and signs in anew. A mail tells
//! the owner that the password changed.

use axum::extract::Query;
use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;

use super::registration::{CodeQuery, ConfirmationCode, valid_email};
use super::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, normalized_email, password, sign_in};
use crate::mail::{self, Outgoing};
use crate::web::{Failure, Page, Posted, Visit};
use crate::{Shared, db};
use kopplung_web::shell::form_value;

/// `GET /konto/passwort-vergessen`.
pub async fn forgot_page(Visit { state, visitor }: Visit) -> Page {
    state.templates.ok(
        &visitor,
        "password_forgot",
        "Passwort vergessen",
        &json!({ "csrf": visitor.csrf, "errors": [], "email": "" }),
    )
}

fn reset_mail(state: &Shared, to: &str, code: &ConfirmationCode) -> Outgoing {
    let base = &state.config.public_url;
    let minutes = state.config.settings.accounts.reset_link_minutes;
    Outgoing::letter(
        to,
        "Servicekonto: Neues Passwort festlegen",
        &format!(
            "für Ihr Servicekonto wurde ein neues Passwort angefordert. Öffnen Sie diesen \
             Link und legen Sie dort ein neues Passwort fest:\n\n\
             {base}/konto/passwort-neu?code={code}\n\n\
             Der Link gilt {minutes} Minuten und nur einmal.\n\n\
             Wenn Sie kein neues Passwort angefordert haben, brauchen Sie nichts zu tun: \
             Ihr bisheriges Passwort bleibt gültig.\n\n",
            code = code.as_str()
        ),
    )
}

fn changed_mail(to: &str) -> Outgoing {
    Outgoing::letter(
        to,
        "Servicekonto: Ihr Passwort wurde geändert",
        "das Passwort Ihres Servicekontos wurde soeben geändert, und alle \
               bisherigen Anmeldungen wurden beendet.\n\n\
               Wenn Sie das nicht waren, fordern Sie bitte sofort über „Passwort \
               vergessen?“ ein neues Passwort an und wenden Sie sich an den Betreiber \
               des Portals (siehe „Kontakt“).\n\n",
    )
}

/// `POST /konto/passwort-vergessen`: the same answer for every address.
pub async fn forgot(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let email = normalized_email(&pairs);
    if !valid_email(&email) {
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_forgot",
            "Fehler: Passwort vergessen",
            &json!({
                "csrf": visitor.csrf,
                "email": email,
                "errors": [{"id": "email", "message": "Bitte geben Sie die E-Mail-Adresse Ihres Servicekontos an, zum Beispiel name@example.org."}],
            }),
        ));
    }
    // Each request sends a mail: limited like registrations, per address and per e-mail.
    let attempt = super::begin_limited(&state.registrations, &email, &visitor, |wait| {
        format!(
            "Zu viele Anfragen in kurzer Zeit. Bitte warten Sie {wait} und versuchen Sie es dann erneut."
        )
    })?;
    let _ = attempt.failed();
    let account: Option<String> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE email = ? AND kind = 'password'")
            .bind(&email)
            .fetch_optional(&state.db)
            .await?;
    if let Some(account) = account {
        let code = ConfirmationCode::new()?;
        let now = db::now();
        let expires = now.saturating_add(
            i64::try_from(
                state
                    .config
                    .settings
                    .accounts
                    .reset_link_minutes
                    .saturating_mul(60),
            )
            .unwrap_or(i64::MAX),
        );
        let mut tx = db::write_transaction(&state.db).await?;
        // Only the newest link works.
        sqlx::query("DELETE FROM password_resets WHERE account_id = ?")
            .bind(&account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(code.stored())
        .bind(&account)
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        mail::enqueue(&mut *tx, &reset_mail(&state, &email, &code)).await?;
        tx.commit().await?;
        state.mailer.wake();
        tracing::info!("password reset requested, mail queued");
    }
    state.templates.ok(
        &visitor,
        "notice",
        "Bitte sehen Sie in Ihr Postfach",
        &json!({
            "heading": "Bitte sehen Sie in Ihr E-Mail-Postfach",
            "paragraphs": [
                "Wenn zu dieser Adresse ein Servicekonto mit Passwort gehört, haben wir Ihnen einen Link geschickt, mit dem Sie ein neues Passwort festlegen.",
                format!("Der Link gilt {} Minuten. Kommt keine E-Mail an, prüfen Sie bitte den Spam-Ordner und die Schreibweise der Adresse.", state.config.settings.accounts.reset_link_minutes),
            ],
            "viewer": state.mailer.viewer_dir().is_some(),
            "back": "/konto/anmelden",
            "back_label": "Zur Anmeldung",
        }),
    )
}

fn invalid_link() -> Failure {
    Failure::not_found_with(
        "Dieser Link zum Zurücksetzen des Passworts ist ungültig, schon benutzt oder abgelaufen. Bitte fordern Sie über „Passwort vergessen?“ einen neuen an.",
    )
}

/// The account a valid link `code` resets, if it is valid.
async fn account_of(
    state: &Shared,
    code: &ConfirmationCode,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT account_id FROM password_resets WHERE token_hash = ? AND expires_at > ?",
    )
    .bind(code.stored())
    .bind(db::now())
    .fetch_optional(&state.db)
    .await
}

fn reset_form(
    visitor: &crate::web::Visitor,
    code: &str,
    errors: serde_json::Value,
) -> serde_json::Value {
    let invalid = errors
        .as_array()
        .map(|list| crate::web::invalid_fields(list))
        .unwrap_or_default();
    json!({ "csrf": visitor.csrf, "code": code, "errors": errors, "invalid": invalid })
}

/// `GET /konto/passwort-neu?code=`: the form; it changes nothing itself.
pub async fn reset_page(Visit { state, visitor }: Visit, Query(query): Query<CodeQuery>) -> Page {
    let code = ConfirmationCode::parse(query.code.as_deref().unwrap_or_default())
        .ok_or_else(invalid_link)?;
    if account_of(&state, &code).await?.is_none() {
        return Err(invalid_link());
    }
    state.templates.ok(
        &visitor,
        "password_reset",
        "Neues Passwort festlegen",
        &reset_form(&visitor, code.as_str(), json!([])),
    )
}

/// `POST /konto/passwort-neu`: sets the password, ends every session of the account and
/// signs in.
pub async fn reset(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let code = ConfirmationCode::parse(form_value(&pairs, "code").unwrap_or_default())
        .ok_or_else(invalid_link)?;
    let password = form_value(&pairs, "password").unwrap_or_default();
    let repeated = form_value(&pairs, "password2").unwrap_or_default();
    let problem = if password.len() > MAX_PASSWORD_BYTES {
        Some((
            "password",
            "Das Passwort ist zu lang. Bitte wählen Sie eines mit höchstens 1024 Zeichen."
                .to_owned(),
        ))
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Some((
            "password",
            format!(
                "Das Passwort ist zu kurz. Bitte wählen Sie eines mit mindestens {MIN_PASSWORD_CHARS} Zeichen."
            ),
        ))
    } else if password != repeated {
        Some(("password2", "Die beiden Passwörter stimmen nicht überein. Bitte geben Sie das neue Passwort zweimal gleich ein.".to_owned()))
    } else {
        None
    };
    if let Some((id, message)) = problem {
        if account_of(&state, &code).await?.is_none() {
            return Err(invalid_link());
        }
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_reset",
            "Fehler: Neues Passwort festlegen",
            &reset_form(
                &visitor,
                code.as_str(),
                json!([{"id": id, "message": message}]),
            ),
        ));
    }
    let hash = password::hash(password.to_owned()).await?;
    let mut tx = db::write_transaction(&state.db).await?;
    let Some(row) = sqlx::query(
        "SELECT r.account_id, a.email FROM password_resets r JOIN accounts a ON a.id = r.account_id
         WHERE r.token_hash = ? AND r.expires_at > ?",
    )
    .bind(code.stored())
    .bind(db::now())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(invalid_link());
    };
    let (account, email): (String, String) = (row.try_get("account_id")?, row.try_get("email")?);
    sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
        .bind(&hash)
        .bind(&account)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE account_id = ?")
        .bind(&account)
        .execute(&mut *tx)
        .await?;
    // Whoever was signed in with the old password is signed out.
    sqlx::query("DELETE FROM sessions WHERE account_id = ?")
        .bind(&account)
        .execute(&mut *tx)
        .await?;
    mail::enqueue(&mut *tx, &changed_mail(&email)).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(account = %account, "password reset");
    sign_in(&state, &visitor, &account, "/konto?passwort-geaendert").await
}
