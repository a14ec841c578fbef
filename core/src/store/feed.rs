//! The change feed: the history in the order it was written, for an API client that
//! follows the changes of its own applications (a portal that mails its citizens).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::model::Status;

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// A state change.
    Change,
    /// A state change that brought the citizen a mailbox entry (a question, a decision).
    Mailbox,
    /// A note at the status the application has: an access, retry now, retention.
    Note,
}

impl HistoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Change => "change",
            Self::Mailbox => "mailbox",
            Self::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "change" => Self::Change,
            "mailbox" => Self::Mailbox,
            "note" => Self::Note,
            _ => return None,
        })
    }
}

/// One history entry with what the feed needs to know of its application. No personal
/// data: ids, the receipt number, the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The entry's place in the history (increasing, with gaps).
    pub seq: i64,
    pub application_id: Uuid,
    /// The client that submitted the application.
    pub client_id: String,
    pub receipt: String,
    pub status: Status,
    pub kind: HistoryKind,
    /// When the store stamped the entry (its clock).
    pub at: OffsetDateTime,
}

#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Up to `limit` history entries with a seq above `after`, of every client, lowest
    /// seq first.
    async fn history_after(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, StoreError>;
}
