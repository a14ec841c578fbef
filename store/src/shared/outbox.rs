//! What a change to a leased outbox entry writes, alike on both backends: one
//! statement (`$n` parameters, the lease's three last: application, procedure, lease
//! token) and, for a state change, the history entry it completes. A backend runs it
//! in its way (SQLite on the writer thread, PostgreSQL in a transaction whose audit
//! entry goes to the instance's chain at its commit; see
//! [`crate::shared::roles::role_impl`]).
//!
//! The statement of a state change returns a [`ChangedRow`](super::writes::ChangedRow) if it changed the entry
//! (the lease held), with the stored message whose hash the audit entry binds: one
//! statement, not a second one to read the message back. The message just sealed is
//! known; its row returns NULL.

use time::OffsetDateTime;

use super::history::Change;
use super::writes::Write;
use super::{Param, millis, rfc3339};
use kopplung_core::InstanceId;
use kopplung_core::audit::sha256_hex;
use kopplung_core::store::rules::Stage;
use kopplung_core::store::{LeasedChange, Status, StoreError, WorkItem};

pub(crate) struct LeasedUpdate<'a> {
    pub(crate) write: Write<'a>,
    /// The state change the update completes; without one, no history is written.
    /// Unless it binds the message just sealed, the stored one returned is bound
    /// ([`Change::binding_stored`]).
    pub(crate) transition: Option<Change>,
}

impl<'a> LeasedUpdate<'a> {
    /// The update recording `change` of `item`'s entry at `now`.
    pub(crate) fn of(item: &WorkItem, change: LeasedChange<'a>, now: OffsetDateTime) -> Self {
        let (sql, mut params, transition, sealed) = match change {
            // The XML it was sealed from is kept with it, for the admin view.
            LeasedChange::Prepared {
                sealed,
                xml,
                detail,
            } => (
                "UPDATE deliveries SET step = 'deliver', sealed = $1, sent_xml = $2,
                        last_error = NULL
                 WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5
                 RETURNING application_id, message_id, NULL AS sealed",
                vec![Param::Blob(sealed), Param::Text(xml.to_owned())],
                Some((Status::Prepared, detail)),
                Some(sealed),
            ),
            // The message delivered is the stored one: its hash is read back.
            LeasedChange::Delivered { detail } => (
                "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                        lease_owner = NULL, lease_until = NULL, delivered_at = $1
                 WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4
                 RETURNING application_id, message_id, sealed",
                vec![Param::Text(rfc3339(now))],
                Some((Status::Delivered, detail)),
                None,
            ),
            // A wait is a retry that is no attempt (the destination was unreachable
            // altogether).
            LeasedChange::Retry { due, error: reason } | LeasedChange::Wait { due, reason } => (
                "UPDATE deliveries SET attempts = attempts + $1, last_error = $2, due_at = $3,
                        lease_owner = NULL, lease_until = NULL
                 WHERE application_id = $4 AND procedure_id = $5 AND lease_owner = $6",
                vec![
                    Param::Integer(i64::from(matches!(change, LeasedChange::Retry { .. }))),
                    Param::Text(reason.to_owned()),
                    Param::Integer(millis(due)),
                ],
                None,
                None,
            ),
            LeasedChange::AwaitingPickup { detail } => (
                "UPDATE deliveries SET step = 'pickup', last_error = NULL, due_at = $1,
                        lease_owner = NULL, lease_until = NULL
                 WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4
                 RETURNING application_id, message_id, sealed",
                vec![Param::Integer(millis(now))],
                Some((Status::Prepared, detail)),
                None,
            ),
            LeasedChange::Failed { status, error } => (
                "UPDATE deliveries SET step = $1, last_error = $2, lease_owner = NULL,
                        lease_until = NULL,
                        attempts = attempts + CASE WHEN $1 = 'dead' THEN 1 ELSE 0 END
                 WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5
                 RETURNING application_id, message_id, sealed",
                vec![
                    Param::Text(Stage::of_failure(status).as_str().to_owned()),
                    Param::Text(error.to_owned()),
                ],
                Some((status, error)),
                None,
            ),
        };
        // Only the holder of the lease may change the entry.
        params.extend([
            Param::Text(item.application_id.to_string()),
            Param::Text(item.procedure_id.clone()),
            Param::Text(item.lease.clone()),
        ]);
        let transition = transition.map(|(status, detail)| {
            Change::message(item.application_id, status, detail, sealed.map(sha256_hex))
        });
        Self {
            write: Write { sql, params },
            transition,
        }
    }
}

/// Stamps an instance's heartbeat (`$1` id, `$2` now).
pub(crate) const HEARTBEAT: &str = "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";

/// Returns the leases whose token begins with `$1` (an instance's lease prefix, its id
/// and a `/`) to the pool. A plain comparison of the token's start, not `LIKE`: an id's
/// `_` is no wildcard. An id holds no `/`, so one instance's prefix never matches
/// another's tokens (`a/` is no prefix of `ab/…`). Only pending entries hold a lease:
/// the step condition lets the pending index spare a scan of every delivery ever made.
pub(crate) const RELEASE_LEASES_OF: &str =
    "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
     WHERE step IN ('prepare', 'deliver') AND lease_owner IS NOT NULL
       AND substr(lease_owner, 1, length($1)) = $1";

/// Forgets every instance but `$1` whose heartbeat is older than `$2`, returning their ids:
/// one statement, so that each is taken over by one caller.
pub(crate) const FORGET_SILENT: &str =
    "DELETE FROM instances WHERE id <> $1 AND heartbeat_at < $2 RETURNING id";

/// An instance id read back from the `instances` table.
pub(crate) fn stored_instance(id: &str) -> Result<InstanceId, StoreError> {
    InstanceId::parse(id).map_err(|e| StoreError::Corrupt(format!("instances: {e}")))
}
