//! kopplung's domain core: what an application is, which states it may take, what the
//! store promises and how the audit trail proves what happened. It knows no HTTP and no
//! SQL: the edges (the API, the store backends, the transports) depend on it, never the
//! other way round.
#![forbid(unsafe_code)]

pub mod audit;
pub mod changes;
pub mod clock;
pub mod conversation;
pub mod events;
pub mod fitconnect;
pub mod follow_up;
pub mod identity;
pub mod ids;
pub mod intake;
pub mod oversight;
pub mod pdfa;
pub mod rotation;
pub mod status;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    ApplicationId, Ars, ArsPrefix, InstanceId, InvalidId, MessageId, ProcedureId, ServiceKey,
};
pub use rotation::{Rotation, Stage};
pub use status::Status;

/// Rings when new work for the outbox is committed (intake, retry now, replay), so it
/// starts at once instead of at the next poll.
pub trait Wake: Send + Sync {
    fn wake(&self);
}

/// Errors of the core that are not a store's or an id's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the core reads (trust anchors) is missing or not what it must be.
    #[error("{}: {message}", file.display())]
    Config {
        file: std::path::PathBuf,
        message: String,
    },
}
