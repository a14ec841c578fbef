//! Status mails for anonymous reporters: a visitor without an account leaves an address
//! on the confirmation page of one application. Double opt-in: first only a mail with a
//! link goes out, and only its button (a POST; mail scanners fetch links) confirms — so
//! nobody can make the portal mail a stranger. The link's secret token also opens a
//! status page of that one application without an account (its status, history and the
//! authority's messages, as the visitor's own page shows them; no form data), and stops
//! the mails. The address is deleted when the visitor stops them,
//! `[notifications] final_grace_days` after the application became final, or when it
//! expires (unconfirmed: with the link; confirmed: `anonymous_keep_days`).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};

use super::News;
use crate::applications::conversation::{self, Case, Choice};
use crate::forms::drafts;
use crate::mail::{self, Outgoing};
use crate::router_client::Change;
use crate::web::{Failure, Page, Posted, Visit, Visitor};
use crate::{Shared, db};
use kopplung_forms::Wording;
use kopplung_web::shell::{
    form_value, german_day, german_time_rfc3339, is_token, see_other, token_id,
};

/// The day (German time) an address is deleted at the latest, as a letter writes it.
fn last_day(expires_at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(expires_at)
        .map(|t| german_day(kopplung_web::shell::berlin(t).date()))
        .unwrap_or_default()
}

fn unknown_link() -> Failure {
    Failure::not_found_with(
        "Dieser Link ist ungültig oder abgelaufen, oder Sie haben die E-Mails zu diesem Vorgang abbestellt. Wir haben Ihre E-Mail-Adresse dann schon gelöscht. Den Stand erfahren Sie bei der Behörde; nennen Sie dort Ihre Vorgangsnummer.",
    )
}

/// The mail that asks to confirm the address.
fn confirm_mail(
    state: &Shared,
    to: &str,
    token: &str,
    receipt: &str,
    wording: Wording,
) -> Outgoing {
    let base = &state.config.public_url;
    let hours = state.config.settings.accounts.confirm_link_hours;
    let (dative, genitive) = (wording.yours_dative(), wording.yours_genitive());
    Outgoing::letter(
        to,
        format!("Bitte bestätigen Sie Ihre E-Mail-Adresse für Nachrichten zu {dative} {receipt}"),
        &format!(
            "Sie möchten per E-Mail erfahren, wenn sich der Stand {genitive} {receipt} \
             ändert. Bitte bestätigen Sie das: Öffnen Sie diesen Link und klicken Sie dort \
             auf „E-Mail-Benachrichtigung bestätigen“.\n\n\
             {base}/status/{token}/bestaetigen\n\n\
             Der Link gilt {hours} Stunden. Wenn Sie das nicht waren, brauchen Sie nichts zu \
             tun: Ohne Bestätigung schicken wir Ihnen keine weitere E-Mail und löschen Ihre \
             Adresse.\n\n"
        ),
    )
}

/// A status mail to a confirmed anonymous reporter.
pub fn status_mail(
    state: &Shared,
    to: &str,
    token: &str,
    expires_at: i64,
    change: &Change,
    news: News,
    wording: Wording,
) -> Outgoing {
    let base = &state.config.public_url;
    let grace = state.config.settings.notifications.final_grace_days;
    let expires = last_day(expires_at);
    let how = format!(
        "Den Stand und die Nachrichten der Behörde sehen Sie hier, ohne Anmeldung:\n\n\
             {base}/status/{token}\n\n\
             Sie erhalten diese E-Mail, weil Sie sie auf der Bestätigungsseite {genitive} \
             bestellt und Ihre E-Mail-Adresse bestätigt haben. Wenn Sie keine E-Mails mehr \
             erhalten möchten, bestellen Sie sie hier ab:\n\n\
             {base}/status/{token}/abbestellen\n\n\
             Wir löschen Ihre E-Mail-Adresse, sobald Sie die E-Mails abbestellen, sonst \
             {grace} Tage, nachdem die Behörde den Vorgang abgeschlossen hat, und spätestens \
             am {expires}.\n\n",
        genitive = wording.yours_genitive(),
    );
    super::news_mail(to, change, news, wording, &how)
}

/// The application became final: its reporters' addresses go after the grace period.
pub async fn application_final(
    state: &Shared,
    tx: &mut SqliteConnection,
    application: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now();
    let until = now.saturating_add(state.config.settings.notifications.grace_seconds());
    sqlx::query(
        "UPDATE status_subscriptions SET final_at = COALESCE(final_at, ?),
           expires_at = MIN(expires_at, ?)
         WHERE application_id = ?",
    )
    .bind(now)
    .bind(until)
    .bind(application)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `POST /antraege/{id}/benachrichtigung`: an anonymous reporter leaves an address for
/// the status mails of their application; the confirmation mail goes out.
pub async fn subscribe(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(pairs): Posted,
) -> Page {
    if visitor.account.is_some() {
        return Ok(see_other("/konto/benachrichtigungen"));
    }
    let draft = drafts::load_owned(&state, &visitor, &id).await?;
    let (Some(application), Some(receipt)) = (&draft.application_id, &draft.receipt) else {
        return Err(Failure::not_found());
    };
    let email = form_value(&pairs, "email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    if !crate::account::registration::valid_email(&email) {
        return Ok(signup_form(
            &state,
            &visitor,
            &draft.id,
            receipt,
            &email,
            "Bitte geben Sie eine gültige E-Mail-Adresse an, zum Beispiel name@example.org.",
        ));
    }
    let token = super::mail_token(&state, &email, &visitor)?;
    let now = db::now();
    let mut tx = db::write_transaction(&state.db).await?;
    // One address per application and browser: a new one replaces one not confirmed.
    sqlx::query(
        "DELETE FROM status_subscriptions WHERE application_id = ? AND confirmed_at IS NULL",
    )
    .bind(application)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO status_subscriptions (token_hash, token, application_id, receipt, email,
           created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token_id(&token))
    .bind(&token)
    .bind(application)
    .bind(receipt)
    .bind(&email)
    .bind(now)
    .bind(now.saturating_add(state.config.settings.accounts.confirm_seconds()))
    .execute(&mut *tx)
    .await?;
    let wording = super::wording_of_service(&state, &draft.service).await;
    mail::enqueue(
        &mut *tx,
        &confirm_mail(&state, &email, &token, receipt, wording),
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(draft = %draft.id, "status mails asked for, confirmation mail queued");
    Ok(see_other(&format!(
        "/antraege/{}/benachrichtigung",
        draft.id
    )))
}

/// `GET /antraege/{id}/benachrichtigung`: "check your mail".
pub async fn subscribed(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let draft = drafts::load_owned(&state, &visitor, &id).await?;
    let wording = super::wording_of_service(&state, &draft.service).await;
    state.templates.ok(
        &visitor,
        "notice",
        "Bitte bestätigen Sie Ihre E-Mail-Adresse",
        &json!({
            "heading": "Bitte bestätigen Sie Ihre E-Mail-Adresse",
            "paragraphs": [
                format!("Wir haben Ihnen eine E-Mail mit einem Link geschickt. Erst wenn Sie ihn öffnen und dort bestätigen, schicken wir Ihnen E-Mails zum Stand {}.", wording.yours_genitive()),
                format!("Der Link gilt {} Stunden. Ist keine E-Mail angekommen, sehen Sie bitte im Spam-Ordner nach, oder geben Sie Ihre Adresse auf der Seite {} noch einmal ein.", state.config.settings.accounts.confirm_link_hours, wording.yours_genitive()),
            ],
            "back": format!("/antraege/{}", draft.id),
            "back_label": format!("Zurück zu {}", wording.yours_dative()),
            "viewer": state.mailer.viewer_dir().is_some(),
        }),
    )
}

fn signup_form(
    state: &Shared,
    visitor: &Visitor,
    draft: &str,
    receipt: &str,
    email: &str,
    error: &str,
) -> Response {
    state.templates.page(
        visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        "notify_signup",
        "Fehler: E-Mails zum Stand",
        &json!({
            "csrf": visitor.csrf,
            "id": draft,
            "receipt": receipt,
            "email": email,
            "errors": [{"id": "benachrichtigung-email", "message": error}],
        }),
    )
}

/// The subscription of the link's `token`, if it is one and has not expired.
async fn subscription(state: &Shared, token: &str) -> Result<sqlx::sqlite::SqliteRow, Failure> {
    if !is_token(token) {
        return Err(unknown_link());
    }
    sqlx::query(
        "SELECT application_id, receipt, confirmed_at, expires_at FROM status_subscriptions
         WHERE token_hash = ? AND expires_at > ?",
    )
    .bind(token_id(&token.to_ascii_lowercase()))
    .bind(db::now())
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(unknown_link)
}

/// The application's status, history and the authority's messages from the hub, as the
/// visitor's own page shows them (no documents: those stay with the visitor's session).
async fn status_view(
    state: &Shared,
    application: &str,
    wording: Wording,
    token: &str,
    confirmed: bool,
) -> Result<Value, Failure> {
    let Some(status) = state.router.application(application).await? else {
        return Ok(json!(null));
    };
    let list = |key: &str| status[key].as_array().cloned().unwrap_or_default();
    let sent = conversation::sent(&status);
    let open_query = status["status"] == "query";
    let mailbox: Vec<Value> = list("mailbox")
        .iter()
        .map(|m| {
            let event = m["event_id"].as_str().unwrap_or_default();
            let answered = sent
                .iter()
                .any(|s| s["refers_to"] == event && s["counts"] == true);
            json!({
                // The open Rückfrage may be answered from here (only with a confirmed
                // address: the page is then the reporter's).
                "reply_href": (confirmed && open_query && m["kind"] == "query" && !answered).then(|| format!(
                    "/status/{token}/nachricht?art=antwort&bezug={}",
                    crate::router_client::encode(event)
                )),
                "answered": answered && m["kind"] == "query",
                "kind": crate::applications::kind_label(m["kind"].as_str().unwrap_or_default(), wording),
                "text": m["text"],
                "at": german_time_rfc3339(m["at"].as_str().unwrap_or_default()),
                "appeal": crate::applications::appeal_view(&m["appeal"]),
            })
        })
        .collect();
    let history: Vec<Value> = list("history")
        .iter()
        .map(|h| {
            json!({
                "status": crate::applications::status_label(h["status"].as_str().unwrap_or_default(), wording),
                "at": german_time_rfc3339(h["at"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    Ok(json!({
        "status": crate::applications::status_label(status["status"].as_str().unwrap_or_default(), wording),
        "mailbox": mailbox,
        "sent": sent,
        "history": history,
    }))
}

/// What the status page confirms at its top, after a redirect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notice {
    None,
    Confirmed,
    Sent,
}

/// Which form the status page offers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    Status,
    Confirm,
    Stop,
}

async fn status_page(
    state: &Shared,
    visitor: &Visitor,
    token: &str,
    offer: Offer,
    notice: Notice,
) -> Page {
    let (confirmed_now, message_sent) = (notice == Notice::Confirmed, notice == Notice::Sent);
    let row = subscription(state, token).await?;
    let confirmed = row.get::<Option<i64>, _>("confirmed_at").is_some();
    let receipt: String = row.get("receipt");
    let application: String = row.get("application_id");
    let wording = super::wording_of_application(state, &application).await;
    let token = token.to_ascii_lowercase();
    let router = status_view(state, &application, wording, &token, confirmed).await?;
    state.templates.ok(
        visitor,
        "status",
        &format!("Stand {} {receipt}", wording.yours_genitive()),
        &json!({
            "wording": crate::forms::wording_view(wording),
            "csrf": visitor.csrf,
            "token": token,
            "receipt": receipt,
            "router": router,
            "confirmed": confirmed,
            "offer_confirm": !confirmed && offer != Offer::Stop,
            "offer_stop": offer == Offer::Stop,
            "stop_link": confirmed && offer != Offer::Stop,
            "expires": last_day(row.get::<i64, _>("expires_at")),
            "grace_days": state.config.settings.notifications.final_grace_days,
            "confirmed_now": confirmed_now,
            "message_sent": message_sent,
        }),
    )
}

/// `GET /status/{token}`: the application's status without an account.
pub async fn show(
    Visit { state, visitor }: Visit,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let notice = if query.contains_key("bestaetigt") {
        Notice::Confirmed
    } else if query.get("nachricht").is_some_and(|v| v == "gesendet") {
        Notice::Sent
    } else {
        Notice::None
    };
    status_page(&state, &visitor, &token, Offer::Status, notice).await
}

/// `GET /status/{token}/bestaetigen`: the confirmation mail's link; its button confirms.
pub async fn confirm_page(Visit { state, visitor }: Visit, Path(token): Path<String>) -> Page {
    status_page(&state, &visitor, &token, Offer::Confirm, Notice::None).await
}

/// `POST /status/{token}/bestaetigen`: the address is confirmed; status mails follow.
pub async fn confirm(
    Visit { state, .. }: Visit,
    Path(token): Path<String>,
    Posted(_): Posted,
) -> Page {
    let row = subscription(&state, &token).await?;
    if row.get::<Option<i64>, _>("confirmed_at").is_none() {
        let now = db::now();
        sqlx::query(
            "UPDATE status_subscriptions SET confirmed_at = ?, expires_at = ?
             WHERE token_hash = ? AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(now.saturating_add(state.config.settings.notifications.keep_seconds()))
        .bind(token_id(&token.to_ascii_lowercase()))
        .execute(&state.db)
        .await?;
        tracing::info!("status mails confirmed");
    }
    Ok(see_other(&format!(
        "/status/{}?bestaetigt",
        token.to_ascii_lowercase()
    )))
}

/// `GET /status/{token}/abbestellen`: each mail's stop link; its button stops them.
pub async fn stop_page(Visit { state, visitor }: Visit, Path(token): Path<String>) -> Page {
    status_page(&state, &visitor, &token, Offer::Stop, Notice::None).await
}

/// `POST /status/{token}/abbestellen`: no more mails; the address is deleted.
pub async fn stop(
    Visit { state, visitor }: Visit,
    Path(token): Path<String>,
    Posted(_): Posted,
) -> Page {
    subscription(&state, &token).await?;
    sqlx::query("DELETE FROM status_subscriptions WHERE token_hash = ?")
        .bind(token_id(&token.to_ascii_lowercase()))
        .execute(&state.db)
        .await?;
    tracing::info!("status mails stopped, address deleted");
    state.templates.ok(
        &visitor,
        "notice",
        "E-Mails abbestellt",
        &json!({
            "heading": "E-Mails abbestellt",
            "paragraphs": [
                "Sie erhalten keine E-Mails mehr zu diesem Vorgang. Wir haben Ihre E-Mail-Adresse gelöscht, und der Link aus unseren E-Mails funktioniert nicht mehr.",
                "Den Stand erfahren Sie weiter bei der Behörde; nennen Sie dort Ihre Vorgangsnummer.",
            ],
            "back": "/",
            "back_label": "Zur Startseite",
        }),
    )
}

/// The application a confirmed status link is about, as the case a reply is written
/// about; an unconfirmed link is sent to its confirmation first.
async fn reply_case(state: &Shared, token: &str) -> Result<Case, Failure> {
    let row = subscription(state, token).await?;
    let token = token.to_ascii_lowercase();
    if row.get::<Option<i64>, _>("confirmed_at").is_none() {
        return Err(Failure::see_other(format!("/status/{token}/bestaetigen")));
    }
    let application_id: String = row.get("application_id");
    let Some(application) = state.router.application(&application_id).await? else {
        return Err(Failure::not_found());
    };
    Ok(Case {
        service: application["service"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        service_name: application["service_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        receipt: row.get("receipt"),
        application_id,
        home: format!("/status/{token}"),
        anonymous: true,
        answers_only: true,
    })
}

/// `GET /status/{token}/nachricht?art=antwort`: an anonymous reporter answers the
/// authority's Rückfrage from the status page.
pub async fn reply_page(
    Visit { state, visitor }: Visit,
    Path(token): Path<String>,
    Query(choice): Query<Choice>,
) -> Page {
    let case = reply_case(&state, &token).await?;
    conversation::form(&state, &visitor, &case, choice).await
}

/// `POST /status/{token}/nachricht`: the answer goes to the authority like one from the
/// citizen's own page.
pub async fn reply_send(
    Visit { state, visitor }: Visit,
    Path(token): Path<String>,
    request: axum::extract::Request,
) -> Page {
    let case = reply_case(&state, &token).await?;
    conversation::post(&state, &visitor, &case, request).await
}
