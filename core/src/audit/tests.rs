use super::*;

const APP: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

fn app() -> Uuid {
    Uuid::parse_str(APP).unwrap()
}

fn chain(n: usize) -> Vec<AuditEntry> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    for i in 0..n {
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        let (status, message) = match i % 3 {
            0 => ("accepted", None),
            1 => (
                "prepared",
                Some(sha256_hex(format!("sealed {i}").as_bytes())),
            ),
            _ => (
                "delivered",
                Some(sha256_hex(format!("sealed {}", i - 1).as_bytes())),
            ),
        };
        let entry = entry(
            prev,
            &format!("2025-01-0{}T10:00:00Z", i % 9 + 1),
            status,
            &format!("step {i}"),
            Binding::message(message),
        );
        entries.push(entry);
    }
    entries
}

/// An entry of the test application.
fn entry(
    prev: Option<(i64, &str)>,
    at: &str,
    status: &str,
    detail: &str,
    binding: Binding,
) -> AuditEntry {
    AuditEntry::next_in(GLOBAL_CHAIN, prev, app(), at, status, detail, binding)
}

/// The encoding of the first entry's fields from the domain to the message hash's marker
/// (none), as both formats begin it.
fn first_entry_head(domain: &str) -> Vec<u8> {
    [
        text(domain),
        1i64.to_be_bytes().to_vec(),
        text(APP),
        text("2025-01-02T03:04:05Z"),
        text("accepted"),
        text("accepted from client demo"),
        vec![0],
    ]
    .concat()
}

/// The documentation's example chain: its first entry (accepted), binding `binding`…
fn example_first(binding: Binding) -> AuditEntry {
    entry(
        None,
        "2025-01-02T03:04:05Z",
        "accepted",
        "accepted from client demo",
        binding,
    )
}

/// … and its second (the message sealed) after `first`.
fn example_second(first: &AuditEntry, binding: Binding) -> AuditEntry {
    entry(
        Some((first.seq, &first.hash)),
        "2025-01-02T03:04:06Z",
        "prepared",
        "message sealed",
        binding,
    )
}

/// `entry` as format 1 (hubs before content hashes) stored it, hashed again.
fn as_v1(mut entry: AuditEntry) -> AuditEntry {
    entry.version = 1;
    entry.hash = entry.computed_hash();
    entry
}

/// The first break verification names in a chain of `len` entries after `tamper`.
fn first_break_after(len: usize, tamper: impl FnOnce(&mut Vec<AuditEntry>)) -> Break {
    let mut entries = chain(len);
    tamper(&mut entries);
    verify_chain(&entries, None).first_break.unwrap()
}

/// The encoding's `str(s)`, spelled out.
fn text(s: &str) -> Vec<u8> {
    [&(s.len() as i64).to_be_bytes()[..], s.as_bytes()].concat()
}

#[test]
fn the_hash_of_a_known_entry() {
    // Format 1, as stored by hubs before content hashes: still verifies.
    let first = as_v1(example_first(Binding::message(None)));
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(GENESIS_HASH.len(), 64);
    // The encoding spelled out byte by byte, as the module documentation defines it.
    let expected = [first_entry_head(DOMAIN_V1), text(GENESIS_HASH)].concat();
    assert_eq!(first.canonical_bytes(), expected);
    // Fixed values, computed independently with the Python snippet of the module
    // documentation. A change here breaks every stored chain.
    assert_eq!(
        first.hash,
        "68175068689237d6033d1a2413cb21eb99243a8989cef90978dcf89998e6f89c"
    );
    let message = sha256_hex(b"sealed message");
    assert_eq!(
        message,
        "78a0f627ebf2e93e683321dea872f78d6cb71cd79081c875cb84e77c6e2effc6"
    );
    let second = as_v1(example_second(&first, Binding::message(Some(message))));
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(
        second.hash,
        "e05e2ee3a7d8e02d858e6e18a19aed47cfacc51e0f11027e1ce972ea8cf24959"
    );
    assert!(verify_chain(&[first, second], Some(2)).is_intact());
}

#[test]
fn the_hash_of_a_known_entry_of_format_2() {
    let photo = b"\x89PNG photo";
    let mut hasher = FileHasher::new();
    hasher.update(&photo[..4]);
    hasher.update(&photo[4..]);
    let attachment = hasher.finish("foto.png", "image/png");
    assert_eq!(attachment.size, 10);
    assert_eq!(
        attachment.sha512,
        "f419a000c78170cfae1bbf53105fa9f86dd00c21cd9c1267b76be44f71692b804592d668dbe218d237dbcf96cefd7db90e947934743bb31f2c3253b3e9f324bf"
    );
    let payload = r#"{"kontakt":{"name":"Jörg"}}"#;
    let content = content::content_sha256(Some(payload), std::slice::from_ref(&attachment));
    // The content encoding spelled out.
    let encoded = [
        text(content::CONTENT_DOMAIN),
        vec![1],
        text(payload),
        1i64.to_be_bytes().to_vec(),
        text("foto.png"),
        text("image/png"),
        10i64.to_be_bytes().to_vec(),
        text(&attachment.sha512),
    ]
    .concat();
    assert_eq!(content, sha256_hex(&encoded));
    let first = example_first(Binding {
        message_sha256: None,
        content_sha256: Some(content.clone()),
    });
    assert_eq!(first.version, 2);
    let expected = [
        first_entry_head(DOMAIN_V2),
        vec![1],
        text(&content),
        text(GENESIS_HASH),
    ]
    .concat();
    assert_eq!(first.canonical_bytes(), expected);
    // Fixed values, computed independently with the Python snippets of the module
    // documentation and of `content`. A change here breaks every stored chain.
    assert_eq!(
        content,
        "015d8034440eca47d81c0b3c05e9def2947eaa721d5b497d0b2214c4a501d8c9"
    );
    assert_eq!(
        first.hash,
        "b591dded7d3fdc3377cd1f19ef7975f61458a6e8ef0b0bcf6b69747341b8ab0c"
    );
    let second = example_second(
        &first,
        Binding::message(Some(sha256_hex(b"sealed message"))),
    );
    assert_eq!(
        second.hash,
        "5b4cf4ea7e38c3134e37dbe247a0925306d59dc15168fd1009247cfaffd64b3a"
    );
    assert_eq!(
        content::purged_content_sha256(),
        "f8f0da8e0da799e35aec97021ec13563c1d7ee9addf895d29da1fe692b4a6c71"
    );
    let mut document = FileHasher::new();
    document.update(b"%PDF-1.7 bescheid");
    assert_eq!(
        content::document_content_sha256(&document.finish("bescheid.pdf", "application/pdf")),
        "e81a4114e3d5ea7c77cc2ea672a67fccf65ec3b469a0c0cda32e53e65d19d678"
    );
    // A chain may go on from format 1 to format 2.
    let old = as_v1(entry(
        None,
        "2025-01-01T00:00:00Z",
        "accepted",
        "old",
        Binding::message(None),
    ));
    let new = entry(
        Some((old.seq, &old.hash)),
        "t",
        "prepared",
        "d",
        Binding::default(),
    );
    assert!(verify_chain(&[old, new], None).is_intact());
}

#[test]
fn a_message_hash_and_no_message_hash_differ() {
    let unchained =
        |status: &str, detail: &str, binding: Binding| entry(None, "t", status, detail, binding);
    let without = unchained("prepared", "d", Binding::default());
    let empty = unchained("prepared", "d", Binding::message(Some(String::new())));
    assert_ne!(without.hash, empty.hash);
    // A hash as message or as content: different entries.
    let content = unchained(
        "prepared",
        "d",
        Binding {
            message_sha256: None,
            content_sha256: Some(String::new()),
        },
    );
    assert_ne!(content.hash, empty.hash);
    // Moving bytes between fields changes the hash (length prefixes).
    let a = unchained("prepared", "ab", Binding::default());
    let b = unchained("prepareda", "b", Binding::default());
    assert_ne!(a.hash, b.hash);
    // The format is part of the hash: a format 2 entry read as format 1 does not verify.
    let mut downgraded = without.clone();
    downgraded.version = 1;
    assert_ne!(downgraded.computed_hash(), without.hash);
}

#[test]
fn an_intact_chain_verifies() {
    let entries = chain(7);
    let report = verify_chain(&entries, Some(7));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 7);
    assert_eq!(report.broken, 0);
    assert_eq!(verify_chain(&[], None).checked, 0);
    assert!(verify_chain(&[], None).is_intact());
}

#[test]
fn a_changed_detail_is_a_hash_mismatch_at_its_seq() {
    let mut entries = chain(6);
    entries[3].detail.push('!');
    let report = verify_chain(&entries, None);
    let first = report.first_break.unwrap();
    assert_eq!(first.seq, 4);
    assert!(matches!(first.problem, Problem::HashMismatch { .. }));
    assert_eq!(report.checked, 6);
    assert_eq!(report.broken, 1);
}

#[test]
fn a_changed_message_hash_is_found() {
    let first = first_break_after(6, |e| e[4].message_sha256 = None);
    assert_eq!(first.seq, 5);
    assert!(matches!(first.problem, Problem::HashMismatch { .. }));
}

#[test]
fn a_changed_prev_hash_is_named() {
    let first = first_break_after(5, |e| e[2].prev_hash = GENESIS_HASH.into());
    assert_eq!(first.seq, 3);
    assert!(matches!(first.problem, Problem::PrevHashMismatch { .. }));
}

#[test]
fn a_rehashed_entry_breaks_the_next_link() {
    let first = first_break_after(5, |e| {
        e[1].detail = "rewritten".into();
        e[1].hash = e[1].computed_hash();
    });
    assert_eq!(first.seq, 3);
    assert!(matches!(first.problem, Problem::PrevHashMismatch { .. }));
}

#[test]
fn a_removed_entry_is_a_gap() {
    let first = first_break_after(6, |e| {
        e.remove(2);
    });
    assert_eq!(first.seq, 4);
    assert_eq!(first.problem, Problem::Gap { expected: 3 });

    let first = first_break_after(3, |e| {
        e.remove(0);
    });
    assert_eq!(
        first,
        Break {
            chain: GLOBAL_CHAIN.into(),
            seq: 2,
            problem: Problem::Gap { expected: 1 }
        }
    );
}

#[test]
fn entries_removed_from_the_end_are_noticed() {
    let mut entries = chain(6);
    entries.truncate(4);
    let report = verify_chain(&entries, Some(6));
    assert_eq!(
        report.first_break,
        Some(Break {
            chain: GLOBAL_CHAIN.into(),
            seq: 5,
            problem: Problem::Truncated { highest_issued: 6 }
        })
    );
    assert!(verify_chain(&entries, Some(4)).is_intact());
}

#[test]
fn the_first_of_several_breaks_is_named() {
    let mut entries = chain(8);
    entries[6].status = "delivered!".into();
    entries[2].at = "2025-01-01T00:00:00Z".into();
    let report = verify_chain(&entries, None);
    assert_eq!(report.first_break.unwrap().seq, 3);
    assert_eq!(report.broken, 2);
    assert_eq!(report.checked, 8);
}

#[test]
fn an_unreadable_row_breaks_the_chain() {
    let entries = chain(4);
    let mut verifier = ChainVerifier::new();
    verifier.check(&entries[0]);
    verifier.unreadable(2, "detail is not text".into());
    verifier.check(&entries[2]);
    verifier.check(&entries[3]);
    let report = verifier.finish(Some(4));
    assert_eq!(report.checked, 4);
    assert_eq!(report.broken, 1);
    let first = report.first_break.unwrap();
    assert_eq!(first.seq, 2);
    assert!(first.to_string().starts_with("seq 2: unreadable entry"));
}

#[test]
fn the_laufzettel_lists_the_entries_without_the_application_id() {
    let entries = chain(3);
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&laufzettel_json(app(), &entries, at).unwrap()).unwrap();
    assert_eq!(json["application_id"], APP);
    assert_eq!(json["exported_at"], "2023-11-14T22:13:20Z");
    let listed = json["entries"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["seq"], 1);
    assert_eq!(listed[0]["message_sha256"], serde_json::Value::Null);
    assert_eq!(
        listed[1]["message_sha256"],
        entries[1].message_sha256.as_deref().unwrap()
    );
    assert_eq!(listed[2]["prev_hash"], entries[1].hash);
    assert!(listed[0].get("application_id").is_none());
}

/// A checkpoint of `entry`, signed by the demo PKI's hub.
fn signed_checkpoint(seq: i64, hash: &str) -> (tempfile::TempDir, Checkpoint, CheckpointTrust) {
    use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    let sealer = kopplung_transformers::Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let at = checkpoint::checkpoint_time(OffsetDateTime::now_utc());
    let statement = checkpoint::statement(seq, hash, &at);
    let signature =
        kopplung_transformers::laufzettel::sign_detached(&sealer, statement.as_bytes()).unwrap();
    let checkpoint = Checkpoint {
        heads: vec![ChainHead::global(seq, hash)],
        at,
        signature,
    };
    let trust = CheckpointTrust::load(&pki.ca_cert()).unwrap();
    (dir, checkpoint, trust)
}

#[test]
fn a_tail_removed_with_its_sequence_is_named_by_a_checkpoint() {
    let entries = chain(6);
    let (_pki, checkpoint, trust) = signed_checkpoint(6, &entries[5].hash);
    // Intact: the checkpoint holds.
    let mut verifier = AuditVerifier::new(Some(trust));
    verifier.stored_checkpoints(vec![checkpoint.clone()]);
    entries.iter().for_each(|e| verifier.entry(e));
    let report = verifier.finish(Some(6));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checkpoints.stored, 1);
    assert_eq!(report.checkpoints.newest_seq, Some(6));
    assert_eq!(report.checkpoints.signatures_unchecked, 0);

    // The last two entries gone, and the highest seq issued with them.
    let mut verifier = AuditVerifier::new(None);
    verifier.stored_checkpoints(vec![checkpoint.clone()]);
    entries[..4].iter().for_each(|e| verifier.entry(e));
    let report = verifier.finish(Some(4));
    assert_eq!(report.broken, 0, "the chain alone looks intact");
    assert_eq!(report.checkpoints.failed, 1);
    assert_eq!(report.checkpoints.signatures_unchecked, 1);
    let first = report.first_break.clone().unwrap();
    assert_eq!(first.seq, 6);
    assert_eq!(
        first.to_string(),
        format!(
            "seq 6 named by the checkpoint of {} is missing (the chain ends at seq 4)",
            checkpoint.at
        )
    );
    assert!(
        report
            .verdict()
            .starts_with("audit trail broken: seq 6 named by the checkpoint of"),
        "{}",
        report.verdict()
    );

    // A checkpoint held outside names the same.
    let mut verifier = AuditVerifier::new(None);
    verifier.hold_outside(vec![checkpoint], "saved.json");
    entries[..4].iter().for_each(|e| verifier.entry(e));
    let report = verifier.finish(Some(4));
    assert_eq!(report.checkpoints.outside, 1);
    assert!(
        report
            .first_break
            .unwrap()
            .to_string()
            .contains("(from saved.json) is missing")
    );
}

#[test]
fn a_checkpoint_with_another_hash_or_a_foreign_signature_is_named() {
    let entries = chain(4);
    let (_pki, checkpoint, trust) = signed_checkpoint(3, &entries[0].hash);
    let mut verifier = AuditVerifier::new(None);
    verifier.stored_checkpoints(vec![checkpoint]);
    entries.iter().for_each(|e| verifier.entry(e));
    let first = verifier.finish(Some(4)).first_break.unwrap();
    assert_eq!(first.seq, 3);
    assert!(
        first
            .to_string()
            .starts_with("seq 3 does not carry the hash named by the checkpoint of"),
        "{first}"
    );

    // Signed by another hub: not evidence, and named as such.
    let (_other, foreign, _) = signed_checkpoint(3, &entries[2].hash);
    let mut verifier = AuditVerifier::new(Some(trust));
    verifier.stored_checkpoints(vec![foreign]);
    entries.iter().for_each(|e| verifier.entry(e));
    let report = verifier.finish(Some(4));
    assert_eq!(report.checkpoints.failed, 1);
    assert_eq!(report.checkpoints.newest_seq, None);
    let first = report.first_break.unwrap();
    assert!(matches!(first.problem, Problem::CheckpointSignature { .. }));
    assert!(first.to_string().contains("is not the hub's"), "{first}");
}

#[test]
fn the_problem_with_the_lowest_seq_of_any_kind_is_named_first() {
    let mut entries = chain(6);
    // A broken link at seq 5 …
    entries[4].detail.push('!');
    let stored = StoredContent {
        exists: true,
        payload: "{}".into(),
        ..StoredContent::default()
    };
    // … and an application whose form data does not match its `accepted` entry (seq 2).
    let other = uuid::Uuid::new_v4();
    let accepted = AuditEntry {
        seq: 2,
        application_id: other.to_string(),
        content_sha256: Some(content::content_sha256(Some(r#"{"a":1}"#), &[])),
        ..entries[1].clone()
    };
    let mut verifier = AuditVerifier::new(None);
    entries.iter().for_each(|e| verifier.entry(e));
    verifier.application(std::slice::from_ref(&accepted), &stored);
    let report = verifier.finish(Some(6));
    assert_eq!(report.broken, 1);
    assert_eq!(report.content.mismatched, 1);
    assert_eq!(report.content.checked, 1);
    let first = report.first_break.clone().unwrap();
    assert_eq!(first.seq, 2);
    assert_eq!(
        first.to_string(),
        format!(
            "payload (form data and attachments) does not match the hash in entry seq 2 of application {other}"
        )
    );
    assert_eq!(
        report.verdict(),
        format!(
            "audit trail broken: {first} (6 entries checked, 1 broken link(s), 1 content mismatch(es), 0 checkpoint problem(s))"
        )
    );
    // A broken link first keeps the old wording.
    let report = verify_chain(&entries, None);
    assert!(
        report
            .verdict()
            .starts_with("audit trail broken at seq 5: hash mismatch"),
        "{}",
        report.verdict()
    );
    assert_eq!(
        verify_chain(&chain(3), None).verdict(),
        "audit trail intact: 3 entries"
    );
}

#[test]
fn an_entry_of_an_unknown_format_is_unreadable() {
    let first = first_break_after(3, |e| {
        e[1].version = 3;
        e[1].hash = e[1].computed_hash();
    });
    assert_eq!(first.seq, 2);
    assert_eq!(
        first.problem,
        Problem::Unreadable("unknown format 3".into())
    );
    let first = first_break_after(3, |e| {
        e[1].version = 1;
        e[1].content_sha256 = Some("ab".into());
        e[1].hash = e[1].computed_hash();
    });
    assert!(matches!(first.problem, Problem::Unreadable(_)), "{first}");
}

/// `n` entries of `chain` for the test application.
fn chain_named(name: &str, n: usize) -> Vec<AuditEntry> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    for i in 0..n {
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        entries.push(AuditEntry::next_in(
            name,
            prev,
            app(),
            &format!("2025-01-0{}T10:00:00Z", i % 9 + 1),
            "received",
            &format!("{name} {i}"),
            Binding::default(),
        ));
    }
    entries
}

/// A checkpoint of format 2 of `heads`, signed by the demo PKI's hub.
fn signed_heads(heads: Vec<ChainHead>) -> (tempfile::TempDir, Checkpoint, CheckpointTrust) {
    use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    let sealer = kopplung_transformers::Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let at = checkpoint::checkpoint_time(OffsetDateTime::now_utc());
    let statement = checkpoint::heads_statement(&heads, &at);
    let signature =
        kopplung_transformers::laufzettel::sign_detached(&sealer, statement.as_bytes()).unwrap();
    let trust = CheckpointTrust::load(&pki.ca_cert()).unwrap();
    (
        dir,
        Checkpoint {
            heads,
            at,
            signature,
        },
        trust,
    )
}

fn head(entries: &[AuditEntry]) -> ChainHead {
    let last = entries.last().unwrap();
    ChainHead {
        chain: last.chain.clone(),
        seq: last.seq,
        hash: last.hash.clone(),
    }
}

/// Verifies `chains` (each with its highest seq issued) against `checkpoint`.
fn verify_chains(
    chains: &[(&[AuditEntry], i64)],
    checkpoint: &Checkpoint,
    trust: CheckpointTrust,
) -> AuditReport {
    let mut verifier = AuditVerifier::new(Some(trust));
    verifier.stored_checkpoints(vec![checkpoint.clone()]);
    let mut issued = std::collections::BTreeMap::new();
    for (entries, highest) in chains {
        entries.iter().for_each(|e| verifier.entry(e));
        if let Some(first) = entries.first() {
            issued.insert(first.chain.clone(), *highest);
        }
    }
    verifier.finish_chains(issued)
}

#[test]
fn chains_verify_each_on_its_own_and_a_checkpoint_names_every_head() {
    let a = chain_named("kopplung-a", 5);
    let b = chain_named("kopplung-b", 3);
    // Both chains begin at seq 1 from genesis.
    assert_eq!((a[0].seq, b[0].seq), (1, 1));
    assert_eq!(b[0].prev_hash, GENESIS_HASH);
    let (_pki, checkpoint, trust) = signed_heads(vec![head(&a), head(&b)]);
    let report = verify_chains(&[(&a, 5), (&b, 3)], &checkpoint, trust);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 8);

    // The last entry of one chain removed, with its highest seq issued.
    let checkpoint2 = checkpoint;
    let mut verifier = AuditVerifier::new(None);
    verifier.stored_checkpoints(vec![checkpoint2.clone()]);
    a.iter().for_each(|e| verifier.entry(e));
    b[..2].iter().for_each(|e| verifier.entry(e));
    let report =
        verifier.finish_chains([("kopplung-a".to_owned(), 5), ("kopplung-b".to_owned(), 2)].into());
    let first = report.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-b", 3));
    assert!(
        first
            .to_string()
            .starts_with("seq 3 of chain kopplung-b named by the checkpoint of"),
        "{first}"
    );

    // A whole chain removed (and what it issued): the checkpoint still names it.
    let mut verifier = AuditVerifier::new(None);
    verifier.stored_checkpoints(vec![checkpoint2]);
    a.iter().for_each(|e| verifier.entry(e));
    let report = verifier.finish_chains([("kopplung-a".to_owned(), 5)].into());
    let first = report.first_break.unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-b", 3));
    assert!(matches!(
        first.problem,
        Problem::CheckpointMissing {
            chain_ends_at: 0,
            ..
        }
    ));

    // A chain whose entries are gone but whose highest seq issued is kept: truncated.
    let mut verifier = AuditVerifier::new(None);
    a.iter().for_each(|e| verifier.entry(e));
    let report =
        verifier.finish_chains([("kopplung-a".to_owned(), 5), ("kopplung-b".to_owned(), 3)].into());
    let first = report.first_break.unwrap();
    assert_eq!(first.chain, "kopplung-b");
    assert_eq!(first.problem, Problem::Truncated { highest_issued: 3 });
}

#[test]
fn entries_of_two_chains_interleaved_in_another_order_break_the_links() {
    let a = chain_named("kopplung-a", 3);
    let mut b = chain_named("kopplung-b", 3);
    // An entry of chain a moved to chain b keeps a's links: they do not fit b.
    b[1] = AuditEntry {
        chain: "kopplung-b".into(),
        ..a[1].clone()
    };
    let mut verifier = AuditVerifier::new(None);
    a.iter().chain(&b).for_each(|e| verifier.entry(e));
    let first = verifier
        .finish_chains(std::collections::BTreeMap::new())
        .first_break
        .unwrap();
    assert_eq!((first.chain.as_str(), first.seq), ("kopplung-b", 2));
    assert!(matches!(first.problem, Problem::PrevHashMismatch { .. }));
}
