//! The SQLite statements of the reads both backends share ([`crate::shared::reads`]).

use crate::shared::reads::ReadSql;

impl ReadSql for sqlx::Sqlite {
    const NEXT_DUE: &'static str =
        "SELECT MIN(MAX(due_at, COALESCE(lease_until, 0))) FROM deliveries
        WHERE step IN ('prepare', 'deliver')";
    const FRAGMENT: &'static str = "SELECT a.upload_id, a.size,
        CASE WHEN a.upload_id IS NULL THEN substr(a.content, ?1, ?2) END AS part
        FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
        WHERE d.procedure_id = ?3 AND d.message_id = ?4 AND a.position = ?5";
    const DOCUMENTS: &'static str = "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = ? ORDER BY created_at";
    const BACKLOG: &'static str =
        "SELECT d.procedure_id, COUNT(*) AS pending, MIN(a.created_at) AS oldest
        FROM deliveries d JOIN applications a ON a.id = d.application_id
        WHERE d.step IN ('prepare', 'deliver', 'pickup')
        GROUP BY d.procedure_id ORDER BY d.procedure_id";
    const DEAD_LETTERS: &'static str =
        "SELECT a.id, a.receipt, a.service_key, a.updated_at, d.procedure_id, d.message_id,
        d.attempts, d.last_error
        FROM deliveries d JOIN applications a ON a.id = d.application_id
        WHERE d.step = 'dead' ORDER BY a.updated_at";
}
