//! The statements of the shared reads that both dialects write alike. They take `$n`
//! parameters: sqlx binds `$n` by its number on SQLite as on PostgreSQL.

/// client_id, filename, media_type, size, sha512, application_id of upload `id`.
pub(crate) const UPLOAD: &str =
    "SELECT client_id, filename, media_type, size, sha512, application_id
    FROM uploads WHERE id = $1";
// Seconds precision compares correctly as text ("YYYY-MM-DDTHH:MM:SS").
/// Upload ids no application names, created before `before` (RFC 3339), at most 1000.
pub(crate) const STALE_UPLOADS: &str = "SELECT id FROM uploads WHERE application_id IS NULL
    AND substr(created_at, 1, 19) < substr($1, 1, 19) LIMIT 1000";
/// The columns of [`super::rows::SummaryRow`], of `applications a` joined with
/// `deliveries d`.
macro_rules! summary_columns {
    () => {
        "a.id, a.receipt, a.service_key, a.region, a.status, a.created_at, a.updated_at,
        d.procedure_id, d.message_id, d.attempts, d.last_error"
    };
}
pub(crate) use summary_columns;

/// The columns of [`super::rows::ApplicationRow`] of application `id`.
pub(crate) const APPLICATION: &str = concat!(
    "SELECT ",
    summary_columns!(),
    ", a.client_id, d.message_type, d.due_at, d.step, d.delivered_at,
    a.parent_id, a.follow_up, a.refers_to
    FROM applications a JOIN deliveries d ON d.application_id = a.id
    WHERE a.id = $1"
);
/// The columns of [`super::rows::FollowUpRow`]: application `$1`'s follow-up messages,
/// oldest first.
pub(crate) const FOLLOW_UPS: &str =
    "SELECT a.id, a.follow_up, a.refers_to, a.status, a.created_at, d.procedure_id,
        d.message_id, d.message_type, d.delivered_at
    FROM applications a JOIN deliveries d ON d.application_id = a.id
    WHERE a.parent_id = $1 ORDER BY a.created_at, a.id";
/// What the prepare step reads of an application ([`super::rows::PrepareRow`]), with
/// its parent's id, receipt number, message id and time for a follow-up message.
pub(crate) const PREPARE: &str = "SELECT a.receipt, a.service_key, a.region, a.payload,
        a.created_at, a.authentication, a.follow_up, a.refers_to, a.parent_id, a.reply_channel,
        p.receipt AS parent_receipt, p.created_at AS parent_created_at,
        pd.message_id AS parent_message_id
    FROM applications a
    LEFT JOIN applications p ON p.id = a.parent_id
    LEFT JOIN deliveries pd ON pd.application_id = p.id
    WHERE a.id = $1";
/// The applicant's identification (JSON text, NULL: anonymous) of application `id`.
pub(crate) const AUTHENTICATION: &str = "SELECT authentication FROM applications WHERE id = $1";
/// at, status, detail of application `id`'s history, in order.
pub(crate) const HISTORY: &str =
    "SELECT at, status, detail FROM history WHERE application_id = $1 ORDER BY seq";
/// The sealed message of `application_id` for `procedure_id`.
pub(crate) const SEALED: &str =
    "SELECT sealed FROM deliveries WHERE application_id = $1 AND procedure_id = $2";
/// The XML that application `id`'s message was sealed from (NULL: not kept).
pub(crate) const SENT_XML: &str = "SELECT sent_xml FROM deliveries WHERE application_id = $1";
/// Chunk `seq` of upload `upload_id`.
pub(crate) const CHUNK: &str =
    "SELECT content FROM upload_chunks WHERE upload_id = $1 AND seq = $2";
/// The step of message `message_id` of `procedure`.
pub(crate) const STEP: &str =
    "SELECT step FROM deliveries WHERE procedure_id = $1 AND message_id = $2";
/// kind, text, document_id, at of application `id`'s mailbox, in order.
pub(crate) const MAILBOX: &str = "SELECT receipt_id AS event_id, kind, text, document_id, at, appeal_text, appeal_deadline, fee_cents, fee_purpose FROM mailbox WHERE application_id = $1 ORDER BY seq";
/// The same and the content of document `id` of application `application_id`.
pub(crate) const DOCUMENT: &str = "SELECT id, filename, media_type, size, sha512, content FROM documents WHERE id = $1 AND application_id = $2";
/// The columns of [`super::rows::SummaryRow`] matching receipt, service, procedure,
/// status, from, until (each NULL for any), newest first, at most `limit`.
pub(crate) const SEARCH: &str = concat!(
    "SELECT ",
    summary_columns!(),
    " FROM applications a JOIN deliveries d ON d.application_id = a.id
    WHERE (CAST($1 AS TEXT) IS NULL OR a.receipt = $1)
    AND (CAST($2 AS TEXT) IS NULL OR a.service_key = $2)
    AND (CAST($3 AS TEXT) IS NULL OR d.procedure_id = $3)
    AND (CAST($4 AS TEXT) IS NULL OR a.status = $4)
    AND (CAST($5 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) >= substr($5, 1, 19))
    AND (CAST($6 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) < substr($6, 1, 19))
    AND (a.parent_id IS NULL OR CAST($1 AS TEXT) IS NOT NULL OR $8 = 1)
    ORDER BY a.created_at DESC, a.id LIMIT $7"
);
/// Ids of `service`'s applications final before `cutoff` and not yet purged, at most
/// `limit`; with them their follow-up messages once delivered (a follow-up is as final
/// as its application).
pub(crate) const PURGE_CANDIDATES: &str = "SELECT a.id FROM applications a
    LEFT JOIN applications p ON p.id = a.parent_id
    WHERE a.service_key = $1 AND a.purged_at IS NULL
    AND COALESCE(p.status, a.status) IN ('decided', 'rejected')
    AND substr(COALESCE(p.updated_at, a.updated_at), 1, 19) < substr($2, 1, 19)
    AND (a.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries d
        WHERE d.application_id = a.id AND d.step IN ('prepare', 'deliver', 'pickup')))
    ORDER BY a.updated_at LIMIT $3";

/// The backlog per procedure; `$oldest` is how the backend finds the oldest creation
/// time (as a time, not as text).
macro_rules! backlog {
    ($oldest:literal) => {
        concat!(
            "SELECT d.procedure_id, COUNT(*) AS pending, ",
            $oldest,
            " AS oldest
            FROM deliveries d JOIN applications a ON a.id = d.application_id
            WHERE d.step IN ('prepare', 'deliver', 'pickup')
            GROUP BY d.procedure_id ORDER BY d.procedure_id"
        )
    };
}
pub(crate) use backlog;

/// The columns of [`super::rows::DeadLetterRow`] of the dead letters, ordered by `$order` (the backend's way to order by time).
macro_rules! dead_letters {
    ($order:literal) => {
        concat!(
            "SELECT ",
            $crate::shared::statements::summary_columns!(),
            " FROM deliveries d JOIN applications a ON a.id = d.application_id
            WHERE d.step = 'dead' ORDER BY ",
            $order
        )
    };
}
pub(crate) use dead_letters;

/// Whether a follow-up of the kind that may stand once stands already
/// (`FollowUpOf::once`): of parent `$1` and kind `$2`, with the same event `$4` when `$3`
/// is 1, in none of the states `$5`–`$7` (`kopplung_core::follow_up::ENDED`).
pub(crate) const STANDING_FOLLOW_UP: &str = "SELECT 1 FROM applications
     WHERE parent_id = $1 AND follow_up = $2
       AND ($3 = 0 OR COALESCE(refers_to, '') = COALESCE($4, ''))
       AND status NOT IN ($5, $6, $7)
     LIMIT 1";
