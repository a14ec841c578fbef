//! A draft that goes before it is submitted — discarded by the citizen, or swept as an
//! abandoned anonymous draft — must not keep the citizen's money. Before it is deleted,
//! its payment is settled with the provider: an open transaction is cancelled (so a
//! second tab can no longer pay for a draft that is gone), a paid one is refunded in
//! full and the refund recorded. Where the provider cannot be reached, the draft stays
//! and is settled on the next attempt: money and draft never part.

use crate::forms::drafts::Draft;
use crate::{Error, Shared, db};

/// Why a fee went back (`refunds.reason`: `discarded`, `expired`, `account-deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The citizen discarded the draft.
    Discarded,
    /// The retention sweep removed an abandoned anonymous draft.
    Expired,
    /// The citizen deleted the Servicekonto.
    AccountDeleted,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Discarded => "discarded",
            Reason::Expired => "expired",
            Reason::AccountDeleted => "account-deleted",
        }
    }
}

/// What became of a draft's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing was paid (no transaction, or one cancelled, failed or unknown).
    Nothing,
    /// The whole amount goes back.
    Refunded {
        /// `"30.70"`.
        amount: String,
        refund_reference: String,
    },
}

/// Settles `draft`'s payment so that the draft may be deleted.
pub async fn settle(state: &Shared, draft: &Draft, reason: Reason) -> Result<Settled, Error> {
    let Some(id) = draft.payment_transaction.as_deref() else {
        return Ok(Settled::Nothing);
    };
    let mut transaction = state.payments.lookup(id).await?;
    if transaction.as_ref().is_some_and(|t| t.status == "INITIAL") {
        // Paid meanwhile in another tab: the answer says PAYED, and it is refunded.
        transaction = state.payments.cancel(id).await?;
    }
    if transaction.as_ref().is_some_and(|t| t.status == "PAYED") {
        transaction = state.payments.refund(id).await?;
    }
    let Some(transaction) = transaction else {
        // The provider holds nothing for it (the simulated one forgets on restart).
        tracing::warn!(draft = %draft.id, "the payment provider does not know the draft's transaction; nothing to refund");
        return Ok(Settled::Nothing);
    };
    match (transaction.status.as_str(), transaction.refund_reference) {
        ("REFUNDED", Some(refund_reference)) => {
            let cents = transaction.gross_amount.unwrap_or_default();
            record(state, draft, id, &refund_reference, cents, reason).await?;
            tracing::info!(draft = %draft.id, reason = reason.as_str(), "paid fee refunded");
            Ok(Settled::Refunded {
                amount: format!("{}.{:02}", cents / 100, cents % 100),
                refund_reference,
            })
        }
        ("CANCELED" | "FAILED", _) => Ok(Settled::Nothing),
        (other, _) => Err(Error::Payment(format!(
            "transaction left in state {other}; the draft is kept"
        ))),
    }
}

/// Records a refund once (a second settle of the same transaction changes nothing).
async fn record(
    state: &Shared,
    draft: &Draft,
    transaction: &str,
    refund_reference: &str,
    cents: u64,
    reason: Reason,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT OR IGNORE INTO refunds (transaction_id, refund_reference, payment_reference,
           amount_cents, service, reason, refunded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(transaction)
    .bind(refund_reference)
    .bind(&draft.payment_reference)
    .bind(i64::try_from(cents).unwrap_or(i64::MAX))
    .bind(&draft.service)
    .bind(reason.as_str())
    .bind(db::now())
    .execute(&state.db)
    .await?;
    Ok(())
}
