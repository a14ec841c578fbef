//! Pickup: messages a procedure collects, and their acknowledgement.

use crate::backend::{Backend, Kind};
use crate::support::*;

pub(crate) async fn a_message_waits_for_pickup_until_acknowledged(backend: Backend) {
    let store = &*backend.store;
    let other = backend.instance().await;
    let (new, item) = claimed(store, "lease").await;
    let sealed = b"sealed for pickup".as_slice();
    prepare(store, &item, sealed).await;
    assert!(
        store
            .record_awaiting_pickup(&item, "message waits for pickup by dresden-maengel")
            .await
            .unwrap()
    );
    // Waiting for pickup: not work for the outbox.
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    assert!(claim_until(store, "again", later, later).await.is_empty());
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

    // In this order, by the instance named: each answer follows from the ones before.
    let acknowledgements = [
        (
            store,
            "another-procedure",
            new.message_id,
            "x",
            PickupAck::Unknown,
        ),
        (store, PROCEDURE, Uuid::new_v4(), "x", PickupAck::Unknown),
        (
            store,
            PROCEDURE,
            new.message_id,
            "collected by dresden-maengel",
            PickupAck::Acknowledged,
        ),
        (
            &*other,
            PROCEDURE,
            new.message_id,
            "collected again",
            PickupAck::AlreadyAcknowledged,
        ),
    ];
    for (by, procedure, message_id, detail, expected) in acknowledgements {
        let answer = by
            .acknowledge_pickup(procedure, message_id, detail)
            .await
            .unwrap();
        assert_eq!(answer, expected, "{detail}");
    }
    let record = stored_as(
        store,
        new.id,
        Status::Delivered,
        &["accepted", "prepared", "prepared", "delivered"],
    )
    .await;
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

// PostgreSQL only: two instances acknowledging at once.
#[tokio::test]
async fn postgres_two_instances_acknowledging_at_once_deliver_once() {
    let backend = Backend::open(Kind::Postgres).await;
    let [a, b] = backend.two_instances().await;
    let (new, item) = claimed(&*a, "lease").await;
    prepare(&*a, &item, b"sealed").await;
    assert!(a.record_awaiting_pickup(&item, "waits").await.unwrap());
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = [&a, &b][i % 2].clone();
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
    let record = stored(&*a, new.id).await;
    assert_eq!(
        statuses(&record.history),
        ["accepted", "prepared", "prepared", "delivered"]
    );
}
