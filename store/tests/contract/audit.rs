//! The audit trail: every state change chained, tampering named by its entry, checkpoints.

use crate::backend::{Backend, Kind};
use crate::support::*;

pub(crate) async fn every_state_change_is_chained_with_the_message_hash(backend: Backend) {
    let store = &*backend.store;
    let sealed = b"sealed message bytes".as_slice();
    let first = deliver(store, sealed).await;
    let second = deliver(store, b"another sealed message").await;

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
    let record = stored(store, first.id).await;
    assert_eq!(record.history.len(), entries.len());
    assert_history_is_the_trail(&record.history, &entries);
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

pub(crate) async fn failures_are_audited_too(backend: Backend) {
    let store = &*backend.store;
    let (new, item) = claimed(store, "lease").await;
    // A retry changes no status: no entry.
    let due = OffsetDateTime::now_utc();
    assert!(
        store
            .record_retry(&item, due, "broker unreachable")
            .await
            .unwrap()
    );
    let item = claim_one(store, new.id, "lease-2").await;
    fail(store, &item, Status::Invalid, "fields beschreibung").await;
    let entries = store.audit_entries(new.id).await.unwrap();
    let statuses: Vec<&str> = entries.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["accepted", "invalid"]);
    assert_eq!(entries[1].detail, "fields beschreibung");
    assert_eq!(entries[1].message_sha256, None);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

pub(crate) async fn a_flipped_byte_in_detail_is_named_by_its_seq(backend: Backend) {
    let store = &*backend.store;
    deliver(store, b"one").await;
    deliver(store, b"two").await;
    // seq 5 is the second application's `prepared` entry; flip one byte of its detail.
    backend
        .tamper("UPDATE audit_log SET detail = 'n' || substr(detail, 2) WHERE seq = 5")
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

pub(crate) async fn a_flipped_byte_in_the_message_hash_is_named_by_its_seq(backend: Backend) {
    let store = &*backend.store;
    deliver(store, b"one").await;
    let entries = store.verify_audit().await.unwrap();
    assert!(entries.is_intact());
    // Flip the first hex digit of the delivered entry's message hash.
    backend.tamper("UPDATE audit_log SET message_sha256 =
           (CASE substr(message_sha256, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(message_sha256, 2)
         WHERE seq = 3",
    )
    .await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert!(
        first
            .to_string()
            .starts_with(&format!("{}: hash mismatch", named(&first.chain, 3))),
        "{first}"
    );
}

pub(crate) async fn removed_entries_are_noticed(backend: Backend) {
    let store = &*backend.store;
    deliver(store, b"one").await;
    deliver(store, b"two").await;
    backend.tamper("DELETE FROM audit_log WHERE seq = 2").await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Gap { expected: 2 });

    // From the end: the next entry does not hide the removal.
    let backend = Backend::open(backend.kind).await;
    let store = &*backend.store;
    deliver(store, b"one").await;
    backend.tamper("DELETE FROM audit_log WHERE seq = 3").await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Truncated { highest_issued: 3 });
    store.insert_application(&application(None)).await.unwrap();
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 4);
    assert_eq!(first.problem, Problem::Gap { expected: 3 });
}

pub(crate) async fn content_changed_behind_the_stores_back_is_named_by_its_entry(backend: Backend) {
    for case in content_tamper_cases(backend.x00()) {
        // A fresh store for each.
        let backend = Backend::open(backend.kind).await;
        let store = &*backend.store;
        let (new, upload) = decided_with_everything(store).await;
        assert!(store.verify_audit().await.unwrap().is_intact());
        backend.tamper(&case.fill(&case.sql, &new, upload)).await;
        case.expect_named(store, &new, upload).await;
    }
}

pub(crate) async fn a_tail_removed_with_its_sequence_is_named_by_a_checkpoint(backend: Backend) {
    let store = &*backend.store;
    let (new, _) = decided_with_everything(store).await;
    let (_pki, sealer, trust) = hub_pki();
    let checkpoint = checkpoint_head(store, &sealer).await;
    assert_eq!(checkpoint.heads.len(), 1);
    let chain = checkpoint.heads[0].chain.clone();
    assert_eq!(checkpoint.heads[0].seq, 5);
    // The received and decided entries go, and the sequence forgets them.
    assert_eq!(
        backend.execute("DELETE FROM audit_log WHERE seq > 3").await,
        2
    );
    assert_eq!(backend.forget_issued_after(3).await, 1);
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
            "{} named by the checkpoint of {} is missing (the chain ends at seq 3)",
            named(&chain, 5),
            checkpoint.at
        )
    );

    // Removing the stored checkpoints too hides it from the store alone, not from a
    // checkpoint held outside.
    backend.tamper("DELETE FROM audit_checkpoints").await;
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

pub(crate) async fn entries_of_format_1_still_verify_and_are_counted(backend: Backend) {
    let store = &*backend.store;
    let (new, _) = decided_with_everything(store).await;
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
    assert_eq!(backend.execute(&statements).await, 5);
    // As a hub of the new version starts on the old store.
    let backend = backend.reopen().await;
    let store = &*backend.store;
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
    backend
        .tamper(&format!(
            "UPDATE deliveries SET sealed = {} WHERE application_id = '{}'",
            backend.x00(),
            new.id
        ))
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

/// Content and checkpoints of an intact store, the same for every store: everything is
/// re-hashed and matches, the checkpoint holds, and a retention deletion afterwards is
/// counted, not reported.
pub(crate) async fn an_intact_trail_is_checked_for_content_and_checkpoints(backend: Backend) {
    let store = &*backend.store;
    let (new, _) = decided_with_everything(store).await;
    let (_pki, sealer, trust) = hub_pki();
    assert!(store.audit_checkpoints().await.unwrap().is_empty());
    let checkpoint = checkpoint_head(store, &sealer).await;
    assert_eq!(checkpoint.heads.len(), 1);
    assert_eq!(checkpoint.heads[0].seq, 5);
    assert_eq!(store.audit_checkpoints().await.unwrap(), vec![checkpoint]);
    let entries = store.audit_entries(new.id).await.unwrap();
    assert!(entries.iter().all(|e| e.version == 2));
    assert_eq!(
        entries[0].content_sha256,
        Some(new.stored_form().unwrap().content_sha256)
    );
    assert!(entries[4].content_sha256.is_some(), "the document is bound");
    assert_eq!(entries[1].content_sha256, None);

    let report = store
        .verify_audit_with(AuditVerifier::new(Some(trust)))
        .await
        .unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 5);
    assert_eq!(report.content.checked, 5);
    assert_eq!(report.content.purged, 0);
    assert_eq!(report.checkpoints.stored, 1);
    assert_eq!(report.checkpoints.newest_seq, Some(5));
    assert_eq!(report.checkpoints.signatures_unchecked, 0);

    // Retention deletes the content: the entries before are counted, the deletion's
    // own entry is compared with what is left.
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    assert_eq!(
        store
            .purge_personal_data(&new.service_key, later, 10)
            .await
            .unwrap(),
        1
    );
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.content.purged, 5);
    assert_eq!(report.content.checked, 1);
    assert_eq!(report.checkpoints.signatures_unchecked, 1);
}

// SQLite only: a read-only store beside the hub on the same data directory.
#[tokio::test]
async fn sqlite_a_read_only_store_verifies_beside_the_hub_and_writes_nothing() {
    let backend = Backend::open(Kind::Sqlite).await;
    let store = &*backend.store;
    let new = deliver(store, b"one").await;
    // The hub's store holds the lock; the read-only one does not need it.
    let reader = SqliteStore::open_read_only(backend.dir(), Arc::new(SystemClock))
        .await
        .unwrap();
    let report = reader.verify_audit().await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.checked, 3);
    assert_eq!(reader.audit_entries(new.id).await.unwrap().len(), 3);
    assert!(reader.insert_application(&application(None)).await.is_err());
    // The hub goes on while the reader is open.
    deliver(store, b"two").await;
    assert_eq!(reader.verify_audit().await.unwrap().checked, 6);

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        SqliteStore::open_read_only(empty.path(), Arc::new(SystemClock)).await,
        Err(StoreError::Io(..))
    ));
    assert!(
        !empty.path().join("kopplung.db").exists(),
        "nothing created"
    );
}

// PostgreSQL only: two instances appending, each to its own chain, at once.
#[tokio::test]
async fn postgres_the_audit_chains_do_not_fork_under_two_instances_writing_at_once() {
    const PER_TASK: usize = 12;
    let backend = Backend::open(Kind::Postgres).await;
    let [a, b] = backend.two_instances().await;
    let mut tasks = Vec::new();
    for task in 0..6 {
        let store = [&a, &b][task % 2].clone();
        // Each task its own procedure, and no room for the others' in its claims.
        let procedure = format!("proc-{task}");
        let mut room: BTreeMap<String, u32> = (0..6).map(|t| (format!("proc-{t}"), 0)).collect();
        room.insert(procedure.clone(), 10);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_TASK {
                let now = OffsetDateTime::now_utc();
                let new = for_procedure(&procedure, now);
                insert(&*store, &new).await;
                let lease = format!("t{task}-{i}");
                let item = store
                    .claim(&claim_at(&lease, now, 10, &room))
                    .await
                    .unwrap()
                    .remove(0);
                assert_eq!(item.application_id, new.id);
                let sealed = format!("sealed {task} {i}");
                let item = prepare(&*store, &item, sealed.as_bytes()).await;
                assert!(store.record_delivered(&item, "delivered").await.unwrap());
                ids.push((new.id, sealed));
            }
            ids
        }));
    }
    let mut delivered = Vec::new();
    for task in tasks {
        delivered.extend(task.await.unwrap());
    }
    let report = a.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, (6 * PER_TASK * 3) as u64);
    assert_eq!(b.verify_audit().await.unwrap(), report);

    let mut seqs = HashSet::new();
    let mut chains = BTreeMap::new();
    for (id, sealed) in &delivered {
        let entries = b.audit_entries(*id).await.unwrap();
        let statuses: Vec<&str> = entries.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(statuses, ["accepted", "prepared", "delivered"]);
        assert_eq!(
            entries[2].message_sha256.as_deref(),
            Some(&*sha256_hex(sealed.as_bytes()))
        );
        for entry in &entries {
            assert_eq!(entry.hash, entry.computed_hash());
            // Each instance its own chain: a seq is issued once in its chain.
            assert!(
                seqs.insert((entry.chain.clone(), entry.seq)),
                "seq {} of chain {} issued twice",
                entry.seq,
                entry.chain
            );
            *chains.entry(entry.chain.clone()).or_insert(0i64) += 1;
            assert!(!entry.detail.contains("Schlagloch") && !entry.detail.contains("Jörg"));
        }
        assert_history_is_the_trail(&stored(&*a, *id).await.history, &entries);
    }
    // The instances' chains (each instance has a chain per connection, its lanes),
    // each 1, 2, 3, … without gaps.
    assert!((2..=16).contains(&chains.len()), "{chains:?}");
    let expected: HashSet<(String, i64)> = chains
        .iter()
        .flat_map(|(chain, n)| (1..=*n).map(|seq| (chain.clone(), seq)))
        .collect();
    assert_eq!(seqs, expected);
}

// PostgreSQL only: instances migrating one fresh database at once.
#[tokio::test]
async fn postgres_instances_connecting_at_once_to_a_fresh_database_all_migrate() {
    let backend = Backend::open(Kind::Postgres).await;
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = backend.url().to_owned();
            tokio::spawn(async move { PostgresStore::connect(&url, Arc::new(SystemClock)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(
            connect
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("a concurrent connect failed: {e}")),
        );
    }
    // Migrated once, and usable from every instance.
    let mut connection = PgConnection::connect(backend.url()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    connection.close().await.unwrap();
    // Every migration of store/migrations/postgres, once.
    let mut expected: Vec<i64> = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/migrations/postgres"
    ))
    .unwrap()
    .filter_map(|entry| {
        let name = entry.unwrap().file_name().into_string().unwrap();
        name.split('_').next()?.parse().ok()
    })
    .collect();
    expected.sort_unstable();
    assert_eq!(versions, expected);
    for store in &stores {
        insert(store, &application(None)).await;
    }
    // And once more, on a migrated database.
    let again = backend.instance().await;
    assert_eq!(again.verify_audit().await.unwrap().checked, 4);
}
