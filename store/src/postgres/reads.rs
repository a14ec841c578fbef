//! The PostgreSQL statements of the reads both backends share ([`crate::shared::reads`]).

use crate::shared::reads::ReadSql;

impl ReadSql for sqlx::Postgres {
    const UPLOAD: &'static str =
        "SELECT client_id, filename, media_type, size, sha512, application_id
        FROM uploads WHERE id = $1";
    const STALE_UPLOADS: &'static str = "SELECT id FROM uploads WHERE application_id IS NULL
        AND substr(created_at, 1, 19) < substr($1, 1, 19) LIMIT 1000";
    const APPLICATION: &'static str =
        "SELECT a.receipt, a.client_id, a.service_key, a.region, a.status, a.created_at,
        a.updated_at, d.procedure_id, d.message_id, d.message_type, d.attempts,
        d.last_error, d.due_at, d.step, d.delivered_at
        FROM applications a JOIN deliveries d ON d.application_id = a.id
        WHERE a.id = $1";
    const HISTORY: &'static str =
        "SELECT at, status, detail FROM history WHERE application_id = $1 ORDER BY seq";
    const NEXT_DUE: &'static str =
        "SELECT MIN(GREATEST(due_at, COALESCE(lease_until, 0))) FROM deliveries
        WHERE step IN ('prepare', 'deliver')";
    const SEALED: &'static str =
        "SELECT sealed FROM deliveries WHERE application_id = $1 AND procedure_id = $2";
    // substring() counts in int; the parameters come as bigint.
    const FRAGMENT: &'static str = "SELECT a.upload_id, a.size,
        CASE WHEN a.upload_id IS NULL
        THEN substring(a.content FROM ($1::bigint)::int FOR ($2::bigint)::int) END AS part
        FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
        WHERE d.procedure_id = $3 AND d.message_id = $4 AND a.position = $5";
    const CHUNK: &'static str =
        "SELECT content FROM upload_chunks WHERE upload_id = $1 AND seq = $2";
    const MAILBOX: &'static str =
        "SELECT kind, text, document_id, at FROM mailbox WHERE application_id = $1 ORDER BY seq";
    const DOCUMENTS: &'static str =
        "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = $1
        ORDER BY created_at::timestamptz, id";
    const DOCUMENT: &'static str = "SELECT id, filename, media_type, size, sha512, content FROM documents WHERE id = $1 AND application_id = $2";
    // The oldest by time, not by text (RFC 3339 texts with and without fractional
    // seconds do not sort as times).
    const BACKLOG: &'static str = "SELECT d.procedure_id, COUNT(*) AS pending,
        (ARRAY_AGG(a.created_at ORDER BY a.created_at::timestamptz))[1] AS oldest
        FROM deliveries d JOIN applications a ON a.id = d.application_id
        WHERE d.step IN ('prepare', 'deliver', 'pickup')
        GROUP BY d.procedure_id ORDER BY d.procedure_id";
    const DEAD_LETTERS: &'static str =
        "SELECT a.id, a.receipt, a.service_key, a.updated_at, d.procedure_id, d.message_id,
        d.attempts, d.last_error
        FROM deliveries d JOIN applications a ON a.id = d.application_id
        WHERE d.step = 'dead' ORDER BY a.updated_at::timestamptz, a.id";
    const SEARCH: &'static str =
        "SELECT a.id, a.receipt, a.service_key, a.region, a.status, a.created_at,
        a.updated_at, d.procedure_id, d.attempts, d.last_error
        FROM applications a JOIN deliveries d ON d.application_id = a.id
        WHERE (CAST($1 AS TEXT) IS NULL OR a.receipt = $1)
        AND (CAST($2 AS TEXT) IS NULL OR a.service_key = $2)
        AND (CAST($3 AS TEXT) IS NULL OR d.procedure_id = $3)
        AND (CAST($4 AS TEXT) IS NULL OR a.status = $4)
        AND (CAST($5 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) >= substr($5, 1, 19))
        AND (CAST($6 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) < substr($6, 1, 19))
        ORDER BY a.created_at DESC, a.id LIMIT $7";
    const PURGE_CANDIDATES: &'static str = "SELECT id FROM applications
        WHERE service_key = $1 AND status IN ('decided', 'rejected') AND purged_at IS NULL
        AND substr(updated_at, 1, 19) < substr($2, 1, 19)
        ORDER BY updated_at LIMIT $3";
}
