//! Events: receipts and events in the order the states allow, once each.

use crate::backend::Backend;
use crate::support::*;

pub(crate) async fn a_receipt_that_overtakes_the_delivered_commit_records_both(backend: Backend) {
    let store = &*backend.store;
    let (new, item) = claimed(store, "a").await;
    // Not yet sent: a receipt for it does not follow.
    assert_eq!(
        receipt_outcome(store, &new, "r-0", Status::Received).await,
        ReceiptOutcome::OutOfOrder(Status::Accepted)
    );
    let item = prepare(store, &item, b"sealed").await;
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
    stored_as(
        store,
        new.id,
        Status::Received,
        &["accepted", "prepared", "delivered", "received"],
    )
    .await;
    // Again: the same receipt, also signed anew, is a duplicate; other content under
    // its id a conflict. The same signed bytes are the same receipt even where the
    // content hash was recorded under an earlier definition.
    let mut resigned = receipt.clone();
    resigned.signed = b"the same receipt, signed again".to_vec();
    let mut rehashed = receipt.clone();
    rehashed.content_sha256 = "the content hash of an earlier definition".into();
    let mut other = receipt.clone();
    other.content_sha256 = "another content".into();
    other.signed = b"another receipt under the same id".to_vec();
    for (again, expected) in [
        (&receipt, ReceiptOutcome::Duplicate),
        (&resigned, ReceiptOutcome::Duplicate),
        (&rehashed, ReceiptOutcome::Duplicate),
        (&other, ReceiptOutcome::Conflict),
    ] {
        assert_eq!(store.record_receipt(again).await.unwrap(), expected);
    }
    // The event log (a FIT-Connect case's): the receipt once, as signed.
    assert_eq!(
        store.signed_events(new.id).await.unwrap(),
        vec![receipt.signed.clone()]
    );
    assert!(
        store
            .signed_events(uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    let entries = store.audit_entries(new.id).await.unwrap();
    assert_eq!(
        entries[3].message_sha256.as_deref(),
        Some(&*sha256_hex(&receipt.signed)),
        "the trail names the signed receipt"
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, 0);
}

pub(crate) async fn receipts_and_events_follow_the_states(backend: Backend) {
    let store = &*backend.store;
    let new = deliver(store, b"sealed").await;

    // Unknown: another message, another procedure, another application.
    let mut other_message = receipt_for(&new, "u-1", Status::Received);
    other_message.message_id = Uuid::new_v4();
    let mut other_procedure = receipt_for(&new, "u-2", Status::Received);
    other_procedure.procedure_id = "another-procedure".into();
    let mut other_application = receipt_for(&new, "u-3", Status::Received);
    other_application.application_id = Uuid::new_v4();
    let mut query = receipt_for(&new, "q-1", Status::Query);
    query.message = Some("Bitte senden Sie ein Foto.".into());
    // In this order: each outcome follows from the ones before.
    let receipts = [
        (other_message, ReceiptOutcome::UnknownMessage),
        (other_procedure, ReceiptOutcome::UnknownMessage),
        (other_application, ReceiptOutcome::UnknownMessage),
        // A decision before the receipt is out of order.
        (
            receipt_for(&new, "d-0", Status::Decided),
            ReceiptOutcome::OutOfOrder(Status::Delivered),
        ),
        (
            receipt_for(&new, "r-1", Status::Received),
            ReceiptOutcome::Applied(Status::Received),
        ),
        (query, ReceiptOutcome::Applied(Status::Query)),
        (
            decision_with_document(&new, "Der Mangel wird behoben."),
            ReceiptOutcome::Applied(Status::Decided),
        ),
        (
            receipt_for(&new, "r-9", Status::Rejected),
            ReceiptOutcome::AlreadyFinal,
        ),
    ];
    for (receipt, expected) in receipts {
        // The dry run answers the same beforehand, and records nothing.
        let before = stored(store, new.id).await;
        let checked = store.check_receipt(&receipt).await.unwrap();
        assert_eq!(checked, expected, "dry run of {}", receipt.receipt_id);
        let after = stored(store, new.id).await;
        assert_eq!(
            (after.status, after.history.len()),
            (before.status, before.history.len())
        );
        let outcome = store.record_receipt(&receipt).await.unwrap();
        assert_eq!(outcome, expected, "{}", receipt.receipt_id);
    }
    // The decision's appeal information is kept with its mailbox entry; the query has none.
    let (mailbox, _) = store.mailbox(new.id).await.unwrap();
    let appeals: Vec<_> = mailbox
        .iter()
        .map(|m| {
            (
                m.kind.as_str(),
                m.appeal.as_ref().map(|a| a.deadline.to_string()),
            )
        })
        .collect();
    assert_eq!(
        appeals,
        [("query", None), ("decided", Some("2026-12-31".to_owned()))]
    );
    let fees: Vec<_> = mailbox
        .iter()
        .map(|m| m.fee.as_ref().map(|f| f.euros()))
        .collect();
    assert_eq!(fees, [None, Some("30.70".to_owned())]);
    let recorded = receipt_for(&new, "r-1", Status::Received);
    assert_eq!(
        store.check_receipt(&recorded).await.unwrap(),
        ReceiptOutcome::Duplicate
    );
    let mut reused = recorded.clone();
    reused.content_sha256 = "other content".into();
    reused.signed = b"another receipt".to_vec();
    assert_eq!(
        store.check_receipt(&reused).await.unwrap(),
        ReceiptOutcome::Conflict
    );

    stored_as(
        store,
        new.id,
        Status::Decided,
        &[
            "accepted",
            "prepared",
            "delivered",
            "received",
            "query",
            "decided",
        ],
    )
    .await;
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
    let other = deliver(store, b"other").await;
    let mut rejection = receipt_for(&other, "x-1", Status::Rejected);
    rejection.problems = vec!["urn:problem:schema: Schema verletzt".into()];
    assert_eq!(
        store.record_receipt(&rejection).await.unwrap(),
        ReceiptOutcome::Applied(Status::Rejected)
    );
    let record = stored(store, other.id).await;
    assert_eq!(record.status, Status::Rejected);
    assert!(
        record.history[3]
            .detail
            .ends_with(": urn:problem:schema: Schema verletzt")
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}
