//! The PostgreSQL statements of the reads both backends share ([`crate::shared::reads`]).

use crate::shared::reads::ReadSql;
use crate::shared::statements;

impl ReadSql for sqlx::Postgres {
    const NEXT_DUE: &'static str =
        "SELECT MIN(GREATEST(due_at, COALESCE(lease_until, 0))) FROM deliveries
        WHERE step IN ('prepare', 'deliver')";
    // substring() counts in int; the parameters come as bigint.
    const FRAGMENT: &'static str = "SELECT a.upload_id, a.size,
        CASE WHEN a.upload_id IS NULL
        THEN substring(a.content FROM ($1::bigint)::int FOR ($2::bigint)::int) END AS part
        FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
        WHERE d.procedure_id = $3 AND d.message_id = $4 AND a.position = $5";
    const DOCUMENTS: &'static str =
        "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = $1
        ORDER BY created_at::timestamptz, id";
    // The oldest by time, not by text (RFC 3339 texts with and without fractional
    // seconds do not sort as times).
    const BACKLOG: &'static str =
        statements::backlog!("(ARRAY_AGG(a.created_at ORDER BY a.created_at::timestamptz))[1]");
    const DEAD_LETTERS: &'static str = statements::dead_letters!("a.updated_at::timestamptz, a.id");
    // Size and hash computed by the database: the list does not fetch the messages.
    const PICKUPS: &'static str =
        "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                encode(sha256(d.sealed), 'hex') AS sha256
         FROM deliveries d JOIN applications a ON a.id = d.application_id
         WHERE d.procedure_id = $1 AND d.step = 'pickup'
         ORDER BY d.due_at, d.message_id LIMIT $2";
    const PICKUP: &'static str =
        "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                encode(sha256(d.sealed), 'hex') AS sha256, d.sealed
         FROM deliveries d JOIN applications a ON a.id = d.application_id
         WHERE d.procedure_id = $1 AND d.message_id = $2 AND d.step IN ('pickup', 'done')";
}
