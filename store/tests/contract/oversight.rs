//! Oversight: dead letters and their replay, resending a message without a receipt,
//! retention.

use crate::backend::Backend;
use crate::support::*;

pub(crate) async fn dead_letters_are_listed_and_replayed_with_their_message_id(backend: Backend) {
    let store = &*backend.store;
    let (sealed_one, item) = claimed(store, "a").await;
    let item = prepare(store, &item, b"sealed").await;
    fail(
        store,
        &item,
        Status::DeadLettered,
        "gave up after 3 attempts",
    )
    .await;
    let (never_sealed, item) = claimed(store, "b").await;
    fail(store, &item, Status::DeadLettered, "no mapping").await;

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
        stored(store, sealed_one.id).await.status,
        Status::DeadLettered
    );

    assert!(store.replay(sealed_one.id, "admin").await.unwrap());
    assert!(!store.replay(sealed_one.id, "admin").await.unwrap());
    assert!(!store.replay(Uuid::new_v4(), "admin").await.unwrap());
    assert!(store.replay(never_sealed.id, "admin").await.unwrap());
    assert!(store.dead_letters().await.unwrap().is_empty());

    prepared_again(store, &sealed_one, "dead_lettered", &[]).await;
    assert_eq!(
        stored(store, never_sealed.id).await.status,
        Status::Accepted
    );
    let backlog = store.backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].procedure, PROCEDURE);
    assert_eq!(backlog[0].pending, 2);
    assert_eq!(backlog[0].oldest_since, Some(sealed_one.received_at));

    let now = OffsetDateTime::now_utc();
    let items = claim_until(store, "c", now, now + Duration::minutes(1)).await;
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

/// An application its mapping could not render goes back to `accepted` on request (after
/// the fix), is claimed to be rendered again with its message id unchanged, and only
/// an `invalid` one can be: the history and the audit trail say who asked.
pub(crate) async fn an_invalid_application_is_reprocessed_with_its_message_id(backend: Backend) {
    let store = &*backend.store;
    let (new, item) = claimed(store, "a").await;
    assert!(
        !store.reprocess(new.id, "admin").await.unwrap(),
        "not invalid yet"
    );
    fail(store, &item, Status::Invalid, "template: field missing").await;
    assert!(
        store.backlog().await.unwrap().is_empty(),
        "invalid is no work"
    );
    assert!(!store.reprocess(Uuid::new_v4(), "admin").await.unwrap());

    assert!(store.reprocess(new.id, "operator").await.unwrap());
    assert!(!store.reprocess(new.id, "operator").await.unwrap(), "once");
    let record = stored_as(
        store,
        new.id,
        Status::Accepted,
        &["accepted", "invalid", "accepted"],
    )
    .await;
    let detail = &record.history[2].detail;
    assert!(
        detail.contains("reprocessed by operator") && detail.contains(&new.message_id.to_string()),
        "{detail}"
    );
    let again = claim_one(store, new.id, "b").await;
    assert_eq!(again.step, Step::Prepare);
    assert_eq!(again.attempts, 0, "attempts counted afresh");
    assert_eq!(again.message_id, new.message_id, "one message id for life");
    prepare(store, &again, b"sealed after the fix").await;
    assert_eq!(stored(store, new.id).await.status, Status::Prepared);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

/// Retention with a controllable clock, the same for every store: an application with
/// an attachment is delivered, received and decided with a document; its personal data
/// stays while the retention period runs and is deleted once it is over — once, with a
/// history and audit entry, ids and hashes kept, the chain intact.
/// The XML a message was sealed from is kept with the sealed message, in the same write:
/// none before it is prepared, exactly the XML after, through delivery and a replay;
/// a reprocess drops it with the sealed message until the message is prepared again.
pub(crate) async fn the_xml_sealed_is_kept_with_the_message_until_reprocessed(backend: Backend) {
    let store = &*backend.store;
    let (new, item) = claimed(store, "a").await;
    assert_eq!(store.sent_xml(new.id).await.unwrap(), None, "not prepared");
    assert_eq!(
        store.sent_xml(Uuid::new_v4()).await.unwrap(),
        None,
        "unknown"
    );
    let xml = "<nachricht listVersionID=\"1.0\">Grüße &amp; mehr</nachricht>";
    assert!(
        store
            .record_prepared(&item, b"sealed", xml, "prepared")
            .await
            .unwrap()
    );
    assert_eq!(store.sent_xml(new.id).await.unwrap().as_deref(), Some(xml));
    let delivering = WorkItem {
        step: Step::Deliver,
        ..item.clone()
    };
    assert!(
        store
            .record_delivered(&delivering, "delivered")
            .await
            .unwrap()
    );
    assert_eq!(store.sent_xml(new.id).await.unwrap().as_deref(), Some(xml));

    let (broken, item) = claimed(store, "b").await;
    fail(store, &item, Status::Invalid, "template: field missing").await;
    assert_eq!(store.sent_xml(broken.id).await.unwrap(), None);
    assert!(store.reprocess(broken.id, "operator").await.unwrap());
    assert_eq!(store.sent_xml(broken.id).await.unwrap(), None);
    let again = claim_one(store, broken.id, "c").await;
    let fixed = "<nachricht>after the fix</nachricht>";
    assert!(
        store
            .record_prepared(&again, b"sealed again", fixed, "prepared")
            .await
            .unwrap()
    );
    assert_eq!(
        store.sent_xml(broken.id).await.unwrap().as_deref(),
        Some(fixed)
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}

pub(crate) async fn retention_deletes_personal_data_after_the_final_state(backend: Backend) {
    let store = &*backend.store;
    let mut new = application(None);
    new.attachments = vec![photo(b"\x89PNG personal photo")];
    // A FIT-Connect sender's reply channel: an address, personal data.
    new.reply_channel = Some(r#"{"eMail":{"address":"joerg@example.org"}}"#.into());
    to_decided(store, &new, "retention", b"sealed").await;
    let decided_at = OffsetDateTime::now_utc();
    let service = new.service_key.as_str();

    // 30 days' retention: 29 days later nothing is due, 31 days later it is.
    let retention = time::Duration::days(30);
    let clock = |days: i64| decided_at + time::Duration::days(days) - retention;
    assert_eq!(
        store
            .purge_personal_data(service, clock(29), 100)
            .await
            .unwrap(),
        0
    );
    let (mailbox, documents) = store.mailbox(new.id).await.unwrap();
    assert_eq!((mailbox.len(), documents.len()), (1, 1));
    assert!(
        mailbox[0].appeal.is_some(),
        "the decision's appeal information"
    );
    assert!(store.sent_xml(new.id).await.unwrap().is_some());
    let kept = store.prepare_input(new.id).await.unwrap();
    assert_eq!(kept.attachments.len(), 1);
    assert_eq!(
        kept.reply_channel, new.reply_channel,
        "kept for the procedure"
    );
    // Another service's retention does not touch it.
    assert_eq!(
        store
            .purge_personal_data("99115003000000", clock(31), 100)
            .await
            .unwrap(),
        0
    );

    assert_eq!(
        store
            .purge_personal_data(service, clock(31), 100)
            .await
            .unwrap(),
        1
    );
    let input = store.prepare_input(new.id).await.unwrap();
    assert_eq!(input.payload, serde_json::json!({}));
    assert!(input.attachments.is_empty());
    assert_eq!(
        input.reply_channel, None,
        "the reply channel goes with the form"
    );
    assert_eq!(
        store.sent_xml(new.id).await.unwrap(),
        None,
        "the XML sealed goes with the payload"
    );
    let (mailbox, documents) = store.mailbox(new.id).await.unwrap();
    assert!(documents.is_empty());
    assert!(
        mailbox
            .iter()
            .all(|m| m.text.is_empty() && m.document_id.is_none() && m.appeal.is_none())
    );
    // The amount a decision set stays (no personal data); its purpose goes.
    let fee = mailbox[0].fee.as_ref().expect("fee");
    assert_eq!((fee.cents, fee.purpose.as_str()), (3070, ""));
    // The record stays: state, message id, history with the deletion recorded.
    let record = stored(store, new.id).await;
    assert_eq!(record.status, Status::Decided);
    assert_eq!(record.delivery.message_id, new.message_id);
    let last = record.history.last().unwrap();
    assert!(
        last.detail.starts_with("retention: personal data deleted"),
        "{}",
        last.detail
    );
    assert!(last.detail.contains("1 attachment(s)") && last.detail.contains("1 document(s)"));
    let audit = store.audit_entries(new.id).await.unwrap();
    assert!(audit.last().unwrap().detail.starts_with("retention:"));
    assert!(store.verify_audit().await.unwrap().first_break.is_none());
    // Once only.
    assert_eq!(
        store
            .purge_personal_data(service, clock(400), 100)
            .await
            .unwrap(),
        0
    );
}

pub(crate) async fn a_delivered_message_without_receipt_is_resent_with_its_message_id(
    backend: Backend,
) {
    let store = &*backend.store;
    let silent = deliver(store, b"sealed silent").await;
    let answered = deliver(store, b"sealed answered").await;
    assert_eq!(
        receipt_outcome(store, &answered, "r-1", Status::Received).await,
        ReceiptOutcome::Applied(Status::Received)
    );

    let delivered = store
        .search(&ApplicationQuery {
            procedure: Some(PROCEDURE.into()),
            status: Some(Status::Delivered),
            limit: 100,
            ..ApplicationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1, "only the one without a receipt");
    assert_eq!(delivered[0].id, silent.id);

    assert!(
        !store.resend(answered.id, "admin").await.unwrap(),
        "received"
    );
    assert!(!store.resend(Uuid::new_v4(), "admin").await.unwrap());
    assert!(store.resend(silent.id, "admin").await.unwrap());
    assert!(
        !store.resend(silent.id, "admin").await.unwrap(),
        "once: it waits in the outbox now"
    );

    prepared_again(store, &silent, "delivered", &["same message id by admin"]).await;

    let now = OffsetDateTime::now_utc();
    let items = claim_until(store, "again", now, now + Duration::minutes(1)).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].application_id, silent.id);
    assert_eq!(items[0].step, Step::Deliver);
    assert_eq!(items[0].attempts, 0, "attempts counted afresh");
    assert_eq!(
        items[0].message_id, silent.message_id,
        "the same message id"
    );
    assert_eq!(
        store.sealed_message(&items[0]).await.unwrap(),
        b"sealed silent",
        "the message as stored"
    );
    assert!(
        store
            .record_delivered(&items[0], "delivered again")
            .await
            .unwrap()
    );
    assert_eq!(
        receipt_outcome(store, &silent, "r-2", Status::Received).await,
        ReceiptOutcome::Applied(Status::Received)
    );
    assert!(store.verify_audit().await.unwrap().is_intact());
}
