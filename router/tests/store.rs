//! The SQLite store: one transaction per state change, leases that cannot be used twice,
//! idempotency answers, one process per data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use kopplung_router::store::{Inserted, SqliteStore, Status, Step, Store, StoreError};
mod common;

use common::{application, capacity};
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn a_taken_over_lease_cannot_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = application(None);
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        Inserted::Created(_)
    ));

    let now = OffsetDateTime::now_utc();
    let first = store
        .claim("a", now, now + Duration::seconds(1), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].step, Step::Prepare);
    assert_eq!(first[0].message_id, new.message_id);
    // Leased: nobody else gets it now.
    assert!(
        store
            .claim("b", now, now + Duration::seconds(60), 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    // After the lease ran out, another worker takes it over.
    let later = now + Duration::seconds(2);
    let second = store
        .claim("b", later, later + Duration::seconds(60), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(second.len(), 1);

    assert!(
        !store
            .record_prepared(&first[0], b"sealed-by-a", "prepared")
            .await
            .unwrap()
    );
    assert!(
        store
            .record_prepared(&second[0], b"sealed-by-b", "prepared")
            .await
            .unwrap()
    );
    let mut deliver = second[0].clone();
    deliver.step = Step::Deliver;
    assert_eq!(
        store.sealed_message(&deliver).await.unwrap(),
        b"sealed-by-b"
    );
    assert!(!store.record_delivered(&first[0], "a").await.unwrap());
    assert!(
        store
            .record_delivered(&deliver, "delivered by b")
            .await
            .unwrap()
    );

    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Delivered);
    let history: Vec<&str> = record.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(history, ["accepted", "prepared", "delivered"]);
    // Done: never claimed again.
    let much_later = now + Duration::hours(1);
    assert!(
        store
            .claim("c", much_later, much_later, 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_retry_waits_until_it_is_due_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = application(None);
    store.insert_application(&new).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let item = store
        .claim("a", now, now + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    let due = now + Duration::seconds(30);
    assert!(
        store
            .record_retry(&item, due, "broker unreachable")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim("b", now, now + Duration::minutes(2), 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    let next = store.next_due().await.unwrap().unwrap();
    assert!((next - due).abs() < Duration::milliseconds(2));
    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.delivery.attempts, 1);
    assert_eq!(
        record.delivery.last_error.as_deref(),
        Some("broker unreachable")
    );
    let again = store
        .claim("b", due, due + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
}

#[tokio::test]
async fn idempotency_keys_replay_or_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let first = application(Some(("k", "hash-1")));
    let Inserted::Created(accepted) = store.insert_application(&first).await.unwrap() else {
        panic!("created")
    };
    assert_eq!(
        store
            .insert_application(&application(Some(("k", "hash-1"))))
            .await
            .unwrap(),
        Inserted::Replayed(accepted)
    );
    assert_eq!(
        store
            .insert_application(&application(Some(("k", "hash-2"))))
            .await
            .unwrap(),
        Inserted::KeyConflict
    );
    let mut same_receipt = application(None);
    same_receipt.receipt = first.receipt.clone();
    assert_eq!(
        store.insert_application(&same_receipt).await.unwrap(),
        Inserted::ReceiptTaken
    );
    assert!(
        store.application(same_receipt.id).await.unwrap().is_none(),
        "nothing half-stored"
    );
}

#[tokio::test]
async fn one_process_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SqliteStore::open(dir.path()).await.unwrap();
    assert!(matches!(
        SqliteStore::open(dir.path()).await,
        Err(StoreError::Locked(_))
    ));
}

#[tokio::test]
async fn a_receipt_that_overtakes_the_delivered_commit_records_both() {
    use kopplung_router::store::{ReceiptOutcome, ReceiptRecord};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = application(None);
    store.insert_application(&new).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let mut item = store
        .claim("a", now, now + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .record_prepared(&item, b"sealed", "prepared")
            .await
            .unwrap()
    );
    item.step = Step::Deliver;
    // The broker confirmed, the procedure answered at once; our commit is still to come.
    let receipt = ReceiptRecord {
        receipt_id: "r-1".into(),
        procedure_id: new.procedure_id.clone(),
        message_id: new.message_id,
        application_id: new.id,
        status: Status::Received,
        message: None,
        document: None,
        problems: vec![],
        issued_at: "2026-11-30T10:00:00Z".into(),
        signed: b"signed receipt".to_vec(),
        content_sha256: "c0ffee".into(),
    };
    assert_eq!(
        store.record_receipt(&receipt).await.unwrap(),
        ReceiptOutcome::Applied(Status::Received)
    );
    assert!(
        !store.record_delivered(&item, "late").await.unwrap(),
        "the late commit changes nothing"
    );
    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Received);
    let history: Vec<&str> = record.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(history, ["accepted", "prepared", "delivered", "received"]);
    assert_eq!(
        store.record_receipt(&receipt).await.unwrap(),
        ReceiptOutcome::Duplicate
    );
    let mut resigned = receipt.clone();
    resigned.signed = b"the same receipt, signed again".to_vec();
    assert_eq!(
        store.record_receipt(&resigned).await.unwrap(),
        ReceiptOutcome::Duplicate
    );
    let mut other = receipt.clone();
    other.content_sha256 = "another content".into();
    assert_eq!(
        store.record_receipt(&other).await.unwrap(),
        ReceiptOutcome::Conflict
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, 0);
}

#[tokio::test]
async fn retention_deletes_personal_data_after_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    common::retention_deletes_personal_data_after_the_final_state(&store).await;
}

#[tokio::test]
async fn uploads_are_bound_once_and_read_in_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    common::uploads_are_bound_once_and_read_in_fragments(&store).await;
}
