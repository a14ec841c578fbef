//! The PostgreSQL store's outbox (claims under a lease and what became of them).

use super::*;
use crate::shared::outbox as statements;
use crate::shared::roles::role_impl;
use kopplung_core::InstanceId;
use kopplung_core::store::{Claim, LeasedChange, Silent};

role_impl!(OutboxStore for PostgresStore {
    async fn record(&self, item: &WorkItem, change: LeasedChange<'_>) -> Result<bool, StoreError> {
        // Group commit with the changes queued meanwhile (see `super::writer`).
        let change = writer::Leased::of(item, change, self.clock.now());
        self.writer.record(change).await
    }

    async fn claim(&self, claim: &Claim<'_>) -> Result<Vec<WorkItem>, StoreError> {
        let procedures: Vec<String> = claim.capacity.keys().cloned().collect();
        let capacities: Vec<i64> = claim.capacity.values().map(|c| i64::from(*c)).collect();
        // Procedures without capacity left stay out of the candidate window, which keeps a
        // claim's cost independent of the backlog (see the SQLite store).
        let saturated: Vec<String> = claim
            .capacity
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(id, _)| id.clone())
            .collect();
        // `ranked`/`picked`: at most `capacity[procedure]` entries per procedure (1 for
        // one not in the map, so that its entries still surface their error), oldest due
        // first, `limit` in all, from the statement's snapshot. (Window functions and
        // FOR UPDATE cannot share a query level.)
        // `locked`: of those, the rows no other claim holds right now, locked for this
        // statement's transaction and re-checked on their latest version: an entry
        // another instance claimed after our snapshot was taken is due no more and drops
        // out, one it is claiming at this moment is skipped. So no entry is leased
        // twice, and no claim waits for another.
        let rows = sqlx::query_as(
            "WITH candidates AS (
                 SELECT application_id, procedure_id, due_at
                 FROM deliveries
                 WHERE step IN ('prepare', 'deliver') AND due_at <= $3
                   AND (lease_until IS NULL OR lease_until < $3)
                   AND NOT (procedure_id = ANY($7::text[]))
                 ORDER BY due_at, application_id
                 LIMIT $8
             ),
             ranked AS (
                 SELECT application_id, procedure_id, due_at,
                        ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY due_at, application_id) AS n
                 FROM candidates
             ),
             picked AS (
                 SELECT r.application_id, r.procedure_id
                 FROM ranked r
                 LEFT JOIN UNNEST($5::text[], $6::bigint[]) AS c(procedure_id, capacity)
                   ON c.procedure_id = r.procedure_id
                 WHERE r.n <= COALESCE(c.capacity, 1)
                 ORDER BY r.due_at, r.application_id
                 LIMIT $4
             ),
             locked AS MATERIALIZED (
                 SELECT d.application_id, d.procedure_id
                 FROM deliveries d
                 WHERE (d.application_id, d.procedure_id) IN (SELECT application_id, procedure_id FROM picked)
                   AND d.step IN ('prepare', 'deliver') AND d.due_at <= $3
                   AND (d.lease_until IS NULL OR d.lease_until < $3)
                 FOR UPDATE OF d SKIP LOCKED
             )
             UPDATE deliveries d SET lease_owner = $1, lease_until = $2
             FROM locked l
             WHERE d.application_id = l.application_id AND d.procedure_id = l.procedure_id
             RETURNING d.application_id, d.service_key, d.procedure_id, d.message_id,
                       d.message_type, d.step, d.attempts,
                       (SELECT a.created_at FROM applications a WHERE a.id = d.application_id) AS accepted_at,
                       d.sealed",
        )
        .bind(claim.lease)
        .bind(millis(claim.lease_until))
        .bind(millis(claim.now))
        .bind(i64::from(claim.limit))
        .bind(procedures)
        .bind(capacities)
        .bind(saturated)
        .bind(i64::from(claim.limit.saturating_mul(4)))
        .fetch_all(&self.pool)
        .await.sql()?;
        rows.into_iter()
            .map(|row: WorkRow| row.into_item(claim.lease))
            .collect()
    }

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError> {
        let application: PrepareRow = sqlx::query_as(crate::shared::statements::PREPARE)
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await.sql()?;
        let attachments = sqlx::query_as(
            "SELECT filename, media_type, sha512, size, upload_id, slot,
                    CASE WHEN upload_id IS NULL THEN content ELSE ''::bytea END AS content
             FROM attachments WHERE application_id = $1 ORDER BY position",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .sql()?;
        application.into_input(id, attachments)
    }

    async fn release_stale_leases(&self, instance: &InstanceId) -> Result<u64, StoreError> {
        // Only this instance's own leases: the database is shared, and a lease of another
        // instance may be live (handing it out again would deliver twice). Another
        // instance's leases are taken over once its heartbeat has stopped
        // (`take_over_silent`), or else once their `lease_until` has passed.
        let released = sqlx::query(statements::RELEASE_LEASES_OF)
            .bind(instance.lease_prefix())
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(released.rows_affected())
    }

    async fn heartbeat(&self, instance: &InstanceId) -> Result<(), StoreError> {
        sqlx::query(statements::HEARTBEAT)
            .bind(instance.as_str())
            .bind(millis(self.clock.now()))
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(())
    }

    async fn take_over_silent(
        &self,
        instance: &InstanceId,
        timeout: time::Duration,
    ) -> Result<Vec<Silent>, StoreError> {
        let before = millis(self.clock.now() - timeout);
        // One transaction: an instance forgotten has its leases returned, or neither.
        let mut tx = self.pool.begin().await.sql()?;
        let silent: Vec<(String,)> = sqlx::query_as(statements::FORGET_SILENT)
            .bind(instance.as_str())
            .bind(before)
            .fetch_all(&mut *tx)
            .await
            .sql()?;
        let mut taken = Vec::with_capacity(silent.len());
        for (other,) in silent {
            let other = statements::stored_instance(&other)?;
            let released = sqlx::query(statements::RELEASE_LEASES_OF)
                .bind(other.lease_prefix())
                .execute(&mut *tx)
                .await
                .sql()?;
            taken.push(Silent { instance: other, entries: released.rows_affected() });
        }
        tx.commit().await.sql()?;
        Ok(taken)
    }
});
