//! A fee set by the decision (Gebühr nach Bescheid): the decision event carries the
//! amount and its purpose; the citizen pays it on the application's page through the
//! same XBezahldienste flow as a fee at submission. The amount is always the hub's,
//! read again when the payment starts and when it returns, never one a form sent.

use axum::extract::Path;
use serde_json::{Value, json};
use sqlx::Row;

use crate::forms::drafts::{self, Draft};
use crate::web::{Failure, Page, Posted, Visit, Visitor};
use crate::{Shared, db};
use kopplung_web::shell::see_other;

/// The visitor's submitted application `id`, or 404 (a draft goes to its review).
async fn submitted(state: &Shared, visitor: &Visitor, id: &str) -> Result<Draft, Failure> {
    let draft = drafts::load_owned(state, visitor, id).await?;
    if !draft.submitted() {
        return Err(Failure::see_other(format!("/entwurf/{}/pruefen", draft.id)));
    }
    Ok(draft)
}

/// A decision's fee as the hub reports it (`mailbox[].fee` of the decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// `"30.70"`.
    pub amount: String,
    pub purpose: String,
    /// The decision's event id: what the payment record refers to.
    pub event_id: String,
}

/// The fee of the application's decision, if it set one.
pub fn due_of(status: &Value) -> Option<Due> {
    status["mailbox"]
        .as_array()?
        .iter()
        .rev()
        .find(|entry| entry["kind"] == "decided")
        .and_then(|entry| {
            Some(Due {
                amount: entry["fee"]["amount"].as_str()?.to_owned(),
                purpose: entry["fee"]["purpose"].as_str()?.to_owned(),
                event_id: entry["event_id"].as_str().unwrap_or_default().to_owned(),
            })
        })
}

/// What the portal knows of the payment of a decision's fee.
#[derive(Debug, Clone, Default)]
pub struct Paid {
    pub transaction: Option<String>,
    pub reference: Option<String>,
    pub paid_at: Option<i64>,
}

pub async fn payment_of(state: &Shared, draft: &str) -> Result<Paid, sqlx::Error> {
    let row = sqlx::query(
        "SELECT transaction_id, reference, paid_at FROM decision_payments WHERE draft_id = ?",
    )
    .bind(draft)
    .fetch_optional(&state.db)
    .await?;
    Ok(match row {
        Some(row) => Paid {
            transaction: row.try_get("transaction_id")?,
            reference: row.try_get("reference")?,
            paid_at: row.try_get("paid_at")?,
        },
        None => Paid::default(),
    })
}

/// What the service's decision sets, in one word: „Steuer“ for a tax (the service's
/// `charge.kind`), else „Gebühr“.
pub fn noun(service: Option<&crate::router_client::Service>) -> &'static str {
    match service.and_then(|s| s.charge.as_ref()).map(|c| c.kind) {
        Some(kopplung_forms::ChargeKind::Steuer) => "Steuer",
        _ => "Gebühr",
    }
}

/// The fee section of the application's page: amount, purpose and the state of its
/// payment; `null` if the decision set no fee.
pub async fn view(
    state: &Shared,
    draft: &Draft,
    status: &Value,
    noun: &'static str,
) -> Result<Value, sqlx::Error> {
    let Some(due) = due_of(status) else {
        return Ok(json!(null));
    };
    let paid = payment_of(state, &draft.id).await?;
    Ok(json!({
        "noun": noun,
        "amount": format!("{} €", due.amount.replace('.', ",")),
        "purpose": due.purpose,
        "reference": paid.reference,
        "paid_at": paid.paid_at.map(kopplung_web::shell::german_time_unix),
    }))
}

/// `POST /antraege/{id}/gebuehr/bezahlen`: opens a payment transaction for the fee the
/// decision set and sends the citizen to the provider's page.
pub async fn pay(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(_): Posted,
) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    let back = format!("/antraege/{}#gebuehr", draft.id);
    let Some(application) = &draft.application_id else {
        return Ok(see_other(&back));
    };
    let Some(status) = state.router.application(application).await? else {
        return Ok(see_other(&back));
    };
    let Some(due) = due_of(&status) else {
        return Ok(see_other(&back));
    };
    let started = payment_of(&state, &draft.id).await?;
    if started.reference.is_some() {
        return Ok(see_other(&back));
    }
    match super::earlier(&state, started.transaction.as_deref(), &due.amount).await? {
        super::Earlier::Paid => {
            return Ok(see_other(&format!(
                "/antraege/{}/gebuehr/zahlung",
                draft.id
            )));
        }
        super::Earlier::Open(page) => return Ok(see_other(&page)),
        super::Earlier::Gone => {}
    }
    // A new request id per attempt: a cancelled transaction is not taken up again.
    let request = format!("{}-gebuehr-{}", draft.id, db::now());
    let purpose = format!(
        "{} {}: {}",
        draft.receipt.as_deref().unwrap_or_default(),
        draft.service_name,
        due.purpose
    );
    let transaction = state
        .payments
        .create(
            &request,
            &due.amount,
            &purpose,
            &format!(
                "{}/antraege/{}/gebuehr/zahlung",
                state.config.public_url, draft.id
            ),
        )
        .await?;
    // Only over the transaction this request saw: when another tab started one
    // meanwhile, the citizen pays that one instead.
    let kept = sqlx::query(
        "INSERT INTO decision_payments (draft_id, transaction_id, amount, started_at)
         VALUES (?, ?, ?, ?)
         ON CONFLICT (draft_id) DO UPDATE SET transaction_id = excluded.transaction_id,
             amount = excluded.amount, started_at = excluded.started_at
         WHERE decision_payments.reference IS NULL
           AND decision_payments.transaction_id IS ?",
    )
    .bind(&draft.id)
    .bind(&transaction.payment_transaction_id)
    .bind(&due.amount)
    .bind(db::now())
    .bind(started.transaction.as_deref())
    .execute(&state.db)
    .await?;
    if kept.rows_affected() == 0 {
        let other = payment_of(&state, &draft.id).await?.transaction;
        return Ok(
            match super::earlier(&state, other.as_deref(), &due.amount).await? {
                super::Earlier::Open(page) => see_other(&page),
                _ => see_other(&format!("/antraege/{}/gebuehr/zahlung", draft.id)),
            },
        );
    }
    tracing::info!(draft = %draft.id, transaction = %transaction.payment_transaction_id, "payment of a decision's fee started");
    Ok(see_other(&transaction.payment_information.transaction_url))
}

/// `GET /antraege/{id}/gebuehr/zahlung`: back from the provider; the portal asks it
/// whether the fee the decision set was paid in full.
pub async fn returned(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    let page = |outcome: &str| {
        Ok(see_other(&format!(
            "/antraege/{}?gebuehr={outcome}#gebuehr",
            draft.id
        )))
    };
    let paid = payment_of(&state, &draft.id).await?;
    if paid.reference.is_some() {
        return page("bezahlt");
    }
    let (Some(transaction), Some(application)) = (paid.transaction, &draft.application_id) else {
        return page("abgebrochen");
    };
    let Some(due) = state
        .router
        .application(application)
        .await?
        .as_ref()
        .and_then(due_of)
    else {
        return page("abgebrochen");
    };
    let status = state.payments.status(&transaction).await?;
    if !status.paid(&due.amount) {
        return page("abgebrochen");
    }
    sqlx::query(
        "UPDATE decision_payments SET reference = ?, paid_at = ?
         WHERE draft_id = ? AND transaction_id = ? AND reference IS NULL",
    )
    .bind(status.payment_information.payment_reference.as_deref())
    .bind(db::now())
    .bind(&draft.id)
    .bind(&transaction)
    .execute(&state.db)
    .await?;
    tracing::info!(draft = %draft.id, "payment of a decision's fee confirmed by the provider");
    // The payment record for the accounting; the sweep tries again if the hub is away.
    state.payment_records.notify_one();
    page("bezahlt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_is_the_decisions_own() {
        let status = json!({"mailbox": [
            {"kind": "query", "text": "?", "fee": null},
            {"kind": "decided", "event_id": "d-1", "text": "Bescheid", "fee": {"amount": "30.70", "purpose": "Gebühr"}}
        ]});
        assert_eq!(
            due_of(&status),
            Some(Due {
                amount: "30.70".into(),
                purpose: "Gebühr".into(),
                event_id: "d-1".into(),
            })
        );
        assert_eq!(
            due_of(&json!({"mailbox": [{"kind": "decided", "text": "x"}]})),
            None
        );
        assert_eq!(due_of(&json!({})), None);
    }
}
