//! The outbox: claims under a lease, what a lost lease may no longer record, retries, waits, failures, capacity.

use crate::backend::{Backend, Kind};
use crate::support::*;
use kopplung_core::{Clock, InstanceId};

fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).unwrap()
}

pub(crate) async fn a_taken_over_lease_cannot_record(backend: Backend) {
    let store = &*backend.store;
    let new = application(None);
    insert(store, &new).await;

    let now = OffsetDateTime::now_utc();
    let first = claim_until(store, "a", now, now + Duration::seconds(1)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].step, Step::Prepare);
    assert_eq!(first[0].message_id, new.message_id);
    assert_eq!(first[0].service_key, new.service_key);
    assert_eq!(first[0].message_type, new.message_type);
    assert_eq!(first[0].lease, "a");
    // Leased: nobody else gets it now.
    assert!(
        claim_until(store, "b", now, now + Duration::seconds(60))
            .await
            .is_empty()
    );
    // After the lease ran out, another worker (of any instance) takes it over.
    let later = now + Duration::seconds(2);
    let second = claim_until(store, "b", later, later + Duration::seconds(60)).await;
    assert_eq!(second.len(), 1);

    assert!(
        !store
            .record_prepared(&first[0], b"sealed-by-a", "<nachricht/>", "prepared")
            .await
            .unwrap()
    );
    let deliver = prepare(store, &second[0], b"sealed-by-b").await;
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

    let record = stored_as(
        store,
        new.id,
        Status::Delivered,
        &["accepted", "prepared", "delivered"],
    )
    .await;
    assert!(record.delivery.delivered_at.is_some());
    assert!(record.delivery.next_attempt_at.is_none());
    assert_eq!(record.delivery.attempts, 1);
    // Done: never claimed again.
    let much_later = now + Duration::hours(1);
    assert!(
        claim_until(store, "c", much_later, much_later)
            .await
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

pub(crate) async fn retries_waits_and_failures(backend: Backend) {
    let store = &*backend.store;
    let new = application(None);
    insert(store, &new).await;
    let now = OffsetDateTime::now_utc();
    let item = claim_first(store, "a", now, Duration::minutes(2)).await;
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
        claim_until(store, "b", now, now + Duration::minutes(2))
            .await
            .is_empty()
    );
    let next = store.next_due().await.unwrap().unwrap();
    assert!((next - due).abs() < Duration::milliseconds(2));
    let record = stored(store, new.id).await;
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
    let again = claim_until(store, "b", due, due + Duration::minutes(2)).await;
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
    let record = stored(store, new.id).await;
    assert_eq!(record.delivery.attempts, 1);
    assert_eq!(
        record.delivery.last_error.as_deref(),
        Some("destination unreachable")
    );
    let item = claim_first(store, "c", later, Duration::minutes(2)).await;
    fail(store, &item, Status::Invalid, "fields beschreibung").await;
    let record = stored(store, new.id).await;
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

pub(crate) async fn capacity_limits_each_procedure_and_limit_the_whole_claim(backend: Backend) {
    let store = &*backend.store;
    let start = OffsetDateTime::now_utc() - Duration::minutes(10);
    let mut order = Vec::new();
    // Interleaved due times: a0 b0 c0 a1 b1 c1 ...
    for i in 0..5 {
        for procedure in ["proc-a", "proc-b", "proc-c", "proc-d"] {
            if procedure == "proc-b" && i >= 3 {
                continue;
            }
            let new = for_procedure(procedure, start + Duration::seconds(order.len() as i64));
            insert(store, &new).await;
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
        .claim(&claim_at("one", now, 100, &capacity))
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
        .claim(&claim_at("two", now, 2, &generous))
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
        .claim(&claim_at("three", now, 100, &generous))
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
    insert(store, &future).await;
    assert!(
        store
            .claim(&claim_at("four", now, 100, &generous))
            .await
            .unwrap()
            .is_empty()
    );
}

// PostgreSQL only: claims of two instances at once (`FOR UPDATE SKIP LOCKED`).
#[tokio::test]
async fn postgres_two_instances_claiming_at_once_never_get_the_same_entry() {
    const ENTRIES: usize = 300;
    let backend = Backend::open(Kind::Postgres).await;
    let [a, b] = backend.two_instances().await;
    let start = OffsetDateTime::now_utc() - Duration::minutes(1);
    let procedures = ["proc-a", "proc-b", "proc-c", "proc-d", "proc-e"];
    for i in 0..ENTRIES {
        let new = for_procedure(
            procedures[i % procedures.len()],
            start + Duration::milliseconds(i as i64),
        );
        insert(&*a, &new).await;
    }
    let capacity: Arc<BTreeMap<String, u32>> =
        Arc::new(procedures.iter().map(|p| (p.to_string(), 4)).collect());
    let mut workers = Vec::new();
    for worker in 0..8 {
        let store = [&a, &b][worker % 2].clone();
        let capacity = capacity.clone();
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut idle = 0;
            let mut claims = 0;
            while idle < 20 {
                let now = OffsetDateTime::now_utc();
                let lease = format!("worker-{worker}-claim-{claims}");
                claims += 1;
                let claim = Claim {
                    lease_until: now + Duration::minutes(10),
                    ..claim_at(&lease, now, 7, &capacity)
                };
                let items = store.claim(&claim).await.unwrap();
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
    let mut connection = PgConnection::connect(backend.url()).await.unwrap();
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

// PostgreSQL only: a starting instance keeps the others' leases (SQLite, one process per
// data directory, releases every lease at start-up).
#[tokio::test]
async fn postgres_leases_survive_a_restart_and_expire_for_takeover() {
    let backend = Backend::open(Kind::Postgres).await;
    let store = &*backend.store;
    let new = application(None);
    insert(store, &new).await;
    let now = OffsetDateTime::now_utc();
    let item = claim_first(store, "live", now, Duration::minutes(5)).await;
    // Another instance starting up releases nothing: the lease may be live.
    let restarted = backend.instance().await;
    assert_eq!(
        restarted
            .release_stale_leases(&instance("restarted"))
            .await
            .unwrap(),
        0
    );
    assert!(
        claim_until(&*restarted, "other", now, now + Duration::minutes(5))
            .await
            .is_empty()
    );
    // Once it has run out, it is taken over.
    let later = now + Duration::minutes(6);
    let taken = claim_until(&*restarted, "other", later, later + Duration::minutes(5)).await;
    assert_eq!(taken.len(), 1);
    assert!(
        !store
            .record_prepared(&item, b"old", "<nachricht/>", "prepared")
            .await
            .unwrap()
    );
    prepare(&*restarted, &taken[0], b"new").await;
}

/// A restarting instance returns its own earlier claims to the pool at once, not after
/// their lease: those of its tokens (`<instance>/…`), not those of an instance whose id
/// merely begins like its own. Another instance's stay taken on PostgreSQL (SQLite, one
/// process per data directory, returns every lease). The old claim is fenced.
pub(crate) async fn own_earlier_claims_are_released_at_start(backend: Backend) {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(),
    ));
    let backend = backend.with_clock(clock.clone()).await;
    let kind = backend.kind;
    let (one, other) = (instance("one"), instance("one-b"));
    let (first, second) = (application(None), application(None));
    insert(&*backend.store, &first).await;
    insert(&*backend.store, &second).await;
    let room = capacity();
    let now = clock.now();
    let long = |lease| Claim {
        lease_until: now + Duration::minutes(2),
        ..claim_at(lease, now, 1, &room)
    };
    let mine = backend.store.claim(&long("one/1")).await.unwrap();
    assert_eq!(mine.len(), 1);
    let elsewhere = backend.instance().await;
    let theirs = elsewhere.claim(&long("one-b/1")).await.unwrap();
    assert_eq!(theirs.len(), 1);
    drop(elsewhere);

    // Instance `one` restarts at once (same time): its claim is free again.
    let backend = backend.reopen().await;
    let store = &*backend.store;
    let released = store.release_stale_leases(&one).await.unwrap();
    let again = store.claim(&long("one/2")).await.unwrap();
    assert!(
        !store
            .record_prepared(&mine[0], b"old", "<nachricht/>", "prepared")
            .await
            .unwrap()
    );
    match kind {
        Kind::Postgres => {
            assert_eq!(released, 1);
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].application_id, mine[0].application_id);
            // The other instance's claim holds.
            assert!(store.claim(&long("one/3")).await.unwrap().is_empty());
            assert!(other_records(&backend, &theirs[0]).await);
            // Its own restart returns it.
            assert_eq!(store.release_stale_leases(&other).await.unwrap(), 1);
        }
        Kind::Sqlite => {
            assert_eq!(released, 2);
            assert_eq!(again[0].application_id, mine[0].application_id);
        }
    }
}

/// `item`'s lease still holds: its holder records it prepared.
async fn other_records(backend: &Backend, item: &WorkItem) -> bool {
    let other = backend.instance().await;
    other
        .record_prepared(item, b"theirs", "<nachricht/>", "prepared")
        .await
        .unwrap()
}

/// Another instance takes over the claims of an instance whose heartbeat has stopped
/// after the heartbeat timeout, not before and long before their lease runs out; once,
/// and never a live instance's.
pub(crate) async fn a_silent_instances_claims_are_taken_after_the_heartbeat_timeout(
    backend: Backend,
) {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(),
    ));
    let backend = backend.with_clock(clock.clone()).await;
    let [one, two] = backend.two_instances().await;
    let (first, second) = (instance("one"), instance("two"));
    let (a, b) = (application(None), application(None));
    insert(&*one, &a).await;
    insert(&*one, &b).await;
    let timeout = Duration::seconds(10);
    one.heartbeat(&first).await.unwrap();
    two.heartbeat(&second).await.unwrap();
    let start = clock.now();
    let room = capacity();
    let claim = |lease, now| Claim {
        lease_until: start + Duration::minutes(2),
        ..claim_at(lease, now, 10, &room)
    };
    let held = one.claim(&claim("one/1", start)).await.unwrap();
    assert_eq!(held.len(), 2);
    let taken_over = async || two.take_over_silent(&second, timeout).await.unwrap();

    // `one` falls silent; `two` beats on. Before the timeout nothing is taken.
    clock.advance(Duration::seconds(5));
    two.heartbeat(&second).await.unwrap();
    assert!(taken_over().await.is_empty());
    clock.advance(Duration::seconds(5));
    two.heartbeat(&second).await.unwrap();
    assert!(taken_over().await.is_empty());
    assert!(
        two.claim(&claim("two/1", clock.now()))
            .await
            .unwrap()
            .is_empty()
    );
    // A beat in time keeps an instance's claims (it beat 10 s ago: not older than 10 s).
    one.heartbeat(&first).await.unwrap();
    assert!(taken_over().await.is_empty());

    // `one` silent for longer than the timeout: taken over, once.
    clock.advance(Duration::seconds(11));
    two.heartbeat(&second).await.unwrap();
    assert_eq!(
        taken_over().await,
        [Silent {
            instance: first.clone(),
            entries: 2
        }]
    );
    assert!(taken_over().await.is_empty());
    let taken = two.claim(&claim("two/2", clock.now())).await.unwrap();
    assert_eq!(taken.len(), 2);
    // Fenced: the old holder, should it still be at work, records nothing.
    assert!(
        !one.record_prepared(&held[0], b"old", "<nachricht/>", "prepared")
            .await
            .unwrap()
    );
    assert!(!one.record_delivered(&held[1], "delivered").await.unwrap());
    let before = two.application(held[1].application_id).await.unwrap();
    assert!(
        !one.record_retry(&held[1], clock.now(), "late")
            .await
            .unwrap()
    );
    // Nor does its failed attempt count as one of the entry's attempts.
    let after = two.application(held[1].application_id).await.unwrap();
    let attempt =
        |r: Option<ApplicationRecord>| r.map(|r| (r.delivery.attempts, r.delivery.last_error));
    assert_eq!(attempt(after), attempt(before));
    prepare(&*two, &taken[0], b"new").await;
    // It beats again: live once more, nothing to take over.
    one.heartbeat(&first).await.unwrap();
    assert!(taken_over().await.is_empty());
}

/// The store reads time from the clock it was given, not from the system: the history
/// of a delivery and a later access carry the manual clock's times.
pub(crate) async fn the_store_stamps_times_by_its_clock(backend: Backend) {
    let start = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let backend = backend.with_clock(clock.clone()).await;
    let store = &*backend.store;

    let new = deliver(store, b"sealed").await;
    clock.advance(Duration::minutes(5));
    assert!(store.record_access(new.id, "looked at").await.unwrap());

    let record = stored(store, new.id).await;
    let stamped: Vec<(&str, OffsetDateTime)> = record
        .history
        .iter()
        .skip(1)
        .map(|h| (h.status.as_str(), h.at))
        .collect();
    let later = start + Duration::minutes(5);
    assert_eq!(
        stamped,
        [
            ("prepared", start),
            ("delivered", start),
            ("delivered", later)
        ]
    );
    assert_eq!(record.updated_at, start);
}

/// An application stored with its message sealed at intake starts `prepared`: the
/// claim hands it out for delivery with that message, and the trail holds both entries
/// with the message's hash, as if the outbox had prepared it.
pub(crate) async fn an_application_sealed_at_intake_is_claimed_for_delivery(backend: Backend) {
    let store = &*backend.store;
    let sealed = b"sealed at intake".as_slice();
    let mut new = application(None);
    new.sealed = Some(kopplung_core::store::SealedAhead {
        message: sealed.into(),
        xml: "<nachricht>at intake</nachricht>".into(),
        detail: "sealed at intake".into(),
    });
    insert(store, &new).await;
    let record = stored(store, new.id).await;
    assert_eq!(record.status, Status::Prepared);
    assert_eq!(
        store.sent_xml(new.id).await.unwrap().as_deref(),
        Some("<nachricht>at intake</nachricht>"),
        "the XML it was sealed from, kept in the same write"
    );

    let now = OffsetDateTime::now_utc();
    let claimed = claim_until(store, "a", now, now + Duration::seconds(60)).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].step, Step::Deliver);
    assert_eq!(claimed[0].message_id, new.message_id);
    assert_eq!(claimed[0].sealed.as_deref(), Some(sealed));
    assert_eq!(store.sealed_message(&claimed[0]).await.unwrap(), sealed);
    assert!(
        store
            .record_delivered(&claimed[0], "delivered")
            .await
            .unwrap()
    );

    let entries = store.audit_entries(new.id).await.unwrap();
    let statuses: Vec<&str> = entries.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["accepted", "prepared", "delivered"]);
    let hash = sha256_hex(sealed);
    assert_eq!(entries[1].message_sha256.as_deref(), Some(&*hash));
    assert_eq!(entries[2].message_sha256.as_deref(), Some(&*hash));
    assert!(store.verify_audit().await.unwrap().is_intact());
}
