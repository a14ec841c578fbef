//! The outbox: claiming due work under a lease and recording what became of it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::model::*;
use crate::InstanceId;

/// What became of a claimed outbox entry: one change, recorded under the entry's lease.
#[derive(Debug, Clone, Copy)]
pub enum LeasedChange<'a> {
    /// Rendered, checked and sealed: the message waits for delivery.
    Prepared {
        sealed: &'a [u8],
        /// The XML as it was signed and sealed, kept for the admin view of the message
        /// (the hub cannot open what it sealed for the procedure).
        xml: &'a str,
        detail: &'a str,
    },
    Delivered {
        detail: &'a str,
    },
    /// A failed attempt, tried again at `due`.
    Retry {
        due: OffsetDateTime,
        error: &'a str,
    },
    /// Not an attempt (the destination was unreachable altogether): waits until `due`.
    Wait {
        due: OffsetDateTime,
        reason: &'a str,
    },
    /// Prepared, waits for its procedure to collect it.
    AwaitingPickup {
        detail: &'a str,
    },
    /// `invalid` (mapping) or `dead_lettered` (delivery): retrying cannot fix it.
    Failed {
        status: Status,
        error: &'a str,
    },
}

/// A claim of due outbox entries (see [`OutboxStore::claim`]).
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The lease token, unique per claim; every entry claimed carries it. The hub's
    /// tokens are `<instance>/<unique>` ([`InstanceId::new_lease`]): which instance holds
    /// a claim is read from its token.
    pub lease: &'a str,
    /// Entries due by now whose lease (if any) has run out are claimed.
    pub now: OffsetDateTime,
    pub lease_until: OffsetDateTime,
    /// At most this many entries in all.
    pub limit: u32,
    /// At most `capacity[procedure]` entries of each procedure (what is left of its
    /// concurrency limit, so that a slow procedure cannot take every slot; 1 for a
    /// procedure not in the map).
    pub capacity: &'a BTreeMap<String, u32>,
}

/// Another instance that fell silent, and how many claimed entries were taken from it
/// (see [`OutboxStore::take_over_silent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub instance: InstanceId,
    pub entries: u64,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims due outbox entries under `claim.lease` until `claim.lease_until`, oldest due
    /// first, within the claim's limit and each procedure's capacity.
    async fn claim(&self, claim: &Claim<'_>) -> Result<Vec<WorkItem>, StoreError>;

    /// When the earliest pending entry falls due, if any.
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError>;

    async fn sealed_message(&self, item: &WorkItem) -> Result<Vec<u8>, StoreError>;

    /// Records what became of a claimed entry, under its lease; `false` if the lease was
    /// taken over (nothing changed). The `record_*` methods below say it by name.
    async fn record(&self, item: &WorkItem, change: LeasedChange<'_>) -> Result<bool, StoreError>;

    /// Each `record_*` returns `false` if the item's lease was taken over (nothing changed).
    /// The message is rendered, checked and (unless kept for the clerk inbox) sealed
    /// from `xml`; `detail` says so in the history.
    async fn record_prepared(
        &self,
        item: &WorkItem,
        sealed: &[u8],
        xml: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        self.record(
            item,
            LeasedChange::Prepared {
                sealed,
                xml,
                detail,
            },
        )
        .await
    }

    async fn record_delivered(&self, item: &WorkItem, detail: &str) -> Result<bool, StoreError> {
        self.record(item, LeasedChange::Delivered { detail }).await
    }

    async fn record_retry(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.record(item, LeasedChange::Retry { due, error }).await
    }

    /// Like `record_retry`, but the wait is not an attempt at this message (the
    /// destination was unreachable altogether).
    async fn record_wait(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.record(item, LeasedChange::Wait { due, reason }).await
    }

    /// The message is prepared and waits for its procedure to collect it.
    async fn record_awaiting_pickup(
        &self,
        item: &WorkItem,
        detail: &str,
    ) -> Result<bool, StoreError> {
        self.record(item, LeasedChange::AwaitingPickup { detail })
            .await
    }

    /// A failure that retrying cannot fix: `invalid` (mapping) or `dead_lettered` (delivery).
    async fn record_failed(
        &self,
        item: &WorkItem,
        status: Status,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.record(item, LeasedChange::Failed { status, error })
            .await
    }

    /// At start: returns the leases of `instance`'s earlier life (after a crash or a
    /// kill) to the pool, those whose token begins with its
    /// [`InstanceId::lease_prefix`]. SQLite (one process per data directory) returns
    /// every lease. A returned lease is fenced: a change recorded under it fails.
    async fn release_stale_leases(&self, instance: &InstanceId) -> Result<u64, StoreError>;

    /// `instance` is alive: its heartbeat is stamped with the store's clock.
    async fn heartbeat(&self, instance: &InstanceId) -> Result<(), StoreError>;

    /// Takes over the claims of every other instance whose heartbeat is older than
    /// `timeout` by the store's clock: their leases return to the pool (claimable at
    /// once, and fenced: a change its old holder records under them fails) and the
    /// instance is forgotten until it beats again. Each instance is taken over once, by
    /// one caller.
    async fn take_over_silent(
        &self,
        instance: &InstanceId,
        timeout: time::Duration,
    ) -> Result<Vec<Silent>, StoreError>;
}
