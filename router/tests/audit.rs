//! The audit trail against a real SQLite store: every state change appends a linked
//! entry with the sealed message's hash, and a change made behind the store's back is
//! named by its seq.

use kopplung_router::audit::{GENESIS_HASH, Problem, sha256_hex};
use kopplung_router::store::{
    Inserted, NewApplication, SqliteStore, Status, Step, Store, StoreError,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
mod common;

use common::{application, capacity};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Takes one application through accepted → prepared → delivered.
async fn deliver(store: &SqliteStore, sealed: &[u8]) -> NewApplication {
    let new = application(None);
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        Inserted::Created(_)
    ));
    let now = OffsetDateTime::now_utc();
    let mut item = store
        .claim("lease", now, now + Duration::minutes(1), 10, &capacity())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.application_id == new.id)
        .unwrap();
    assert!(
        store
            .record_prepared(&item, sealed, "prepared")
            .await
            .unwrap()
    );
    item.step = Step::Deliver;
    assert!(
        store
            .record_delivered(&item, "message delivered to dresden-maengel via amqp q")
            .await
            .unwrap()
    );
    new
}

/// Runs one statement on the database file with a connection of its own.
async fn tamper(dir: &std::path::Path, sql: &str) {
    let mut connection = SqliteConnectOptions::new()
        .filename(dir.join("kopplung.db"))
        .connect()
        .await
        .unwrap();
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    connection.close().await.unwrap();
}

#[tokio::test]
async fn every_state_change_is_chained_with_the_message_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let sealed = b"sealed message bytes".as_slice();
    let first = deliver(&store, sealed).await;
    let second = deliver(&store, b"another sealed message").await;

    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 6);

    let entries = store.audit_entries(first.id).await.unwrap();
    let statuses: Vec<&str> = entries.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["accepted", "prepared", "delivered"]);
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert_eq!(entries[0].message_sha256, None);
    let message_hash = sha256_hex(sealed);
    assert_eq!(entries[1].message_sha256.as_deref(), Some(&*message_hash));
    assert_eq!(entries[2].message_sha256.as_deref(), Some(&*message_hash));
    for entry in &entries {
        assert_eq!(entry.application_id, first.id.to_string());
        assert_eq!(entry.hash, entry.computed_hash());
        // No form data in the trail.
        assert!(!entry.detail.contains("Schlagloch") && !entry.detail.contains("Jörg"));
    }
    // The history and the audit trail tell the same story at the same times.
    let record = store.application(first.id).await.unwrap().unwrap();
    assert_eq!(record.history.len(), entries.len());
    for (history, entry) in record.history.iter().zip(&entries) {
        assert_eq!(history.status, entry.status);
        assert_eq!(history.detail, entry.detail);
        assert_eq!(
            history.at,
            OffsetDateTime::parse(&entry.at, &time::format_description::well_known::Rfc3339)
                .unwrap()
        );
    }
    // The chain runs across applications.
    let others = store.audit_entries(second.id).await.unwrap();
    assert_eq!(others[0].seq, 4);
    assert_eq!(others[0].prev_hash, entries[2].hash);
    assert!(
        store
            .audit_entries(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn failures_are_audited_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = application(None);
    store.insert_application(&new).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let item = store
        .claim("lease", now, now + Duration::minutes(1), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    // A retry changes no status: no entry.
    assert!(
        store
            .record_retry(&item, now, "broker unreachable")
            .await
            .unwrap()
    );
    let item = store
        .claim("lease-2", now, now + Duration::minutes(1), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .record_failed(&item, Status::Invalid, "fields beschreibung")
            .await
            .unwrap()
    );
    let entries = store.audit_entries(new.id).await.unwrap();
    let statuses: Vec<&str> = entries.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["accepted", "invalid"]);
    assert_eq!(entries[1].detail, "fields beschreibung");
    assert_eq!(entries[1].message_sha256, None);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_flipped_byte_in_detail_is_named_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    deliver(&store, b"one").await;
    deliver(&store, b"two").await;
    // seq 5 is the second application's `prepared` entry; flip one byte of its detail.
    tamper(
        dir.path(),
        "UPDATE audit_log SET detail = 'n' || substr(detail, 2) WHERE seq = 5",
    )
    .await;
    let report = store.verify_audit().await.unwrap();
    let first = report.first_break.unwrap();
    assert_eq!(first.seq, 5);
    assert!(
        matches!(first.problem, Problem::HashMismatch { .. }),
        "{first}"
    );
    assert_eq!(report.checked, 6);
    assert_eq!(report.broken, 1);
}

#[tokio::test]
async fn a_flipped_byte_in_the_message_hash_is_named_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    deliver(&store, b"one").await;
    let entries = store.verify_audit().await.unwrap();
    assert!(entries.is_intact());
    // Flip the first hex digit of the delivered entry's message hash.
    tamper(
        dir.path(),
        "UPDATE audit_log SET message_sha256 =
           (CASE substr(message_sha256, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(message_sha256, 2)
         WHERE seq = 3",
    )
    .await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert!(
        first.to_string().starts_with("seq 3: hash mismatch"),
        "{first}"
    );
}

#[tokio::test]
async fn removed_entries_are_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    deliver(&store, b"one").await;
    deliver(&store, b"two").await;
    tamper(dir.path(), "DELETE FROM audit_log WHERE seq = 2").await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Gap { expected: 2 });

    // From the end: the next entry does not hide the removal.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    deliver(&store, b"one").await;
    tamper(dir.path(), "DELETE FROM audit_log WHERE seq = 3").await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Truncated { highest_issued: 3 });
    store.insert_application(&application(None)).await.unwrap();
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 4);
    assert_eq!(first.problem, Problem::Gap { expected: 3 });
}

#[tokio::test]
async fn a_read_only_store_verifies_beside_the_hub_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = deliver(&store, b"one").await;
    // The hub's store holds the lock; the read-only one does not need it.
    let reader = SqliteStore::open_read_only(dir.path()).await.unwrap();
    let report = reader.verify_audit().await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.checked, 3);
    assert_eq!(reader.audit_entries(new.id).await.unwrap().len(), 3);
    assert!(reader.insert_application(&application(None)).await.is_err());
    // The hub goes on while the reader is open.
    deliver(&store, b"two").await;
    assert_eq!(reader.verify_audit().await.unwrap().checked, 6);

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        SqliteStore::open_read_only(empty.path()).await,
        Err(StoreError::Io(..))
    ));
    assert!(
        !empty.path().join("kopplung.db").exists(),
        "nothing created"
    );
}
