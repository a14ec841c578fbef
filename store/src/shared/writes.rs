//! Writes of one statement, written once for both backends: their statement and its
//! parameters. A backend runs a plain one (uploads, checkpoints: no history) with its
//! `execute` (SQLite on the writer thread, PostgreSQL on the pool), and a state change with its `transition`: the statement returns a
//! [`ChangedRow`] if it changed an entry, and the history and audit entries follow in
//! the same transaction. [`crate::shared::roles::role_impl`] calls them.

use kopplung_core::audit::checkpoint::heads_lines;
use time::OffsetDateTime;
use uuid::Uuid;

use super::history::Change;
use super::{Param, millis, rfc3339};
use kopplung_core::audit::{Checkpoint, sha256_hex};
use kopplung_core::store::rules::parse_uuid;
use kopplung_core::store::{NewUpload, SendAgain, Status, StoreError};

/// One statement and its parameters.
pub(crate) struct Write<'a> {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<Param<'a>>,
}

/// Starts an upload.
pub(crate) fn create_upload(upload: &NewUpload) -> Write<'_> {
    Write {
        sql: "INSERT INTO uploads (id, client_id, filename, media_type, created_at)
              VALUES ($1, $2, $3, $4, $5)",
        params: vec![
            Param::Text(upload.id.to_string()),
            Param::Text(upload.client_id.clone()),
            Param::Text(upload.filename.clone()),
            Param::Text(upload.media_type.clone()),
            Param::Text(rfc3339(upload.created_at)),
        ],
    }
}

/// Chunk `seq` of upload `id`: one short write per chunk, so that a slow upload never
/// holds SQLite's writer.
pub(crate) fn upload_chunk(id: Uuid, seq: u64, content: &[u8]) -> Write<'_> {
    Write {
        sql: "INSERT INTO upload_chunks (upload_id, seq, content) VALUES ($1, $2, $3)",
        params: vec![
            Param::Text(id.to_string()),
            Param::Integer(i64::try_from(seq).unwrap_or(i64::MAX)),
            Param::Blob(content),
        ],
    }
}

/// Upload `id` complete at `now`, with its size and SHA-512.
pub(crate) fn complete_upload(id: Uuid, size: u64, sha512: &str, now: OffsetDateTime) -> Write<'_> {
    Write {
        sql: "UPDATE uploads SET size = $1, sha512 = $2, completed_at = $3 WHERE id = $4",
        params: vec![
            Param::Integer(i64::try_from(size).unwrap_or(i64::MAX)),
            Param::Text(sha512.to_owned()),
            Param::Text(rfc3339(now)),
            Param::Text(id.to_string()),
        ],
    }
}

/// A signed checkpoint: not part of the chain. Format 1 (the global chain only) in
/// `seq` and `hash`, as always; format 2 in `heads` (see migration 0011).
pub(crate) fn audit_checkpoint(checkpoint: &Checkpoint) -> Write<'_> {
    let (seq, hash, heads) = match &checkpoint.heads[..] {
        [only] if only.chain == kopplung_core::audit::GLOBAL_CHAIN => {
            (only.seq, only.hash.clone(), None)
        }
        heads => (0, String::new(), Some(heads_lines(heads))),
    };
    Write {
        sql: "INSERT INTO audit_checkpoints (seq, hash, at, signature, heads)
              VALUES ($1, $2, $3, $4, $5)",
        params: vec![
            Param::Integer(seq),
            Param::Text(hash),
            Param::Text(checkpoint.at.clone()),
            Param::Blob(&checkpoint.signature),
            Param::MaybeText(heads),
        ],
    }
}

/// The outbox entry a state change's statement changed
/// (`RETURNING application_id, message_id, sealed`), with its stored message.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangedRow {
    pub(crate) application_id: String,
    pub(crate) message_id: String,
    pub(crate) sealed: Option<Vec<u8>>,
}

impl ChangedRow {
    /// The entry's application moving to `status`, binding the stored message.
    pub(crate) fn change(self, status: Status, detail: &str) -> Result<Change, StoreError> {
        let application_id = parse_uuid(&self.application_id)?;
        let message_sha256 = self.sealed.as_deref().map(sha256_hex);
        Ok(Change::message(
            application_id,
            status,
            detail,
            message_sha256,
        ))
    }
}

/// Message `message_id` of `procedure` collected at `now`: delivered, if it waits.
pub(crate) fn collected(procedure: &str, message_id: Uuid, now: OffsetDateTime) -> Write<'static> {
    Write {
        sql: "UPDATE deliveries SET step = 'done', attempts = attempts + 1, delivered_at = $1
              WHERE procedure_id = $2 AND message_id = $3 AND step = 'pickup'
              RETURNING application_id, message_id, sealed",
        params: vec![
            Param::Text(rfc3339(now)),
            Param::Text(procedure.to_owned()),
            Param::Text(message_id.to_string()),
        ],
    }
}

/// The message of `application_id` due again at `now`, with its message id and the
/// sealed message as they were and its attempts counted afresh, if `again` allows it
/// (the statement returns the [`ChangedRow`]): a dead letter back to `deliver`, or to
/// `prepare` if it was never sealed; a delivered message whose receipt the procedure has
/// not confirmed back to `deliver`.
pub(crate) fn send_again(
    again: SendAgain,
    application_id: Uuid,
    now: OffsetDateTime,
) -> Write<'static> {
    let mut params = vec![
        Param::Integer(millis(now)),
        Param::Text(application_id.to_string()),
    ];
    let sql = match again {
        SendAgain::Replay => {
            "UPDATE deliveries SET step = CASE WHEN sealed IS NULL THEN 'prepare' ELSE 'deliver' END,
                    attempts = 0, due_at = $1, lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND step = 'dead'
             RETURNING application_id, message_id, sealed"
        }
        SendAgain::Resend => {
            params.push(Param::Text(Status::Delivered.as_str().to_owned()));
            "UPDATE deliveries SET step = 'deliver', attempts = 0, due_at = $1,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND step = 'done' AND sealed IS NOT NULL
             AND EXISTS (SELECT 1 FROM applications a
                         WHERE a.id = deliveries.application_id AND a.status = $3)
             RETURNING application_id, message_id, sealed"
        }
        // Never sealed: it goes through prepare again, with the mapping now in force.
        SendAgain::Reprocess => {
            "UPDATE deliveries SET step = 'prepare', sealed = NULL, sent_xml = NULL,
                    attempts = 0, due_at = $1,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND step = 'invalid'
             RETURNING application_id, message_id, sealed"
        }
    };
    Write { sql, params }
}
