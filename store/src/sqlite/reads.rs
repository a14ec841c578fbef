//! The SQLite statements of the reads both backends share ([`crate::shared::reads`]).

use crate::shared::reads::ReadSql;
use crate::shared::statements;

/// The columns of a [`crate::shared::rows::PickupRow`] with the message, for the pickup
/// queries (a macro, so that the queries stay string literals).
macro_rules! pickup_select {
    () => {
        "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                d.message_type, d.sealed, d.due_at
         FROM deliveries d JOIN applications a ON a.id = d.application_id"
    };
}

impl ReadSql for sqlx::Sqlite {
    const NEXT_DUE: &'static str =
        "SELECT MIN(MAX(due_at, COALESCE(lease_until, 0))) FROM deliveries
        WHERE step IN ('prepare', 'deliver')";
    const FRAGMENT: &'static str = "SELECT a.upload_id, a.size,
        CASE WHEN a.upload_id IS NULL THEN substr(a.content, ?1, ?2) END AS part
        FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
        WHERE d.procedure_id = ?3 AND d.message_id = ?4 AND a.position = ?5";
    const DOCUMENTS: &'static str = "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = ? ORDER BY created_at";
    const BACKLOG: &'static str = statements::backlog!("MIN(a.created_at)");
    const DEAD_LETTERS: &'static str = statements::dead_letters!("a.updated_at");
    // SQLite cannot hash: the messages come with the rows, and are hashed by the store.
    const PICKUPS: &'static str = concat!(
        pickup_select!(),
        " WHERE d.procedure_id = ? AND d.step = 'pickup' ORDER BY d.due_at, d.message_id LIMIT ?"
    );
    const PICKUP: &'static str = concat!(
        pickup_select!(),
        " WHERE d.procedure_id = ? AND d.message_id = ? AND d.step IN ('pickup', 'done')"
    );
}
