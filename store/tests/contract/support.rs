//! What the contract cases build on: the two backends behind one harness, and the
//! applications, receipts and tamperings the cases share.

// What the cases use, in one place.
pub use std::collections::{BTreeMap, HashSet};
pub use std::sync::Arc;

pub use kopplung_core::audit::{AuditVerifier, GENESIS_HASH, Problem, sha256_hex};
pub use kopplung_core::store::*;
pub use kopplung_core::{ManualClock, SystemClock};
pub use kopplung_store::{PostgresStore, SqliteStore};
pub use sqlx::Connection;
pub use sqlx::postgres::PgConnection;
pub use time::{Duration, OffsetDateTime};
pub use uuid::Uuid;

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
        authentication: None,
        sealed: None,
        follow_up: None,
        reply_channel: None,
    }
}

/// Room for ten deliveries to [`PROCEDURE`].
pub fn capacity() -> BTreeMap<String, u32> {
    [(PROCEDURE.to_string(), 10)].into()
}

/// An inline attachment `foto.png` of `content`, with its size and SHA-512.
pub fn photo(content: &[u8]) -> Attachment {
    Attachment {
        filename: "foto.png".into(),
        media_type: "image/png".into(),
        sha512: hex::encode(openssl::sha::sha512(content)),
        size: content.len() as u64,
        content: AttachmentContent::Inline(content.to_vec()),
        slot: None,
    }
}

/// A decided application with everything audit verification compares: form data, an
/// inline attachment and an upload of two chunks, the sealed message, a receipt, and the
/// decision with its document. On a fresh store its entries are seq 1 (accepted), 2
/// (prepared), 3 (delivered), 4 (received) and 5 (decided). Returns the application and
/// its upload's id.
pub async fn decided_with_everything(store: &dyn Store) -> (NewApplication, Uuid) {
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
    let mut new = application(None);
    new.attachments = vec![
        photo(b"\x89PNG photo of the pothole"),
        Attachment {
            filename: upload.filename.clone(),
            media_type: upload.media_type.clone(),
            sha512: sha512(&whole),
            size: whole.len() as u64,
            content: AttachmentContent::Upload(upload.id),
            slot: None,
        },
    ];
    to_decided(store, &new, "audit", b"sealed message").await;
    (new, upload.id)
}

/// The hub's signing identity of a demo PKI, and trust in it.
pub fn hub_pki() -> (
    tempfile::TempDir,
    kopplung_transformers::Sealer,
    kopplung_core::audit::CheckpointTrust,
) {
    use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    let sealer = kopplung_transformers::Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let trust = kopplung_core::audit::CheckpointTrust::load(&pki.ca_cert()).unwrap();
    (dir, sealer, trust)
}

/// Signs the chains' heads as the hub does and stores the checkpoint.
pub async fn checkpoint_head(
    store: &dyn Store,
    sealer: &kopplung_transformers::Sealer,
) -> kopplung_core::audit::Checkpoint {
    use kopplung_core::audit::checkpoint;
    let heads = store.audit_heads().await.unwrap();
    assert!(!heads.is_empty());
    let at = checkpoint::checkpoint_time(OffsetDateTime::now_utc());
    let signature = kopplung_transformers::laufzettel::sign_detached(
        sealer,
        checkpoint::heads_statement(&heads, &at).as_bytes(),
    )
    .unwrap();
    let checkpoint = kopplung_core::audit::Checkpoint {
        heads,
        at,
        signature,
    };
    store.record_audit_checkpoint(&checkpoint).await.unwrap();
    checkpoint
}

/// How verification names entry `seq` of `chain`: "seq 5" in the global chain, "seq 5
/// of chain kopplung-main" in an instance's.
pub fn named(chain: &str, seq: i64) -> String {
    if chain == kopplung_core::audit::GLOBAL_CHAIN {
        format!("seq {seq}")
    } else {
        format!("seq {seq} of chain {chain}")
    }
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

pub fn for_procedure(procedure: &str, received_at: OffsetDateTime) -> NewApplication {
    let mut new = application(None);
    new.procedure_id = procedure.into();
    new.received_at = received_at;
    new
}

pub async fn insert(store: &dyn Store, new: &NewApplication) {
    assert!(matches!(
        store.insert_application(new).await.unwrap(),
        Inserted::Created(_)
    ));
}

/// A claim under `lease` at `now` for a minute: at most `limit` entries, at most
/// `room[procedure]` of each procedure.
pub fn claim_at<'a>(
    lease: &'a str,
    now: OffsetDateTime,
    limit: u32,
    room: &'a BTreeMap<String, u32>,
) -> Claim<'a> {
    Claim {
        lease,
        now,
        lease_until: now + Duration::minutes(1),
        limit,
        capacity: room,
    }
}

/// Claims under `lease` at `now` until `until`: at most ten entries, with [`capacity`].
pub async fn claim_until(
    store: &dyn Store,
    lease: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<WorkItem> {
    let room = capacity();
    let claim = Claim {
        lease_until: until,
        ..claim_at(lease, now, 10, &room)
    };
    store.claim(&claim).await.unwrap()
}

/// Claims the entry of `id` (it must be due).
pub async fn claim_one(store: &dyn Store, id: Uuid, lease: &str) -> WorkItem {
    let room = capacity();
    store
        .claim(&claim_at(lease, OffsetDateTime::now_utc(), 100, &room))
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.application_id == id)
        .unwrap_or_else(|| panic!("{id} was not claimed"))
}

/// Claims at `at` for `lease_for` and returns the first entry claimed (one must be due).
pub async fn claim_first(
    store: &dyn Store,
    lease: &str,
    at: OffsetDateTime,
    lease_for: Duration,
) -> WorkItem {
    claim_until(store, lease, at, at + lease_for)
        .await
        .remove(0)
}

/// A new application, stored and its entry claimed under `lease`.
pub async fn claimed(store: &dyn Store, lease: &str) -> (NewApplication, WorkItem) {
    let new = application(None);
    insert(store, &new).await;
    let item = claim_one(store, new.id, lease).await;
    (new, item)
}

/// Records the claimed `item` prepared as `sealed` (its lease must hold); returns it as
/// the delivery then works on it.
pub async fn prepare(store: &dyn Store, item: &WorkItem, sealed: &[u8]) -> WorkItem {
    assert!(
        store
            .record_prepared(item, sealed, "<nachricht/>", "prepared")
            .await
            .unwrap()
    );
    WorkItem {
        step: Step::Deliver,
        ..item.clone()
    }
}

/// Records that the claimed `item` failed for good as `status` (its lease must hold).
pub async fn fail(store: &dyn Store, item: &WorkItem, status: Status, reason: &str) {
    assert!(store.record_failed(item, status, reason).await.unwrap());
}

/// Takes one application through accepted → prepared → delivered.
pub async fn deliver(store: &dyn Store, sealed: &[u8]) -> NewApplication {
    let (new, item) = claimed(store, &Uuid::new_v4().to_string()).await;
    let item = prepare(store, &item, sealed).await;
    assert!(
        store
            .record_delivered(&item, "message delivered to dresden-maengel via amqp q")
            .await
            .unwrap()
    );
    new
}

/// `count` intakes with the idempotency key `key` at once, taken in turn by the two
/// instances: how many created an application, and the ids the answers named.
pub async fn insert_at_once(
    instances: &[Arc<dyn Store>; 2],
    key: &str,
    count: usize,
) -> (usize, HashSet<Uuid>) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let store = instances[i % 2].clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                store
                    .insert_application(&application(Some((&key, "hash"))))
                    .await
                    .unwrap()
            })
        })
        .collect();
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
    (created, ids)
}

/// The stored record of application `id` (it must exist).
pub async fn stored(store: &dyn Store, id: Uuid) -> ApplicationRecord {
    store.application(id).await.unwrap().unwrap()
}

/// The stored record of application `id`, which must have `status` and have gone
/// through `history`.
pub async fn stored_as(
    store: &dyn Store,
    id: Uuid,
    status: Status,
    history: &[&str],
) -> ApplicationRecord {
    let record = stored(store, id).await;
    assert_eq!(record.status, status, "{id}");
    assert_eq!(statuses(&record.history), history, "{id}");
    record
}

/// Application `new` is prepared again (replayed or resent) after it was `before`: the
/// entry of that names its message id and each of `details`.
pub async fn prepared_again(
    store: &dyn Store,
    new: &NewApplication,
    before: &str,
    details: &[&str],
) {
    let record = stored_as(
        store,
        new.id,
        Status::Prepared,
        &["accepted", "prepared", before, "prepared"],
    )
    .await;
    let detail = &record.history[3].detail;
    assert!(detail.contains(&new.message_id.to_string()), "{detail}");
    for wanted in details {
        assert!(detail.contains(wanted), "{detail}");
    }
}

/// The history and the audit trail tell the same story at the same times.
pub fn assert_history_is_the_trail(history: &[HistoryEntry], entries: &[AuditEntry]) {
    for (history, entry) in history.iter().zip(entries) {
        assert_eq!(history.status, entry.status);
        assert_eq!(history.detail, entry.detail);
        assert_eq!(
            history.at,
            OffsetDateTime::parse(&entry.at, &time::format_description::well_known::Rfc3339)
                .unwrap()
        );
    }
}

pub fn statuses(history: &[HistoryEntry]) -> Vec<&str> {
    history.iter().map(|h| h.status.as_str()).collect()
}

pub fn receipt_for(new: &NewApplication, id: &str, status: Status) -> ReceiptRecord {
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
        recorded_by: None,
        appeal: None,
        fee: None,
    }
}

/// Takes `new` through accepted, prepared (as `sealed`, under `lease`), delivered,
/// received (receipt `r-1`) to decided (`d-1`, with a message and a document).
/// Records the receipt `id` for `new` that says `status`: what the store made of it.
pub async fn receipt_outcome(
    store: &dyn Store,
    new: &NewApplication,
    id: &str,
    status: Status,
) -> ReceiptOutcome {
    store
        .record_receipt(&receipt_for(new, id, status))
        .await
        .unwrap()
}

pub async fn to_decided(store: &dyn Store, new: &NewApplication, lease: &str, sealed: &[u8]) {
    insert(store, new).await;
    let item = claim_one(store, new.id, lease).await;
    let item = prepare(store, &item, sealed).await;
    assert!(store.record_delivered(&item, "delivered").await.unwrap());
    assert_eq!(
        receipt_outcome(store, new, "r-1", Status::Received).await,
        ReceiptOutcome::Applied(Status::Received)
    );
    let decision = decision_with_document(new, "Ihrem Antrag wird stattgegeben.");
    assert_eq!(
        store.record_receipt(&decision).await.unwrap(),
        ReceiptOutcome::Applied(Status::Decided)
    );
}

/// The decision `d-1` on `new` with `message` and a Bescheid as its document.
pub fn decision_with_document(new: &NewApplication, message: &str) -> ReceiptRecord {
    let mut decision = receipt_for(new, "d-1", Status::Decided);
    decision.message = Some(message.into());
    decision.document = Some(EventDocument {
        filename: "bescheid.pdf".into(),
        media_type: "application/pdf".into(),
        content: b"%PDF-1.7 bescheid".to_vec(),
    });
    decision.appeal = Some(kopplung_core::store::Appeal {
        text: "Gegen diesen Bescheid kann binnen eines Monats Widerspruch erhoben werden.".into(),
        deadline: time::macros::date!(2026 - 12 - 31),
    });
    decision.fee = Some(kopplung_core::store::DecisionFee {
        cents: 3070,
        purpose: "Gebühr Bewohnerparkausweis".into(),
    });
    decision
}
