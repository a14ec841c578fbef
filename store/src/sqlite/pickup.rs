//! The SQLite store's pickup (messages a procedure collects, attachment fragments).

use super::*;
use crate::shared::reads::role_impl;

/// The columns `pickup_of` reads, for the pickup queries (a macro, so that the
/// queries stay string literals).
macro_rules! pickup_select {
    () => {
        "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                d.message_type, d.sealed, d.due_at
         FROM deliveries d JOIN applications a ON a.id = d.application_id"
    };
}

/// A waiting message with its bytes, which SQLite hashes here.
#[derive(sqlx::FromRow)]
struct SealedPickupRow {
    #[sqlx(flatten)]
    row: PickupRow,
    sealed: Option<Vec<u8>>,
}

fn pickup_of(row: SealedPickupRow) -> Result<(Pickup, Vec<u8>), StoreError> {
    let found = row
        .sealed
        .as_deref()
        .map(|m| (i64::try_from(m.len()).unwrap_or(i64::MAX), sha256_hex(m)));
    Ok((row.row.into_pickup(found)?, row.sealed.unwrap_or_default()))
}

role_impl!(PickupStore for SqliteStore {
    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError> {
        sqlx::query_as(concat!(
            pickup_select!(),
            " WHERE d.procedure_id = ? AND d.step = 'pickup'
                  ORDER BY d.due_at, d.message_id LIMIT ?"
        ))
        .bind(procedure)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .into_iter()
        .map(|row| pickup_of(row).map(|(pickup, _)| pickup))
        .collect()
    }

    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError> {
        sqlx::query_as(concat!(
            pickup_select!(),
            " WHERE d.procedure_id = ? AND d.message_id = ? AND d.step IN ('pickup', 'done')"
        ))
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?
        .map(pickup_of)
        .transpose()
    }

    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError> {
        let (procedure, detail) = (procedure.to_owned(), detail.to_owned());
        self.writer
            .write(move |tx| {
                let row = tx
                    .prepare_cached(
                        "SELECT application_id, service_key, message_type, step FROM deliveries
                         WHERE procedure_id = ?1 AND message_id = ?2",
                    ).sql()?
                    .query_row(params![procedure, message_id.to_string()], |row| {
                        Ok(AckRow {
                            application_id: row.get(0)?,
                            service_key: row.get(1)?,
                            message_type: row.get(2)?,
                            step: row.get(3)?,
                        })
                    })
                    .optional().sql()?;
                let item = match AckRow::waiting(row, &procedure, message_id)? {
                    Ok(item) => item,
                    Err(answer) => return Ok(answer),
                };
                let updated = tx
                    .prepare_cached(
                        "UPDATE deliveries SET step = 'done', attempts = attempts + 1, delivered_at = ?1
                         WHERE procedure_id = ?2 AND message_id = ?3 AND step = 'pickup'",
                    ).sql()?
                    .execute(params![
                        rfc3339(tx.now()),
                        procedure,
                        message_id.to_string()
                    ]).sql()?;
                let done = transition(tx, updated, &item, Status::Delivered, &detail, None)?;
                Ok(if done {
                    PickupAck::Acknowledged
                } else {
                    PickupAck::Unknown
                })
            })
            .await
    }
});
