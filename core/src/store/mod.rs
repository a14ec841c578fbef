//! The durable store as the domain sees it: applications, their attachments, the outbox
//! and the history — what is stored and what each operation promises, not how. The
//! backends (`kopplung-store`: SQLite, PostgreSQL) implement it; every state change is
//! one transaction that also appends the history entry and the audit entry (see
//! [`crate::audit`]).
//!
//! The store has one trait per role, so that a service names what it uses:
//! [`IntakeStore`], [`OutboxStore`], [`PickupStore`], [`EventStore`], [`OversightStore`],
//! [`AuditStore`], [`FeedStore`]; [`Store`] is all of them. The decisions the backends take from what
//! they read, which are not SQL, are in [`rules`]: both backends call the same ones.

mod audit;
mod error;
mod events;
mod feed;
mod intake;
mod model;
mod outbox;
mod oversight;
mod pickup;
pub mod rules;

pub use audit::AuditStore;
pub use error::StoreError;
pub use events::EventStore;
pub use feed::{FeedEntry, FeedStore, HistoryKind};
pub use intake::IntakeStore;
pub use model::*;
pub use outbox::{Claim, LeasedChange, OutboxStore, Silent};
pub use oversight::{OversightStore, SendAgain};
pub use pickup::PickupStore;

/// The whole store: every role. Implemented for every type that implements them all,
/// so a backend implements the roles and is a `Store`.
pub trait Store:
    IntakeStore + OutboxStore + PickupStore + EventStore + OversightStore + AuditStore + FeedStore
{
}

impl<T> Store for T where
    T: IntakeStore
        + OutboxStore
        + PickupStore
        + EventStore
        + OversightStore
        + AuditStore
        + FeedStore
        + ?Sized
{
}
