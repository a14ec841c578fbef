//! The list: each transport parses from its tagged section, checks itself naming every
//! problem by key, and builds its sink from the files it names.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;

use super::*;
use crate::amqp::AmqpBrokerConfig;

fn parse(json: serde_json::Value) -> DeliveryConfig {
    serde_json::from_value(json).unwrap()
}

fn context<'a>(
    broker: Option<&'a AmqpBrokerConfig>,
    clerks: &'a BTreeSet<&'a str>,
) -> CheckContext<'a> {
    CheckContext {
        broker,
        lease: Some(Duration::from_secs(120)),
        clerks,
    }
}

fn keys(problems: &[ConfigProblem]) -> Vec<&'static str> {
    problems.iter().map(|p| p.key).collect()
}

fn build(delivery: &DeliveryConfig, dir: &Path) -> Result<Arc<dyn Sink>, Error> {
    delivery.build(&BuildContext {
        procedure: "dresden-maengel",
        pki_dir: dir,
        data_dir: dir,
        broker: None,
    })
}

fn build_error(delivery: &DeliveryConfig, dir: &Path) -> String {
    match build(delivery, dir) {
        Ok(_) => panic!("built"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn every_transport_of_the_list_parses_from_its_tag() {
    let sections = [
        serde_json::json!({"transport": "amqp", "queue": "q", "reply_queue": "q.events"}),
        serde_json::json!({"transport": "http", "url": "https://fv.example/eingang"}),
        serde_json::json!({"transport": "pull", "token_file": "pull-token"}),
        serde_json::json!({"transport": "fitconnect", "certificate": "procedures/fv-abonnent.crt"}),
        serde_json::json!({"transport": "file", "directory": "exchange/fv"}),
        serde_json::json!({"transport": "manual", "clerks": ["anna"]}),
    ];
    let names: Vec<&str> = sections
        .into_iter()
        .map(|section| parse(section).transport())
        .collect();
    assert_eq!(names, DeliveryConfig::NAMES);

    let error = serde_json::from_value::<DeliveryConfig>(
        serde_json::json!({"transport": "sftp", "host": "fv.example"}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown variant `sftp`"), "{error}");
    let error = serde_json::from_value::<DeliveryConfig>(
        serde_json::json!({"transport": "http", "url": "https://x/", "qeue": "q"}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown field `qeue`"), "{error}");
}

#[test]
fn what_a_transport_offers_the_hub() {
    let amqp =
        parse(serde_json::json!({"transport": "amqp", "queue": "q", "reply_queue": "q.events"}));
    assert_eq!(amqp.reply_queue(), Some("q.events"));
    assert!(amqp.sealed() && amqp.api_token().is_none());
    let pull = parse(serde_json::json!({"transport": "pull", "token_file": "pull-token"}));
    assert_eq!(
        pull.api_token(),
        Some(&ApiToken {
            sha256: None,
            file: Some(Path::new("pull-token").to_owned()),
        })
    );
    let manual = parse(serde_json::json!({"transport": "manual", "clerks": ["anna"]}));
    assert!(!manual.sealed());
    assert_eq!(manual.reply_queue(), None);
    assert_eq!(manual.answer_folder(Path::new("/data")), None);
    let file =
        parse(serde_json::json!({"transport": "file", "directory": "exchange/fv", "poll_ms": 500}));
    assert!(file.sealed() && file.api_token().is_none() && file.reply_queue().is_none());
    let folder = file.answer_folder(Path::new("/data")).unwrap();
    assert_eq!(folder.path, Path::new("/data/exchange/fv/incoming"));
    assert_eq!(folder.poll, std::time::Duration::from_millis(500));
}

#[test]
fn each_transport_names_every_problem_with_its_key() {
    let clerks = BTreeSet::from(["anna"]);
    let broker = AmqpBrokerConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f");

    let pull = parse(serde_json::json!({
        "transport": "pull",
        "token_sha256": "abc",
        "token_file": "pull-token",
        "callback_url": "ftp://fv.example/hook",
    }));
    let problems = pull.validate(&context(None, &clerks));
    assert_eq!(
        keys(&problems),
        [
            "token_sha256",
            "token_sha256",
            "callback_secret_file",
            "callback_url"
        ],
        "{problems:?}"
    );

    let amqp = parse(serde_json::json!({"transport": "amqp", "queue": "q", "reply_queue": "q"}));
    assert_eq!(
        keys(&amqp.validate(&context(None, &clerks))),
        ["transport", "reply_queue"]
    );
    assert_eq!(amqp.validate(&context(Some(&broker), &clerks)).len(), 1);

    // 60 s fit into the attempt of a 120 s lease (90 s), not into that of a 60 s one.
    let http = parse(
        serde_json::json!({"transport": "http", "url": "https://fv.example/", "timeout_ms": 60000}),
    );
    assert!(http.validate(&context(None, &clerks)).is_empty());
    let short = CheckContext {
        lease: Some(Duration::from_secs(60)),
        ..context(None, &clerks)
    };
    let problems = http.validate(&short);
    assert_eq!(keys(&problems), ["timeout_ms"]);
    assert!(problems[0].message.contains("(60 s)"), "{problems:?}");

    let manual =
        parse(serde_json::json!({"transport": "manual", "clerks": ["anna", "niemand", "keiner"]}));
    let problems = manual.validate(&context(None, &clerks));
    assert_eq!(keys(&problems), ["clerks", "clerks"]);
    assert!(problems[0].message.contains("unknown clerk `niemand`"));
    assert!(problems[1].message.contains("unknown clerk `keiner`"));
    let nobody = parse(serde_json::json!({"transport": "manual", "clerks": []}));
    assert_eq!(
        nobody.validate(&context(None, &clerks))[0].to_string(),
        "clerks: name at least one clerk"
    );
}

#[test]
fn the_broker_names_every_problem_without_its_password() {
    let mut broker = AmqpBrokerConfig::new("amqp://kopplung:geheim@rabbit example/%2f");
    broker.connect_timeout_secs = 0;
    broker.reconnect_base_ms = 0;
    let problems = broker.validate(Some(Duration::from_secs(120)));
    assert_eq!(
        keys(&problems),
        ["url", "connect_timeout_secs", "reconnect_max_ms"],
        "{problems:?}"
    );
    assert!(!problems[0].message.contains("geheim"), "{problems:?}");

    // 2 * 5 + 30 = 40 s: fits the attempt of a 120 s lease, not that of a 40 s one.
    let broker = AmqpBrokerConfig::new("amqp://127.0.0.1:5672/%2f");
    assert!(broker.validate(Some(Duration::from_secs(120))).is_empty());
    let problems = broker.validate(Some(Duration::from_secs(40)));
    assert_eq!(keys(&problems), ["confirm_timeout_secs"]);
    assert!(problems[0].message.contains("(40 s)"), "{problems:?}");
    assert!(broker.validate(None).is_empty(), "no lease, no comparison");
}

#[test]
fn sinks_are_built_from_the_files_their_settings_name() {
    let dir = tempfile::tempdir().unwrap();
    let manual = parse(serde_json::json!({"transport": "manual", "clerks": ["anna"]}));
    let sink = build(&manual, dir.path()).unwrap();
    assert_eq!(sink.destination().destination, "/inbox/dresden-maengel");

    let pull = parse(serde_json::json!({
        "transport": "pull",
        "token_file": "pull-token",
        "callback_url": "http://127.0.0.1:9/hook",
        "callback_secret_file": "callback-secret",
    }));
    let error = build_error(&pull, dir.path());
    assert!(error.contains("callback-secret"), "{error}");
    std::fs::write(
        dir.path().join("callback-secret"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let sink = build(&pull, dir.path()).unwrap();
    assert_eq!(
        sink.destination().destination,
        "/api/v1/procedures/dresden-maengel/messages"
    );

    let amqp = parse(serde_json::json!({"transport": "amqp", "queue": "q"}));
    assert!(matches!(build(&amqp, dir.path()), Err(Error::Invalid(_))));

    let http = parse(serde_json::json!({
        "transport": "http",
        "url": "https://fv.example/",
        "client_certificate": "client.crt",
        "client_key": "client.key",
    }));
    let error = build_error(&http, dir.path());
    assert!(
        error.contains("client.crt"),
        "the certificate first: {error}"
    );
    std::fs::write(dir.path().join("client.crt"), b"no certificate").unwrap();
    let error = build_error(&http, dir.path());
    assert!(error.contains("not a PEM certificate"), "{error}");
}

#[test]
fn a_key_others_may_read_is_refused_with_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let file = dir.path().join("client.key");
    std::fs::write(&file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = crate::files::private_key(&file).unwrap_err().to_string();
    assert!(
        error.contains("mode 644") && error.contains("chmod 600"),
        "{error}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(crate::files::private_key(&file).is_ok());
    std::fs::write(&file, b"-----BEGIN PRIVATE KEY-----\ngeheim\n").unwrap();
    let error = crate::files::private_key(&file).unwrap_err().to_string();
    assert!(!error.contains("geheim"), "{error}");
}
