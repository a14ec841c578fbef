//! The SQLite store's events (receipts, the citizen's mailbox and documents).

use super::*;
use crate::shared::receipt::{Planned, ReceiptWrite};
use crate::shared::roles::role_impl;

/// Records a verified receipt in one write (see [`Store::record_receipt`]).
fn record_receipt(
    tx: &mut WriteTx<'_>,
    receipt: &ReceiptRecord,
) -> Result<ReceiptOutcome, StoreError> {
    let earlier: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT content_sha256, signed_sha256 FROM receipts
             WHERE procedure_id = ?1 AND receipt_id = ?2",
        )
        .sql()?
        .query_row(params![receipt.procedure_id, receipt.receipt_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .sql()?;
    if let Some((content, signed)) = earlier {
        return Ok(rules::repeated_receipt(&content, &signed, receipt));
    }
    let write = ReceiptWrite::of(receipt);
    // The message must have gone to this procedure, for this application, and left.
    let entry = tx
        .prepare_cached(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = ?1 AND d.procedure_id = ?2 AND d.application_id = ?3",
        ).sql()?
        .query_row(
            params![
                receipt.message_id.to_string(),
                receipt.procedure_id,
                receipt.application_id.to_string()
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional().sql()?;
    let confirm = match write.plan(entry, tx.now())? {
        Planned::Refuse(outcome) => return Ok(outcome),
        Planned::Record(confirm) => confirm,
    };
    if let Some(confirm) = confirm {
        let sealed: Option<Vec<u8>> = Bound::from(confirm)
            .query_row(tx, |row| row.get("sealed"))?
            .flatten();
        change_status(tx, write.confirmed_delivery(sealed.as_deref()))?;
    }
    for insert in write.inserts(tx.now()) {
        Bound::from(insert).execute(tx)?;
    }
    change_status(tx, write.change())?;
    Ok(ReceiptOutcome::Applied(receipt.status))
}

role_impl!(EventStore for SqliteStore {
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        let receipt = receipt.clone();
        self.writer
            .write(move |tx| record_receipt(tx, &receipt))
            .await
    }
});
