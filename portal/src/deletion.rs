//! Deleting a Servicekonto with its data (Art. 17 DSGVO): the account, its sessions,
//! master data, drafts with their files, the portal's copies of submitted applications,
//! notification settings and pending mails. Beside `account`, because it reaches into
//! drafts and payments, which build on accounts themselves.
//!
//! Nothing with money is lost on the way: a fee paid for a draft is refunded and an open
//! payment cancelled first (`payment::refund`), and a payment record the authority's
//! accounting has not yet taken is reported before; where either cannot happen now, the
//! account stays and the citizen is told to try again. The applications at the
//! authorities stay there, under their own retention.

use axum::http::{StatusCode, header};
use serde_json::json;
use sqlx::Row;

use crate::account::{password, require_account};
use crate::mail::{self, Outgoing};
use crate::payment::refund::{self, Reason, Settled};
use crate::web::session;
use crate::web::{Failure, Page, Posted, Visit, euro};
use crate::{Shared, db};
use kopplung_web::shell::form_value;

/// What the account holds, for the confirmation page.
async fn holdings(state: &Shared, account: &str) -> Result<serde_json::Value, sqlx::Error> {
    let row = sqlx::query(
        "SELECT
           SUM(status = 'draft') AS drafts,
           SUM(status = 'draft' AND payment_reference IS NOT NULL) AS paid,
           SUM(status = 'submitted') AS submitted
         FROM drafts WHERE account_id = ?",
    )
    .bind(account)
    .fetch_one(&state.db)
    .await?;
    let count = |name: &str| {
        row.try_get::<Option<i64>, _>(name)
            .map(Option::unwrap_or_default)
    };
    Ok(json!({
        "drafts": count("drafts")?,
        "paid": count("paid")?,
        "submitted": count("submitted")?,
    }))
}

/// `GET /konto/loeschen`: what deleting removes, and the form.
pub async fn delete_page(Visit { state, visitor }: Visit) -> Page {
    let account = require_account(&visitor, "/konto/loeschen")?;
    let held = holdings(&state, &account.id).await?;
    state.templates.ok(
        &visitor,
        "account_delete",
        "Servicekonto löschen",
        &json!({
            "csrf": visitor.csrf,
            "held": held,
            "password": account.email.is_some(),
            "errors": [],
        }),
    )
}

fn unavailable(message: &str) -> Failure {
    Failure::new(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// `POST /konto/loeschen`: with the confirmation (and, for a password account, the
/// password) the account goes.
pub async fn delete_account(Visit { state, visitor }: Visit, Posted(pairs): Posted) -> Page {
    let account = require_account(&visitor, "/konto/loeschen")?.clone();
    let mut errors = Vec::new();
    if form_value(&pairs, "bestaetigt") != Some("ja") {
        errors.push(json!({"id": "bestaetigt", "message": "Bitte bestätigen Sie, dass Ihr Servicekonto mit allen Daten gelöscht werden soll."}));
    }
    if account.email.is_some() {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = ?")
                .bind(&account.id)
                .fetch_optional(&state.db)
                .await?;
        let given = form_value(&pairs, "password")
            .unwrap_or_default()
            .to_owned();
        let (ok, _) = password::verify_both(given, hash, None).await;
        if !ok {
            errors.push(json!({"id": "password", "message": "Das Passwort stimmt nicht. Bitte geben Sie das Passwort Ihres Servicekontos ein."}));
        }
    }
    if !errors.is_empty() {
        let held = holdings(&state, &account.id).await?;
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "account_delete",
            "Fehler: Servicekonto löschen",
            &json!({"csrf": visitor.csrf, "held": held, "password": account.email.is_some(), "invalid": crate::web::invalid_fields(&errors), "errors": errors}),
        ));
    }
    // Money first: every draft's payment settled, every paid fee reported.
    let mut refunds = Vec::new();
    let with_payment: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM drafts WHERE account_id = ? AND status = 'draft' AND payment_transaction IS NOT NULL",
    )
    .bind(&account.id)
    .fetch_all(&state.db)
    .await?;
    for id in with_payment {
        let Some(draft) = crate::forms::drafts::load(&state, &id).await? else {
            continue;
        };
        match refund::settle(&state, &draft, Reason::AccountDeleted).await {
            Ok(Settled::Refunded { amount, refund_reference }) => refunds.push(format!(
                "Die Gebühr von {} für „{}“ wird erstattet (Erstattungsreferenz {refund_reference}).",
                euro(&amount),
                draft.service_name
            )),
            Ok(Settled::Nothing) => {}
            Err(e) => {
                tracing::warn!(account = %account.id, error = %e, "account kept: a draft's payment could not be settled");
                return Err(unavailable("Ihr Servicekonto wurde nicht gelöscht, weil der Zahlungsdienst gerade nicht erreichbar ist und eine bezahlte Gebühr noch nicht erstattet werden kann. Bitte versuchen Sie es in einigen Minuten noch einmal."));
            }
        }
    }
    let _ = crate::payment::record::report_due(&state).await;
    let unreported: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM drafts WHERE account_id = ?1 AND status = 'submitted'
                   AND payment_reference IS NOT NULL AND payment_reported_at IS NULL)
              + (SELECT count(*) FROM decision_payments p JOIN drafts d ON d.id = p.draft_id
                   WHERE d.account_id = ?1 AND (p.reported_at IS NULL))",
    )
    .bind(&account.id)
    .fetch_one(&state.db)
    .await?;
    if unreported > 0 {
        tracing::warn!(account = %account.id, unreported, "account kept: payments not yet reported to the hub");
        return Err(unavailable(
            "Ihr Servicekonto wurde noch nicht gelöscht, weil eine Zahlung noch an die Kasse der Behörde gemeldet oder abgeschlossen werden muss. Bitte versuchen Sie es in einigen Minuten noch einmal.",
        ));
    }
    let mut tx = db::write_transaction(&state.db).await?;
    if let Some(email) = &account.email {
        sqlx::query("DELETE FROM mail_outbox WHERE recipient = ?")
            .bind(email)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM registrations WHERE email = ?")
            .bind(email)
            .execute(&mut *tx)
            .await?;
    }
    // Sessions, drafts with their files and payments, identities, notification
    // settings and reset links go with it (ON DELETE CASCADE).
    sqlx::query("DELETE FROM accounts WHERE id = ?")
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
    if let Some(email) = &account.email {
        mail::enqueue(
            &mut *tx,
            &Outgoing::letter(
                email,
                "Ihr Servicekonto wurde gelöscht",
                "Ihr Servicekonto im Serviceportal wurde mit allen Daten gelöscht, die \
                       das Portal dazu gespeichert hat. Anträge, die Sie gestellt haben, \
                       bearbeitet die zuständige Behörde weiter; dort gelten deren \
                       Aufbewahrungsfristen.\n\n",
            ),
        )
        .await?;
    }
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(account = %account.id, "servicekonto deleted");
    let mut paragraphs = vec![
        "Ihr Servicekonto wurde mit allen Daten gelöscht, die das Portal dazu gespeichert hat: Anmeldedaten, Stammdaten, Entwürfe mit Unterlagen, die Kopien Ihrer Anträge und Ihre Einstellungen.".to_owned(),
        "Anträge, die Sie gestellt haben, bearbeitet die zuständige Behörde weiter; dort gelten deren Aufbewahrungsfristen.".to_owned(),
    ];
    paragraphs.extend(refunds);
    let signed_out = crate::web::Visitor {
        account: None,
        session_id: None,
        ..visitor.clone()
    };
    let mut page = state.templates.ok(
        &signed_out,
        "notice",
        "Servicekonto gelöscht",
        &json!({
            "heading": "Servicekonto gelöscht",
            "paragraphs": paragraphs,
            "back": "/",
            "back_label": "Zur Startseite",
        }),
    )?;
    page.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(&state));
    Ok(page)
}
