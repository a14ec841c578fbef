//! The SQLite store's events (receipts, the citizen's mailbox and documents).

use super::*;
use crate::shared::reads::role_impl;

/// Records a verified receipt in one write (see [`Store::record_receipt`]).
fn record_receipt(
    tx: &mut WriteTx<'_>,
    receipt: &ReceiptRecord,
) -> Result<ReceiptOutcome, StoreError> {
    let signed_sha256 = sha256_hex(&receipt.signed);
    let earlier: Option<String> = tx
        .prepare_cached(
            "SELECT content_sha256 FROM receipts WHERE procedure_id = ?1 AND receipt_id = ?2",
        )
        .sql()?
        .query_row(params![receipt.procedure_id, receipt.receipt_id], |row| {
            row.get(0)
        })
        .optional()
        .sql()?;
    if let Some(earlier) = earlier {
        return Ok(rules::repeated_receipt(&earlier, receipt));
    }
    // The message must have gone to this procedure, for this application, and left.
    let row: Option<(String, String)> = tx
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
    let entry = row
        .map(|(step, status)| Ok::<_, StoreError>((Stage::parse(&step)?, parse_status(&status)?)))
        .transpose()?;
    match rules::plan_receipt(entry, receipt) {
        rules::ReceiptPlan::Refuse(outcome) => return Ok(outcome),
        rules::ReceiptPlan::Apply { confirm_delivery } => {
            if confirm_delivery {
                let sealed: Option<Vec<u8>> = tx
                    .prepare_cached(
                        "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                                lease_owner = NULL, lease_until = NULL, delivered_at = ?1
                         WHERE message_id = ?2 RETURNING sealed",
                    ).sql()?
                    .query_row(
                        params![
                            rfc3339(tx.now()),
                            receipt.message_id.to_string()
                        ],
                        |row| row.get(0),
                    ).sql()?;
                set_status(tx, receipt.application_id, Status::Delivered)?;
                append_history(
                    tx,
                    receipt.application_id,
                    Status::Delivered,
                    &rules::confirmed_delivery_detail(receipt),
                    Binding::message(sealed.as_deref().map(sha256_hex)),
                )?;
            }
        }
    }
    tx.prepare_cached(
        "INSERT INTO receipts (receipt_id, application_id, procedure_id, message_id, event, issued_at, received_at, signed, signed_sha256, content_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    ).sql()?
    .execute(params![
        receipt.receipt_id,
        receipt.application_id.to_string(),
        receipt.procedure_id,
        receipt.message_id.to_string(),
        receipt.status.as_str(),
        receipt.issued_at,
        rfc3339(tx.now()),
        receipt.signed,
        signed_sha256,
        receipt.content_sha256
    ]).sql()?;
    let status = receipt.status;
    let now = rfc3339(tx.now());
    let mut stored = None;
    let mut document_sha256 = None;
    if let Some(document) = &receipt.document {
        let id = Uuid::new_v4();
        let digest = document.digest();
        document_sha256 = Some(content::document_content_sha256(&digest));
        let sha512 = digest.sha512;
        tx.prepare_cached(
            "INSERT INTO documents (id, application_id, receipt_id, filename, media_type, size, sha512, content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        ).sql()?
        .execute(params![
            id.to_string(),
            receipt.application_id.to_string(),
            receipt.receipt_id,
            document.filename,
            document.media_type,
            document.content.len() as i64,
            sha512,
            document.content,
            now
        ]).sql()?;
        stored = Some((id, sha512));
    }
    if let Some(text) = &receipt.message {
        tx.prepare_cached(
            "INSERT INTO mailbox (application_id, receipt_id, kind, text, document_id, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .sql()?
        .execute(params![
            receipt.application_id.to_string(),
            receipt.receipt_id,
            status.as_str(),
            text,
            stored.as_ref().map(|(d, _)| d.to_string()),
            now
        ])
        .sql()?;
    }
    set_status(tx, receipt.application_id, status)?;
    // The audit entry carries the hash of the signed receipt, so the Laufzettel proves
    // which receipt was accepted.
    append_history(
        tx,
        receipt.application_id,
        status,
        &rules::receipt_detail(receipt, stored.as_ref().map(|(id, h)| (*id, h.as_str()))),
        Binding {
            message_sha256: Some(signed_sha256),
            content_sha256: document_sha256,
        },
    )?;
    Ok(ReceiptOutcome::Applied(status))
}

role_impl!(EventStore for SqliteStore {
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        let receipt = receipt.clone();
        self.writer
            .write(move |tx| record_receipt(tx, &receipt))
            .await
    }
});
