//! The PostgreSQL store's events (receipts, the citizen's mailbox and documents).

use super::*;
use crate::shared::receipt::ReceiptWrite;
use crate::shared::roles::role_impl;
use kopplung_core::store::rules::ReceiptPlan;

role_impl!(EventStore for PostgresStore {
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        // Under the chain lock: the same receipt arriving at two instances at once is
        // recorded once and is a duplicate for the other.
        let mut tx = self.write().await?;
        let earlier: Option<String> = sqlx::query_scalar(
            "SELECT content_sha256 FROM receipts WHERE procedure_id = $1 AND receipt_id = $2",
        )
        .bind(&receipt.procedure_id)
        .bind(&receipt.receipt_id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        if let Some(earlier) = earlier {
            return Ok(rules::repeated_receipt(&earlier, receipt));
        }
        let write = ReceiptWrite::of(receipt);
        // The message must have gone to this procedure, for this application, and left.
        let entry = sqlx::query_as(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = $1 AND d.procedure_id = $2 AND d.application_id = $3",
        )
        .bind(receipt.message_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        match write.plan(entry)? {
            ReceiptPlan::Refuse(outcome) => return Ok(outcome),
            ReceiptPlan::Apply { confirm_delivery: false } => {}
            ReceiptPlan::Apply { confirm_delivery: true } => {
                let sealed: Option<Vec<u8>> = sqlx::query_scalar(
                    "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                            lease_owner = NULL, lease_until = NULL, delivered_at = $1
                     WHERE message_id = $2 RETURNING sealed",
                )
                .bind(rfc3339(self.clock.now()))
                .bind(receipt.message_id.to_string())
                .fetch_one(&mut *tx)
                .await.sql()?;
                let confirmed = write.confirmed_delivery(sealed.as_deref());
                change_status(&mut tx, self.clock.now(), confirmed).await?;
            }
        }
        for insert in write.inserts(self.clock.now()) {
            query(insert).execute(&mut *tx).await.sql()?;
        }
        change_status(&mut tx, self.clock.now(), write.change()).await?;
        tx.commit().await.sql()?;
        Ok(ReceiptOutcome::Applied(receipt.status))
    }
});
