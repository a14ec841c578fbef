//! The PostgreSQL store's oversight (backlog, dead letters, replay, search, retry now, retention).

use super::*;
use crate::shared::roles::role_impl;

role_impl!(OversightStore for PostgresStore {
    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let (mut tx, mut audit) = self.write().await?;
        let now = millis(self.clock.now());
        let updated = sqlx::query(
            "UPDATE deliveries SET due_at = $1
             WHERE application_id = $2 AND step IN ('prepare', 'deliver')
               AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .sql()?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let status = fetch_for(&mut tx, STATUS, &id.to_string()).await?;
        let note = Change::note(id, parse_status(&status.unwrap_or_default())?, detail);
        append_history(&mut tx, &mut audit, self.clock.now(), note).await?;
        self.commit(tx, audit).await?;
        Ok(true)
    }

    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let (mut tx, mut audit) = self.write().await?;
        let status = fetch_for(&mut tx, STATUS, &id.to_string()).await?;
        let Some(status) = status.as_deref().and_then(Status::parse) else {
            return Ok(false);
        };
        let note = Change::note(id, status, detail);
        append_history(&mut tx, &mut audit, self.clock.now(), note).await?;
        self.commit(tx, audit).await?;
        Ok(true)
    }
});

/// The status of application `$1`, kept until the commit (a note names the status it
/// was written at).
const STATUS: &str = "SELECT status FROM applications WHERE id = $1 FOR SHARE";

/// What retention clears of an application (`$1`) besides its attachments and documents
/// (which it counts); mailbox entries point at documents, so they are cleared first.
const PURGE_CLEAR: [&str; 5] = [
    "DELETE FROM upload_chunks WHERE upload_id IN
       (SELECT id FROM uploads WHERE application_id = $1)",
    "UPDATE uploads SET filename = '' WHERE application_id = $1",
    "UPDATE mailbox SET text = '', document_id = NULL, appeal_text = NULL, fee_purpose = NULL WHERE application_id = $1",
    "UPDATE receipts SET signed = ''::bytea WHERE application_id = $1",
    "UPDATE deliveries SET sealed = NULL, sent_xml = NULL WHERE application_id = $1",
];

impl PostgresStore {
    /// Deletes one application's personal data in one transaction; false if it was
    /// purged already.
    pub(super) async fn purge_one(&self, application_id: Uuid) -> Result<bool, StoreError> {
        let id = application_id.to_string();
        let (mut tx, mut audit) = self.write().await?;
        // Checked again inside the write transaction, with the application locked: an
        // instance may have been first (then this one waits, and finds it purged).
        let status = fetch_for(
            &mut tx,
            "SELECT status FROM applications WHERE id = $1 AND purged_at IS NULL FOR UPDATE",
            &id,
        )
        .await?;
        let Some(status) = status.as_deref().and_then(Status::parse) else {
            return Ok(false);
        };
        for sql in PURGE_CLEAR {
            execute_for(&mut tx, sql, &id).await?;
        }
        let attachments = execute_for(
            &mut tx,
            "DELETE FROM attachments WHERE application_id = $1",
            &id,
        )
        .await?;
        let documents = execute_for(
            &mut tx,
            "DELETE FROM documents WHERE application_id = $1",
            &id,
        )
        .await?;
        sqlx::query("UPDATE applications SET payload = $1, authentication = NULL, reply_channel = NULL, purged_at = $2 WHERE id = $3")
            .bind(content::PURGED_PAYLOAD)
            .bind(rfc3339(self.clock.now()))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        let purged = Change::purged(application_id, status, attachments, documents);
        append_history(&mut tx, &mut audit, self.clock.now(), purged).await?;
        self.commit(tx, audit).await?;
        Ok(true)
    }
}
