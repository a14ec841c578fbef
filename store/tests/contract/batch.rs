//! Leased changes recorded at once: PostgreSQL runs them in one transaction (its
//! writer's group commit), SQLite in one group commit of its writer thread. Each change
//! still gets its own answer.

use crate::backend::{Backend, Kind};
use crate::support::*;

pub(crate) async fn changes_recorded_at_once_commit_but_the_one_whose_lease_was_taken_over(
    backend: Backend,
) {
    let store = &*backend.store;
    let apps: Vec<NewApplication> = (0..4).map(|_| application(None)).collect();
    let now = OffsetDateTime::now_utc();
    insert(store, &apps[0]).await;
    let stale = claim_first(store, "a", now, Duration::seconds(1)).await;
    for new in &apps[1..] {
        insert(store, new).await;
    }
    // "a"'s lease ran out: "b" takes its entry over, with the others.
    let later = now + Duration::seconds(2);
    let taken = claim_until(store, "b", later, later + Duration::minutes(1)).await;
    assert_eq!(taken.len(), 4);
    let item = |new: &NewApplication| {
        taken
            .iter()
            .find(|item| item.application_id == new.id)
            .unwrap()
            .clone()
    };
    let delivering = |new: &NewApplication| WorkItem {
        step: Step::Deliver,
        ..item(new)
    };

    // Queued together, before the writer runs: one batch (the test's runtime has one
    // thread).
    let items: Vec<WorkItem> = apps.iter().map(item).collect();
    let (fenced, first, second, third) = tokio::join!(
        store.record_prepared(&stale, b"sealed by a", "<nachricht/>", "prepared by a"),
        store.record_prepared(
            &items[1],
            b"sealed 1",
            "<nachricht>1</nachricht>",
            "prepared"
        ),
        store.record_prepared(
            &items[2],
            b"sealed 2",
            "<nachricht>2</nachricht>",
            "prepared"
        ),
        store.record_failed(&items[3], Status::Invalid, "mapping failed"),
    );
    assert!(!fenced.unwrap());
    assert!(first.unwrap() && second.unwrap() && third.unwrap());
    // Each entry of the batch keeps the XML it was sealed from; the fenced one none.
    for (new, xml) in [
        (&apps[1], "<nachricht>1</nachricht>"),
        (&apps[2], "<nachricht>2</nachricht>"),
    ] {
        assert_eq!(store.sent_xml(new.id).await.unwrap().as_deref(), Some(xml));
    }
    assert_eq!(store.sent_xml(apps[0].id).await.unwrap(), None);
    let retry_at = later + Duration::seconds(30);
    let (one, two) = (delivering(&apps[1]), delivering(&apps[2]));
    let (fenced, delivered, retried, fenced_wait) = tokio::join!(
        store.record_delivered(&stale, "delivered by a"),
        store.record_delivered(&one, "delivered"),
        store.record_retry(&two, retry_at, "broker unreachable"),
        store.record_wait(&stale, later, "waiting by a"),
    );
    assert!(!fenced.unwrap() && !fenced_wait.unwrap());
    assert!(delivered.unwrap() && retried.unwrap());

    // The entry taken over is untouched by "a", and still "b"'s.
    let record = stored_as(store, apps[0].id, Status::Accepted, &["accepted"]).await;
    assert_eq!(record.delivery.attempts, 0);
    assert_eq!(record.delivery.last_error, None);
    let deliver = prepare(store, &items[0], b"sealed by b").await;
    assert_eq!(
        store.sealed_message(&deliver).await.unwrap(),
        b"sealed by b"
    );

    let record = stored_as(
        store,
        apps[1].id,
        Status::Delivered,
        &["accepted", "prepared", "delivered"],
    )
    .await;
    assert_eq!(record.delivery.attempts, 1);
    assert!(record.delivery.delivered_at.is_some());
    let entries = store.audit_entries(apps[1].id).await.unwrap();
    assert_history_is_the_trail(&record.history, &entries);
    // The delivered entry binds the stored message, read back in the batch.
    for entry in &entries[1..] {
        assert_eq!(
            entry.message_sha256.as_deref(),
            Some(&*sha256_hex(b"sealed 1"))
        );
    }

    let record = stored_as(
        store,
        apps[2].id,
        Status::Prepared,
        &["accepted", "prepared"],
    )
    .await;
    assert_eq!(record.delivery.attempts, 1);
    assert_eq!(
        record.delivery.last_error.as_deref(),
        Some("broker unreachable")
    );
    // Given back: due again at its retry time, not before.
    assert!(
        claim_until(store, "c", later, later + Duration::minutes(1))
            .await
            .is_empty()
    );
    let again = claim_until(store, "c", retry_at, retry_at + Duration::minutes(1)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].application_id, apps[2].id);
    assert_eq!(store.sealed_message(&again[0]).await.unwrap(), b"sealed 2");

    let record = stored_as(store, apps[3].id, Status::Invalid, &["accepted", "invalid"]).await;
    assert_eq!(record.delivery.attempts, 0);

    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn postgres_a_change_the_database_refuses_fails_alone_and_the_others_commit() {
    let backend = Backend::open(Kind::Postgres).await;
    let store = &*backend.store;
    let (good, good_item) = claimed(store, "a").await;
    let (bad, bad_item) = claimed(store, "b").await;
    let (other, other_item) = claimed(store, "c").await;
    // PostgreSQL's text holds no NUL character: the database refuses this one change,
    // and with it the batch's transaction, whose changes then run one by one.
    let (prepared, refused, dead) = tokio::join!(
        store.record_prepared(&good_item, b"sealed", "<nachricht/>", "prepared"),
        store.record_failed(&bad_item, Status::Invalid, "mapping failed at \0"),
        store.record_failed(&other_item, Status::DeadLettered, "refused"),
    );
    assert!(prepared.unwrap());
    assert!(refused.is_err());
    assert!(dead.unwrap());
    assert_eq!(stored(store, good.id).await.status, Status::Prepared);
    stored_as(store, bad.id, Status::Accepted, &["accepted"]).await;
    assert_eq!(stored(store, other.id).await.status, Status::DeadLettered);
    // The refused change left its lease as it was: its holder records the next outcome.
    assert!(
        store
            .record_failed(&bad_item, Status::Invalid, "mapping failed")
            .await
            .unwrap()
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}
