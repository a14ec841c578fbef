//! The PostgreSQL store's intake (applications, uploads, idempotency, the status view).

use super::*;
use crate::Taken;
use crate::shared::intake::AttachmentInsert;
use crate::shared::roles::role_impl;

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

impl PostgresStore {
    /// One attempt at an intake: `None` if its idempotency key was taken meanwhile (by
    /// a concurrent intake that committed first; nothing of this one is kept).
    async fn try_insert(&self, new: &NewApplication) -> Result<Option<Inserted>, StoreError> {
        let form = new.stored_form()?;
        let (mut tx, mut audit) = self.write().await?;
        if let Some(key) = &new.idempotency
            && let Some(answer) = earlier_answer(&mut tx, &new.client_id, key).await?
        {
            return Ok(Some(answer));
        }
        if let Some(of) = &new.follow_up
            && let Some(per_event) = of.once()
        {
            // The parent's row locked until the commit: follow-ups of one application
            // are stored one after the other, so the check below sees the other's.
            sqlx::query("SELECT 1 FROM applications WHERE id = $1 FOR UPDATE")
                .bind(of.parent_id.to_string())
                .execute(&mut *tx)
                .await
                .sql()?;
            let [a, b, c] = kopplung_core::follow_up::ENDED.map(|s| s.as_str());
            let standing = sqlx::query(crate::shared::statements::STANDING_FOLLOW_UP)
                .bind(of.parent_id.to_string())
                .bind(of.kind.as_str())
                .bind(i64::from(per_event))
                .bind(of.refers_to.as_deref())
                .bind(a)
                .bind(b)
                .bind(c)
                .fetch_optional(&mut *tx)
                .await
                .sql()?;
            if standing.is_some() {
                return Ok(Some(Inserted::AlreadySent));
            }
        }
        let id = new.id.to_string();
        let at = rfc3339(new.received_at);
        let (status, stage, sealed) = new.first_state();
        let now = self.clock.now();
        // The application, its outbox entry and its first history entries (two when it
        // was sealed at intake) in one statement: each statement is a round trip.
        let mut changes = vec![Change::accepted(new, form.content_sha256)];
        changes.extend(Change::sealed_ahead(new));
        let statuses: Vec<&str> = changes.iter().map(|c| c.status.as_str()).collect();
        let details: Vec<&str> = changes.iter().map(|c| c.detail.as_str()).collect();
        let inserted = sqlx::query(
            "WITH application AS (
                 INSERT INTO applications
                   (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at, authentication, parent_id, follow_up, refers_to, reply_channel)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $20, $21, $22, $23)),
             delivery AS (
                 INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at, sealed, sent_xml)
                 VALUES ($1, $4, $6, $11, $12, $13, $14, $15, $19))
             INSERT INTO history (application_id, at, status, detail)
             SELECT $1, $16, h.status, h.detail
             FROM UNNEST($17::text[], $18::text[]) WITH ORDINALITY AS h(status, detail, n)
             ORDER BY h.n",
        )
        .bind(&id)
        .bind(&new.receipt)
        .bind(&new.client_id)
        .bind(&new.service_key)
        .bind(&new.region)
        .bind(&new.procedure_id)
        .bind(status.as_str())
        .bind(&form.payload)
        .bind(&at)
        .bind(&form.authentication)
        .bind(new.message_id.to_string())
        .bind(&new.message_type)
        .bind(stage.as_str())
        .bind(millis(new.received_at))
        .bind(sealed)
        .bind(rfc3339(now))
        .bind(&statuses)
        .bind(&details)
        .bind(new.sent_xml())
        .bind(new.follow_up.as_ref().map(|f| f.parent_id.to_string()))
        .bind(new.follow_up.as_ref().map(|f| f.kind.as_str()))
        .bind(new.follow_up.as_ref().and_then(|f| f.refers_to.clone()))
        .bind(new.reply_channel.clone())
        .execute(&mut *tx)
        .await;
        // The constraint is `applications_receipt_key`; the failed statement aborted the
        // transaction, which is rolled back when dropped.
        if inserted.unless_taken("receipt")?.is_none() {
            return Ok(Some(Inserted::ReceiptTaken));
        }
        let at_now = rfc3339(now);
        audit.extend(changes.into_iter().map(|change| (at_now.clone(), change)));
        if let Some(key) = &new.idempotency {
            // Right after the application it refers to: a concurrent intake with the
            // same key waits here for this transaction, and fails on the primary key if
            // it commits.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.client_id)
            .bind(&key.key)
            .bind(&key.request_sha256)
            .bind(&id)
            .bind(&at)
            .execute(&mut *tx)
            .await;
            if claimed.unless_taken("idempotency_keys")?.is_none() {
                return Ok(None);
            }
        }
        for attachment in AttachmentInsert::all(new) {
            if let Some(bind) = attachment.bind_upload(&id, &new.client_id) {
                let bound = query(bind).execute(&mut *tx).await.sql()?;
                if bound.rows_affected() != 1 {
                    return Ok(Some(Inserted::UploadTaken(attachment.position)));
                }
            }
            query(attachment.insert(&id))
                .execute(&mut *tx)
                .await
                .sql()?;
        }
        self.commit(tx, audit).await?;
        Ok(Some(Inserted::Created(Accepted {
            id: new.id,
            receipt: new.receipt.clone(),
        })))
    }
}

role_impl!(IntakeStore for PostgresStore {
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        // Two instances handed the same idempotency key at once answer one `Created` and
        // one `Replayed`: the second finds the first's key taken, and its answer.
        for _ in 0..2 {
            if let Some(inserted) = self.try_insert(new).await? {
                return Ok(inserted);
            }
            if let Some(key) = &new.idempotency
                && let Some(answer) = self.idempotent_answer(&new.client_id, key).await?
            {
                return Ok(answer);
            }
        }
        Err(StoreError::Database(
            "the idempotency key was taken and released twice while recording the application".into(),
        ))
    }

    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.sql()?;
        let id = id.to_string();
        // Locked against a concurrent intake binding it.
        let free = fetch_for(
            &mut tx,
            "SELECT id FROM uploads WHERE id = $1 AND application_id IS NULL FOR UPDATE",
            &id,
        )
        .await?;
        if free.is_none() {
            return Ok(false);
        }
        execute_for(&mut tx, "DELETE FROM upload_chunks WHERE upload_id = $1", &id).await?;
        execute_for(&mut tx, "DELETE FROM uploads WHERE id = $1", &id).await?;
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
