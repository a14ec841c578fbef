//! The audit trail against a real SQLite store: every state change appends a linked
//! entry with the sealed message's hash and the content it binds, and a change made
//! behind the store's back — to an entry, to stored content, or a tail removed with its
//! sequence — is named by its seq.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use kopplung_router::audit::{AuditVerifier, GENESIS_HASH, Problem, sha256_hex};
use kopplung_router::store::{
    Inserted, NewApplication, SqliteStore, Status, Step, Store, StoreError,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
mod common;

use common::{application, capacity, checkpoint_head, decided_with_everything, hub_pki};
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

/// Runs statements on the database file with a connection of its own; the rows they
/// touched.
async fn tamper_rows(dir: &std::path::Path, sql: &str) -> u64 {
    let mut connection = SqliteConnectOptions::new()
        .filename(dir.join("kopplung.db"))
        .connect()
        .await
        .unwrap();
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    connection.close().await.unwrap();
    done.rows_affected()
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

#[tokio::test]
async fn an_intact_trail_is_checked_for_content_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    common::an_intact_trail_is_checked_for_content_and_checkpoints(&store).await;
}

#[tokio::test]
async fn content_changed_behind_the_stores_back_is_named_by_its_entry() {
    for case in common::content_tamper_cases("X'00'") {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let (new, upload) = decided_with_everything(&store).await;
        assert!(store.verify_audit().await.unwrap().is_intact());
        tamper(dir.path(), &case.fill(&case.sql, &new, upload)).await;
        case.expect_named(&store, &new, upload).await;
    }
}

#[tokio::test]
async fn a_tail_removed_with_its_sequence_is_named_by_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let (new, _) = decided_with_everything(&store).await;
    let (_pki, sealer, trust) = hub_pki();
    let checkpoint = checkpoint_head(&store, &sealer).await;
    assert_eq!(checkpoint.seq, 5);
    // The received and decided entries go, and the sequence forgets them.
    assert_eq!(
        tamper_rows(
            dir.path(),
            "DELETE FROM audit_log WHERE seq > 3;
             UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_log';",
        )
        .await,
        3
    );
    let report = store
        .verify_audit_with(AuditVerifier::new(Some(trust)))
        .await
        .unwrap();
    assert_eq!(report.broken, 0, "the chain alone looks intact");
    let first = report.first_break.unwrap();
    assert_eq!(first.seq, 5);
    assert_eq!(
        first.to_string(),
        format!(
            "seq 5 named by the checkpoint of {} is missing (the chain ends at seq 3)",
            checkpoint.at
        )
    );

    // Removing the stored checkpoints too hides it from the store alone, not from a
    // checkpoint held outside.
    tamper(dir.path(), "DELETE FROM audit_checkpoints").await;
    assert!(store.verify_audit().await.unwrap().is_intact());
    let mut verifier = AuditVerifier::new(None);
    verifier.hold_outside(vec![checkpoint], "saved.json");
    let report = store.verify_audit_with(verifier).await.unwrap();
    assert_eq!(report.checkpoints.outside, 1);
    let first = report.first_break.unwrap();
    assert_eq!(first.seq, 5);
    assert!(first.to_string().contains("(from saved.json)"), "{first}");
    assert!(store.audit_entries(new.id).await.unwrap().len() == 3);
}

#[tokio::test]
async fn entries_of_format_1_still_verify_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let (new, _) = decided_with_everything(&store).await;
    // Rewrite the chain as a hub before content hashes wrote it.
    let mut prev: Option<(i64, String)> = None;
    let mut statements = String::new();
    for mut entry in store.audit_entries(new.id).await.unwrap() {
        entry.version = 1;
        entry.content_sha256 = None;
        entry.prev_hash = prev.map_or_else(|| GENESIS_HASH.to_owned(), |(_, hash)| hash);
        entry.hash = entry.computed_hash();
        statements.push_str(&format!(
            "UPDATE audit_log SET version = 1, content_sha256 = NULL, prev_hash = '{}', hash = '{}' WHERE seq = {};\n",
            entry.prev_hash, entry.hash, entry.seq
        ));
        prev = Some((entry.seq, entry.hash));
    }
    assert_eq!(tamper_rows(dir.path(), &statements).await, 5);
    // As a hub of the new version starts on the old store.
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    // The accepted entry (form data, attachments) and the decision (its document) bound
    // nothing of that in format 1; the sealed message and receipts they did bind.
    assert_eq!(report.content.before_content_hashes, 2);
    assert_eq!(report.content.checked, 3);
    assert!(
        report.details()[0].contains("2 written before content hashes"),
        "{}",
        report.details()[0]
    );
    // What format 1 bound is still compared.
    tamper(
        dir.path(),
        &format!(
            "UPDATE deliveries SET sealed = X'00' WHERE application_id = '{}'",
            new.id
        ),
    )
    .await;
    assert_eq!(
        store.verify_audit().await.unwrap().first_break.unwrap().seq,
        2
    );
    // New entries go on in format 2 from the old chain's end.
    store.insert_application(&application(None)).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.broken, 0, "{report:?}");
}
