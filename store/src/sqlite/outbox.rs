//! The SQLite store's outbox (claims under a lease and what became of them).

use super::*;
use crate::shared::outbox as statements;
use crate::shared::roles::role_impl;
use kopplung_core::InstanceId;
use kopplung_core::store::{Claim, LeasedChange, Silent};

role_impl!(OutboxStore for SqliteStore {
    async fn record(&self, item: &WorkItem, change: LeasedChange<'_>) -> Result<bool, StoreError> {
        let update = statements::LeasedUpdate::of(item, change, self.clock.now());
        match update.transition {
            // No state change, no history: the lease condition suffices (no audit entry).
            None => Ok(self.execute(update.write).await? == 1),
            // On the writer thread, whose group commit shares one transaction among the
            // writes waiting (see `crate::group`).
            Some(change) => {
                self.transition(update.write, move |row| {
                    Ok(change.binding_stored(row.sealed.as_deref()))
                })
                .await
            }
        }
    }

    async fn claim(&self, claim: &Claim<'_>) -> Result<Vec<WorkItem>, StoreError> {
        let capacity = serde_json::to_string(claim.capacity)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let lease = claim.lease.to_owned();
        let (now, lease_until, limit) = (claim.now, claim.lease_until, claim.limit);
        // Candidates: the oldest due entries (a window a few times the limit, read along
        // `deliveries_pending`), without procedures that have no capacity left. Of those,
        // at most `capacity[procedure]` per procedure (1 for one no longer configured, so
        // that its entries still surface their error). The window keeps a claim's cost
        // independent of the backlog; a saturated procedure drops out of the window once
        // its capacity is used, so it cannot hide the others' work for more than a round.
        // Procedure ids are [a-z0-9-] (checked at load), so they quote safely as a path.
        // One statement, atomic by itself: no savepoint needed.
        self.writer
            .write_without_savepoint(move |tx| {
                let mut claim = tx.prepare_cached(
                    "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2
                     WHERE rowid IN (
                       SELECT rowid FROM (
                         SELECT rowid, due_at, procedure_id,
                                ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY due_at) AS n
                         FROM (
                           SELECT rowid, due_at, procedure_id FROM deliveries
                           WHERE step IN ('prepare', 'deliver') AND due_at <= ?3
                             AND (lease_until IS NULL OR lease_until < ?3)
                             AND procedure_id NOT IN (SELECT key FROM json_each(?5) WHERE value = 0)
                           ORDER BY due_at LIMIT ?6))
                       WHERE n <= COALESCE(json_extract(?5, '$.\"' || procedure_id || '\"'), 1)
                       ORDER BY due_at LIMIT ?4)
                     RETURNING application_id, service_key, procedure_id, message_id, message_type, step, attempts,
                               (SELECT created_at FROM applications a WHERE a.id = application_id) AS accepted_at,
                               sealed",
                ).sql()?;
                let mut rows = claim.query(params![
                    lease,
                    millis(lease_until),
                    millis(now),
                    i64::from(limit),
                    capacity,
                    i64::from(limit.saturating_mul(4))
                ]).sql()?;
                let mut items = Vec::new();
                while let Some(row) = rows.next().sql()? {
                    items.push(WorkRow::by_name(row).sql()?.into_item(&lease)?);
                }
                Ok(items)
            })
            .await
    }

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError> {
        // On the writer's connection: the outbox's hot path, two statements in one
        // hand-off.
        self.writer
            .read(move |conn| {
                let application = conn
                    .prepare_cached(crate::shared::statements::PREPARE)
                    .sql()?
                    .query_row([id.to_string()], PrepareRow::by_name)
                    .sql()?;
                let mut attachments = Vec::new();
                let mut query = conn
                    .prepare_cached(
                        "SELECT filename, media_type, sha512, size, upload_id, slot,
                            CASE WHEN upload_id IS NULL THEN content ELSE X'' END AS content
                     FROM attachments WHERE application_id = ?1 ORDER BY position",
                    )
                    .sql()?;
                let mut rows = query.query([id.to_string()]).sql()?;
                while let Some(row) = rows.next().sql()? {
                    attachments.push(AttachmentRow::by_name(row).sql()?);
                }
                application.into_input(id, attachments)
            })
            .await
    }

    async fn release_stale_leases(&self, _instance: &InstanceId) -> Result<u64, StoreError> {
        // The lock file guarantees that this process is the only one on the data
        // directory, so every lease still held belongs to a process that died.
        self.writer
            .write(|tx| {
                let released = tx.execute(
                    "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
                    [],
                ).sql()?;
                Ok(released as u64)
            })
            .await
    }

    async fn heartbeat(&self, instance: &InstanceId) -> Result<(), StoreError> {
        let (instance, now) = (instance.to_string(), millis(self.clock.now()));
        self.writer
            .write(move |tx| {
                tx.execute(statements::HEARTBEAT, params![instance, now]).sql()?;
                Ok(())
            })
            .await
    }

    async fn take_over_silent(
        &self,
        instance: &InstanceId,
        timeout: time::Duration,
    ) -> Result<Vec<Silent>, StoreError> {
        // One process per data directory: no other instance ever beats here, but the
        // contract is the same on both backends.
        let (instance, before) = (instance.to_string(), millis(self.clock.now() - timeout));
        self.writer
            .write(move |tx| {
                let silent: Vec<String> = {
                    let mut forget = tx.prepare(statements::FORGET_SILENT).sql()?;
                    let rows = forget
                        .query_map(params![instance, before], |row| row.get(0))
                        .sql()?;
                    rows.collect::<Result<_, _>>().sql()?
                };
                let mut taken = Vec::with_capacity(silent.len());
                for other in silent {
                    let other = statements::stored_instance(&other)?;
                    let entries = tx
                        .execute(statements::RELEASE_LEASES_OF, params![other.lease_prefix()])
                        .sql()?;
                    taken.push(Silent { instance: other, entries: entries as u64 });
                }
                Ok(taken)
            })
            .await
    }
});
