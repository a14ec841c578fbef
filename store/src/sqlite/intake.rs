//! The SQLite store's intake (applications, uploads, idempotency, the status view).

use super::*;
use crate::shared::reads::role_impl;

/// The query of an earlier request with the same idempotency key.
const EARLIER_ANSWER: &str = "SELECT i.request_sha256, a.id, a.receipt FROM idempotency_keys i
     JOIN applications a ON a.id = i.application_id
     WHERE i.client_id = ?1 AND i.key = ?2";

/// Looks up an idempotency key inside a write.
fn earlier_answer(
    tx: &WriteTx<'_>,
    client_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Inserted>, StoreError> {
    let row = tx
        .prepare_cached(EARLIER_ANSWER)
        .sql()?
        .query_row(params![client_id, key.key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()
        .sql()?;
    row.map(|(hash, id, receipt): (String, String, String)| {
        rules::earlier_answer(&hash, &id, receipt, key)
    })
    .transpose()
}

/// Stores an application in one write (see [`Store::insert_application`]).
fn insert_application(
    tx: &mut WriteTx<'_>,
    new: &NewApplication,
    form: StoredForm,
) -> Result<Inserted, StoreError> {
    if let Some(key) = &new.idempotency
        && let Some(answer) = earlier_answer(tx, &new.client_id, key)?
    {
        return Ok(answer);
    }
    let id = new.id.to_string();
    let at = rfc3339(new.received_at);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO applications
               (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at, authentication)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
        ).sql()?
        .execute(params![
            id,
            new.receipt,
            new.client_id,
            new.service_key,
            new.region,
            new.procedure_id,
            Status::Accepted.as_str(),
            form.payload,
            at,
            form.authentication
        ]);
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, Some(message)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && message.contains("receipt") =>
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
                let bound = tx
                    .prepare_cached(
                        "UPDATE uploads SET application_id = ?1
                         WHERE id = ?2 AND client_id = ?3 AND application_id IS NULL
                           AND completed_at IS NOT NULL",
                    )
                    .sql()?
                    .execute(params![id, upload.to_string(), new.client_id])
                    .sql()?;
                if bound != 1 {
                    // Nothing of this application may stay.
                    tx.discard();
                    return Ok(Inserted::UploadTaken(position));
                }
                (&[][..], Some(upload.to_string()))
            }
        };
        tx.prepare_cached(
            "INSERT INTO attachments (application_id, position, filename, media_type, size, sha512, content, upload_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        ).sql()?
        .execute(params![
            id,
            position as i64,
            attachment.filename,
            attachment.media_type,
            i64::try_from(attachment.size).unwrap_or(i64::MAX),
            attachment.sha512,
            content,
            upload
        ]).sql()?;
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'prepare', ?6)",
    ).sql()?
    .execute(params![
        id,
        new.service_key,
        new.procedure_id,
        new.message_id.to_string(),
        new.message_type,
        millis(new.received_at)
    ]).sql()?;
    if let Some(key) = &new.idempotency {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        ).sql()?
        .execute(params![new.client_id, key.key, key.request_sha256, id, at]).sql()?;
    }
    append_history(
        tx,
        new.id,
        Status::Accepted,
        &rules::accepted_detail(&new.client_id),
        Binding {
            message_sha256: None,
            content_sha256: Some(form.content_sha256),
        },
    )?;
    Ok(Inserted::Created(Accepted {
        id: new.id,
        receipt: new.receipt.clone(),
    }))
}

role_impl!(IntakeStore for SqliteStore {
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        // Serialised and hashed here, not on the writer thread.
        let form = new.stored_form()?;
        let new = new.clone();
        self.writer
            .write(move |tx| insert_application(tx, &new, form))
            .await
    }

    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
        let upload = upload.clone();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO uploads (id, client_id, filename, media_type, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .sql()?
                .execute(params![
                    upload.id.to_string(),
                    upload.client_id,
                    upload.filename,
                    upload.media_type,
                    rfc3339(upload.created_at)
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn append_upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        // One short write per chunk: a slow upload never holds the writer.
        let content = content.to_vec();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO upload_chunks (upload_id, seq, content) VALUES (?1, ?2, ?3)",
                )
                .sql()?
                .execute(params![
                    id.to_string(),
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    content
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn complete_upload(&self, id: Uuid, size: u64, sha512: &str) -> Result<(), StoreError> {
        let sha512 = sha512.to_owned();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE uploads SET size = ?1, sha512 = ?2, completed_at = ?3 WHERE id = ?4",
                )
                .sql()?
                .execute(params![
                    i64::try_from(size).unwrap_or(i64::MAX),
                    sha512,
                    rfc3339(tx.now()),
                    id.to_string()
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.writer
            .write(move |tx| {
                let free: Option<String> = tx
                    .prepare_cached(
                        "SELECT id FROM uploads WHERE id = ?1 AND application_id IS NULL",
                    )
                    .sql()?
                    .query_row([&id], |row| row.get(0))
                    .optional()
                    .sql()?;
                if free.is_none() {
                    return Ok(false);
                }
                tx.prepare_cached("DELETE FROM upload_chunks WHERE upload_id = ?1")
                    .sql()?
                    .execute([&id])
                    .sql()?;
                tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")
                    .sql()?
                    .execute([&id])
                    .sql()?;
                Ok(true)
            })
            .await
    }

    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError> {
        let row: Option<(String, String, String)> = sqlx::query_as(EARLIER_ANSWER)
            .bind(client_id)
            .bind(&key.key)
            .fetch_optional(&self.pool)
            .await
            .sql()?;
        row.map(|(hash, id, receipt)| rules::earlier_answer(&hash, &id, receipt, key))
            .transpose()
    }
});
