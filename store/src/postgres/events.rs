//! The PostgreSQL store's events (receipts, the citizen's mailbox and documents).

use super::*;
use crate::shared::reads::role_impl;

role_impl!(EventStore for PostgresStore {
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        // Under the chain lock: the same receipt arriving at two instances at once is
        // recorded once and is a duplicate for the other.
        let mut tx = self.write().await?;
        let signed_sha256 = sha256_hex(&receipt.signed);
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
        // The message must have gone to this procedure, for this application, and left.
        let entry: Option<(String, String)> = sqlx::query_as(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = $1 AND d.procedure_id = $2 AND d.application_id = $3",
        )
        .bind(receipt.message_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        let entry = entry
            .map(|(step, status)| {
                Ok::<_, StoreError>((Stage::parse(&step)?, parse_status(&status)?))
            })
            .transpose()?;
        match rules::plan_receipt(entry, receipt) {
            rules::ReceiptPlan::Refuse(outcome) => return Ok(outcome),
            rules::ReceiptPlan::Apply { confirm_delivery } => {
                if confirm_delivery {
                    let sealed: Option<Vec<u8>> = sqlx::query_scalar(
                        "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                                lease_owner = NULL, lease_until = NULL, delivered_at = $1
                         WHERE message_id = $2 RETURNING sealed",
                    )
                    .bind(rfc3339(self.clock.now()))
                    .bind(receipt.message_id.to_string())
                    .fetch_one(&mut *tx)
                    .await.sql()?;
                    change_status(
                        &mut tx, self.clock.now(),
                        receipt.application_id,
                        Status::Delivered,
                        &rules::confirmed_delivery_detail(receipt),
                        Binding::message(sealed.as_deref().map(sha256_hex)),
                    )
                    .await?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO receipts (receipt_id, application_id, procedure_id, message_id, event, issued_at, received_at, signed, signed_sha256, content_sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&receipt.receipt_id)
        .bind(receipt.application_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.message_id.to_string())
        .bind(receipt.status.as_str())
        .bind(&receipt.issued_at)
        .bind(rfc3339(self.clock.now()))
        .bind(&receipt.signed)
        .bind(&signed_sha256)
        .bind(&receipt.content_sha256)
        .execute(&mut *tx)
        .await.sql()?;
        let status = receipt.status;
        let now = rfc3339(self.clock.now());
        let mut stored = None;
        let mut document_sha256 = None;
        if let Some(document) = &receipt.document {
            let id = Uuid::new_v4();
            let digest = document.digest();
            document_sha256 = Some(content::document_content_sha256(&digest));
            let sha512 = digest.sha512;
            sqlx::query(
                "INSERT INTO documents (id, application_id, receipt_id, filename, media_type, size, sha512, content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id.to_string())
            .bind(receipt.application_id.to_string())
            .bind(&receipt.receipt_id)
            .bind(&document.filename)
            .bind(&document.media_type)
            .bind(i64::try_from(document.content.len()).unwrap_or(i64::MAX))
            .bind(&sha512)
            .bind(&document.content)
            .bind(&now)
            .execute(&mut *tx)
            .await.sql()?;
            stored = Some((id, sha512));
        }
        if let Some(text) = &receipt.message {
            sqlx::query(
                "INSERT INTO mailbox (application_id, receipt_id, kind, text, document_id, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(receipt.application_id.to_string())
            .bind(&receipt.receipt_id)
            .bind(status.as_str())
            .bind(text)
            .bind(stored.as_ref().map(|(d, _)| d.to_string()))
            .bind(&now)
            .execute(&mut *tx)
            .await
            .sql()?;
        }
        // The audit entry carries the hash of the signed receipt, so the Laufzettel
        // proves which receipt was accepted.
        change_status(
            &mut tx, self.clock.now(),
            receipt.application_id,
            status,
            &rules::receipt_detail(receipt, stored.as_ref().map(|(id, h)| (*id, h.as_str()))),
            Binding {
                message_sha256: Some(signed_sha256),
                content_sha256: document_sha256,
            },
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(ReceiptOutcome::Applied(status))
    }
});
