//! What a change to a leased outbox entry writes, alike on both backends: one
//! statement (`$n` parameters, the lease's three last: application, procedure, lease
//! token) and, for a state change, the status and the history detail it records. A
//! backend binds and runs it in its way (SQLite on the writer thread, PostgreSQL under
//! the chain lock).

use time::OffsetDateTime;

use super::{millis, rfc3339};
use kopplung_core::store::rules::Stage;
use kopplung_core::store::{LeasedChange, Status};

/// A parameter of a leased update, before the lease's.
pub(crate) enum Param<'a> {
    Text(String),
    Integer(i64),
    Blob(&'a [u8]),
}

pub(crate) struct LeasedUpdate<'a> {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<Param<'a>>,
    /// The state change (status, history detail) the update completes; without one,
    /// no history is written.
    pub(crate) transition: Option<(Status, &'a str)>,
    /// The message just sealed, whose hash the audit entry binds; otherwise the stored
    /// message (if any) is hashed.
    pub(crate) sealed: Option<&'a [u8]>,
}

impl<'a> LeasedUpdate<'a> {
    /// The update recording `change` at `now`.
    pub(crate) fn of(change: LeasedChange<'a>, now: OffsetDateTime) -> Self {
        let (sql, params, transition, sealed) = match change {
            LeasedChange::Prepared { sealed, detail } => (
                "UPDATE deliveries SET step = 'deliver', sealed = $1, last_error = NULL
                 WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
                vec![Param::Blob(sealed)],
                Some((Status::Prepared, detail)),
                Some(sealed),
            ),
            // The message delivered is the stored one: its hash is read back.
            LeasedChange::Delivered { detail } => (
                "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                        lease_owner = NULL, lease_until = NULL, delivered_at = $1
                 WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
                vec![Param::Text(rfc3339(now))],
                Some((Status::Delivered, detail)),
                None,
            ),
            LeasedChange::Retry { due, error } => (
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $1, due_at = $2,
                        lease_owner = NULL, lease_until = NULL
                 WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
                vec![Param::Text(error.to_owned()), Param::Integer(millis(due))],
                None,
                None,
            ),
            LeasedChange::Wait { due, reason } => (
                "UPDATE deliveries SET last_error = $1, due_at = $2, lease_owner = NULL,
                        lease_until = NULL
                 WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
                vec![Param::Text(reason.to_owned()), Param::Integer(millis(due))],
                None,
                None,
            ),
            LeasedChange::AwaitingPickup { detail } => (
                "UPDATE deliveries SET step = 'pickup', last_error = NULL, due_at = $1,
                        lease_owner = NULL, lease_until = NULL
                 WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
                vec![Param::Integer(millis(now))],
                Some((Status::Prepared, detail)),
                None,
            ),
            LeasedChange::Failed { status, error } => (
                "UPDATE deliveries SET step = $1, last_error = $2, lease_owner = NULL,
                        lease_until = NULL,
                        attempts = attempts + CASE WHEN $1 = 'dead' THEN 1 ELSE 0 END
                 WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
                vec![
                    Param::Text(Stage::of_failure(status).as_str().to_owned()),
                    Param::Text(error.to_owned()),
                ],
                Some((status, error)),
                None,
            ),
        };
        Self {
            sql,
            params,
            transition,
            sealed,
        }
    }
}
