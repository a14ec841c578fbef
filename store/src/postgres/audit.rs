//! The PostgreSQL store's audit trail: its statements for the shared read side
//! ([`crate::shared::audit`]) and the audit role.

use super::*;
use crate::shared::audit::{AuditReader, AuditSql};
use crate::shared::roles::role_impl;
use kopplung_core::audit::{AuditReport, AuditVerifier};

/// The columns of an audit entry (a macro, so that the queries stay string literals).
macro_rules! audit_columns {
    () => {
        "chain, seq, version, application_id, at, status, detail, message_sha256,
         content_sha256, prev_hash, hash"
    };
}

impl AuditSql for sqlx::Postgres {
    const ENTRIES_OF: &'static str = concat!(
        "SELECT ",
        audit_columns!(),
        // By time (`at` is RFC 3339 in UTC, its fraction of varying length: compared as
        // text up to the second, then the fraction padded), never failing on a tampered
        // `at`; then by chain and seq.
        " FROM audit_log WHERE application_id = $1
         ORDER BY substr(at, 1, 19), rpad(coalesce(substring(at from '\\.([0-9]+)'), ''), 9, '0'),
                  chain, seq"
    );
    // Along the primary key, one step per chain (every chain has its row in
    // `audit_chains`).
    const HEADS: &'static str = "SELECT c.chain, l.seq, l.hash FROM audit_chains c
         CROSS JOIN LATERAL (SELECT seq, hash FROM audit_log
                             WHERE chain = c.chain ORDER BY seq DESC LIMIT 1) l
         ORDER BY c.chain";
    const CHECKPOINTS: &'static str =
        "SELECT seq, hash, at, signature, heads FROM audit_checkpoints ORDER BY id";
    const CHAIN_PAGE: &'static str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE (chain, seq) > ($1, $2) ORDER BY chain, seq LIMIT $3"
    );
    // Kept by every append (see `chain.rs`).
    const ISSUED: &'static str = "SELECT chain, seq FROM audit_chains";
    const APPLICATION_PAGE: &'static str = "SELECT DISTINCT application_id FROM audit_log
         WHERE application_id > $1 ORDER BY application_id LIMIT $2";
    const PAYLOAD: &'static str = "SELECT payload FROM applications WHERE id = $1";
    const ATTACHMENTS: &'static str = "SELECT filename, media_type, upload_id,
                CASE WHEN upload_id IS NULL THEN content END AS content
         FROM attachments WHERE application_id = $1 ORDER BY position";
    const SEALED: &'static str =
        "SELECT sealed FROM deliveries WHERE application_id = $1 ORDER BY procedure_id LIMIT 1";
    const RECEIPTS: &'static str = "SELECT signed FROM receipts WHERE application_id = $1";
    const DOCUMENTS: &'static str =
        "SELECT filename, media_type, content FROM documents WHERE application_id = $1";
    const CHUNK: &'static str =
        "SELECT content FROM upload_chunks WHERE upload_id = $1 AND seq = $2";
}

role_impl!(AuditStore for PostgresStore, reading sqlx::Postgres {
    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError> {
        // One REPEATABLE READ transaction: one consistent snapshot for every page, the
        // highest issued seq and the content, while the instances go on appending.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .sql()?;
        let report = AuditReader::<sqlx::Postgres>::new(&mut tx)
            .verify(verifier)
            .await?;
        tx.rollback().await.sql()?;
        Ok(report)
    }
});
