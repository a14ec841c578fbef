//! Payment records (Zahlungsmeldungen): every fee the portal's payment provider confirmed
//! — at submission, or the one a decision set — goes to the hub as a payment record
//! (`POST /api/v1/applications/{id}/messages`, kind `zahlung`), which routes it to the
//! authority's accounting (HKR). Each is reported once: marked when the hub took it (or
//! says it has it already); until then it is tried again every minute, so a hub that
//! is away delays a record but never loses it.

use serde_json::Value;
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::router_client::{FollowUpOut, FollowUpSent, PaymentRecord};
use crate::{Shared, db};

/// How long a record the hub did not take waits before the next try.
const RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Reports what is due whenever a fee was paid (`AppState::payment_records`), and
/// again every minute while something is left, until the portal stops.
pub async fn run(state: Shared) {
    loop {
        if let Err(e) = report_due(&state).await {
            tracing::warn!(error = %e, "payment records not reported now; trying again later");
        }
        let _ = tokio::time::timeout(RETRY, state.payment_records.notified()).await;
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Reports every paid fee not yet reported; how many the hub took.
pub async fn report_due(state: &Shared) -> Result<u64, crate::Error> {
    let mut reported = 0;
    // Fees paid at submission.
    let rows = sqlx::query(
        "SELECT id, application_id, service, receipt, payment_reference, data,
                COALESCE(payment_paid_at, submitted_at) AS paid_at
         FROM drafts WHERE status = 'submitted' AND application_id IS NOT NULL
           AND payment_reference IS NOT NULL AND payment_reported_at IS NULL",
    )
    .fetch_all(&state.db)
    .await?;
    for row in rows {
        let (draft, application): (String, String) =
            (row.try_get("id")?, row.try_get("application_id")?);
        let service: String = row.try_get("service")?;
        // What was paid: the fee for the entries (per certificate, say).
        let data: serde_json::Value =
            serde_json::from_str(&row.try_get::<String, _>("data")?).unwrap_or_default();
        let Some(fee) = sent_or_none(state.router.service(&service).await)
            .and_then(|s| s.fee)
            .map(|f| f.due(&data))
        else {
            continue;
        };
        let receipt: Option<String> = row.try_get("receipt")?;
        let record = PaymentRecord {
            amount: fee.betrag,
            purpose: format!("{} {}", receipt.unwrap_or_default(), fee.beschreibung)
                .trim()
                .chars()
                .take(140)
                .collect(),
            reference: row.try_get("payment_reference")?,
            paid_at: rfc3339(
                row.try_get::<Option<i64>, _>("paid_at")?
                    .unwrap_or_else(db::now),
            ),
        };
        let key = format!("zahlung-{draft}");
        if sent(send(state, &application, None, &record, &key).await) {
            sqlx::query("UPDATE drafts SET payment_reported_at = ? WHERE id = ?")
                .bind(db::now())
                .bind(&draft)
                .execute(&state.db)
                .await?;
            reported += 1;
        }
    }
    // Fees a decision set, paid afterwards.
    let rows = sqlx::query(
        "SELECT p.draft_id, d.application_id, p.reference, p.paid_at, p.amount
         FROM decision_payments p JOIN drafts d ON d.id = p.draft_id
         WHERE p.reference IS NOT NULL AND p.reported_at IS NULL AND d.application_id IS NOT NULL",
    )
    .fetch_all(&state.db)
    .await?;
    for row in rows {
        let (draft, application): (String, String) =
            (row.try_get("draft_id")?, row.try_get("application_id")?);
        let status: Option<Value> = sent_or_none(state.router.application(&application).await);
        let Some(due) = status.as_ref().and_then(super::decision::due_of) else {
            continue;
        };
        let record = PaymentRecord {
            // What was paid, not what the hub says now.
            amount: row.try_get("amount")?,
            purpose: due.purpose,
            reference: row.try_get("reference")?,
            paid_at: rfc3339(
                row.try_get::<Option<i64>, _>("paid_at")?
                    .unwrap_or_else(db::now),
            ),
        };
        let key = format!("zahlung-{draft}-{}", due.event_id);
        if sent(send(state, &application, Some(&due.event_id), &record, &key).await) {
            sqlx::query("UPDATE decision_payments SET reported_at = ? WHERE draft_id = ?")
                .bind(db::now())
                .bind(&draft)
                .execute(&state.db)
                .await?;
            reported += 1;
        }
    }
    if reported > 0 {
        tracing::info!(reported, "payment records reported to the hub");
    }
    Ok(reported)
}

/// What the hub answered, or `None` (logged) when it did not answer: the next record
/// goes on.
fn sent_or_none<T>(answer: Result<Option<T>, crate::Error>) -> Option<T> {
    answer.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the hub did not answer about a payment record; tried again later");
        None
    })
}

/// Whether a record was taken; a failure is logged and the next record goes on.
fn sent(outcome: Result<bool, crate::Error>) -> bool {
    outcome.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a payment record was not reported now; tried again later");
        false
    })
}

/// Whether the hub has the record now (taken, or taken before).
async fn send(
    state: &Shared,
    application: &str,
    decision: Option<&str>,
    record: &PaymentRecord,
    // The same key for every try: a record the hub took but whose answer was lost is
    // answered again, never stored twice.
    key: &str,
) -> Result<bool, crate::Error> {
    let answer = state
        .router
        .send_follow_up(
            application,
            &FollowUpOut {
                kind: "zahlung",
                refers_to: decision,
                text: None,
                attachments: &[],
                payment: Some(record),
                idempotency_key: key,
            },
        )
        .await?;
    Ok(match answer {
        FollowUpSent::Accepted => true,
        // Reported before (a mark that was lost): the hub has it.
        FollowUpSent::Refused(_) if already_reported(state, application, decision).await => true,
        other => {
            tracing::warn!(outcome = ?kind_of(&other), "the hub refused a payment record");
            false
        }
    })
}

/// Whether the application lists a payment record for `decision` (or the submission).
async fn already_reported(state: &Shared, application: &str, decision: Option<&str>) -> bool {
    let Ok(Some(status)) = state.router.application(application).await else {
        return false;
    };
    status["messages"].as_array().is_some_and(|all| {
        all.iter()
            .any(|m| m["kind"] == "zahlung" && m["refers_to"].as_str() == decision)
    })
}

/// What to log of a refusal: its kind, never its text.
fn kind_of(answer: &FollowUpSent) -> &'static str {
    match answer {
        FollowUpSent::Accepted => "accepted",
        FollowUpSent::Invalid(_) => "invalid",
        FollowUpSent::Refused(_) => "refused",
        FollowUpSent::TooLarge => "too-large",
        FollowUpSent::Unknown => "unknown-application",
    }
}
