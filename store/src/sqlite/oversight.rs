//! The SQLite store's oversight (backlog, dead letters, replay, search, retry now, retention).

use super::*;
use crate::shared::reads::role_impl;

/// Deletes one application's personal data in one write; false if it was purged already.
fn purge_in(tx: &mut WriteTx<'_>, application_id: Uuid) -> Result<bool, StoreError> {
    let id = application_id.to_string();
    // Checked again inside the write: the candidates were read before it.
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM applications WHERE id = ?1 AND purged_at IS NULL")
        .sql()?
        .query_row([&id], |row| row.get(0))
        .optional()
        .sql()?;
    let Some(status) = status.as_deref().and_then(Status::parse) else {
        return Ok(false);
    };
    tx.prepare_cached(
        "DELETE FROM upload_chunks WHERE upload_id IN
           (SELECT id FROM uploads WHERE application_id = ?1)",
    )
    .sql()?
    .execute([&id])
    .sql()?;
    tx.prepare_cached("UPDATE uploads SET filename = '' WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    let attachments = tx
        .prepare_cached("DELETE FROM attachments WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    // Mailbox entries point at documents: their texts and links go first.
    tx.prepare_cached("UPDATE mailbox SET text = '', document_id = NULL WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    let documents = tx
        .prepare_cached("DELETE FROM documents WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached("UPDATE receipts SET signed = X'' WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached("UPDATE deliveries SET sealed = NULL WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached(
        "UPDATE applications SET payload = ?1, authentication = NULL, purged_at = ?2 WHERE id = ?3",
    )
    .sql()?
    .execute(params![content::PURGED_PAYLOAD, rfc3339(tx.now()), id])
    .sql()?;
    // The deletion binds what is left, so that data written back later is noticed.
    append_history(
        tx,
        application_id,
        status,
        &content::purge_detail(attachments as u64, documents as u64),
        Binding {
            message_sha256: None,
            content_sha256: Some(content::purged_content_sha256()),
        },
    )?;
    Ok(true)
}

role_impl!(OversightStore for SqliteStore {
    async fn replay(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        let by = by.to_owned();
        self.writer
            .write(move |tx| {
                // Back to `deliver` with the sealed message as it was (same message id),
                // or to `prepare` if it was never sealed.
                let row: Option<(String, Option<Vec<u8>>)> = tx
                    .prepare_cached(
                        "UPDATE deliveries SET step = CASE WHEN sealed IS NULL THEN 'prepare' ELSE 'deliver' END,
                                attempts = 0, due_at = ?1, lease_owner = NULL, lease_until = NULL
                         WHERE application_id = ?2 AND step = 'dead'
                         RETURNING message_id, sealed",
                    ).sql()?
                    .query_row(
                        params![millis(tx.now()), application_id.to_string()],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional().sql()?;
                let Some((message_id, sealed)) = row else {
                    return Ok(false);
                };
                let (status, detail) = rules::replayed(sealed.is_some(), &by, &message_id);
                set_status(tx, application_id, status)?;
                append_history(
                    tx,
                    application_id,
                    status,
                    &detail,
                    Binding::message(sealed.as_deref().map(sha256_hex)),
                )?;
                Ok(true)
            })
            .await
    }

    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let detail = detail.to_owned();
        self.writer
            .write(move |tx| {
                let now = millis(tx.now());
                let updated = tx
                    .prepare_cached(
                        "UPDATE deliveries SET due_at = ?1
                         WHERE application_id = ?2 AND step IN ('prepare', 'deliver')
                           AND (lease_until IS NULL OR lease_until < ?1)",
                    )
                    .sql()?
                    .execute(params![now, id.to_string()])
                    .sql()?;
                if updated == 0 {
                    return Ok(false);
                }
                let status: String = tx
                    .prepare_cached("SELECT status FROM applications WHERE id = ?1")
                    .sql()?
                    .query_row([id.to_string()], |row| row.get(0))
                    .sql()?;
                let status = parse_status(&status)?;
                append_history(tx, id, status, &detail, Binding::default())?;
                Ok(true)
            })
            .await
    }

    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let detail = detail.to_owned();
        self.writer
            .write(move |tx| {
                let status: Option<String> = tx
                    .prepare_cached("SELECT status FROM applications WHERE id = ?1")
                    .sql()?
                    .query_row([id.to_string()], |row| row.get(0))
                    .optional()
                    .sql()?;
                let Some(status) = status.as_deref().and_then(Status::parse) else {
                    return Ok(false);
                };
                append_history(tx, id, status, &detail, Binding::default())?;
                Ok(true)
            })
            .await
    }
});

impl SqliteStore {
    /// Deletes one application's personal data in one write; false if it was purged
    /// already.
    pub(super) async fn purge_one(&self, application_id: Uuid) -> Result<bool, StoreError> {
        self.writer
            .write(move |tx| purge_in(tx, application_id))
            .await
    }
}
