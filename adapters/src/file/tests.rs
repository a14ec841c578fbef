use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::*;
use crate::transport::{CheckContext, Transport};
use crate::{OutboundMessage, Outcome, Sink};

fn message(id: &str, message_type: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: id.into(),
        correlation_id: "0b5a3d1e-8a9c-4c55-9a7e-3f1f2b9f0c11".into(),
        message_type: message_type.into(),
        content_type: "application/pkcs7-mime; smime-type=authEnveloped-data".into(),
        headers: vec![("x-kopplung-service".into(), "99999001000000".into())],
        body: Bytes::from_static(b"sealed bytes"),
    }
}

fn sink(root: &std::path::Path, pattern: &str) -> FileSink {
    FileSink::new(
        "dresden-maengel",
        root.to_owned(),
        root.join("outgoing"),
        FileName::parse(pattern).unwrap(),
    )
}

fn names(folder: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_message_is_written_whole_with_its_manifest_and_a_retry_writes_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(dir.path(), "{message_id}{ext}");
    let id = "5d0c7f56-2a1f-4b8e-9d3c-0a6e1f2b3c4d";
    let sent = message(id, "maengelanzeige.meldung.0101");
    assert_eq!(sink.deliver(&sent).await, Outcome::Delivered);
    // The hub crashed before recording it: the next attempt writes the same names.
    assert_eq!(sink.deliver(&sent).await, Outcome::Delivered);
    let outgoing = dir.path().join("outgoing");
    assert_eq!(
        names(&outgoing),
        [format!("{id}.p7m"), format!("{id}.p7m.manifest.json")]
    );
    assert_eq!(
        std::fs::read(outgoing.join(format!("{id}.p7m"))).unwrap(),
        b"sealed bytes"
    );
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(outgoing.join(format!("{id}.p7m.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.file, format!("{id}.p7m"));
    assert_eq!(manifest.message_id, id);
    assert_eq!(manifest.message_type, "maengelanzeige.meldung.0101");
    assert_eq!(manifest.size, 12);
    assert_eq!(
        manifest.sha256,
        hex::encode(openssl::sha::sha256(b"sealed bytes"))
    );
    assert_eq!(sink.destination().transport, "file");
}

#[tokio::test]
async fn a_missing_exchange_folder_is_waited_for_and_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    let sink = sink(&root, "{message_id}{ext}");
    let outcome = sink.deliver(&message("a-1", "t.0101")).await;
    assert!(
        matches!(&outcome, Outcome::Unavailable { reason, .. } if reason.contains("not mounted")),
        "{outcome:?}"
    );
    assert!(!root.exists());
    std::fs::create_dir(&root).unwrap();
    assert_eq!(
        sink.deliver(&message("a-1", "t.0101")).await,
        Outcome::Delivered
    );
}

#[tokio::test]
async fn the_file_name_pattern_names_each_message_and_refuses_unsafe_values() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(dir.path(), "kopplung_{message_type}_{message_id}{ext}");
    let mut jose = message("m-2", "gewerbe.anzeige.0200");
    jose.content_type = "application/jose".into();
    assert_eq!(sink.deliver(&jose).await, Outcome::Delivered);
    assert!(
        dir.path()
            .join("outgoing/kopplung_gewerbe.anzeige.0200_m-2.jwe")
            .is_file()
    );
    let outcome = sink.deliver(&message("m-3", "../../etc/passwd")).await;
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
}

#[test]
fn a_file_name_pattern_is_checked_with_a_reason() {
    for (pattern, says) in [
        ("{message_type}.p7m", "must contain {message_id}"),
        ("in/{message_id}", "`/` is not allowed"),
        ("{message_id}{nummer}", "unknown placeholder `{nummer}`"),
        (".{message_id}", "must not start with `.`"),
        ("{message_id}.tmp", "must not end in `.tmp`"),
        ("{message_id", "without its `}`"),
    ] {
        let error = FileName::parse(pattern).unwrap_err();
        assert!(error.contains(says), "{pattern}: {error}");
    }
}

#[test]
fn the_settings_name_every_problem_with_its_key() {
    let mut config = FileConfig::new("exchange/dresden");
    config.outgoing = "../elsewhere".into();
    config.incoming = "../elsewhere/answers".into();
    config.file_name = "{message_type}".into();
    config.poll_ms = 0;
    let clerks = Default::default();
    let context = CheckContext {
        broker: None,
        lease: None,
        clerks: &clerks,
    };
    let keys: Vec<&str> = config.validate(&context).iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        ["outgoing", "incoming", "incoming", "file_name", "poll_ms"]
    );
    assert!(
        FileConfig::new("exchange/dresden")
            .validate(&context)
            .is_empty()
    );
}

/// A handler that takes `taken`, refuses `forged`, and waits with everything else.
fn handler() -> AnswerHandler {
    Arc::new(|body: Vec<u8>| {
        Box::pin(async move {
            match body.as_slice() {
                b"taken" => Answered::Taken,
                b"forged" => Answered::Refused(
                    br#"{"type":"urn:kopplung:problem:receipt-unverifiable"}"#.to_vec(),
                ),
                _ => Answered::Later,
            }
        })
    })
}

#[tokio::test]
async fn event_files_are_taken_refused_with_the_reason_or_left_for_later() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    // A link planted where the hub writes its reason is replaced, not written through.
    let precious = dir.path().join("hub.sqlite");
    std::fs::write(&precious, "the hub's own data").unwrap();
    std::fs::create_dir(incoming.join("refused")).unwrap();
    std::os::unix::fs::symlink(&precious, incoming.join("refused/forged.p7s.problem.json"))
        .unwrap();
    for (name, body) in [
        ("receipt.p7s", "taken"),
        ("forged.p7s", "forged"),
        ("decision.p7s", "not yet"),
        (".half-written.tmp", "taken"),
        ("big.p7s", "0123456789abcdef-too-large"),
    ] {
        std::fs::write(incoming.join(name), body).unwrap();
    }
    let (stop, stopped) = watch::channel(false);
    let folder = AnswerFolder {
        path: incoming.clone(),
        poll: Duration::from_millis(20),
    };
    let watcher = tokio::spawn(watch_answers(
        vec![("dresden-maengel".into(), folder, handler())],
        20,
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    watcher.await.unwrap();
    assert_eq!(
        names(&incoming),
        [".half-written.tmp", "decision.p7s", "refused", "taken"]
    );
    assert_eq!(names(&incoming.join("taken")), ["receipt.p7s"]);
    assert_eq!(
        names(&incoming.join("refused")),
        [
            "big.p7s",
            "big.p7s.problem.json",
            "forged.p7s",
            "forged.p7s.problem.json"
        ]
    );
    let problem =
        std::fs::read_to_string(incoming.join("refused/forged.p7s.problem.json")).unwrap();
    assert!(problem.contains("receipt-unverifiable"), "{problem}");
    assert_eq!(std::fs::read(&precious).unwrap(), b"the hub's own data");
    let problem = std::fs::read_to_string(incoming.join("refused/big.p7s.problem.json")).unwrap();
    assert!(problem.contains("at most 20 bytes"), "{problem}");
}

#[tokio::test]
async fn an_event_file_is_read_only_as_the_regular_file_listed_and_only_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "not for the hub").unwrap();
    let link = dir.path().join("receipt.p7s");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    // A link swapped in after the listing is not followed.
    assert!(super::source::read_regular(&link, 100).await.is_err());
    let grown = dir.path().join("grown.p7s");
    std::fs::write(&grown, "0123456789").unwrap();
    assert_eq!(super::source::read_regular(&grown, 9).await.unwrap(), None);
    assert_eq!(
        super::source::read_regular(&grown, 10).await.unwrap(),
        Some(b"0123456789".to_vec())
    );
}

#[tokio::test]
async fn a_link_planted_under_the_temporary_name_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(dir.path(), "{message_id}{ext}");
    let id = "5d0c7f56-2a1f-4b8e-9d3c-0a6e1f2b3c4d";
    let outgoing = dir.path().join("outgoing");
    std::fs::create_dir(&outgoing).unwrap();
    let precious = dir.path().join("hub.sqlite");
    std::fs::write(&precious, "the hub's own data").unwrap();
    for name in [
        format!(".{id}.p7m.tmp"),
        format!(".{id}.p7m.manifest.json.tmp"),
    ] {
        std::os::unix::fs::symlink(&precious, outgoing.join(name)).unwrap();
    }
    let sent = message(id, "maengelanzeige.meldung.0101");
    assert_eq!(sink.deliver(&sent).await, Outcome::Delivered);
    assert_eq!(std::fs::read(&precious).unwrap(), b"the hub's own data");
    assert_eq!(
        std::fs::read(outgoing.join(format!("{id}.p7m"))).unwrap(),
        b"sealed bytes"
    );
    assert!(
        !std::fs::symlink_metadata(outgoing.join(format!("{id}.p7m")))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn links_in_place_of_the_answer_folders_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // Content the handler would refuse: moved to `refused/` if it were read.
    std::fs::write(data.join("hub.sqlite"), "forged").unwrap();
    // `incoming` itself a link to the hub's data: nothing there is read or moved.
    let exchange = dir.path().join("exchange");
    std::fs::create_dir(&exchange).unwrap();
    std::os::unix::fs::symlink(&data, exchange.join("incoming")).unwrap();
    // `refused` a link out of a real `incoming`: a refused file stays where it is.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let incoming = other.join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    std::os::unix::fs::symlink(&data, incoming.join("refused")).unwrap();
    std::fs::write(incoming.join("forged.p7s"), "forged").unwrap();

    let (stop, stopped) = watch::channel(false);
    let folder = |path: std::path::PathBuf| AnswerFolder {
        path,
        poll: Duration::from_millis(20),
    };
    let watcher = tokio::spawn(watch_answers(
        vec![
            ("a".into(), folder(exchange.join("incoming")), handler()),
            ("b".into(), folder(incoming.clone()), handler()),
        ],
        1 << 20,
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    watcher.await.unwrap();
    assert_eq!(names(&data), ["hub.sqlite"]);
    assert_eq!(std::fs::read(data.join("hub.sqlite")).unwrap(), b"forged");
    assert_eq!(names(&incoming), ["forged.p7s", "refused"]);
}
