//! `/konto/benachrichtigungen`: an account chooses which news it is mailed — new mailbox
//! entries, status changes — each off until chosen (consent), to the account's
//! confirmed address. An account made at an identity provider has none: it confirms one
//! here first (a link by mail, whose button confirms).

use axum::extract::Query;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::account::require_account;
use crate::mail::{self, Outgoing};
use crate::web::{Failure, Page, Posted, Visit, Visitor};
use crate::{Shared, db};
use kopplung_web::shell::{form_value, is_token, see_other, token_id};

const PATH: &str = "/konto/benachrichtigungen";

/// What the page shows of an account's choices.
struct Choices {
    /// The address mails go to, if the account has a confirmed one.
    address: Option<String>,
    mailbox: bool,
    status: bool,
    /// An address waiting for its confirmation.
    pending: Option<String>,
}

async fn choices(state: &Shared, account: &str) -> Result<Choices, sqlx::Error> {
    let row = sqlx::query(
        "SELECT a.kind, a.email, n.email AS notify_email, n.pending_email,
                n.pending_expires_at, n.mailbox_since, n.status_since
         FROM accounts a LEFT JOIN notification_settings n ON n.account_id = a.id
         WHERE a.id = ?",
    )
    .bind(account)
    .fetch_one(&state.db)
    .await?;
    let address = match row.get::<String, _>("kind").as_str() {
        // Confirmed at registration.
        "password" => Some(row.get("email")),
        _ => row.get("notify_email"),
    };
    let pending = row
        .get::<Option<i64>, _>("pending_expires_at")
        .filter(|at| *at > db::now())
        .and(row.get("pending_email"));
    Ok(Choices {
        address,
        mailbox: row.get::<Option<i64>, _>("mailbox_since").is_some(),
        status: row.get::<Option<i64>, _>("status_since").is_some(),
        pending,
    })
}

fn page(
    state: &Shared,
    visitor: &Visitor,
    status: StatusCode,
    choices: &Choices,
    notice: Option<&str>,
    errors: serde_json::Value,
    email: Option<&str>,
) -> axum::response::Response {
    state.templates.page(
        visitor,
        status,
        "notifications",
        if status.is_client_error() {
            "Fehler: Benachrichtigungen"
        } else {
            "Benachrichtigungen"
        },
        &json!({
            "csrf": visitor.csrf,
            "address": choices.address,
            "mailbox": choices.mailbox,
            "status": choices.status,
            "pending": choices.pending,
            "notice": notice,
            "errors": errors,
            // A refused address is offered again as typed.
            "email": email,
        }),
    )
}

/// `POST /konto/benachrichtigungen`: the choices, each kept with the time it was made.
pub async fn save(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let account = require_account(&visitor, PATH)?;
    let chosen = |name: &str| form_value(&pairs, name) == Some("ja");
    let now = db::now();
    sqlx::query(
        "INSERT INTO notification_settings (account_id, mailbox_since, status_since)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id) DO UPDATE SET
           mailbox_since = CASE WHEN ?2 IS NULL THEN NULL
                                ELSE COALESCE(mailbox_since, ?2) END,
           status_since = CASE WHEN ?3 IS NULL THEN NULL
                               ELSE COALESCE(status_since, ?3) END",
    )
    .bind(&account.id)
    .bind(chosen("postfach").then_some(now))
    .bind(chosen("stand").then_some(now))
    .execute(&state.db)
    .await?;
    tracing::info!(account = %account.id, "notification choices saved");
    let choices = choices(&state, &account.id).await?;
    let notice = match (&choices.address, choices.mailbox || choices.status) {
        (None, true) => {
            "Ihre Auswahl ist gespeichert. E-Mails schicken wir Ihnen, sobald Sie unten eine E-Mail-Adresse bestätigt haben."
        }
        _ => "Ihre Auswahl ist gespeichert.",
    };
    Ok(page(
        &state,
        &visitor,
        StatusCode::OK,
        &choices,
        Some(notice),
        json!([]),
        None,
    ))
}

/// `POST /konto/benachrichtigungen/adresse`: an account without a confirmed address
/// names one; a mail with a link to confirm it goes out.
pub async fn address(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let account = require_account(&visitor, PATH)?;
    let email = crate::account::normalized_email(&pairs);
    let current = choices(&state, &account.id).await?;
    if !crate::account::registration::valid_email(&email) {
        return Ok(page(
            &state,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            &current,
            None,
            json!([{"id": "adresse", "message": "Bitte geben Sie eine gültige E-Mail-Adresse an, zum Beispiel name@example.org."}]),
            Some(&email),
        ));
    }
    let token = super::mail_token(&state, &email, &visitor)?;
    let expires = db::now().saturating_add(state.config.settings.accounts.confirm_seconds());
    let mut tx = db::write_transaction(&state.db).await?;
    sqlx::query(
        "INSERT INTO notification_settings (account_id, pending_email, pending_token_hash,
           pending_expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id) DO UPDATE SET pending_email = ?2, pending_token_hash = ?3,
           pending_expires_at = ?4",
    )
    .bind(&account.id)
    .bind(&email)
    .bind(token_id(&token))
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    mail::enqueue(&mut *tx, &address_mail(&state, &email, &token)).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(account = %account.id, "notification address named, confirmation mail queued");
    Ok(see_other(&format!("{PATH}?adresse=gesendet")))
}

fn address_mail(state: &Shared, to: &str, token: &str) -> Outgoing {
    let base = &state.config.public_url;
    let hours = state.config.settings.accounts.confirm_link_hours;
    Outgoing::letter(
        to,
        "Servicekonto: Bitte bestätigen Sie Ihre E-Mail-Adresse für Benachrichtigungen",
        &format!(
            "in einem Servicekonto wurde diese E-Mail-Adresse für Benachrichtigungen zu \
             Anträgen angegeben. Bitte bestätigen Sie sie: Öffnen Sie diesen Link, melden Sie \
             sich an, wenn das Portal Sie darum bittet, und klicken Sie auf „E-Mail-Adresse \
             bestätigen“.\n\n\
             {base}{PATH}/bestaetigen?code={token}\n\n\
             Der Link gilt {hours} Stunden. Wenn Sie das nicht waren, brauchen Sie nichts zu \
             tun: Ohne Bestätigung schicken wir an diese Adresse nichts.\n\n"
        ),
    )
}

#[derive(Deserialize)]
pub struct CodeQuery {
    code: Option<String>,
    adresse: Option<String>,
}

fn invalid_link() -> Failure {
    Failure::not_found_with(
        "Dieser Bestätigungslink ist ungültig, schon benutzt, abgelaufen oder gehört zu einem anderen Servicekonto. Bitte geben Sie Ihre E-Mail-Adresse unter „Benachrichtigungen“ in Ihrem Servicekonto noch einmal an; Sie bekommen dann einen neuen Link.",
    )
}

/// `GET /konto/benachrichtigungen/bestaetigen?code=`: the link's page; its button confirms.
pub async fn confirm_page(Visit { state, visitor }: Visit, Query(query): Query<CodeQuery>) -> Page {
    let code = query.code.unwrap_or_default().to_ascii_lowercase();
    let back = format!("{PATH}/bestaetigen?code={code}");
    let account = require_account(&visitor, &back)?;
    if !is_token(&code) {
        return Err(invalid_link());
    }
    let waiting: Option<String> = sqlx::query_scalar(
        "SELECT pending_email FROM notification_settings
         WHERE account_id = ? AND pending_token_hash = ? AND pending_expires_at > ?",
    )
    .bind(&account.id)
    .bind(token_id(&code))
    .bind(db::now())
    .fetch_optional(&state.db)
    .await?;
    let Some(email) = waiting else {
        return Err(invalid_link());
    };
    state.templates.ok(
        &visitor,
        "notify_confirm",
        "E-Mail-Adresse bestätigen",
        &json!({ "csrf": visitor.csrf, "code": code, "email": email }),
    )
}

/// `POST /konto/benachrichtigungen/bestaetigen`: the address becomes the account's for
/// notifications.
pub async fn confirm(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let account = require_account(&visitor, PATH)?;
    let code = form_value(&pairs, "code")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !is_token(&code) {
        return Err(invalid_link());
    }
    let confirmed = sqlx::query(
        "UPDATE notification_settings SET email = pending_email, pending_email = NULL,
           pending_token_hash = NULL, pending_expires_at = NULL
         WHERE account_id = ? AND pending_token_hash = ? AND pending_expires_at > ?",
    )
    .bind(&account.id)
    .bind(token_id(&code))
    .bind(db::now())
    .execute(&state.db)
    .await?
    .rows_affected();
    if confirmed == 0 {
        return Err(invalid_link());
    }
    tracing::info!(account = %account.id, "notification address confirmed");
    Ok(see_other(&format!("{PATH}?adresse=bestaetigt")))
}

/// `GET /konto/benachrichtigungen` (`?adresse=…`: with what just happened to the
/// address).
pub async fn show(Visit { state, visitor }: Visit, Query(query): Query<CodeQuery>) -> Page {
    let account = require_account(&visitor, PATH)?;
    let choices = choices(&state, &account.id).await?;
    let notice = match query.adresse.as_deref() {
        Some("gesendet") => Some(
            "Wir haben Ihnen eine E-Mail mit einem Link geschickt. Bitte öffnen Sie ihn und bestätigen Sie dort Ihre E-Mail-Adresse.",
        ),
        Some("bestaetigt") => {
            Some("Ihre E-Mail-Adresse ist bestätigt. Benachrichtigungen gehen an diese Adresse.")
        }
        _ => None,
    };
    Ok(page(
        &state,
        &visitor,
        StatusCode::OK,
        &choices,
        notice,
        json!([]),
        None,
    ))
}
