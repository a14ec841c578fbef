//! PostgreSQL only: the audit trail in one chain per instance, instances committing
//! concurrently, and what ties the chains together (checkpoints naming every head).

use crate::backend::{Backend, Kind};
use crate::support::*;
use kopplung_core::audit::ChainHead;

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
    let backend = Backend::open(Kind::Postgres).await;
    let a: Arc<dyn Store> = backend.postgres_instance("kopplung-a").await;
    let b: Arc<dyn Store> = backend.postgres_instance("kopplung-b").await;
    deliver_at_once(&[a.clone(), b.clone()], 3, PER_TASK).await;
    let per_chain = (3 * PER_TASK * 3) as i64;

    let report = verify(&*a, None).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 2 * per_chain as u64);
    let heads = b.audit_heads().await.unwrap();
    let named: Vec<(&str, i64)> = heads.iter().map(|h| (h.chain.as_str(), h.seq)).collect();
    assert_eq!(
        named,
        [("kopplung-a", per_chain), ("kopplung-b", per_chain)]
    );

    // One checkpoint names both heads, and holds.
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

    // The last entry of chain b removed: what was issued in the chain tells.
    backend
        .tamper(&format!(
            "DELETE FROM audit_log WHERE chain = 'kopplung-b' AND seq = {per_chain}"
        ))
        .await;
    let first = verify(&*a, None).await.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-b", per_chain));
    assert_eq!(
        first.problem,
        Problem::Truncated {
            highest_issued: per_chain
        }
    );
    // … and with what was issued rewritten too, the checkpoint does.
    backend
        .tamper(&format!(
            "UPDATE audit_chains SET seq = {} WHERE chain = 'kopplung-b'",
            per_chain - 1
        ))
        .await;
    let report = verify(&*a, None).await;
    assert_eq!(report.broken, 0, "the chains alone look intact");
    let first = report.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-b", per_chain));
    assert!(
        first.to_string().starts_with(&format!(
            "seq {per_chain} of chain kopplung-b named by the checkpoint of"
        )),
        "{first}"
    );

    // Chain a removed whole, with its row: the checkpoint names it; the stored
    // checkpoints removed as well, a copy held outside still does.
    backend
        .execute("DELETE FROM audit_log WHERE chain = 'kopplung-a'; DELETE FROM audit_chains WHERE chain = 'kopplung-a'")
        .await;
    let first = verify(&*b, None).await.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-a", per_chain));
    assert_eq!(
        first.to_string(),
        format!(
            "seq {per_chain} of chain kopplung-a named by the checkpoint of {} is missing (the chain ends at seq 0)",
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

#[tokio::test]
async fn postgres_an_entry_moved_to_another_chain_or_chains_swapped_break_the_links() {
    let backend = Backend::open(Kind::Postgres).await;
    let a: Arc<dyn Store> = backend.postgres_instance("kopplung-a").await;
    let b: Arc<dyn Store> = backend.postgres_instance("kopplung-b").await;
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
    let backend = Backend::open(Kind::Postgres).await;
    let one: Arc<dyn Store> = backend.postgres_instance("kopplung-twin").await;
    let two: Arc<dyn Store> = backend.postgres_instance("kopplung-twin").await;
    deliver_at_once(&[one.clone(), two.clone()], 2, PER_TASK).await;
    let report = verify(&*one, None).await;
    assert!(report.is_intact(), "{report:?}");
    let total = (2 * 2 * PER_TASK * 3) as i64;
    assert_eq!(report.checked, total as u64);
    assert_eq!(
        two.audit_heads().await.unwrap(),
        vec![ChainHead {
            chain: "kopplung-twin".into(),
            seq: total,
            hash: one.audit_heads().await.unwrap()[0].hash.clone(),
        }]
    );
}

#[tokio::test]
async fn postgres_the_same_idempotency_key_at_two_instances_at_once_records_one_application() {
    let backend = Backend::open(Kind::Postgres).await;
    let instances = [
        backend.postgres_instance("kopplung-a").await as Arc<dyn Store>,
        backend.postgres_instance("kopplung-b").await as Arc<dyn Store>,
    ];
    for round in 0..10 {
        let key = format!("key-{round}");
        let mut tasks = Vec::new();
        for i in 0..4 {
            let store = instances[i % 2].clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert_application(&application(Some((&key, "hash"))))
                    .await
                    .unwrap()
            }));
        }
        let mut created = 0;
        let mut ids = HashSet::new();
        for task in tasks {
            match task.await.unwrap() {
                Inserted::Created(accepted) => {
                    created += 1;
                    ids.insert(accepted.id);
                }
                Inserted::Replayed(accepted) => {
                    ids.insert(accepted.id);
                }
                other => panic!("{other:?}"),
            }
        }
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
