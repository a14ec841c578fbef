//! What the store tests of both stores (SQLite, PostgreSQL) build their cases from.
// Each test file uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kopplung_router::store::{IdempotencyKey, NewApplication, Store};
use time::OffsetDateTime;
use uuid::Uuid;

/// The procedure every test application goes to.
pub const PROCEDURE: &str = "dresden-maengel";

/// An accepted Mängelanzeige for [`PROCEDURE`], with an idempotency key and request hash
/// if given.
pub fn application(key: Option<(&str, &str)>) -> NewApplication {
    NewApplication {
        id: Uuid::new_v4(),
        receipt: format!("T{}", &Uuid::new_v4().simple().to_string()[..8]),
        client_id: "client".into(),
        service_key: "99999001000000".into(),
        region: "146120000000".into(),
        procedure_id: PROCEDURE.into(),
        payload: serde_json::json!({"beschreibung": "Schlagloch", "kontakt": {"name": "Jörg Müller"}}),
        attachments: vec![],
        message_id: Uuid::new_v4(),
        message_type: "maengelanzeige.meldung.0101".into(),
        idempotency: key.map(|(key, hash)| IdempotencyKey {
            key: key.into(),
            request_sha256: hash.into(),
        }),
        received_at: OffsetDateTime::now_utc(),
    }
}

/// Room for ten deliveries to [`PROCEDURE`].
pub fn capacity() -> BTreeMap<String, u32> {
    [(PROCEDURE.to_string(), 10)].into()
}

/// Retention with a controllable clock, the same for every store: an application with
/// an attachment is delivered, received and decided with a document; its personal data
/// stays while the retention period runs and is deleted once it is over — once, with a
/// history and audit entry, ids and hashes kept, the chain intact.
pub async fn retention_deletes_personal_data_after_the_final_state(store: &dyn Store) {
    use kopplung_router::store::{
        Attachment, AttachmentContent, EventDocument, ReceiptOutcome, ReceiptRecord, Status, Step,
    };
    let mut new = application(None);
    new.attachments = vec![Attachment {
        filename: "foto.png".into(),
        media_type: "image/png".into(),
        sha512: "ab".repeat(64),
        size: 20,
        content: AttachmentContent::Inline(b"\x89PNG personal photo".to_vec()),
    }];
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        kopplung_router::store::Inserted::Created(_)
    ));
    let now = OffsetDateTime::now_utc();
    let mut item = store
        .claim(
            "retention",
            now,
            now + time::Duration::minutes(1),
            10,
            &capacity(),
        )
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.application_id == new.id)
        .unwrap();
    assert!(
        store
            .record_prepared(&item, b"sealed", "prepared")
            .await
            .unwrap()
    );
    item.step = Step::Deliver;
    assert!(store.record_delivered(&item, "delivered").await.unwrap());
    let receipt = |id: &str, status: Status| ReceiptRecord {
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
    };
    assert_eq!(
        store
            .record_receipt(&receipt("r-1", Status::Received))
            .await
            .unwrap(),
        ReceiptOutcome::Applied(Status::Received)
    );
    let mut decision = receipt("d-1", Status::Decided);
    decision.message = Some("Ihrem Antrag wird stattgegeben.".into());
    decision.document = Some(EventDocument {
        filename: "bescheid.pdf".into(),
        media_type: "application/pdf".into(),
        content: b"%PDF-1.7 bescheid".to_vec(),
    });
    assert_eq!(
        store.record_receipt(&decision).await.unwrap(),
        ReceiptOutcome::Applied(Status::Decided)
    );
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
    assert_eq!(
        store.prepare_input(new.id).await.unwrap().attachments.len(),
        1
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
    let (mailbox, documents) = store.mailbox(new.id).await.unwrap();
    assert!(documents.is_empty());
    assert!(
        mailbox
            .iter()
            .all(|m| m.text.is_empty() && m.document_id.is_none())
    );
    // The record stays: state, message id, history with the deletion recorded.
    let record = store.application(new.id).await.unwrap().unwrap();
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

/// Uploads, the same for every store: chunks stored one by one, the upload bound to one
/// application only (by its own client), its fragments read back for that application's
/// procedure only, an unbound upload discarded with its chunks, and retention deleting
/// an upload's content with the application's other personal data.
pub async fn uploads_are_bound_once_and_read_in_fragments(store: &dyn Store) {
    use kopplung_router::store::{
        Attachment, AttachmentContent, FRAGMENT_BYTES, Inserted, NewUpload, fragment_count,
    };
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

    // Not complete yet: cannot be bound.
    let attachment = Attachment {
        filename: first.filename.clone(),
        media_type: first.media_type.clone(),
        sha512: "ab".repeat(64),
        size,
        content: AttachmentContent::Upload(first.id),
    };
    let mut new = application(None);
    new.attachments = vec![attachment.clone()];
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

    // Another client's application cannot take it.
    let mut foreign = application(None);
    foreign.client_id = "another".into();
    foreign.attachments = vec![attachment.clone()];
    assert!(matches!(
        store.insert_application(&foreign).await.unwrap(),
        Inserted::UploadTaken(0)
    ));

    let mut new = application(None);
    new.attachments = vec![attachment.clone()];
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        Inserted::Created(_)
    ));
    let mut second = application(None);
    second.attachments = vec![attachment.clone()];
    assert!(matches!(
        store.insert_application(&second).await.unwrap(),
        Inserted::UploadTaken(0)
    ));
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
    assert_eq!(fragment(PROCEDURE, 1, 0).await.unwrap(), None);
    assert_eq!(fragment("leipzig-maengel", 0, 0).await.unwrap(), None);

    // An inline attachment is read in fragments too.
    let mut inline = application(None);
    inline.attachments = vec![Attachment {
        filename: "foto.png".into(),
        media_type: "image/png".into(),
        sha512: "cd".repeat(64),
        size: 5,
        content: AttachmentContent::Inline(vec![9, 8, 7, 6, 5]),
    }];
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

/// A decided application with everything audit verification compares: form data, an
/// inline attachment and an upload of two chunks, the sealed message, a receipt, and the
/// decision with its document. On a fresh store its entries are seq 1 (accepted), 2
/// (prepared), 3 (delivered), 4 (received) and 5 (decided). Returns the application and
/// its upload's id.
pub async fn decided_with_everything(store: &dyn Store) -> (NewApplication, Uuid) {
    use kopplung_router::store::{
        Attachment, AttachmentContent, EventDocument, FRAGMENT_BYTES, Inserted, NewUpload,
        ReceiptOutcome, ReceiptRecord, Status, Step,
    };
    let sha512 = |bytes: &[u8]| hex::encode(openssl::sha::sha512(bytes));
    let upload = NewUpload {
        id: Uuid::new_v4(),
        client_id: "client".into(),
        filename: "Lageplan Jörg.pdf".into(),
        media_type: "application/pdf".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_upload(&upload).await.unwrap();
    let chunks = [vec![1u8; FRAGMENT_BYTES], vec![2u8; 10]];
    for (seq, chunk) in chunks.iter().enumerate() {
        store
            .append_upload_chunk(upload.id, seq as u64, chunk)
            .await
            .unwrap();
    }
    let whole = chunks.concat();
    store
        .complete_upload(upload.id, whole.len() as u64, &sha512(&whole))
        .await
        .unwrap();
    let photo = b"\x89PNG photo of the pothole".to_vec();
    let mut new = application(None);
    new.attachments = vec![
        Attachment {
            filename: "foto.png".into(),
            media_type: "image/png".into(),
            sha512: sha512(&photo),
            size: photo.len() as u64,
            content: AttachmentContent::Inline(photo),
        },
        Attachment {
            filename: upload.filename.clone(),
            media_type: upload.media_type.clone(),
            sha512: sha512(&whole),
            size: whole.len() as u64,
            content: AttachmentContent::Upload(upload.id),
        },
    ];
    assert!(matches!(
        store.insert_application(&new).await.unwrap(),
        Inserted::Created(_)
    ));
    let now = OffsetDateTime::now_utc();
    let mut item = store
        .claim(
            "audit",
            now,
            now + time::Duration::minutes(1),
            10,
            &capacity(),
        )
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.application_id == new.id)
        .unwrap();
    assert!(
        store
            .record_prepared(&item, b"sealed message", "prepared")
            .await
            .unwrap()
    );
    item.step = Step::Deliver;
    assert!(store.record_delivered(&item, "delivered").await.unwrap());
    let receipt = |id: &str, status: Status| ReceiptRecord {
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
    };
    assert_eq!(
        store
            .record_receipt(&receipt("r-1", Status::Received))
            .await
            .unwrap(),
        ReceiptOutcome::Applied(Status::Received)
    );
    let mut decision = receipt("d-1", Status::Decided);
    decision.message = Some("Ihrem Antrag wird stattgegeben.".into());
    decision.document = Some(EventDocument {
        filename: "bescheid.pdf".into(),
        media_type: "application/pdf".into(),
        content: b"%PDF-1.7 bescheid".to_vec(),
    });
    assert_eq!(
        store.record_receipt(&decision).await.unwrap(),
        ReceiptOutcome::Applied(Status::Decided)
    );
    (new, upload.id)
}

/// The hub's signing identity of a demo PKI, and trust in it.
pub fn hub_pki() -> (
    tempfile::TempDir,
    kopplung_transformers::Sealer,
    kopplung_router::audit::CheckpointTrust,
) {
    use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    let sealer = kopplung_transformers::Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let trust = kopplung_router::audit::CheckpointTrust::load(&pki.ca_cert()).unwrap();
    (dir, sealer, trust)
}

/// Signs the chain's head as the hub does and stores the checkpoint.
pub async fn checkpoint_head(
    store: &dyn Store,
    sealer: &kopplung_transformers::Sealer,
) -> kopplung_router::audit::Checkpoint {
    use kopplung_router::audit::checkpoint;
    let (seq, hash) = store.audit_head().await.unwrap().unwrap();
    let at = checkpoint::checkpoint_time(OffsetDateTime::now_utc());
    let signature = kopplung_transformers::laufzettel::sign_detached(
        sealer,
        checkpoint::statement(seq, &hash, &at).as_bytes(),
    )
    .unwrap();
    let checkpoint = kopplung_router::audit::Checkpoint {
        seq,
        hash,
        at,
        signature,
    };
    store.record_audit_checkpoint(&checkpoint).await.unwrap();
    checkpoint
}

/// Content and checkpoints of an intact store, the same for every store: everything is
/// re-hashed and matches, the checkpoint holds, and a retention deletion afterwards is
/// counted, not reported.
pub async fn an_intact_trail_is_checked_for_content_and_checkpoints(store: &dyn Store) {
    use kopplung_router::audit::AuditVerifier;
    let (new, _) = decided_with_everything(store).await;
    let (_pki, sealer, trust) = hub_pki();
    assert!(store.audit_checkpoints().await.unwrap().is_empty());
    let checkpoint = checkpoint_head(store, &sealer).await;
    assert_eq!(checkpoint.seq, 5);
    assert_eq!(store.audit_checkpoints().await.unwrap(), vec![checkpoint]);
    let entries = store.audit_entries(new.id).await.unwrap();
    assert!(entries.iter().all(|e| e.version == 2));
    assert_eq!(
        entries[0].content_sha256,
        Some(new.stored_form().content_sha256)
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

/// A change behind the store's back to what an entry of [`decided_with_everything`]
/// binds, and what verification must say.
pub struct TamperCase {
    pub what: &'static str,
    /// The statement; `{id}` and `{upload}` stand for the application's and the
    /// upload's id.
    pub sql: String,
    pub expected: &'static str,
    /// How many entries bind what is changed.
    pub bound_by: u64,
}

/// The cases, for a store whose literal of the single byte 0x00 is `x00`.
pub fn content_tamper_cases(x00: &str) -> Vec<TamperCase> {
    let payload = "payload (form data and attachments) does not match the hash in entry seq 1 of application {id}";
    let case = |what, sql: &str, expected, bound_by| TamperCase {
        what,
        sql: sql.replace("X00", x00),
        expected,
        bound_by,
    };
    vec![
        case(
            "form data",
            "UPDATE applications SET payload = replace(payload, 'Jörg', 'Jürgen') WHERE id = '{id}'",
            payload,
            1,
        ),
        case(
            "inline attachment",
            "UPDATE attachments SET content = X00 WHERE application_id = '{id}' AND position = 0",
            payload,
            1,
        ),
        case(
            "attachment's file name",
            "UPDATE attachments SET filename = 'anders.png' WHERE application_id = '{id}' AND position = 0",
            payload,
            1,
        ),
        case(
            "upload chunk",
            "UPDATE upload_chunks SET content = X00 WHERE upload_id = '{upload}' AND seq = 1",
            payload,
            1,
        ),
        case(
            "a deletion without its entry",
            "UPDATE applications SET payload = '{}', purged_at = '2026-01-01T00:00:00Z' WHERE id = '{id}'",
            payload,
            1,
        ),
        // Bound by its prepared and its delivered entry.
        case(
            "sealed message",
            "UPDATE deliveries SET sealed = X00 || sealed WHERE application_id = '{id}'",
            "sealed message does not match the hash in entry seq 2 of application {id}",
            2,
        ),
        case(
            "receipt",
            "UPDATE receipts SET signed = X00 WHERE receipt_id = 'r-1'",
            "signed receipt does not match the hash in entry seq 4 of application {id}",
            1,
        ),
        case(
            "document",
            "UPDATE documents SET content = X00 WHERE application_id = '{id}'",
            "decision document does not match the hash in entry seq 5 of application {id}",
            1,
        ),
        case(
            "document removed",
            "DELETE FROM documents WHERE application_id = '{id}'",
            "decision document of entry seq 5 of application {id} is missing",
            1,
        ),
    ]
}

impl TamperCase {
    pub fn fill(&self, text: &str, new: &NewApplication, upload: Uuid) -> String {
        text.replace("{id}", &new.id.to_string())
            .replace("{upload}", &upload.to_string())
    }

    /// Verification names the entry, says what is wrong, and shows nothing personal.
    pub async fn expect_named(&self, store: &dyn Store, new: &NewApplication, upload: Uuid) {
        let what = self.what;
        let report = store.verify_audit().await.unwrap();
        assert_eq!(report.broken, 0, "{what}: the chain itself is intact");
        assert_eq!(
            report.content.mismatched, self.bound_by,
            "{what}: {report:?}"
        );
        let first = report.first_break.clone().unwrap();
        assert_eq!(
            first.to_string(),
            self.fill(self.expected, new, upload),
            "{what}"
        );
        let verdict = report.verdict();
        for private in ["Jörg", "Jürgen", "Lageplan", "foto", "bescheid"] {
            assert!(!verdict.contains(private), "{what}: {verdict}");
        }
    }
}
