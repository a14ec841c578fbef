//! The change feed of an API client (`GET /api/v1/changes`): the state changes of its own
//! applications in the order the history holds them, with a cursor, so that a portal
//! learns what happened without asking after every application.
//!
//! **Why the feed holds back the youngest entries.** A history entry's seq is drawn
//! when its transaction writes it, not when it commits. On PostgreSQL, with several
//! instances (and several connections of one), a transaction that drew seq 10 may
//! commit after one that drew seq 11: a reader that handed out 11 and moved its cursor
//! past it would never see 10. So the feed hands out only entries stamped at least
//! [`SETTLE`] before now, and stops at the first younger one: the store stamps an entry
//! inside its transaction just before the commit, so by then every entry with a lower
//! seq has committed (or never will). The settle time must exceed the longest time
//! from stamp to commit plus the clock skew between instances; a commit stalled longer
//! than that would be missed. SQLite's one writer commits in seq order; the rule costs
//! it only the delay.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{FeedStore, HistoryKind, Status, StoreError};

/// How old an entry must be before the feed hands it out (see the module's text).
pub const SETTLE: Duration = Duration::from_secs(5);

/// The most entries a client may ask for at once, and the default.
pub const MAX_LIMIT: u32 = 500;
pub const DEFAULT_LIMIT: u32 = 100;

/// How many history entries (of every client) one page reads at most.
const SCAN: u32 = 1000;

/// One change of an application, as its client sees it: no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The entry's seq: a cursor that continues after this change.
    pub seq: i64,
    pub application: Uuid,
    pub receipt: String,
    /// The status the application took.
    pub status: Status,
    /// Whether the change brought a mailbox entry (a question, a decision).
    pub mailbox: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub changes: Vec<Change>,
    /// Ask with `after` = this for what follows (the last entry read, the client's or
    /// not; `after` itself when nothing was old enough).
    pub cursor: i64,
    /// More entries old enough may follow at once.
    pub more: bool,
}

/// The changes of `client`'s applications after `after`, at most `limit`, that are at
/// least `settle` older than `now`.
pub async fn page(
    store: &(impl FeedStore + ?Sized),
    client: &str,
    after: i64,
    limit: u32,
    now: OffsetDateTime,
    settle: Duration,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let settled = now - settle;
    let entries = store.history_after(after, SCAN).await?;
    let scanned_all = entries.len() < SCAN as usize;
    let mut page = Page {
        changes: Vec::new(),
        cursor: after,
        more: !scanned_all,
    };
    for entry in entries {
        if entry.at > settled {
            // This one and everything after it waits: see the module's text.
            page.more = false;
            break;
        }
        page.cursor = entry.seq;
        if entry.client_id == client && entry.kind != HistoryKind::Note {
            page.changes.push(Change {
                seq: entry.seq,
                application: entry.application_id,
                receipt: entry.receipt,
                status: entry.status,
                mailbox: entry.kind == HistoryKind::Mailbox,
                at: entry.at,
            });
            if page.changes.len() == limit as usize {
                page.more = true;
                break;
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::FeedEntry;
    use async_trait::async_trait;

    struct History(Vec<FeedEntry>);

    #[async_trait]
    impl FeedStore for History {
        async fn history_after(
            &self,
            after: i64,
            limit: u32,
        ) -> Result<Vec<FeedEntry>, StoreError> {
            Ok(self
                .0
                .iter()
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect())
        }
    }

    fn entry(seq: i64, client: &str, kind: HistoryKind, age_secs: i64) -> FeedEntry {
        FeedEntry {
            seq,
            application_id: Uuid::nil(),
            client_id: client.into(),
            receipt: "K7QX-2M4P".into(),
            status: Status::Decided,
            kind,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(100 - age_secs),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(100)
    }

    #[tokio::test]
    async fn only_the_clients_changes_old_enough_and_the_cursor_stops_at_the_first_young_one() {
        let history = History(vec![
            entry(1, "portal", HistoryKind::Change, 30),
            entry(2, "other", HistoryKind::Change, 30),
            entry(4, "portal", HistoryKind::Note, 20),
            entry(5, "portal", HistoryKind::Mailbox, 10),
            entry(6, "portal", HistoryKind::Change, 1),
            entry(7, "portal", HistoryKind::Change, 20),
        ]);
        let page = page(&history, "portal", 0, 10, now(), SETTLE)
            .await
            .unwrap();
        let seqs: Vec<i64> = page.changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 5]);
        assert!(page.changes[1].mailbox && !page.changes[0].mailbox);
        assert_eq!(
            page.cursor, 5,
            "not past the young entry 6, nor to 7 behind it"
        );
        assert!(!page.more);
    }

    #[tokio::test]
    async fn a_full_page_says_more_and_continues_after_its_last_change() {
        let history = History(
            (1..=5)
                .map(|s| entry(s, "portal", HistoryKind::Change, 60))
                .collect(),
        );
        let first = page(&history, "portal", 0, 2, now(), SETTLE).await.unwrap();
        assert_eq!(
            (first.cursor, first.more, first.changes.len()),
            (2, true, 2)
        );
        let rest = page(&history, "portal", first.cursor, 10, now(), SETTLE)
            .await
            .unwrap();
        assert_eq!((rest.cursor, rest.more, rest.changes.len()), (5, false, 3));
    }
}
