//! The SQLite statements of the reads both backends share ([`crate::shared::reads`]).

use crate::shared::reads::ReadSql;
use crate::shared::statements;

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
}
