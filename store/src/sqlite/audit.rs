//! The SQLite store's audit trail: its statements for the shared read side
//! ([`crate::shared::audit`]) and the audit role. Every column the checks read is cast to
//! text, so that a tampered row shows up as a broken link rather than as an error.

use super::*;
use crate::shared::audit::{AuditReader, AuditSql};
use crate::shared::roles::role_impl;
use kopplung_core::audit::{AuditReport, AuditVerifier};

/// The columns of an audit entry, each read as text (a macro, so that the queries stay
/// string literals).
macro_rules! audit_columns {
    () => {
        "CAST(chain AS TEXT) AS chain, seq, version,
         CAST(application_id AS TEXT) AS application_id,
         CAST(at AS TEXT) AS at, CAST(status AS TEXT) AS status, CAST(detail AS TEXT) AS detail,
         CAST(message_sha256 AS TEXT) AS message_sha256,
         CAST(content_sha256 AS TEXT) AS content_sha256, CAST(prev_hash AS TEXT) AS prev_hash,
         CAST(hash AS TEXT) AS hash"
    };
}

impl AuditSql for sqlx::Sqlite {
    const ENTRIES_OF: &'static str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE application_id = ? ORDER BY seq"
    );
    // One chain (the writer's): its last entry.
    const HEADS: &'static str = "SELECT CAST(chain AS TEXT), seq, CAST(hash AS TEXT)
         FROM audit_log ORDER BY seq DESC LIMIT 1";
    const CHECKPOINTS: &'static str = "SELECT seq, CAST(hash AS TEXT), CAST(at AS TEXT), signature,
                CAST(heads AS TEXT)
         FROM audit_checkpoints ORDER BY id";
    // One chain, in seq order along the key: the chain parameter (`?1`) is not needed.
    const CHAIN_PAGE: &'static str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE seq > ?2 AND ?1 IS NOT NULL ORDER BY seq LIMIT ?3"
    );
    // AUTOINCREMENT keeps the highest seq ever issued (of the one chain).
    const ISSUED: &'static str =
        "SELECT 'global', seq FROM sqlite_sequence WHERE name = 'audit_log'";
    const APPLICATION_PAGE: &'static str =
        "SELECT DISTINCT CAST(application_id AS TEXT) FROM audit_log
         WHERE application_id > ? ORDER BY application_id LIMIT ?";
    const PAYLOAD: &'static str = "SELECT CAST(payload AS TEXT) FROM applications WHERE id = ?";
    const ATTACHMENTS: &'static str =
        "SELECT CAST(filename AS TEXT) AS filename, CAST(media_type AS TEXT) AS media_type,
                CAST(upload_id AS TEXT) AS upload_id,
                CASE WHEN upload_id IS NULL THEN content END AS content
         FROM attachments WHERE application_id = ? ORDER BY position";
    const SEALED: &'static str =
        "SELECT sealed FROM deliveries WHERE application_id = ? ORDER BY procedure_id LIMIT 1";
    const RECEIPTS: &'static str = "SELECT signed FROM receipts WHERE application_id = ?";
    const DOCUMENTS: &'static str =
        "SELECT CAST(filename AS TEXT), CAST(media_type AS TEXT), content
         FROM documents WHERE application_id = ?";
    const CHUNK: &'static str = "SELECT content FROM upload_chunks WHERE upload_id = ? AND seq = ?";
}

role_impl!(AuditStore for SqliteStore, reading sqlx::Sqlite {
    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError> {
        // One read transaction: one consistent snapshot, while the hub goes on appending.
        let mut tx = self.pool.begin().await.sql()?;
        let report = AuditReader::<sqlx::Sqlite>::new(&mut tx)
            .verify(verifier)
            .await?;
        tx.rollback().await.sql()?;
        Ok(report)
    }
});
