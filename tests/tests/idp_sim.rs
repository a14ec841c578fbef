//! `kopplung idp-sim`: the demo Servicekonto as its own process. The protocol itself is
//! tested in `idp-sim/tests/flow.rs`; here, the command: it serves discovery on the
//! configured issuer, creates its keys private, and refuses a bad configuration with
//! every problem named.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kopplung_tests::shared::assert_fails_naming;
use kopplung_tests::{free_port, kopplung_bin, private_dir, write_private};

fn config(port: u16, redirect: &str) -> String {
    format!(
        r#"issuer = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
[[client]]
client_id = "portal"
secret_file = "clients/portal-secret"
redirect_uris = ["{redirect}"]
"#
    )
}

#[tokio::test]
async fn the_command_serves_discovery_with_keys_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("idp");
    private_dir(&data.join("clients"));
    write_private(
        &data.join("clients/portal-secret"),
        b"0123456789abcdef0123456789\n",
    );
    let file = dir.path().join("idp.toml");
    std::fs::write(
        &file,
        config(port, "http://127.0.0.1:8081/konto/oidc/rueckkehr"),
    )
    .unwrap();
    let mut child = Command::new(kopplung_bin())
        .args(["idp-sim", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let started = Instant::now();
    let discovery: serde_json::Value = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.json().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "idp-sim did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(discovery["issuer"], format!("http://127.0.0.1:{port}"));
    assert_eq!(
        discovery["jwks_uri"],
        format!("http://127.0.0.1:{port}/jwks")
    );
    for secret in ["signing-key.pem", "subject-secret"] {
        let mode = std::fs::metadata(data.join(secret))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }
}

#[test]
fn a_bad_configuration_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idp.toml");
    std::fs::write(&file, config(free_port(), "/rueckkehr")).unwrap();
    let output = Command::new(kopplung_bin())
        .args(["idp-sim", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("idp"))
        .output()
        .unwrap();
    assert_fails_naming(
        &output,
        &[
            "idp.toml",
            "[[client]] portal: secret_file:",
            "[[client]] portal: redirect_uris: `/rueckkehr` is no absolute URL",
        ],
    );
}
