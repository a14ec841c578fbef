//! The PostgreSQL store's intake (applications, uploads, idempotency, the status view).

use super::*;
use crate::shared::reads::role_impl;

/// Looks up an idempotency key inside an open transaction.
async fn earlier_answer(
    tx: &mut Transaction<'static, Postgres>,
    client_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Inserted>, StoreError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT i.request_sha256, a.id, a.receipt FROM idempotency_keys i
         JOIN applications a ON a.id = i.application_id
         WHERE i.client_id = $1 AND i.key = $2",
    )
    .bind(client_id)
    .bind(&key.key)
    .fetch_optional(&mut **tx)
    .await
    .sql()?;
    row.map(|(hash, id, receipt)| rules::earlier_answer(&hash, &id, receipt, key))
        .transpose()
}

role_impl!(IntakeStore for PostgresStore {
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        let form = new.stored_form()?;
        // Under the chain lock: two instances handed the same idempotency key at once
        // answer one `Created` and one `Replayed`.
        let mut tx = self.write().await?;
        if let Some(key) = &new.idempotency
            && let Some(answer) = earlier_answer(&mut tx, &new.client_id, key).await?
        {
            return Ok(answer);
        }
        let id = new.id.to_string();
        let at = rfc3339(new.received_at);
        let inserted = sqlx::query(
            "INSERT INTO applications
               (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at, authentication)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(&new.receipt)
        .bind(&new.client_id)
        .bind(&new.service_key)
        .bind(&new.region)
        .bind(&new.procedure_id)
        .bind(Status::Accepted.as_str())
        .bind(&form.payload)
        .bind(&at)
        .bind(&at)
        .bind(&form.authentication)
        .execute(&mut *tx)
        .await;
        match inserted {
            // The constraint is `applications_receipt_key`; the failed statement aborted
            // the transaction, which is rolled back when dropped.
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation()
                    && e.constraint().is_some_and(|c| c.contains("receipt")) =>
            {
                return Ok(Inserted::ReceiptTaken);
            }
            other => {
                other.sql()?;
            }
        }
        for (position, attachment) in new.attachments.iter().enumerate() {
            let (content, upload) = match &attachment.content {
                AttachmentContent::Inline(content) => (content.as_slice(), None),
                AttachmentContent::Upload(upload) => {
                    // Bound here, in the same transaction: one upload, one application.
                    let bound = sqlx::query(
                        "UPDATE uploads SET application_id = $1
                         WHERE id = $2 AND client_id = $3 AND application_id IS NULL
                           AND completed_at IS NOT NULL",
                    )
                    .bind(&id)
                    .bind(upload.to_string())
                    .bind(&new.client_id)
                    .execute(&mut *tx)
                    .await
                    .sql()?;
                    if bound.rows_affected() != 1 {
                        return Ok(Inserted::UploadTaken(position));
                    }
                    (&[][..], Some(upload.to_string()))
                }
            };
            sqlx::query(
                "INSERT INTO attachments (application_id, position, filename, media_type, size, sha512, content, upload_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&attachment.filename)
            .bind(&attachment.media_type)
            .bind(i64::try_from(attachment.size).unwrap_or(i64::MAX))
            .bind(&attachment.sha512)
            .bind(content)
            .bind(upload)
            .execute(&mut *tx)
            .await.sql()?;
        }
        sqlx::query(
            "INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at)
             VALUES ($1, $2, $3, $4, $5, 'prepare', $6)",
        )
        .bind(&id)
        .bind(&new.service_key)
        .bind(&new.procedure_id)
        .bind(new.message_id.to_string())
        .bind(&new.message_type)
        .bind(millis(new.received_at))
        .execute(&mut *tx)
        .await.sql()?;
        if let Some(key) = &new.idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.client_id)
            .bind(&key.key)
            .bind(&key.request_sha256)
            .bind(&id)
            .bind(&at)
            .execute(&mut *tx)
            .await.sql()?;
        }
        append_history(
            &mut tx, self.clock.now(),
            new.id,
            Status::Accepted,
            &rules::accepted_detail(&new.client_id),
            Binding {
                message_sha256: None,
                content_sha256: Some(form.content_sha256),
            },
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(Inserted::Created(Accepted {
            id: new.id,
            receipt: new.receipt.clone(),
        }))
    }

    // Uploads touch neither history nor audit chain: plain statements, no chain lock.
    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (id, client_id, filename, media_type, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(upload.id.to_string())
        .bind(&upload.client_id)
        .bind(&upload.filename)
        .bind(&upload.media_type)
        .bind(rfc3339(upload.created_at))
        .execute(&self.pool)
        .await
        .sql()?;
        Ok(())
    }

    async fn append_upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO upload_chunks (upload_id, seq, content) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(content)
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(())
    }

    async fn complete_upload(&self, id: Uuid, size: u64, sha512: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET size = $1, sha512 = $2, completed_at = $3 WHERE id = $4")
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(sha512)
            .bind(rfc3339(self.clock.now()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(())
    }

    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.sql()?;
        let id = id.to_string();
        // Locked against a concurrent intake binding it.
        let free: Option<String> = sqlx::query_scalar(
            "SELECT id FROM uploads WHERE id = $1 AND application_id IS NULL FOR UPDATE",
        )
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        if free.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError> {
        let mut tx = self.pool.begin().await.sql()?;
        let answer = earlier_answer(&mut tx, client_id, key).await?;
        tx.rollback().await.sql()?;
        Ok(answer)
    }
});
