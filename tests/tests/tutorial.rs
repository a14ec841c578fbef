//! Follows the tutorial in docs/mappings.md step by step on a copy of the repository:
//! writes its files (a repeatable group and a conditional attachment slot among them),
//! runs its commands, then submits its request to a hub with the new route and opens the
//! delivered message. If the tutorial rots, this fails.

use std::path::Path;
use std::process::Command;

use kopplung_tests::{
    HubSetup, TestHub, amqp, copy_dir, delete_queue, kopplung_bin, private_dir, run_ok, workspace,
    write_private, xpath,
};
use serde_json::Value;

struct Block {
    info: String,
    body: String,
}

/// The fenced code blocks of the tutorial section.
fn tutorial_blocks() -> Vec<Block> {
    let doc = std::fs::read_to_string(workspace().join("docs/mappings.md")).unwrap();
    let start = doc
        .find("## Tutorial")
        .expect("a tutorial section in docs/mappings.md");
    let mut blocks = Vec::new();
    let mut lines = doc[start..].lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for inner in lines.by_ref() {
            if inner.starts_with("```") {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        blocks.push(Block {
            info: info.trim().to_owned(),
            body,
        });
    }
    blocks
}

fn run_line(line: &str, sandbox: &Path, bin_dir: &Path) {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_ok(
        Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(sandbox)
            .env("PATH", path),
        &format!("tutorial step {line}"),
    );
}

#[tokio::test]
async fn the_mapping_tutorial_works_as_written() {
    let broker = amqp().await;
    let sandbox = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace().join("mappings"),
        &sandbox.path().join("mappings"),
    );
    copy_dir(&workspace().join("config"), &sandbox.path().join("config"));
    // As after a first run of the demo: a private data directory and secrets.
    private_dir(&sandbox.path().join("demo-data"));
    write_private(
        &sandbox.path().join("demo-data/intake-token"),
        b"0123456789abcdef0123456789abcdef",
    );
    // And the citizens' portal's token (it is a client of the hub).
    write_private(
        &sandbox.path().join("demo-data/portal-token"),
        b"abcdef0123456789abcdef0123456789",
    );
    // scripts/demo puts FIT-Connect's metadata schema there; the demo writes the
    // FIT-Connect edge's token key and its sender's secret.
    private_dir(&sandbox.path().join("demo-data/fitconnect"));
    write_private(
        &sandbox
            .path()
            .join("demo-data/fitconnect/metadata.schema.json"),
        &std::fs::read(kopplung_tests::fitconnect::metadata_schema()).unwrap(),
    );
    for secret in ["token-key", "onlinedienst-demo"] {
        write_private(
            &sandbox.path().join("demo-data/fitconnect").join(secret),
            b"fitconnect-secret-of-the-tutorial-0123456789abcdef",
        );
    }
    // The demo also writes its clerk's password (the clerk inbox).
    write_private(
        &sandbox.path().join("demo-data/clerk-password"),
        b"fedcba9876543210fedcba9876543210",
    );
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(kopplung_bin(), bin_dir.path().join("kopplung")).unwrap();

    let blocks = tutorial_blocks();
    let mut files = 0;
    let mut commands = 0;
    let mut request = None;
    for block in &blocks {
        let words: Vec<&str> = block.info.split_whitespace().collect();
        if let Some(file) = words.iter().find_map(|w| w.strip_prefix("file=")) {
            let target = sandbox.path().join(file);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            if words.contains(&"append") {
                let mut text = std::fs::read_to_string(&target).unwrap();
                text.push('\n');
                text.push_str(&block.body);
                std::fs::write(&target, text).unwrap();
            } else {
                std::fs::write(&target, &block.body).unwrap();
            }
            if file == "request.json" {
                request = Some(block.body.clone());
            }
            files += 1;
        } else if words == ["sh", "tutorial"] {
            for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
                run_line(line, sandbox.path(), bin_dir.path());
                commands += 1;
            }
        }
    }
    assert!(
        files >= 7 && commands >= 7,
        "the tutorial has its steps ({files} files, {commands} commands)"
    );

    // Step 8: the new service goes live with its route.
    let hub = TestHub::start(HubSetup {
        mappings: Some(sandbox.path().join("mappings")),
        routing: Some(sandbox.path().join("config/routing.toml")),
        ..HubSetup::default()
    })
    .await;
    let body: Value = serde_json::from_str(&request.expect("a request.json block")).unwrap();
    // As the tutorial says: an electrical appliance without its photo is refused.
    let mut electric = body.clone();
    electric["data"]["gegenstaende"][0]["elektro"] = true.into();
    let refused = hub.submit(&electric, None).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["errors"],
        serde_json::json!([{"field": "attachments.foto", "message": "Pflichtfeld"}])
    );
    let id = hub.submit_accepted(&body, None).await;
    let xml = hub.delivered_xml(&broker, &id, "chemnitz-sperrmuell").await;
    assert_eq!(
        xpath(&xml, "string(//gegenstand[1]/bezeichnung)"),
        "Kleiderschrank, zerlegt"
    );
    assert_eq!(xpath(&xml, "string(//gegenstand[1]/elektro)"), "false");
    assert_eq!(xpath(&xml, "string(//gebiet/name)"), "Chemnitz, Stadt");
    delete_queue(&broker, &hub.queue("chemnitz-sperrmuell")).await;
}
