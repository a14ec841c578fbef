//! The PostgreSQL store's oversight (backlog, dead letters, replay, search, retry now, retention).

use super::*;

#[async_trait]
impl OversightStore for PostgresStore {
    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        // The oldest by time, not by text (RFC 3339 texts with and without fractional        // seconds do not sort as times).
        sqlx::query_as::<_, BacklogRow>(
            "SELECT d.procedure_id, COUNT(*) AS pending,
                    (ARRAY_AGG(a.created_at ORDER BY a.created_at::timestamptz))[1] AS oldest
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.step IN ('prepare', 'deliver', 'pickup')
             GROUP BY d.procedure_id ORDER BY d.procedure_id",
        )
        .fetch_all(&self.pool)
        .await
        .sql()?
        .into_iter()
        .map(Backlog::try_from)
        .collect()
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query_as::<_, DeadLetterRow>(
            "SELECT a.id, a.receipt, a.service_key, a.updated_at, d.procedure_id, d.message_id,
                    d.attempts, d.last_error
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.step = 'dead' ORDER BY a.updated_at::timestamptz, a.id",
        )
        .fetch_all(&self.pool)
        .await
        .sql()?
        .into_iter()
        .map(DeadLetter::try_from)
        .collect()
    }

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
        .bind(millis(OffsetDateTime::now_utc()))
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
            &mut tx,
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
        let now = millis(OffsetDateTime::now_utc());
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
        append_history(&mut tx, id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn search(
        &self,
        query: &ApplicationQuery,
    ) -> Result<Vec<ApplicationSummary>, StoreError> {
        sqlx::query_as::<_, SummaryRow>(
            "SELECT a.id, a.receipt, a.service_key, a.region, a.status, a.created_at,
                    a.updated_at, d.procedure_id, d.attempts, d.last_error
             FROM applications a JOIN deliveries d ON d.application_id = a.id
             WHERE (CAST($1 AS TEXT) IS NULL OR a.receipt = $1)
               AND (CAST($2 AS TEXT) IS NULL OR a.service_key = $2)
               AND (CAST($3 AS TEXT) IS NULL OR d.procedure_id = $3)
               AND (CAST($4 AS TEXT) IS NULL OR a.status = $4)
               AND (CAST($5 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) >= substr($5, 1, 19))
               AND (CAST($6 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) < substr($6, 1, 19))
             ORDER BY a.created_at DESC, a.id LIMIT $7",
        )
        .bind(query.receipt.as_deref())
        .bind(query.service.as_deref())
        .bind(query.procedure.as_deref())
        .bind(query.status.map(Status::as_str))
        .bind(query.from.map(rfc3339))
        .bind(query.until.map(rfc3339))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .into_iter()
        .map(ApplicationSummary::try_from)
        .collect()
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
        append_history(&mut tx, id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn purge_personal_data(
        &self,
        service: &str,
        final_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Seconds precision compares correctly as text ("YYYY-MM-DDTHH:MM:SS").
        let cutoff = rfc3339(final_before);
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM applications
             WHERE service_key = $1 AND status IN ('decided', 'rejected') AND purged_at IS NULL
               AND substr(updated_at, 1, 19) < substr($2, 1, 19)
             ORDER BY updated_at LIMIT $3",
        )
        .bind(service)
        .bind(&cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?;
        let mut purged = 0;
        for id in candidates {
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
                continue;
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
            sqlx::query(
                "UPDATE mailbox SET text = '', document_id = NULL WHERE application_id = $1",
            )
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
            sqlx::query("UPDATE applications SET payload = $1, purged_at = $2 WHERE id = $3")
                .bind(content::PURGED_PAYLOAD)
                .bind(rfc3339(OffsetDateTime::now_utc()))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?;
            // The deletion binds what is left, so that data written back later is noticed.
            append_history(
                &mut tx,
                parse_uuid(&id)?,
                status,
                &content::purge_detail(attachments, documents),
                Binding {
                    message_sha256: None,
                    content_sha256: Some(content::purged_content_sha256()),
                },
            )
            .await?;
            tx.commit().await.sql()?;
            purged += 1;
        }
        Ok(purged)
    }
}
