//! The PostgreSQL store's oversight (backlog, dead letters, replay, search, retry now, retention).

use super::*;
use crate::shared::reads::role_impl;

role_impl!(OversightStore for PostgresStore {
    async fn replay(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        // Back to `deliver` with the sealed message as it was (same message id), or to
        // `prepare` if it was never sealed.
        let updated = sqlx::query(
            "UPDATE deliveries SET step = CASE WHEN sealed IS NULL THEN 'prepare' ELSE 'deliver' END,
                    attempts = 0, due_at = $1, lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND step = 'dead'
             RETURNING message_id, sealed",
        )
        .bind(millis(self.clock.now()))
        .bind(application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        let Some(row) = updated else {
            return Ok(false);
        };
        let message_id: String = row.try_get("message_id").sql()?;
        let sealed: Option<Vec<u8>> = row.try_get("sealed").sql()?;
        let (status, detail) = rules::replayed(sealed.is_some(), by, &message_id);
        change_status(
            &mut tx, self.clock.now(),
            application_id,
            status,
            &detail,
            Binding::message(sealed.as_deref().map(sha256_hex)),
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
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
        let status: String = sqlx::query_scalar("SELECT status FROM applications WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .sql()?;
        let status = parse_status(&status)?;
        append_history(&mut tx, self.clock.now(), id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM applications WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .sql()?;
        let Some(status) = status.as_deref().and_then(Status::parse) else {
            return Ok(false);
        };
        append_history(&mut tx, self.clock.now(), id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }
});

impl PostgresStore {
    /// Deletes one application's personal data in one transaction; false if it was
    /// purged already.
    pub(super) async fn purge_one(&self, application_id: Uuid) -> Result<bool, StoreError> {
        let id = application_id.to_string();
        let mut tx = self.write().await?;
        // Checked again inside the write transaction: an instance may have been first.
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM applications WHERE id = $1 AND purged_at IS NULL",
        )
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        let Some(status) = status.as_deref().and_then(Status::parse) else {
            return Ok(false);
        };
        sqlx::query(
            "DELETE FROM upload_chunks WHERE upload_id IN
               (SELECT id FROM uploads WHERE application_id = $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await
        .sql()?;
        sqlx::query("UPDATE uploads SET filename = '' WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        let attachments = sqlx::query("DELETE FROM attachments WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?
            .rows_affected();
        // Mailbox entries point at documents: their texts and links go first.
        sqlx::query("UPDATE mailbox SET text = '', document_id = NULL WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        let documents = sqlx::query("DELETE FROM documents WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?
            .rows_affected();
        sqlx::query("UPDATE receipts SET signed = ''::bytea WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        sqlx::query("UPDATE deliveries SET sealed = NULL WHERE application_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        sqlx::query("UPDATE applications SET payload = $1, authentication = NULL, purged_at = $2 WHERE id = $3")
            .bind(content::PURGED_PAYLOAD)
            .bind(rfc3339(self.clock.now()))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        // The deletion binds what is left, so that data written back later is noticed.
        append_history(
            &mut tx,
            self.clock.now(),
            application_id,
            status,
            &content::purge_detail(attachments, documents),
            Binding {
                message_sha256: None,
                content_sha256: Some(content::purged_content_sha256()),
            },
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(true)
    }
}
