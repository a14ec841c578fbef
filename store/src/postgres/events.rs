//! The PostgreSQL store's events (receipts, the citizen's mailbox and documents).

use super::*;
use crate::Taken;
use crate::shared::receipt::{Planned, ReceiptWrite};
use crate::shared::roles::role_impl;
use sqlx::Row;

impl PostgresStore {
    /// One attempt at recording `receipt`: `None` if its id was taken meanwhile (by a
    /// copy for another outbox entry that committed first; nothing of this one is kept).
    async fn try_record(
        &self,
        receipt: &ReceiptRecord,
    ) -> Result<Option<ReceiptOutcome>, StoreError> {
        let (mut tx, mut audit) = self.write().await?;
        let write = ReceiptWrite::of(receipt);
        // The message must have gone to this procedure, for this application, and left.
        // Its outbox entry stays locked until the commit: the same receipt arriving at
        // two instances at once is recorded by the first, and the second, waiting here,
        // then finds it recorded.
        let entry = sqlx::query_as(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = $1 AND d.procedure_id = $2 AND d.application_id = $3
             FOR UPDATE OF d",
        )
        .bind(receipt.message_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        let earlier: Option<(String, String)> = sqlx::query_as(
            "SELECT content_sha256, signed_sha256 FROM receipts
             WHERE procedure_id = $1 AND receipt_id = $2",
        )
        .bind(&receipt.procedure_id)
        .bind(&receipt.receipt_id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        if let Some((content, signed)) = earlier {
            return Ok(Some(rules::repeated_receipt(&content, &signed, receipt)));
        }
        let confirm = match write.plan(entry, self.clock.now())? {
            Planned::Refuse(outcome) => return Ok(Some(outcome)),
            Planned::Record(confirm) => confirm,
        };
        if let Some(confirm) = confirm {
            let delivered = query(confirm).fetch_one(&mut *tx).await.sql()?;
            let sealed: Option<Vec<u8>> = delivered.try_get("sealed").sql()?;
            let confirmed = write.confirmed_delivery(sealed.as_deref());
            change_status(&mut tx, &mut audit, self.clock.now(), confirmed).await?;
        }
        for insert in write.inserts(self.clock.now()) {
            // The receipt's key (procedure, receipt id): taken by a copy for another
            // outbox entry, which the lock above does not keep out.
            if query(insert)
                .execute(&mut *tx)
                .await
                .unless_taken("receipts")?
                .is_none()
            {
                return Ok(None);
            }
        }
        change_status(&mut tx, &mut audit, self.clock.now(), write.change()).await?;
        self.commit(tx, audit).await?;
        Ok(Some(ReceiptOutcome::Applied(receipt.status)))
    }
}

role_impl!(EventStore for PostgresStore {
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        // Taken meanwhile: the second attempt finds the earlier copy.
        for _ in 0..2 {
            if let Some(outcome) = self.try_record(receipt).await? {
                return Ok(outcome);
            }
        }
        Err(StoreError::Database(
            "the receipt id was taken and released twice while recording the receipt".into(),
        ))
    }
});
