//! The PostgreSQL store's pickup (messages a procedure collects, attachment fragments).

use super::*;
use crate::shared::reads::role_impl;

/// A waiting message with its size and hash, computed by the database (and its bytes
/// where the query reads them).
#[derive(sqlx::FromRow)]
struct HashedPickupRow {
    #[sqlx(flatten)]
    row: PickupRow,
    size: Option<i64>,
    sha256: Option<String>,
    #[sqlx(default)]
    sealed: Option<Vec<u8>>,
}

impl HashedPickupRow {
    fn into_pickup(self) -> Result<(Pickup, Option<Vec<u8>>), StoreError> {
        let found = self.size.zip(self.sha256);
        Ok((self.row.into_pickup(found)?, self.sealed))
    }
}

role_impl!(PickupStore for PostgresStore {
    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError> {
        // Size and hash computed by the database: the list does not fetch the messages.
        sqlx::query_as(
            "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                    d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                    encode(sha256(d.sealed), 'hex') AS sha256
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.procedure_id = $1 AND d.step = 'pickup'
             ORDER BY d.due_at, d.message_id LIMIT $2",
        )
        .bind(procedure)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .into_iter()
        .map(|row: HashedPickupRow| row.into_pickup().map(|(pickup, _)| pickup))
        .collect()
    }

    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError> {
        let row: Option<HashedPickupRow> = sqlx::query_as(
            "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                    d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                    encode(sha256(d.sealed), 'hex') AS sha256, d.sealed
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.procedure_id = $1 AND d.message_id = $2 AND d.step IN ('pickup', 'done')",
        )
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?;
        let Some(row) = row else { return Ok(None) };
        let (pickup, sealed) = row.into_pickup()?;
        Ok(Some((pickup, sealed.unwrap_or_default())))
    }

    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError> {
        // Under the chain lock: of two acknowledgements at once (one per instance), the
        // second sees the first's `done`.
        let mut tx = self.write().await?;
        let row = sqlx::query_as(
            "SELECT application_id, service_key, message_type, step FROM deliveries
             WHERE procedure_id = $1 AND message_id = $2",
        )
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        let item = match AckRow::waiting(row, procedure, message_id)? {
            Ok(item) => item,
            Err(answer) => return Ok(answer),
        };
        let updated = sqlx::query(
            "UPDATE deliveries SET step = 'done', attempts = attempts + 1, delivered_at = $1
             WHERE procedure_id = $2 AND message_id = $3 AND step = 'pickup'",
        )
        .bind(rfc3339(self.clock.now()))
        .bind(procedure)
        .bind(message_id.to_string())
        .execute(&mut *tx)
        .await
        .sql()?;
        let done = transition(
            tx, self.clock.now(),
            updated.rows_affected(),
            &item,
            Status::Delivered,
            detail,
            None,
        )
        .await?;
        Ok(if done {
            PickupAck::Acknowledged
        } else {
            PickupAck::Unknown
        })
    }
});
