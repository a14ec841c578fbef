//! Intake: applications stored whole or not at all, idempotency answers, uploads.

use crate::backend::{Backend, Kind};
use crate::support::*;

pub(crate) async fn insert_stores_everything_and_idempotency_replays_or_conflicts(
    backend: Backend,
) {
    let store = &*backend.store;
    let mut first = application(Some(("k", "hash-1")));
    first.attachments = vec![Attachment {
        filename: "foto.jpg".into(),
        media_type: "image/jpeg".into(),
        // As intake computes it: the `accepted` entry binds it.
        sha512: hex::encode(openssl::sha::sha512(&[0, 1, 2, 255, 0, 7])),
        size: 6,
        content: AttachmentContent::Inline(vec![0, 1, 2, 255, 0, 7]),
        slot: Some("wesenstest".into()),
    }];
    let Inserted::Created(accepted) = store.insert_application(&first).await.unwrap() else {
        panic!("created")
    };
    assert_eq!(accepted.id, first.id);
    assert_eq!(accepted.receipt, first.receipt);

    let record = stored(store, first.id).await;
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
    assert_eq!(input.attachments[0].slot.as_deref(), Some("wesenstest"));

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

/// Uploads, the same for every store: chunks stored one by one, the upload bound to one
/// application only (by its own client), its fragments read back for that application's
/// procedure only, an unbound upload discarded with its chunks, and retention deleting
/// an upload's content with the application's other personal data.
pub(crate) async fn uploads_are_bound_once_and_read_in_fragments(backend: Backend) {
    let store = &*backend.store;
    let upload = |client: &str| NewUpload {
        id: Uuid::new_v4(),
        client_id: client.into(),
        filename: "Lageplan.pdf".into(),
        media_type: "application/pdf".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    let first = upload("client");
    store.create_upload(&first).await.unwrap();
    let chunk = |fill: u8, len: usize| vec![fill; len];
    store
        .append_upload_chunk(first.id, 0, &chunk(1, FRAGMENT_BYTES))
        .await
        .unwrap();
    store
        .append_upload_chunk(first.id, 1, &chunk(2, 10))
        .await
        .unwrap();
    let size = (FRAGMENT_BYTES + 10) as u64;
    assert_eq!(fragment_count(size), 2);
    // Each chunk reads back as stored (a FIT-Connect announcement is read so).
    assert_eq!(
        store.upload_chunk(first.id, 0).await.unwrap(),
        Some(chunk(1, FRAGMENT_BYTES))
    );
    assert_eq!(
        store.upload_chunk(first.id, 1).await.unwrap(),
        Some(chunk(2, 10))
    );
    assert_eq!(store.upload_chunk(first.id, 2).await.unwrap(), None);

    // Not complete yet: cannot be bound.
    let attachment = Attachment {
        filename: first.filename.clone(),
        media_type: first.media_type.clone(),
        sha512: "ab".repeat(64),
        size,
        content: AttachmentContent::Upload(first.id),
        slot: None,
    };
    // An application of `client` with the upload as its attachment.
    let with_upload = |client: &str| {
        let mut new = application(None);
        new.client_id = client.into();
        new.attachments = vec![attachment.clone()];
        new
    };
    let new = with_upload("client");
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        Inserted::UploadTaken(0)
    ));
    assert!(
        store.application(new.id).await.unwrap().is_none(),
        "nothing half-stored"
    );

    store
        .complete_upload(first.id, size, &"ab".repeat(64))
        .await
        .unwrap();
    let info = store.upload(first.id).await.unwrap().unwrap();
    assert_eq!(info.complete, Some((size, "ab".repeat(64))));
    assert_eq!(info.application_id, None);

    // Another client's application cannot take it; the first of its own client does,
    // and a second one finds it taken.
    let foreign = with_upload("another");
    let new = with_upload("client");
    let second = with_upload("client");
    let created = Inserted::Created(Accepted {
        id: new.id,
        receipt: new.receipt.clone(),
    });
    for (application, expected) in [
        (&foreign, Inserted::UploadTaken(0)),
        (&new, created),
        (&second, Inserted::UploadTaken(0)),
    ] {
        assert_eq!(
            store.insert_application(application).await.unwrap(),
            expected
        );
    }
    assert_eq!(
        store
            .upload(first.id)
            .await
            .unwrap()
            .unwrap()
            .application_id,
        Some(new.id)
    );
    assert!(
        !store.discard_upload(first.id).await.unwrap(),
        "bound uploads stay"
    );

    let input = store.prepare_input(new.id).await.unwrap();
    assert_eq!(
        input.attachments[0].content,
        AttachmentContent::Upload(first.id)
    );
    assert_eq!(input.attachments[0].size, size);

    let fragment = |procedure: &'static str, position: u32, k: u64| {
        store.attachment_fragment(procedure, new.message_id, position, k)
    };
    assert_eq!(
        fragment(PROCEDURE, 0, 0).await.unwrap(),
        Some(chunk(1, FRAGMENT_BYTES))
    );
    assert_eq!(fragment(PROCEDURE, 0, 1).await.unwrap(), Some(chunk(2, 10)));
    assert_eq!(fragment(PROCEDURE, 0, 2).await.unwrap(), None);
    // Far beyond the end (the largest `k` a client can ask for): not there, no overflow.
    assert_eq!(fragment(PROCEDURE, 0, u64::MAX - 1).await.unwrap(), None);
    assert_eq!(fragment(PROCEDURE, 0, 1 << 44).await.unwrap(), None);
    assert_eq!(fragment(PROCEDURE, 1, 0).await.unwrap(), None);
    assert_eq!(fragment("leipzig-maengel", 0, 0).await.unwrap(), None);

    // An inline attachment is read in fragments too.
    let mut inline = application(None);
    inline.attachments = vec![photo(&[9, 8, 7, 6, 5])];
    store.insert_application(&inline).await.unwrap();
    assert_eq!(
        store
            .attachment_fragment(PROCEDURE, inline.message_id, 0, 0)
            .await
            .unwrap(),
        Some(vec![9, 8, 7, 6, 5])
    );

    // Abandoned uploads go, with their chunks; a fresh one stays until it is stale.
    let abandoned = upload("client");
    store.create_upload(&abandoned).await.unwrap();
    store
        .append_upload_chunk(abandoned.id, 0, &chunk(3, 100))
        .await
        .unwrap();
    assert_eq!(
        store
            .discard_stale_uploads(OffsetDateTime::now_utc() - time::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .discard_stale_uploads(OffsetDateTime::now_utc() + time::Duration::hours(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.upload(abandoned.id).await.unwrap().is_none());
    assert!(
        store.upload(first.id).await.unwrap().is_some(),
        "bound uploads are not stale"
    );
}

// PostgreSQL only: two instances on one database (SQLite has one process per data
// directory, see `sqlite_one_process_per_data_directory`).
#[tokio::test]
async fn postgres_the_same_idempotency_key_at_two_instances_at_once_creates_one() {
    let backend = Backend::open(Kind::Postgres).await;
    let instances = backend.two_instances().await;
    let (created, replayed) = insert_at_once(&instances, "same", 8).await;
    assert_eq!(created, 1);
    assert_eq!(replayed.len(), 1, "every answer names the one application");
}

// SQLite only: the lock file of its data directory.
#[tokio::test]
async fn sqlite_one_process_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SqliteStore::open(dir.path(), Arc::new(SystemClock))
        .await
        .unwrap();
    assert!(matches!(
        SqliteStore::open(dir.path(), Arc::new(SystemClock)).await,
        Err(StoreError::Locked(_))
    ));
}

/// Many applications at once (PostgreSQL stores them in batches): each gets the answer
/// it would get alone — created, the earlier answer for a repeated idempotency key (also
/// within one batch), a taken receipt number — and only the created ones are kept, each
/// with its history and audit entries.
pub(crate) async fn applications_stored_at_once_get_their_own_answers(backend: Backend) {
    let store = &*backend.store;
    let earlier = application(None);
    insert(store, &earlier).await;
    let mut news: Vec<NewApplication> = (0..30).map(|_| application(None)).collect();
    // Three requests with one key and body, one with the key and another body.
    for _ in 0..3 {
        news.push(application(Some(("together", "hash-a"))));
    }
    let mut taken = application(None);
    taken.receipt = earlier.receipt.clone();
    news.push(taken.clone());
    let mut sealed = application(None);
    sealed.sealed = Some(SealedAhead {
        message: b"sealed at intake".as_slice().into(),
        xml: "<nachricht>at intake</nachricht>".into(),
        detail: "sealed at intake".into(),
    });
    news.push(sealed.clone());
    let answers =
        futures_util::future::join_all(news.iter().map(|new| store.insert_application(new))).await;
    let answers: Vec<Inserted> = answers.into_iter().map(Result::unwrap).collect();

    let created: Vec<&NewApplication> = news
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| matches!(answer, Inserted::Created(_)))
        .map(|(new, _)| new)
        .collect();
    // 30 plain, one of the three keyed, the sealed one.
    assert_eq!(created.len(), 32, "{answers:?}");
    let keyed: Vec<&Inserted> = answers[30..33].iter().collect();
    let first_keyed = keyed
        .iter()
        .find_map(|answer| match answer {
            Inserted::Created(accepted) => Some(accepted.clone()),
            _ => None,
        })
        .unwrap();
    for answer in keyed {
        assert!(
            *answer == Inserted::Created(first_keyed.clone())
                || *answer == Inserted::Replayed(first_keyed.clone()),
            "{answer:?}"
        );
    }
    assert_eq!(answers[33], Inserted::ReceiptTaken);
    assert!(store.application(taken.id).await.unwrap().is_none());
    for new in &created {
        let record = stored(store, new.id).await;
        let expected: &[&str] = if new.id == sealed.id {
            &["accepted", "prepared"]
        } else {
            &["accepted"]
        };
        assert_eq!(statuses(&record.history), expected);
    }
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    // The earlier application, 32 created, and the sealed one's `prepared`.
    assert_eq!(report.checked, 34);
}
