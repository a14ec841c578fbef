//! The PostgreSQL store against a real PostgreSQL: the same semantics as the SQLite
//! store, and what several hub instances on one database need (claims that never
//! overlap, one audit chain that never forks, migrations that may run at once).
//!
//! Each test creates a database of its own (`kopplung_test_<uuid>`) through the database
//! named by `KOPPLUNG_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and drops it at the end, so the tests run in
//! parallel and again. Without a reachable PostgreSQL they fail; they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kopplung_router::audit::{AuditVerifier, GENESIS_HASH, Problem, sha256_hex};
use kopplung_router::store::{
    Attachment, AttachmentContent, EventDocument, IdempotencyKey, Inserted, NewApplication,
    PickupAck, PostgresStore, ReceiptOutcome, ReceiptRecord, Status, Step, Store, WorkItem,
};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
mod common;

use common::{PROCEDURE, application, capacity, checkpoint_head, decided_with_everything, hub_pki};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn admin_url() -> String {
    std::env::var("KOPPLUNG_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

async fn admin_connection(url: &str) -> PgConnection {
    match PgConnection::connect(url).await {
        Ok(connection) => connection,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url}: {e}. These tests need a real PostgreSQL \
             (trust authentication, database `test`); start it (scripts/lib/setup.sh \
             ensure_postgres) or point KOPPLUNG_TEST_POSTGRES_URL at one."
        ),
    }
}

/// A database of one test's own, dropped (with whatever still connects to it) when the
/// test ends, also when it fails.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> Self {
        let admin = admin_url();
        let name = format!("kopplung_test_{}", Uuid::new_v4().simple());
        let mut connection = admin_connection(&admin).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name} on {admin}: {e}"));
        connection.close().await.unwrap();
        let (base, query) = match admin.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin.as_str(), String::new()),
        };
        let server = base
            .rsplit_once('/')
            .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
            .map_or(base, |(server, _)| server);
        let url = format!("{server}/{name}{query}");
        Self { admin, name, url }
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting the store to {}: {e}", self.url))
    }

    /// Runs one statement on the test database with a connection of its own (behind
    /// the store's back); returns the rows it touched.
    async fn execute(&self, sql: &str) -> u64 {
        let mut connection = PgConnection::connect(&self.url).await.unwrap();
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        connection.close().await.unwrap();
        done.rows_affected()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
                connection.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping the test database {}: {e}", self.name);
        }
    }
}

fn for_procedure(procedure: &str, received_at: OffsetDateTime) -> NewApplication {
    let mut new = application(None);
    new.procedure_id = procedure.into();
    new.received_at = received_at;
    new
}

async fn insert(store: &PostgresStore, new: &NewApplication) {
    assert!(matches!(
        store.insert_application(new).await.unwrap(),
        Inserted::Created(_)
    ));
}

/// Claims the entry of `id` (it must be due).
async fn claim_one(store: &PostgresStore, id: Uuid, lease: &str) -> WorkItem {
    let now = OffsetDateTime::now_utc();
    store
        .claim(lease, now, now + Duration::minutes(1), 100, &capacity())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.application_id == id)
        .unwrap_or_else(|| panic!("{id} was not claimed"))
}

/// Takes one application through accepted → prepared → delivered.
async fn deliver(store: &PostgresStore, sealed: &[u8]) -> NewApplication {
    let new = application(None);
    insert(store, &new).await;
    let mut item = claim_one(store, new.id, &Uuid::new_v4().to_string()).await;
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

fn statuses(history: &[kopplung_router::store::HistoryEntry]) -> Vec<&str> {
    history.iter().map(|h| h.status.as_str()).collect()
}

#[tokio::test]
async fn insert_stores_everything_and_idempotency_replays_or_conflicts() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut first = application(Some(("k", "hash-1")));
    first.attachments = vec![Attachment {
        filename: "foto.jpg".into(),
        media_type: "image/jpeg".into(),
        // As intake computes it: the `accepted` entry binds it.
        sha512: hex::encode(openssl::sha::sha512(&[0, 1, 2, 255, 0, 7])),
        size: 6,
        content: AttachmentContent::Inline(vec![0, 1, 2, 255, 0, 7]),
    }];
    let Inserted::Created(accepted) = store.insert_application(&first).await.unwrap() else {
        panic!("created")
    };
    assert_eq!(accepted.id, first.id);
    assert_eq!(accepted.receipt, first.receipt);

    let record = store.application(first.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Accepted);
    assert_eq!(record.receipt, first.receipt);
    assert_eq!(record.client_id, "client");
    assert_eq!(
        record.created_at, first.received_at,
        "times keep every digit"
    );
    assert_eq!(record.delivery.procedure, PROCEDURE);
    assert_eq!(record.delivery.message_id, first.message_id);
    assert_eq!(record.delivery.attempts, 0);
    assert!(record.delivery.next_attempt_at.is_some());
    assert_eq!(statuses(&record.history), ["accepted"]);
    assert_eq!(record.history[0].detail, "accepted from client client");

    let input = store.prepare_input(first.id).await.unwrap();
    assert_eq!(input.payload, first.payload);
    assert_eq!(input.created_at, first.received_at);
    assert_eq!(input.attachments.len(), 1);
    assert_eq!(
        input.attachments[0].content,
        AttachmentContent::Inline(vec![0, 1, 2, 255, 0, 7])
    );
    assert_eq!(input.attachments[0].filename, "foto.jpg");

    assert_eq!(
        store
            .insert_application(&application(Some(("k", "hash-1"))))
            .await
            .unwrap(),
        Inserted::Replayed(accepted.clone())
    );
    assert_eq!(
        store
            .insert_application(&application(Some(("k", "hash-2"))))
            .await
            .unwrap(),
        Inserted::KeyConflict
    );
    let key = |hash: &str| IdempotencyKey {
        key: "k".into(),
        request_sha256: hash.into(),
    };
    assert_eq!(
        store
            .idempotent_answer("client", &key("hash-1"))
            .await
            .unwrap(),
        Some(Inserted::Replayed(accepted))
    );
    assert_eq!(
        store
            .idempotent_answer("client", &key("hash-2"))
            .await
            .unwrap(),
        Some(Inserted::KeyConflict)
    );
    assert_eq!(
        store
            .idempotent_answer("other", &key("hash-1"))
            .await
            .unwrap(),
        None
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
    assert!(store.application(Uuid::new_v4()).await.unwrap().is_none());
    // The failed insert appended nothing to the chain.
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 1);
}

#[tokio::test]
async fn the_same_idempotency_key_at_two_instances_at_once_creates_one() {
    let db = TestDb::new().await;
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .insert_application(&application(Some(("same", "hash"))))
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    let mut replayed = HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            Inserted::Created(accepted) => {
                created += 1;
                replayed.insert(accepted.id);
            }
            Inserted::Replayed(accepted) => {
                replayed.insert(accepted.id);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(replayed.len(), 1, "every answer names the one application");
}

#[tokio::test]
async fn a_taken_over_lease_cannot_record() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let new = application(None);
    insert(&store, &new).await;

    let now = OffsetDateTime::now_utc();
    let first = store
        .claim("a", now, now + Duration::seconds(1), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].step, Step::Prepare);
    assert_eq!(first[0].message_id, new.message_id);
    assert_eq!(first[0].service_key, new.service_key);
    assert_eq!(first[0].message_type, new.message_type);
    assert_eq!(first[0].lease, "a");
    // Leased: nobody else gets it now.
    assert!(
        store
            .claim("b", now, now + Duration::seconds(60), 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    // After the lease ran out, another worker (of any instance) takes it over.
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
    assert!(!store.record_retry(&first[0], later, "by a").await.unwrap());
    assert!(!store.record_wait(&first[0], later, "by a").await.unwrap());
    assert!(
        !store
            .record_failed(&first[0], Status::Invalid, "by a")
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_awaiting_pickup(&first[0], "by a")
            .await
            .unwrap()
    );
    assert!(
        store
            .record_delivered(&deliver, "delivered by b")
            .await
            .unwrap()
    );

    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Delivered);
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "delivered"]
    );
    assert!(record.delivery.delivered_at.is_some());
    assert!(record.delivery.next_attempt_at.is_none());
    assert_eq!(record.delivery.attempts, 1);
    // Done: never claimed again.
    let much_later = now + Duration::hours(1);
    assert!(
        store
            .claim("c", much_later, much_later, 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), None);
    let entries = store.audit_entries(new.id).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[1].message_sha256.as_deref(),
        Some(&*sha256_hex(b"sealed-by-b"))
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn retries_waits_and_failures() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let new = application(None);
    insert(&store, &new).await;
    let now = OffsetDateTime::now_utc();
    let item = store
        .claim("a", now, now + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    // While leased, the next due time is the lease's end.
    let next = store.next_due().await.unwrap().unwrap();
    assert!((next - (now + Duration::minutes(2))).abs() < Duration::milliseconds(2));
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
    assert_eq!(
        statuses(&record.history),
        ["accepted"],
        "a retry is no state change"
    );
    let again = store
        .claim("b", due, due + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);

    // A wait is no attempt.
    let later = due + Duration::seconds(30);
    assert!(
        store
            .record_wait(&again[0], later, "destination unreachable")
            .await
            .unwrap()
    );
    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.delivery.attempts, 1);
    assert_eq!(
        record.delivery.last_error.as_deref(),
        Some("destination unreachable")
    );
    let item = store
        .claim("c", later, later + Duration::minutes(2), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .record_failed(&item, Status::Invalid, "fields beschreibung")
            .await
            .unwrap()
    );
    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Invalid);
    assert_eq!(record.delivery.attempts, 1, "invalid is no attempt");
    assert_eq!(statuses(&record.history), ["accepted", "invalid"]);
    let entries = store.audit_entries(new.id).await.unwrap();
    assert_eq!(entries[1].detail, "fields beschreibung");
    assert_eq!(entries[1].message_sha256, None);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn capacity_limits_each_procedure_and_limit_the_whole_claim() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let start = OffsetDateTime::now_utc() - Duration::minutes(10);
    let mut order = Vec::new();
    // Interleaved due times: a0 b0 c0 a1 b1 c1 ...
    for i in 0..5 {
        for procedure in ["proc-a", "proc-b", "proc-c", "proc-d"] {
            if procedure == "proc-b" && i >= 3 {
                continue;
            }
            let new = for_procedure(procedure, start + Duration::seconds(order.len() as i64));
            insert(&store, &new).await;
            order.push((procedure, new.id));
        }
    }
    let capacity: BTreeMap<String, u32> = [
        ("proc-a".to_string(), 2),
        ("proc-b".to_string(), 5),
        ("proc-d".to_string(), 0),
    ]
    .into();
    let now = OffsetDateTime::now_utc();
    let claimed = store
        .claim("one", now, now + Duration::minutes(1), 100, &capacity)
        .await
        .unwrap();
    let mut per: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for item in &claimed {
        per.entry(item.procedure_id.as_str())
            .or_default()
            .push(item.application_id);
    }
    // proc-c is not in the map: 1; proc-d has no room left; proc-b has fewer than its room.
    assert_eq!(per.get("proc-a").map(Vec::len), Some(2));
    assert_eq!(per.get("proc-b").map(Vec::len), Some(3));
    assert_eq!(per.get("proc-c").map(Vec::len), Some(1));
    assert_eq!(per.get("proc-d"), None);
    // The oldest due of each procedure.
    let oldest = |procedure: &str, n: usize| -> HashSet<Uuid> {
        order
            .iter()
            .filter(|(p, _)| *p == procedure)
            .take(n)
            .map(|(_, id)| *id)
            .collect()
    };
    assert_eq!(
        per["proc-a"].iter().copied().collect::<HashSet<_>>(),
        oldest("proc-a", 2)
    );
    assert_eq!(
        per["proc-c"].iter().copied().collect::<HashSet<_>>(),
        oldest("proc-c", 1)
    );

    // `limit` caps the whole claim, oldest due first across procedures.
    let generous: BTreeMap<String, u32> = ["proc-a", "proc-b", "proc-c", "proc-d"]
        .iter()
        .map(|p| (p.to_string(), 100))
        .collect();
    let two = store
        .claim("two", now, now + Duration::minutes(1), 2, &generous)
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    let unclaimed: Vec<Uuid> = order
        .iter()
        .map(|(_, id)| *id)
        .filter(|id| !claimed.iter().any(|c| c.application_id == *id))
        .collect();
    let two_ids: HashSet<Uuid> = two.iter().map(|i| i.application_id).collect();
    assert_eq!(two_ids, unclaimed[..2].iter().copied().collect());
    // The rest, each exactly once.
    let rest = store
        .claim("three", now, now + Duration::minutes(1), 100, &generous)
        .await
        .unwrap();
    assert_eq!(claimed.len() + two.len() + rest.len(), order.len());
    let all: HashSet<Uuid> = claimed
        .iter()
        .chain(&two)
        .chain(&rest)
        .map(|i| i.application_id)
        .collect();
    assert_eq!(all.len(), order.len());
    // Not yet due: not claimed.
    let future = for_procedure("proc-a", now + Duration::hours(1));
    insert(&store, &future).await;
    assert!(
        store
            .claim("four", now, now + Duration::minutes(1), 100, &generous)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn two_instances_claiming_at_once_never_get_the_same_entry() {
    const ENTRIES: usize = 300;
    let db = TestDb::new().await;
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let start = OffsetDateTime::now_utc() - Duration::minutes(1);
    let procedures = ["proc-a", "proc-b", "proc-c", "proc-d", "proc-e"];
    for i in 0..ENTRIES {
        let new = for_procedure(
            procedures[i % procedures.len()],
            start + Duration::milliseconds(i as i64),
        );
        insert(&a, &new).await;
    }
    let capacity: Arc<BTreeMap<String, u32>> =
        Arc::new(procedures.iter().map(|p| (p.to_string(), 4)).collect());
    let mut workers = Vec::new();
    for worker in 0..8 {
        let store = if worker % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let capacity = capacity.clone();
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut idle = 0;
            let mut claims = 0;
            while idle < 20 {
                let now = OffsetDateTime::now_utc();
                let lease = format!("worker-{worker}-claim-{claims}");
                claims += 1;
                let items = store
                    .claim(&lease, now, now + Duration::minutes(10), 7, &capacity)
                    .await
                    .unwrap();
                if items.is_empty() {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                } else {
                    idle = 0;
                    for item in &items {
                        assert_eq!(item.lease, lease);
                    }
                    got.extend(items.into_iter().map(|i| (i.application_id, i.lease)));
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for worker in workers {
        let got = worker.await.unwrap();
        per_worker.push(got.len());
        all.extend(got);
    }
    let distinct: HashSet<Uuid> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an entry was claimed twice ({per_worker:?})"
    );
    assert_eq!(
        distinct.len(),
        ENTRIES,
        "every entry was claimed ({per_worker:?})"
    );
    // The leases stored are the ones handed out.
    let mut connection = PgConnection::connect(&db.url).await.unwrap();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT application_id, lease_owner FROM deliveries")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    connection.close().await.unwrap();
    let handed_out: BTreeMap<String, String> = all
        .into_iter()
        .map(|(id, lease)| (id.to_string(), lease))
        .collect();
    assert_eq!(stored.into_iter().collect::<BTreeMap<_, _>>(), handed_out);
}

#[tokio::test]
async fn a_message_waits_for_pickup_until_acknowledged() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let other = db.store().await;
    let new = application(None);
    insert(&store, &new).await;
    let item = claim_one(&store, new.id, "lease").await;
    let sealed = b"sealed for pickup".as_slice();
    assert!(
        store
            .record_prepared(&item, sealed, "prepared")
            .await
            .unwrap()
    );
    assert!(
        store
            .record_awaiting_pickup(&item, "message waits for pickup by dresden-maengel")
            .await
            .unwrap()
    );
    // Waiting for pickup: not work for the outbox.
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    assert!(
        store
            .claim("again", later, later, 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), None);

    let waiting = store.pickups(PROCEDURE, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    let pickup = &waiting[0];
    assert_eq!(pickup.message_id, new.message_id);
    assert_eq!(pickup.application_id, new.id);
    assert_eq!(pickup.receipt, new.receipt);
    assert_eq!(pickup.service, new.service_key);
    assert_eq!(pickup.message_type, new.message_type);
    assert_eq!(pickup.size, sealed.len() as u64);
    assert_eq!(pickup.sha256, sha256_hex(sealed));
    assert!(
        store
            .pickups("another-procedure", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.pickups(PROCEDURE, 0).await.unwrap().is_empty());
    let backlog = store.backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].pending, 1);

    let (one, bytes) = other
        .pickup(PROCEDURE, new.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, sealed);
    assert_eq!(one.sha256, pickup.sha256);
    assert_eq!(one.size, pickup.size);
    assert_eq!(one.available_since, pickup.available_since);
    assert!(
        store
            .pickup("another-procedure", new.message_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .pickup(PROCEDURE, Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        store
            .acknowledge_pickup("another-procedure", new.message_id, "x")
            .await
            .unwrap(),
        PickupAck::Unknown
    );
    assert_eq!(
        store
            .acknowledge_pickup(PROCEDURE, Uuid::new_v4(), "x")
            .await
            .unwrap(),
        PickupAck::Unknown
    );
    assert_eq!(
        store
            .acknowledge_pickup(PROCEDURE, new.message_id, "collected by dresden-maengel")
            .await
            .unwrap(),
        PickupAck::Acknowledged
    );
    assert_eq!(
        other
            .acknowledge_pickup(PROCEDURE, new.message_id, "collected again")
            .await
            .unwrap(),
        PickupAck::AlreadyAcknowledged
    );
    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Delivered);
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "prepared", "delivered"]
    );
    assert!(record.delivery.delivered_at.is_some());
    assert!(store.pickups(PROCEDURE, 10).await.unwrap().is_empty());
    // Still there to fetch once collected.
    assert!(
        store
            .pickup(PROCEDURE, new.message_id)
            .await
            .unwrap()
            .is_some()
    );
    let entries = store.audit_entries(new.id).await.unwrap();
    assert_eq!(
        entries[3].message_sha256.as_deref(),
        Some(&*sha256_hex(sealed))
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn two_instances_acknowledging_at_once_deliver_once() {
    let db = TestDb::new().await;
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let new = application(None);
    insert(&a, &new).await;
    let item = claim_one(&a, new.id, "lease").await;
    assert!(
        a.record_prepared(&item, b"sealed", "prepared")
            .await
            .unwrap()
    );
    assert!(a.record_awaiting_pickup(&item, "waits").await.unwrap());
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let message_id = new.message_id;
            tokio::spawn(async move {
                store
                    .acknowledge_pickup(PROCEDURE, message_id, "collected")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut acks = Vec::new();
    for task in tasks {
        acks.push(task.await.unwrap());
    }
    assert_eq!(
        acks.iter()
            .filter(|a| **a == PickupAck::Acknowledged)
            .count(),
        1,
        "{acks:?}"
    );
    assert_eq!(
        acks.iter()
            .filter(|a| **a == PickupAck::AlreadyAcknowledged)
            .count(),
        5,
        "{acks:?}"
    );
    let record = a.application(new.id).await.unwrap().unwrap();
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "prepared", "delivered"]
    );
}

fn receipt_for(new: &NewApplication, id: &str, status: Status) -> ReceiptRecord {
    ReceiptRecord {
        receipt_id: id.into(),
        procedure_id: new.procedure_id.clone(),
        message_id: new.message_id,
        application_id: new.id,
        status,
        message: None,
        document: None,
        problems: vec![],
        issued_at: "2026-11-30T10:00:00Z".into(),
        signed: format!("signed {id}").into_bytes(),
        content_sha256: format!("content {id}"),
    }
}

#[tokio::test]
async fn a_receipt_that_overtakes_the_delivered_commit_records_both() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let new = application(None);
    insert(&store, &new).await;
    let mut item = claim_one(&store, new.id, "a").await;
    // Not yet sent: a receipt for it does not follow.
    assert_eq!(
        store
            .record_receipt(&receipt_for(&new, "r-0", Status::Received))
            .await
            .unwrap(),
        ReceiptOutcome::OutOfOrder(Status::Accepted)
    );
    assert!(
        store
            .record_prepared(&item, b"sealed", "prepared")
            .await
            .unwrap()
    );
    item.step = Step::Deliver;
    // The broker confirmed, the procedure answered at once; our commit is still to come.
    let receipt = receipt_for(&new, "r-1", Status::Received);
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
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "delivered", "received"]
    );
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
    let entries = store.audit_entries(new.id).await.unwrap();
    assert_eq!(
        entries[3].message_sha256.as_deref(),
        Some(&*sha256_hex(&receipt.signed)),
        "the trail names the signed receipt"
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, 0);
}

#[tokio::test]
async fn receipts_and_events_follow_the_states() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let new = deliver(&store, b"sealed").await;

    // Unknown: another message, another procedure, another application.
    let mut unknown = receipt_for(&new, "u-1", Status::Received);
    unknown.message_id = Uuid::new_v4();
    assert_eq!(
        store.record_receipt(&unknown).await.unwrap(),
        ReceiptOutcome::UnknownMessage
    );
    let mut unknown = receipt_for(&new, "u-2", Status::Received);
    unknown.procedure_id = "another-procedure".into();
    assert_eq!(
        store.record_receipt(&unknown).await.unwrap(),
        ReceiptOutcome::UnknownMessage
    );
    let mut unknown = receipt_for(&new, "u-3", Status::Received);
    unknown.application_id = Uuid::new_v4();
    assert_eq!(
        store.record_receipt(&unknown).await.unwrap(),
        ReceiptOutcome::UnknownMessage
    );
    // A decision before the receipt is out of order.
    assert_eq!(
        store
            .record_receipt(&receipt_for(&new, "d-0", Status::Decided))
            .await
            .unwrap(),
        ReceiptOutcome::OutOfOrder(Status::Delivered)
    );
    assert_eq!(
        store
            .record_receipt(&receipt_for(&new, "r-1", Status::Received))
            .await
            .unwrap(),
        ReceiptOutcome::Applied(Status::Received)
    );
    let mut query = receipt_for(&new, "q-1", Status::Query);
    query.message = Some("Bitte senden Sie ein Foto.".into());
    assert_eq!(
        store.record_receipt(&query).await.unwrap(),
        ReceiptOutcome::Applied(Status::Query)
    );
    let mut decision = receipt_for(&new, "d-1", Status::Decided);
    decision.message = Some("Der Mangel wird behoben.".into());
    decision.document = Some(EventDocument {
        filename: "bescheid.pdf".into(),
        media_type: "application/pdf".into(),
        content: b"%PDF-1.7 bescheid".to_vec(),
    });
    assert_eq!(
        store.record_receipt(&decision).await.unwrap(),
        ReceiptOutcome::Applied(Status::Decided)
    );
    assert_eq!(
        store
            .record_receipt(&receipt_for(&new, "r-9", Status::Rejected))
            .await
            .unwrap(),
        ReceiptOutcome::AlreadyFinal
    );

    let record = store.application(new.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Decided);
    assert_eq!(
        statuses(&record.history),
        [
            "accepted",
            "prepared",
            "delivered",
            "received",
            "query",
            "decided"
        ]
    );
    let (mailbox, documents) = store.mailbox(new.id).await.unwrap();
    let kinds: Vec<&str> = mailbox.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["query", "decided"]);
    assert_eq!(mailbox[0].text, "Bitte senden Sie ein Foto.");
    assert_eq!(mailbox[0].document_id, None);
    assert_eq!(documents.len(), 1);
    assert_eq!(mailbox[1].document_id, Some(documents[0].id));
    assert_eq!(documents[0].filename, "bescheid.pdf");
    assert_eq!(documents[0].size, 17);
    assert_eq!(
        documents[0].sha512,
        hex::encode(openssl::sha::sha512(b"%PDF-1.7 bescheid"))
    );
    let (info, content) = store
        .document(new.id, documents[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.id, documents[0].id);
    assert_eq!(content, b"%PDF-1.7 bescheid");
    assert!(
        store
            .document(Uuid::new_v4(), documents[0].id)
            .await
            .unwrap()
            .is_none()
    );
    // The history names the document by id and hash only; no mailbox text in the trail.
    let entries = store.audit_entries(new.id).await.unwrap();
    assert!(entries[5].detail.contains(&documents[0].id.to_string()));
    for entry in &entries {
        assert!(!entry.detail.contains("Mangel") && !entry.detail.contains("Foto"));
    }
    let (mailbox, documents) = store.mailbox(Uuid::new_v4()).await.unwrap();
    assert!(mailbox.is_empty() && documents.is_empty());

    // A rejection with its problems, on another application.
    let other = deliver(&store, b"other").await;
    let mut rejection = receipt_for(&other, "x-1", Status::Rejected);
    rejection.problems = vec!["urn:problem:schema: Schema verletzt".into()];
    assert_eq!(
        store.record_receipt(&rejection).await.unwrap(),
        ReceiptOutcome::Applied(Status::Rejected)
    );
    let record = store.application(other.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Rejected);
    assert!(
        record.history[3]
            .detail
            .ends_with(": urn:problem:schema: Schema verletzt")
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_with_their_message_id() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sealed_one = application(None);
    insert(&store, &sealed_one).await;
    let item = claim_one(&store, sealed_one.id, "a").await;
    assert!(
        store
            .record_prepared(&item, b"sealed", "prepared")
            .await
            .unwrap()
    );
    assert!(
        store
            .record_failed(&item, Status::DeadLettered, "gave up after 3 attempts")
            .await
            .unwrap()
    );
    let never_sealed = application(None);
    insert(&store, &never_sealed).await;
    let item = claim_one(&store, never_sealed.id, "b").await;
    assert!(
        store
            .record_failed(&item, Status::DeadLettered, "no mapping")
            .await
            .unwrap()
    );

    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].application_id, sealed_one.id, "oldest first");
    assert_eq!(dead[0].receipt, sealed_one.receipt);
    assert_eq!(dead[0].service, sealed_one.service_key);
    assert_eq!(dead[0].procedure, PROCEDURE);
    assert_eq!(dead[0].message_id, sealed_one.message_id);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].reason, "gave up after 3 attempts");
    assert_eq!(dead[1].application_id, never_sealed.id);
    assert!(dead[0].since <= dead[1].since);
    assert!(store.backlog().await.unwrap().is_empty(), "no pending work");
    assert_eq!(
        store
            .application(sealed_one.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::DeadLettered
    );

    assert!(store.replay(sealed_one.id, "admin").await.unwrap());
    assert!(!store.replay(sealed_one.id, "admin").await.unwrap());
    assert!(!store.replay(Uuid::new_v4(), "admin").await.unwrap());
    assert!(store.replay(never_sealed.id, "admin").await.unwrap());
    assert!(store.dead_letters().await.unwrap().is_empty());

    let record = store.application(sealed_one.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Prepared);
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "dead_lettered", "prepared"]
    );
    assert!(
        record.history[3]
            .detail
            .contains(&sealed_one.message_id.to_string())
    );
    assert_eq!(
        store
            .application(never_sealed.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Accepted
    );
    let backlog = store.backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].procedure, PROCEDURE);
    assert_eq!(backlog[0].pending, 2);
    assert_eq!(backlog[0].oldest_since, Some(sealed_one.received_at));

    let now = OffsetDateTime::now_utc();
    let items = store
        .claim("c", now, now + Duration::minutes(1), 10, &capacity())
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let again = items
        .iter()
        .find(|i| i.application_id == sealed_one.id)
        .unwrap();
    assert_eq!(again.step, Step::Deliver);
    assert_eq!(again.attempts, 0, "attempts counted afresh");
    assert_eq!(again.message_id, sealed_one.message_id);
    assert_eq!(store.sealed_message(again).await.unwrap(), b"sealed");
    let fresh = items
        .iter()
        .find(|i| i.application_id == never_sealed.id)
        .unwrap();
    assert_eq!(fresh.step, Step::Prepare);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

#[tokio::test]
async fn leases_survive_a_restart_and_expire_for_takeover() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let new = application(None);
    insert(&store, &new).await;
    let now = OffsetDateTime::now_utc();
    let item = store
        .claim("live", now, now + Duration::minutes(5), 10, &capacity())
        .await
        .unwrap()
        .remove(0);
    // Another instance starting up releases nothing: the lease may be live.
    let restarted = db.store().await;
    assert_eq!(restarted.release_stale_leases().await.unwrap(), 0);
    assert!(
        restarted
            .claim("other", now, now + Duration::minutes(5), 10, &capacity())
            .await
            .unwrap()
            .is_empty()
    );
    // Once it has run out, it is taken over.
    let later = now + Duration::minutes(6);
    let taken = restarted
        .claim(
            "other",
            later,
            later + Duration::minutes(5),
            10,
            &capacity(),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        !store
            .record_prepared(&item, b"old", "prepared")
            .await
            .unwrap()
    );
    assert!(
        restarted
            .record_prepared(&taken[0], b"new", "prepared")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn instances_connecting_at_once_to_a_fresh_database_all_migrate() {
    let db = TestDb::new().await;
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
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
    let mut connection = PgConnection::connect(&db.url).await.unwrap();
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
    let again = db.store().await;
    assert_eq!(again.verify_audit().await.unwrap().checked, 4);
}

#[tokio::test]
async fn the_audit_chain_does_not_fork_under_two_instances_writing_at_once() {
    const PER_TASK: usize = 12;
    let db = TestDb::new().await;
    let a = Arc::new(db.store().await);
    let b = Arc::new(db.store().await);
    let mut tasks = Vec::new();
    for task in 0..6 {
        let store = if task % 2 == 0 { a.clone() } else { b.clone() };
        // Each task its own procedure, and no room for the others' in its claims.
        let procedure = format!("proc-{task}");
        let mut room: BTreeMap<String, u32> = (0..6).map(|t| (format!("proc-{t}"), 0)).collect();
        room.insert(procedure.clone(), 10);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_TASK {
                let now = OffsetDateTime::now_utc();
                let new = for_procedure(&procedure, now);
                insert(&store, &new).await;
                let mut item = store
                    .claim(
                        &format!("t{task}-{i}"),
                        now,
                        now + Duration::minutes(1),
                        10,
                        &room,
                    )
                    .await
                    .unwrap()
                    .remove(0);
                assert_eq!(item.application_id, new.id);
                let sealed = format!("sealed {task} {i}");
                assert!(
                    store
                        .record_prepared(&item, sealed.as_bytes(), "prepared")
                        .await
                        .unwrap()
                );
                item.step = Step::Deliver;
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
            assert!(seqs.insert(entry.seq), "seq {} issued twice", entry.seq);
            assert!(!entry.detail.contains("Schlagloch") && !entry.detail.contains("Jörg"));
        }
        // History and trail tell the same story at the same times.
        let record = a.application(*id).await.unwrap().unwrap();
        for (history, entry) in record.history.iter().zip(&entries) {
            assert_eq!(history.status, entry.status);
            assert_eq!(history.detail, entry.detail);
            assert_eq!(
                history.at,
                OffsetDateTime::parse(&entry.at, &time::format_description::well_known::Rfc3339)
                    .unwrap()
            );
        }
    }
    let expected: HashSet<i64> = (1..=(6 * PER_TASK * 3) as i64).collect();
    assert_eq!(seqs, expected);
}

#[tokio::test]
async fn the_chain_runs_across_applications_and_tampering_is_named_by_its_seq() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sealed = b"sealed message bytes".as_slice();
    let first = deliver(&store, sealed).await;
    let second = deliver(&store, b"another sealed message").await;
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 6);

    let entries = store.audit_entries(first.id).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert_eq!(entries[0].message_sha256, None);
    assert_eq!(
        entries[1].message_sha256.as_deref(),
        Some(&*sha256_hex(sealed))
    );
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

    // One flipped byte in the detail of seq 5.
    assert_eq!(
        db.execute("UPDATE audit_log SET detail = 'n' || substr(detail, 2) WHERE seq = 5")
            .await,
        1
    );
    let report = store.verify_audit().await.unwrap();
    let first_break = report.first_break.unwrap();
    assert_eq!(first_break.seq, 5);
    assert!(
        matches!(first_break.problem, Problem::HashMismatch { .. }),
        "{first_break}"
    );
    assert_eq!(report.checked, 6);
    assert_eq!(report.broken, 1);
}

#[tokio::test]
async fn removed_entries_are_noticed() {
    let db = TestDb::new().await;
    let store = db.store().await;
    deliver(&store, b"one").await;
    deliver(&store, b"two").await;
    assert_eq!(db.execute("DELETE FROM audit_log WHERE seq = 2").await, 1);
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Gap { expected: 2 });

    // From the end: the next entry does not hide the removal.
    let db = TestDb::new().await;
    let store = db.store().await;
    deliver(&store, b"one").await;
    assert_eq!(db.execute("DELETE FROM audit_log WHERE seq = 3").await, 1);
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert_eq!(first.problem, Problem::Truncated { highest_issued: 3 });
    insert(&store, &application(None)).await;
    let first = store.verify_audit().await.unwrap().first_break.unwrap();
    assert_eq!(first.seq, 4);
    assert_eq!(first.problem, Problem::Gap { expected: 3 });
}

#[tokio::test]
async fn retention_deletes_personal_data_after_the_final_state() {
    let db = TestDb::new().await;
    let store = db.store().await;
    common::retention_deletes_personal_data_after_the_final_state(&store).await;
}

#[tokio::test]
async fn uploads_are_bound_once_and_read_in_fragments() {
    let db = TestDb::new().await;
    let store = db.store().await;
    common::uploads_are_bound_once_and_read_in_fragments(&store).await;
}

#[tokio::test]
async fn an_intact_trail_is_checked_for_content_and_checkpoints() {
    let db = TestDb::new().await;
    common::an_intact_trail_is_checked_for_content_and_checkpoints(&db.store().await).await;
}

#[tokio::test]
async fn content_changed_behind_the_stores_back_is_named_by_its_entry() {
    for case in common::content_tamper_cases("'\\x00'::bytea") {
        let db = TestDb::new().await;
        let store = db.store().await;
        let (new, upload) = decided_with_everything(&store).await;
        assert!(store.verify_audit().await.unwrap().is_intact());
        assert_eq!(db.execute(&case.fill(&case.sql, &new, upload)).await, 1);
        case.expect_named(&store, &new, upload).await;
    }
}

#[tokio::test]
async fn a_tail_removed_with_its_sequence_is_named_by_a_checkpoint() {
    let db = TestDb::new().await;
    let store = db.store().await;
    decided_with_everything(&store).await;
    let (_pki, sealer, trust) = hub_pki();
    let checkpoint = checkpoint_head(&store, &sealer).await;
    assert_eq!(checkpoint.seq, 5);
    assert_eq!(db.execute("DELETE FROM audit_log WHERE seq > 3").await, 2);
    assert_eq!(db.execute("UPDATE audit_issued SET seq = 3").await, 1);
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
}
