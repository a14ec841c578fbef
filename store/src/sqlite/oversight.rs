//! The SQLite store's oversight (backlog, dead letters, replay, search, retry now, retention).

use super::*;
use crate::shared::roles::role_impl;

/// The status of application `?1`.
const STATUS: &str = "SELECT status FROM applications WHERE id = ?1";

/// What retention clears of an application (`?1`) besides its attachments and documents
/// (which it counts); mailbox entries point at documents, so they are cleared first.
const PURGE_CLEAR: [&str; 5] = [
    "DELETE FROM upload_chunks WHERE upload_id IN
       (SELECT id FROM uploads WHERE application_id = ?1)",
    "UPDATE uploads SET filename = '' WHERE application_id = ?1",
    "UPDATE mailbox SET text = '', document_id = NULL, appeal_text = NULL, fee_purpose = NULL WHERE application_id = ?1",
    "UPDATE receipts SET signed = X'' WHERE application_id = ?1",
    "UPDATE deliveries SET sealed = NULL, sent_xml = NULL WHERE application_id = ?1",
];

/// Deletes one application's personal data in one write; false if it was purged already.
fn purge_in(tx: &mut WriteTx<'_>, application_id: Uuid) -> Result<bool, StoreError> {
    let id = application_id.to_string();
    // Checked again inside the write: the candidates were read before it.
    let status = fetch_for(
        tx,
        "SELECT status FROM applications WHERE id = ?1 AND purged_at IS NULL",
        &id,
    )?;
    let Some(status) = status.as_deref().and_then(Status::parse) else {
        return Ok(false);
    };
    for sql in PURGE_CLEAR {
        execute_for(tx, sql, &id)?;
    }
    let attachments = execute_for(tx, "DELETE FROM attachments WHERE application_id = ?1", &id)?;
    let documents = execute_for(tx, "DELETE FROM documents WHERE application_id = ?1", &id)?;
    tx.prepare_cached(
        "UPDATE applications SET payload = ?1, authentication = NULL, reply_channel = NULL, purged_at = ?2 WHERE id = ?3",
    )
    .sql()?
    .execute(params![content::PURGED_PAYLOAD, rfc3339(tx.now()), id])
    .sql()?;
    append_history(
        tx,
        Change::purged(application_id, status, attachments, documents),
    )?;
    Ok(true)
}

role_impl!(OversightStore for SqliteStore {
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
                let status = fetch_for(tx, STATUS, &id.to_string())?.unwrap_or_default();
                append_history(tx, Change::note(id, parse_status(&status)?, &detail))?;
                Ok(true)
            })
            .await
    }

    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let detail = detail.to_owned();
        self.writer
            .write(move |tx| {
                let status = fetch_for(tx, STATUS, &id.to_string())?;
                let Some(status) = status.as_deref().and_then(Status::parse) else {
                    return Ok(false);
                };
                append_history(tx, Change::note(id, status, &detail))?;
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
