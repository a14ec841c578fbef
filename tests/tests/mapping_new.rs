//! `kopplung mapping new` followed by `mapping test --bless` gives a green service: the
//! hub refuses it until its fixture is accepted, then it passes lint, test and `check`
//! and an application for it reaches its procedure, XSD-valid.

use std::process::Output;

use kopplung_tests::site::Site;
use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue};
use serde_json::json;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `kopplung mapping ARGS --config …` in the site.
fn mapping(site: &Site, args: &[&str]) -> Output {
    std::process::Command::new(kopplung_tests::kopplung_bin())
        .arg("mapping")
        .args(args)
        .arg("--config")
        .arg(site.config())
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_new_service_is_green_after_bless_and_reaches_its_procedure() {
    let broker = amqp().await;
    let site = Site::new();
    site.keys_init();
    let tokens = site.run(&["tokens", "init"]);
    assert!(tokens.status.success(), "{}", text(&tokens));

    let new = mapping(
        &site,
        &[
            "new",
            "sondernutzung",
            "--name",
            "Sondernutzungserlaubnis",
            "--available-in",
            "14612",
            "--procedure",
            "dresden-maengel",
        ],
    );
    assert!(new.status.success(), "{}", text(&new));
    let printed = String::from_utf8_lossy(&new.stdout).into_owned();
    // The next free local key, and the routing stanza to paste.
    let stanza = printed
        .split_once("[[route]]")
        .map(|(_, rest)| format!("\n[[route]]{rest}"))
        .expect("a routing stanza");
    assert!(
        stanza.contains("service = \"99999004000000\"")
            && stanza.contains("region = \"14612\"")
            && stanza.contains("procedure = \"dresden-maengel\""),
        "{printed}"
    );
    site.append("config/routing.toml", &stanza);
    let lint = mapping(&site, &["lint", "sondernutzung"]);
    assert!(lint.status.success(), "{}", text(&lint));

    // Not accepted yet: the fixture has no expected XML, so nothing may go live.
    let check = site.run(&["check"]);
    assert!(!check.status.success());
    kopplung_tests::assert_has(text(&check), "sondernutzung/fixtures/beispiel.expected.xml");
    let test = mapping(&site, &["test", "sondernutzung"]);
    assert!(!test.status.success(), "{}", text(&test));

    let bless = mapping(&site, &["test", "--bless", "sondernutzung"]);
    assert!(bless.status.success(), "{}", text(&bless));
    assert!(text(&bless).contains("blessed Sondernutzungserlaubnis / beispiel"));
    for args in [&["test"][..], &["lint"][..]] {
        let output = mapping(&site, args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
    }
    let check = site.run(&["check"]);
    assert!(check.status.success(), "{}", text(&check));

    let hub = TestHub::start(HubSetup {
        mappings: Some(site.path("mappings")),
        routing: Some(site.path("config/routing.toml")),
        ..HubSetup::default()
    })
    .await;
    let id = hub
        .submit_accepted(
            &json!({
                "service": "99999004000000",
                "region": "146120000000",
                "data": {"anliegen": "Ich beantrage einen Infostand vor dem Rathaus."},
                // Not anonymous: the demo client vouches for level `basis` itself.
                "applicant": {"authentication": {"level": "basis", "means": "benutzername-passwort",
                    "subject": "demo-konto-4711", "authenticated_at": "2025-06-01T09:58:00Z"}}
            }),
            None,
        )
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    // The root is the message type; a local key's code list version is `lokal`.
    kopplung_tests::shared::assert_contains_all(
        &xml,
        &[
            "<svc:sondernutzung.antrag.0101",
            "<anliegen>Ich beantrage einen Infostand vor dem Rathaus.</anliegen>",
            "listVersionID=\"lokal\"",
        ],
    );
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

/// `--bless` shows what changed before it writes, and never accepts a fixture whose
/// input fails the form.
#[test]
fn bless_shows_the_difference_and_refuses_an_invalid_input() {
    let site = Site::new();
    let template = "mappings/maengelanzeige/nachricht.xml.hbs";
    site.edit(
        template,
        "<beschreibung>{{data.beschreibung}}</beschreibung>",
        "<beschreibung>Gemeldet: {{data.beschreibung}}</beschreibung>",
    );
    let bless = mapping(&site, &["test", "--bless", "maengelanzeige"]);
    let out = text(&bless);
    assert!(bless.status.success(), "{out}");
    assert!(
        out.contains("the message differs from the expected XML")
            && out
                .lines()
                .any(|l| l.starts_with('+') && l.contains("|       \"Gemeldet: Die Schaukel")),
        "{out}"
    );
    let test = mapping(&site, &["test", "maengelanzeige"]);
    assert!(test.status.success(), "{}", text(&test));

    site.edit(
        "mappings/maengelanzeige/fixtures/minimal.input.json",
        "\"beleuchtung\"",
        "\"laterne\"",
    );
    let bless = mapping(&site, &["test", "--bless", "maengelanzeige"]);
    assert!(!bless.status.success(), "{}", text(&bless));
    kopplung_tests::assert_has(text(&bless), "the input does not pass the form");
}
