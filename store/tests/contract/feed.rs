//! The change feed: the history in seq order with what each entry records, handed out
//! by the core's settle rule (`kopplung_core::changes`) only once it cannot be overtaken.

use kopplung_core::changes::{self, SETTLE};

use crate::backend::{Backend, Kind};
use crate::support::*;
use kopplung_core::Clock;

const SETTLED: Duration = Duration::seconds(6);

fn start() -> OffsetDateTime {
    OffsetDateTime::parse(
        "2026-12-01T10:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// A page of `client`'s changes after `after`, at the store's clock `now`.
async fn page(store: &dyn Store, client: &str, after: i64, now: OffsetDateTime) -> changes::Page {
    changes::page(store, client, after, 100, now, SETTLE)
        .await
        .unwrap()
}

fn seen(page: &changes::Page) -> Vec<(&str, bool)> {
    page.changes
        .iter()
        .map(|c| (c.status.as_str(), c.mailbox))
        .collect()
}

pub(crate) async fn the_feed_hands_out_a_clients_settled_changes_in_order(backend: Backend) {
    let clock = Arc::new(ManualClock::new(start()));
    let backend = backend.with_clock(clock.clone()).await;
    let store = &*backend.store;
    let (new, _) = decided_with_everything(store).await;
    let mut others = application(None);
    others.client_id = "another-client".into();
    insert(store, &others).await;
    // A note at the unchanged status: no change for the feed.
    assert!(store.record_access(new.id, "looked at").await.unwrap());

    // What the store keeps: every entry, in order, with its kind.
    let history = store.history_after(0, 100).await.unwrap();
    let kinds: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|e| (e.client_id.as_str(), e.status.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("client", "accepted", "change"),
            ("client", "prepared", "change"),
            ("client", "delivered", "change"),
            ("client", "received", "change"),
            ("client", "decided", "mailbox"),
            ("another-client", "accepted", "change"),
            ("client", "decided", "note"),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(history.iter().all(|e| e.at == start()));
    assert_eq!(history[4].receipt, new.receipt);
    let last = history[6].seq;
    assert_eq!(
        store.history_after(history[4].seq, 1).await.unwrap()[0].seq,
        history[5].seq
    );

    // Written just now: nothing is handed out yet, the cursor stays.
    let young = page(store, "client", 0, clock.now()).await;
    assert_eq!(
        (young.changes.len(), young.cursor, young.more),
        (0, 0, false)
    );

    // Settled: the client's changes without the note, none of the other client's.
    clock.advance(SETTLED);
    let settled = page(store, "client", 0, clock.now()).await;
    assert_eq!(
        seen(&settled),
        [
            ("accepted", false),
            ("prepared", false),
            ("delivered", false),
            ("received", false),
            ("decided", true),
        ]
    );
    assert!(settled.changes.iter().all(|c| c.application == new.id));
    assert_eq!(
        settled.cursor, last,
        "past the other client's entry and the note"
    );
    let theirs = page(store, "another-client", 0, clock.now()).await;
    assert_eq!(seen(&theirs), [("accepted", false)]);

    // A new change waits until it has settled, then follows the cursor, once.
    let later = application(None);
    insert(store, &later).await;
    let waiting = page(store, "client", settled.cursor, clock.now()).await;
    assert_eq!((waiting.changes.len(), waiting.cursor), (0, last));
    clock.advance(SETTLED);
    let next = page(store, "client", settled.cursor, clock.now()).await;
    assert_eq!(seen(&next), [("accepted", false)]);
    assert_eq!(next.changes[0].application, later.id);
    let again = page(store, "client", next.cursor, clock.now()).await;
    assert!(again.changes.is_empty() && again.cursor == next.cursor);
}

/// PostgreSQL draws a history entry's seq when it is written, not when it commits: a
/// transaction holding seq n may commit after n+1 is visible. Read at once, the feed
/// would move its cursor past n and never hand it out; held back until the entries have
/// settled, it hands out both.
#[tokio::test]
async fn postgres_an_entry_that_commits_after_a_higher_one_is_not_skipped() {
    let clock = Arc::new(ManualClock::new(start()));
    let backend = Backend::open_with_clock(Kind::Postgres, clock.clone()).await;
    let store = &*backend.store;
    let (first, second) = (application(None), application(None));
    insert(store, &first).await;
    let before = store
        .history_after(0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;

    // Another instance's transaction: its entry (stamped now) is written, not committed.
    let mut late = PgConnection::connect(backend.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    sqlx::query(
        "INSERT INTO history (application_id, at, status, detail, kind)
         VALUES ($1, '2026-12-01T10:00:00Z', 'received', 'late', 'change')",
    )
    .bind(first.id.to_string())
    .execute(&mut late)
    .await
    .unwrap();
    // A later entry commits first.
    insert(store, &second).await;

    // Read at once (no settle time), the feed skips the entry still to commit.
    let hasty = changes::page(
        store,
        "client",
        before,
        100,
        clock.now(),
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(seen(&hasty), [("accepted", false)]);
    // The feed as it is: nothing handed out yet.
    let held = page(store, "client", before, clock.now()).await;
    assert_eq!((held.changes.len(), held.cursor), (0, before));

    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    let lost = changes::page(
        store,
        "client",
        hasty.cursor,
        100,
        clock.now(),
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(
        lost.changes.is_empty(),
        "behind the hasty cursor, the late entry is lost"
    );

    clock.advance(SETTLED);
    let settled = page(store, "client", held.cursor, clock.now()).await;
    assert_eq!(seen(&settled), [("received", false), ("accepted", false)]);
    assert_eq!(settled.changes[0].application, first.id);
    assert_eq!(settled.changes[1].application, second.id);
}
