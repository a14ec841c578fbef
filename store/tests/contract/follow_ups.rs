//! Follow-up messages: a child of its application with its own message id, outbox entry
//! and history; the application lists them, the prepare step learns what they refer to.

use crate::backend::Backend;
use crate::support::*;
use kopplung_core::conversation::{FollowUpKind, FollowUpOf};

pub(crate) async fn a_follow_up_travels_on_its_own_and_is_listed_with_its_application(
    backend: Backend,
) {
    let store = &*backend.store;
    let parent = deliver(store, b"sealed").await;
    assert_eq!(
        receipt_outcome(store, &parent, "r-1", Status::Received).await,
        ReceiptOutcome::Applied(Status::Received)
    );
    let mut query = receipt_for(&parent, "q-1", Status::Query);
    query.message = Some("Bitte senden Sie ein Foto.".into());
    assert_eq!(
        store.record_receipt(&query).await.unwrap(),
        ReceiptOutcome::Applied(Status::Query)
    );
    let (mailbox, _) = store.mailbox(parent.id).await.unwrap();
    assert_eq!(
        mailbox[0].event_id, "q-1",
        "the mailbox names the event to answer"
    );

    let mut answer = application(None);
    answer.receipt = format!("{}/0001", parent.receipt);
    answer.message_type = "maengelanzeige.antwort.0201".into();
    answer.payload = serde_json::json!({"text": "Das Foto liegt bei."});
    answer.follow_up = Some(FollowUpOf {
        parent_id: parent.id,
        kind: FollowUpKind::Antwort,
        refers_to: Some("q-1".into()),
    });
    insert(store, &answer).await;

    // The application lists it; the child knows its parent and is not a result of a
    // search unless searched by its own receipt number.
    let listed = stored(store, parent.id).await;
    assert_eq!(
        listed.status,
        Status::Query,
        "the answer changes no state of its application"
    );
    assert_eq!(listed.follow_ups.len(), 1);
    let sent = &listed.follow_ups[0];
    assert_eq!(
        (sent.id, sent.kind, sent.refers_to.as_deref(), sent.status),
        (
            answer.id,
            FollowUpKind::Antwort,
            Some("q-1"),
            Status::Accepted
        )
    );
    assert_eq!(sent.message_id, answer.message_id);
    let child = stored(store, answer.id).await;
    assert_eq!(child.follow_up.as_ref().unwrap().parent_id, parent.id);
    let detail = &child.history[0].detail;
    assert!(
        detail.starts_with("antwort of application") && detail.contains(&parent.id.to_string()),
        "{detail}"
    );
    let all = ApplicationQuery {
        limit: 100,
        ..Default::default()
    };
    let found: Vec<_> = store
        .search(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(found.contains(&parent.id) && !found.contains(&answer.id));
    let by_receipt = ApplicationQuery {
        receipt: Some(answer.receipt.clone()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.search(&by_receipt).await.unwrap()[0].id, answer.id);

    // The prepare step renders it as a reference to the application's own message.
    let input = store.prepare_input(answer.id).await.unwrap();
    let of = input.follow_up.unwrap();
    assert_eq!(
        (of.kind, of.refers_to.as_deref(), of.parent_id),
        (FollowUpKind::Antwort, Some("q-1"), parent.id)
    );
    assert_eq!(
        (of.parent_receipt.as_str(), of.parent_message_id),
        (parent.receipt.as_str(), parent.message_id)
    );
    assert!(
        store
            .prepare_input(parent.id)
            .await
            .unwrap()
            .follow_up
            .is_none()
    );

    // It is claimed, delivered and receipted like any message.
    let item = claim_one(store, answer.id, "follow-up").await;
    assert_eq!(item.message_id, answer.message_id);
    let item = prepare(store, &item, b"sealed answer").await;
    assert!(store.record_delivered(&item, "delivered").await.unwrap());
    assert_eq!(
        receipt_outcome(store, &answer, "a-1", Status::Received).await,
        ReceiptOutcome::Applied(Status::Received)
    );
    let listed = stored(store, parent.id).await;
    assert_eq!(listed.follow_ups[0].status, Status::Received);
    assert!(listed.follow_ups[0].delivered_at.is_some());
    assert!(store.verify_audit().await.unwrap().is_intact());
}

/// A follow-up of `kind` on `parent` referring to `refers_to`, with its own ids.
fn follow_up(
    parent: &NewApplication,
    kind: FollowUpKind,
    refers_to: Option<&str>,
) -> NewApplication {
    let mut new = application(None);
    new.receipt = format!("{}/{}", parent.receipt, &new.id.simple().to_string()[24..]);
    new.message_type = kind.message_type("maengelanzeige.meldung.0101");
    new.follow_up = Some(FollowUpOf {
        parent_id: parent.id,
        kind,
        refers_to: refers_to.map(str::to_owned),
    });
    new
}

/// An objection stands once per application, a payment record once per fee, also when
/// two requests arrive at the same moment (on two instances where the backend has
/// them); one the procedure refused no longer stands, and another may follow.
pub(crate) async fn a_follow_up_that_may_stand_once_is_stored_once(backend: Backend) {
    let store = &*backend.store;
    let parent = deliver(store, b"sealed").await;
    let objection = |event| follow_up(&parent, FollowUpKind::Widerspruch, event);
    let first = objection(Some("d-1"));
    insert(store, &first).await;
    for again in [
        objection(Some("d-1")),
        objection(Some("d-2")),
        objection(None),
    ] {
        assert_eq!(
            store.insert_application(&again).await.unwrap(),
            Inserted::AlreadySent
        );
        assert!(
            store.application(again.id).await.unwrap().is_none(),
            "nothing kept"
        );
    }
    // Answers and later documents may come as often as the citizen writes.
    for _ in 0..2 {
        insert(store, &follow_up(&parent, FollowUpKind::Nachreichung, None)).await;
    }
    let payment = |event| follow_up(&parent, FollowUpKind::Zahlung, event);
    insert(store, &payment(Some("d-1"))).await;
    insert(store, &payment(None)).await;
    assert_eq!(
        store
            .insert_application(&payment(Some("d-1")))
            .await
            .unwrap(),
        Inserted::AlreadySent
    );

    // Refused by the procedure: the citizen may object again.
    let item = claim_one(store, first.id, "objection").await;
    let item = prepare(store, &item, b"sealed objection").await;
    assert!(store.record_delivered(&item, "delivered").await.unwrap());
    assert_eq!(
        receipt_outcome(store, &first, "w-1", Status::Rejected).await,
        ReceiptOutcome::Applied(Status::Rejected)
    );
    insert(store, &objection(Some("d-1"))).await;

    // At the same moment, with different keys: one is stored.
    let instances = backend.two_instances().await;
    let fee = "d-9";
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = instances[i % 2].clone();
            let new = payment(Some(fee));
            tokio::spawn(async move { store.insert_application(&new).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Inserted::Created(_) => created += 1,
            Inserted::AlreadySent => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    let listed = stored(store, parent.id).await;
    let standing = |kind: FollowUpKind| {
        listed
            .follow_ups
            .iter()
            .filter(|f| f.kind == kind && f.status != Status::Rejected)
            .count()
    };
    assert_eq!(standing(FollowUpKind::Widerspruch), 1);
    assert_eq!(
        standing(FollowUpKind::Zahlung),
        3,
        "d-1, the submission's, d-9"
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}
