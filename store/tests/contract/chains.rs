//! PostgreSQL only: the audit trail in one chain per instance, instances committing
//! concurrently, and what ties the chains together (checkpoints naming every head).

use crate::backend::{Backend, Kind};
use crate::support::*;
use kopplung_core::audit::{ChainHead, GLOBAL_CHAIN};

/// Takes `n` applications of its own procedure through accepted → prepared → delivered
/// on `store`; the claims leave the other procedures (`all`) alone, so that tasks on
/// several instances never take each other's work.
async fn deliver_many(
    store: Arc<dyn Store>,
    procedure: String,
    all: Vec<String>,
    n: usize,
) -> Vec<Uuid> {
    let mut room: BTreeMap<String, u32> = all.into_iter().map(|p| (p, 0)).collect();
    room.insert(procedure.clone(), 10);
    let mut ids = Vec::new();
    for i in 0..n {
        let now = OffsetDateTime::now_utc();
        let new = for_procedure(&procedure, now);
        insert(&*store, &new).await;
        let claimed = store
            .claim(&claim_at(&format!("{procedure}-{i}"), now, 10, &room))
            .await
            .unwrap();
        let item = claimed
            .into_iter()
            .find(|item| item.application_id == new.id)
            .unwrap();
        let item = prepare(&*store, &item, format!("sealed {procedure} {i}").as_bytes()).await;
        assert!(store.record_delivered(&item, "delivered").await.unwrap());
        ids.push(new.id);
    }
    ids
}

/// Runs [`deliver_many`] on each store at once, `tasks` tasks per store.
async fn deliver_at_once(stores: &[Arc<dyn Store>], tasks: usize, n: usize) {
    let procedure = |s: usize, t: usize| format!("proc-{s}-{t}");
    let all: Vec<String> = (0..stores.len())
        .flat_map(|s| (0..tasks).map(move |t| procedure(s, t)))
        .collect();
    let mut running = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..tasks {
            running.push(tokio::spawn(deliver_many(
                store.clone(),
                procedure(s, t),
                all.clone(),
                n,
            )));
        }
    }
    for task in running {
        task.await.unwrap();
    }
}

/// A PostgreSQL database, and two hub instances on it with the instance ids `ids`.
async fn postgres_pair(ids: [&str; 2]) -> (Backend, [Arc<dyn Store>; 2]) {
    let backend = Backend::open(Kind::Postgres).await;
    let a = backend.postgres_instance(ids[0]).await as Arc<dyn Store>;
    let b = backend.postgres_instance(ids[1]).await as Arc<dyn Store>;
    (backend, [a, b])
}

async fn verify(
    store: &dyn Store,
    trust: Option<kopplung_core::audit::CheckpointTrust>,
) -> AuditReport {
    store
        .verify_audit_with(AuditVerifier::new(trust))
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_two_instances_append_at_once_each_to_its_chain_and_a_checkpoint_names_both() {
    const PER_TASK: usize = 6;
    let (backend, [a, b]) = postgres_pair(["kopplung-a", "kopplung-b"]).await;
    deliver_at_once(&[a.clone(), b.clone()], 3, PER_TASK).await;
    let per_chain = (3 * PER_TASK * 3) as i64;

    let report = verify(&*a, None).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 2 * per_chain as u64);
    // Each instance's entries in its chains (its lanes: `kopplung-a`, `kopplung-a/1`,
    // …), the first always used.
    let heads = b.audit_heads().await.unwrap();
    for instance in ["kopplung-a", "kopplung-b"] {
        let of: Vec<&ChainHead> = heads
            .iter()
            .filter(|h| lane_of(&h.chain, instance))
            .collect();
        assert_eq!(of[0].chain, instance, "{heads:?}");
        assert_eq!(
            of.iter().map(|h| h.seq).sum::<i64>(),
            per_chain,
            "{heads:?}"
        );
    }
    assert!(
        heads
            .iter()
            .all(|h| lane_of(&h.chain, "kopplung-a") || lane_of(&h.chain, "kopplung-b"))
    );

    // One checkpoint names all heads, and holds.
    let (_pki, sealer, trust) = hub_pki();
    let checkpoint = checkpoint_head(&*a, &sealer).await;
    assert_eq!(checkpoint.heads, heads);
    assert!(
        checkpoint
            .statement()
            .starts_with("kopplung-audit-checkpoint-v2\n")
    );
    assert_eq!(
        b.audit_checkpoints().await.unwrap(),
        vec![checkpoint.clone()]
    );
    let report = verify(&*b, Some(trust)).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checkpoints.stored, 1);
    assert_eq!(report.checkpoints.signatures_unchecked, 0);

    // The last entry of one of b's chains removed: what was issued in the chain tells.
    let last_b = heads
        .iter()
        .rfind(|h| lane_of(&h.chain, "kopplung-b"))
        .unwrap()
        .clone();
    let (chain_b, seq_b) = (last_b.chain.as_str(), last_b.seq);
    backend
        .tamper(&format!(
            "DELETE FROM audit_log WHERE chain = '{chain_b}' AND seq = {seq_b}"
        ))
        .await;
    let first = verify(&*a, None).await.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), (chain_b, seq_b));
    assert_eq!(
        first.problem,
        Problem::Truncated {
            highest_issued: seq_b
        }
    );
    // … and with what was issued rewritten too, the checkpoint does.
    backend
        .tamper(&format!(
            "UPDATE audit_chains SET seq = {} WHERE chain = '{chain_b}'",
            seq_b - 1
        ))
        .await;
    let report = verify(&*a, None).await;
    assert_eq!(report.broken, 0, "the chains alone look intact");
    let first = report.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), (chain_b, seq_b));
    assert!(
        first.to_string().starts_with(&format!(
            "seq {seq_b} of chain {chain_b} named by the checkpoint of"
        )),
        "{first}"
    );

    // Instance a's chains removed whole, with their rows: the checkpoint names them;
    // the stored checkpoints removed as well, a copy held outside still does.
    backend
        .execute(
            "DELETE FROM audit_log WHERE chain = 'kopplung-a' OR chain LIKE 'kopplung-a/%';
             DELETE FROM audit_chains WHERE chain = 'kopplung-a' OR chain LIKE 'kopplung-a/%'",
        )
        .await;
    let first = verify(&*b, None).await.first_break.unwrap();
    let seq_a = heads[0].seq;
    assert_eq!(heads[0].chain, "kopplung-a");
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-a", seq_a));
    assert_eq!(
        first.to_string(),
        format!(
            "seq {seq_a} of chain kopplung-a named by the checkpoint of {} is missing (the chain ends at seq 0)",
            checkpoint.at
        )
    );
    backend.tamper("DELETE FROM audit_checkpoints").await;
    assert!(verify(&*b, None).await.is_intact());
    let mut outside = AuditVerifier::new(None);
    outside.hold_outside(vec![checkpoint], "saved.json");
    let report = b.verify_audit_with(outside).await.unwrap();
    let first = report.first_break.unwrap();
    assert_eq!(first.chain, "kopplung-a");
    assert!(
        first.to_string().contains("(from saved.json) is missing"),
        "{first}"
    );
}

/// Whether `chain` is one of `instance`'s (its id, or `<id>/<lane>`).
fn lane_of(chain: &str, instance: &str) -> bool {
    chain == instance
        || chain
            .strip_prefix(instance)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|lane| lane.parse::<u32>().is_ok())
}

#[tokio::test]
async fn postgres_an_entry_moved_to_another_chain_or_chains_swapped_break_the_links() {
    let (backend, [a, b]) = postgres_pair(["kopplung-a", "kopplung-b"]).await;
    deliver_at_once(&[a.clone(), b.clone()], 1, 2).await;
    let (_pki, sealer, trust) = hub_pki();
    checkpoint_head(&*a, &sealer).await;
    assert!(verify(&*a, Some(trust)).await.is_intact());
    // The two chains' names swapped: each chain is intact on its own, the checkpoint is
    // not.
    backend
        .execute(
            "UPDATE audit_log SET chain = 'x' WHERE chain = 'kopplung-a';
             UPDATE audit_log SET chain = 'kopplung-a' WHERE chain = 'kopplung-b';
             UPDATE audit_log SET chain = 'kopplung-b' WHERE chain = 'x'",
        )
        .await;
    let report = verify(&*a, None).await;
    assert_eq!(report.broken, 0);
    assert!(matches!(
        report.first_break.unwrap().problem,
        Problem::CheckpointMismatch { .. }
    ),);
    // An entry moved from one chain into the other (at a free seq): a broken link.
    let moved = backend
        .execute("UPDATE audit_log SET chain = 'kopplung-b', seq = 7 WHERE chain = 'kopplung-a' AND seq = 6")
        .await;
    assert_eq!(moved, 1);
    let report = verify(&*a, None).await;
    assert!(report.broken >= 1, "{report:?}");
}

#[tokio::test]
async fn postgres_two_processes_with_one_instance_id_do_not_fork_its_chain() {
    // A misconfiguration (a copied data directory): both append to the same chain.
    const PER_TASK: usize = 6;
    let (_backend, [one, two]) = postgres_pair(["kopplung-twin", "kopplung-twin"]).await;
    deliver_at_once(&[one.clone(), two.clone()], 2, PER_TASK).await;
    let report = verify(&*one, None).await;
    assert!(report.is_intact(), "{report:?}");
    let total = (2 * 2 * PER_TASK * 3) as i64;
    assert_eq!(report.checked, total as u64);
    let heads = two.audit_heads().await.unwrap();
    assert_eq!(heads, one.audit_heads().await.unwrap());
    assert!(
        heads.iter().all(|h| lane_of(&h.chain, "kopplung-twin")),
        "{heads:?}"
    );
    assert_eq!(heads.iter().map(|h| h.seq).sum::<i64>(), total);
}

#[tokio::test]
async fn postgres_the_same_idempotency_key_at_two_instances_at_once_records_one_application() {
    let (backend, instances) = postgres_pair(["kopplung-a", "kopplung-b"]).await;
    for round in 0..10 {
        let (created, ids) = insert_at_once(&instances, &format!("key-{round}"), 4).await;
        assert_eq!(created, 1, "round {round}");
        assert_eq!(
            ids.len(),
            1,
            "round {round}: every answer names the one application"
        );
    }
    // Nothing of the intakes that lost is left: ten applications, ten entries.
    let mut connection = PgConnection::connect(backend.url()).await.unwrap();
    let applications: i64 = sqlx::query_scalar("SELECT count(*) FROM applications")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    assert_eq!(applications, 10);
    let report = instances[0].verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 10);
}

#[tokio::test]
async fn postgres_a_database_of_one_global_chain_stays_verifiable_and_goes_on_in_instance_chains() {
    use kopplung_core::audit::{AuditEntry, Binding, checkpoint};
    let legacy = crate::backend::LegacyDb::migrated_to(10).await;
    // The one chain all instances shared, and a checkpoint of format 1 of its head.
    let app = Uuid::new_v4();
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, status) in ["invalid", "dead_lettered", "invalid"].iter().enumerate() {
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        entries.push(AuditEntry::next_in(
            GLOBAL_CHAIN,
            prev,
            app,
            &format!("2025-01-02T03:04:0{i}Z"),
            status,
            "old",
            Binding::default(),
        ));
    }
    let mut sql = String::new();
    for e in &entries {
        sql.push_str(&format!(
            "INSERT INTO audit_log (seq, application_id, at, status, detail, prev_hash, hash, version)
             VALUES ({}, '{}', '{}', '{}', '{}', '{}', '{}', {});",
            e.seq, e.application_id, e.at, e.status, e.detail, e.prev_hash, e.hash, e.version
        ));
    }
    sql.push_str("UPDATE audit_issued SET seq = 3;");
    let (pki, sealer, trust) = hub_pki();
    let at = checkpoint::checkpoint_time(OffsetDateTime::now_utc());
    let last = &entries[2];
    let signature = kopplung_transformers::laufzettel::sign_detached(
        &sealer,
        checkpoint::statement(3, &last.hash, &at).as_bytes(),
    )
    .unwrap();
    sql.push_str(&format!(
        "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (3, '{}', '{at}', '\\x{}'::bytea);",
        last.hash,
        hex::encode(&signature)
    ));
    assert_eq!(legacy.execute(&sql).await, 5);

    // The new version migrates it: the old chain is the chain `global`, and verifies
    // with its old checkpoint.
    let backend = legacy.open().await;
    let store = &*backend.store;
    let old = store.audit_checkpoints().await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].heads, vec![ChainHead::global(3, last.hash.clone())]);
    let report = verify(store, Some(trust_in(&pki))).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.checked, report.checkpoints.stored), (3, 1));
    assert_eq!(report.checkpoints.signatures_unchecked, 0);
    let stored = store.audit_entries(app).await.unwrap();
    assert_eq!(
        stored, entries,
        "read back as written, in the chain `global`"
    );

    // New entries go to the instance's chain; a checkpoint names both heads.
    let new = deliver(store, b"new").await;
    let appended = store.audit_entries(new.id).await.unwrap();
    assert!(
        appended
            .iter()
            .all(|e| e.chain == crate::backend::MAIN_INSTANCE)
    );
    assert_eq!(appended[0].seq, 1);
    let checkpoint = checkpoint_head(store, &sealer).await;
    let heads: Vec<(&str, i64)> = checkpoint
        .heads
        .iter()
        .map(|h| (h.chain.as_str(), h.seq))
        .collect();
    assert_eq!(heads, [("global", 3), (crate::backend::MAIN_INSTANCE, 3)]);
    let report = verify(store, Some(trust)).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.checked, report.checkpoints.stored), (6, 2));

    // The old chain's tail removed, with what it issued: both checkpoints name it.
    assert_eq!(
        backend
            .execute("DELETE FROM audit_log WHERE chain = 'global' AND seq = 3; UPDATE audit_chains SET seq = 2 WHERE chain = 'global'")
            .await,
        2
    );
    let report = verify(store, None).await;
    assert_eq!(report.broken, 0);
    assert_eq!(report.checkpoints.failed, 2);
    let first = report.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("global", 3));
    assert!(
        first
            .to_string()
            .starts_with("seq 3 named by the checkpoint of"),
        "{first}"
    );
}

/// Trust in the demo PKI in `dir` (again: it is not `Clone`).
fn trust_in(dir: &tempfile::TempDir) -> kopplung_core::audit::CheckpointTrust {
    let pki = kopplung_transformers::pki::PkiLayout::new(dir.path());
    kopplung_core::audit::CheckpointTrust::load(&pki.ca_cert()).unwrap()
}

/// The waits a store hands to its lock-wait observer.
fn observed(store: &PostgresStore) -> Arc<std::sync::Mutex<Vec<std::time::Duration>>> {
    let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = waits.clone();
    store.observe_lock_waits(Box::new(move |wait| sink.lock().unwrap().push(wait)));
    waits
}

#[tokio::test]
async fn postgres_every_state_change_reports_its_wait_for_the_chain() {
    let backend = Backend::open(Kind::Postgres).await;
    let store = backend.postgres_instance("kopplung-a").await;
    let waits = observed(&store);
    deliver(&*store, b"one").await;
    // accepted, prepared, delivered; a retry (no entry) reports nothing.
    assert_eq!(waits.lock().unwrap().len(), 3);
    let (_, item) = claimed(&*store, "lease").await;
    assert!(
        store
            .record_retry(&item, OffsetDateTime::now_utc(), "later")
            .await
            .unwrap()
    );
    assert_eq!(waits.lock().unwrap().len(), 4, "the intake's entry only");
}
