//! FIT-Connect in the tests: the hub's `[fitconnect]` section with its test clients,
//! the destinations of the demo's routing table, and FIT-Connect's community Python SDK
//! (`fitconnect` from PyPI, unmodified) as a client we did not write.

use std::path::{Path, PathBuf};

use crate::{private_dir, write_private};

/// The sender every FIT-Connect test hub knows (an online service; every destination).
pub const SENDER_ID: &str = "onlinedienst-test";
pub const SENDER_SECRET: &str = "secret-of-the-test-online-service-0123456789";
/// A sender whose token reaches no destination of the hub.
pub const FOREIGN_ID: &str = "fremder-onlinedienst";
pub const FOREIGN_SECRET: &str = "secret-of-a-foreign-online-service-0123456789";

/// The demo's routing table with the FIT-Connect destinations of `keep` only (each
/// needs an RSA-4096 key, which takes seconds to make).
pub fn keep_destinations(routing: &str, keep: &[&str]) -> String {
    let mut out = Vec::new();
    let mut procedure = None;
    let mut lines = routing.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(id) = line
            .strip_prefix("id = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            && out.last() == Some(&"[[procedure]]")
        {
            procedure = Some(id.to_owned());
        }
        if line == "[procedure.fitconnect]"
            && !procedure.as_deref().is_some_and(|p| keep.contains(&p))
        {
            // Its one key goes with it.
            lines.next_if(|next| next.starts_with("destination = "));
            continue;
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// `kopplung.toml` without its `[fitconnect]` section and clients.
pub fn without_section(config: &str) -> String {
    let mut inside = false;
    let mut out = Vec::new();
    for line in config.lines() {
        if line.starts_with('[') {
            inside = line == "[fitconnect]" || line == "[[fitconnect.client]]";
        }
        if !inside {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

/// The destination id of `procedure` in a routing table.
pub fn destination_of(routing: &str, procedure: &str) -> String {
    let mut current = None;
    let mut previous = "";
    for line in routing.lines() {
        if previous == "[[procedure]]" {
            current = line
                .strip_prefix("id = \"")
                .and_then(|rest| rest.strip_suffix('"'));
        }
        if current == Some(procedure)
            && let Some(id) = line
                .strip_prefix("destination = \"")
                .and_then(|rest| rest.strip_suffix('"'))
        {
            return id.to_owned();
        }
        previous = line;
    }
    panic!("{procedure} is no FIT-Connect destination of the routing table");
}

/// An access token of `client` from the hub's FIT-Connect token endpoint.
pub async fn access_token(hub: &crate::TestHub, client: &str, secret: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(hub.url("/fitconnect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("the token endpoint")
        .json()
        .await
        .expect("its JSON");
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {answer}"))
        .to_owned()
}

/// The client id of the subscriber of `procedure`'s destination.
pub fn subscriber_id(procedure: &str) -> String {
    format!("{procedure}-abonnent")
}

/// Its secret.
pub fn subscriber_secret(procedure: &str) -> String {
    format!("{procedure}-abonnent-secret-0123456789")
}

/// The routing table with `procedure` collecting as a FIT-Connect subscriber: its
/// `[procedure.delivery]` replaced by `transport = "fitconnect"` with the certificate
/// [`issue_subscriber_keys`] makes.
pub fn subscribe(routing: &str, procedure: &str) -> String {
    let mut out = Vec::new();
    let (mut current, mut skipping) = (None::<String>, false);
    for line in routing.lines() {
        if let Some(id) = line
            .strip_prefix("id = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            && out.last() == Some(&"[[procedure]]".to_owned())
        {
            current = Some(id.to_owned());
        }
        // The hub seals nothing for a subscriber: no envelope, no certificate of its own.
        if current.as_deref() == Some(procedure)
            && (line.starts_with("envelope = ") || line.starts_with("certificate = "))
            && !skipping
        {
            continue;
        }
        if skipping {
            if line.trim().is_empty() || line.starts_with('[') {
                skipping = false;
            } else {
                continue;
            }
        }
        out.push(line.to_owned());
        if line == "[procedure.delivery]" && current.as_deref() == Some(procedure) {
            out.push("transport = \"fitconnect\"".into());
            out.push(format!(
                "certificate = \"procedures/{procedure}-abonnent.crt\""
            ));
            skipping = true;
        }
    }
    out.join("\n") + "\n"
}

/// The subscriber's keys as its vendor holds them: an RSA-4096 encryption key
/// (`procedures/<id>-abonnent.key`) and, replacing the demo PKI's EC one, an RSA-4096
/// signing key for its events (`procedures/<id>-signatur.key`: PS512, as FIT-Connect
/// signs), both certified by the hub's demo CA.
pub fn issue_subscriber_keys(pki: &Path, procedure: &str) {
    use kopplung_transformers::pki::{PkiLayout, Role, Validity, issue_from_demo_ca};
    let layout = PkiLayout::new(pki);
    kopplung_transformers::pki::issue_rsa_recipient(
        &layout,
        &format!("{procedure}-abonnent"),
        4096,
    )
    .expect("the subscriber's encryption key");
    let rsa = openssl::rsa::Rsa::generate(4096).expect("RSA key");
    let key = openssl::pkey::PKey::from_rsa(rsa).expect("key");
    let cert = issue_from_demo_ca(
        &layout,
        &format!("{procedure} (Signatur)"),
        &key,
        Role::Signer,
        Validity::days(30),
    )
    .expect("signing certificate");
    let stem = pki.join(format!("procedures/{procedure}-signatur"));
    std::fs::write(stem.with_extension("crt"), cert.to_pem().expect("pem")).expect("crt");
    let key_path = stem.with_extension("key");
    let _ = std::fs::remove_file(&key_path);
    write_private(&key_path, &key.private_key_to_pem_pkcs8().expect("pem"));
}

/// Writes the token key and the clients' secrets into `data_dir`; returns the
/// `[fitconnect]` section of `kopplung.toml` (with a subscriber client for each of
/// `subscribers`, whose destinations `routing` names).
pub fn configure(data_dir: &Path, routing: &str, subscribers: &[&str]) -> String {
    private_dir(&data_dir.join("fitconnect"));
    write_private(
        &data_dir.join("fitconnect/token-key"),
        b"token-key-of-the-fitconnect-test-hub-0123456789abcdef",
    );
    write_private(
        &data_dir.join("fitconnect/sender"),
        SENDER_SECRET.as_bytes(),
    );
    write_private(
        &data_dir.join("fitconnect/foreign"),
        FOREIGN_SECRET.as_bytes(),
    );
    format!(
        r#"
[fitconnect]
token_key_file = "fitconnect/token-key"
metadata_schema = "{schema}"

[[fitconnect.client]]
id = "{SENDER_ID}"
role = "sender"
token_file = "fitconnect/sender"

[[fitconnect.client]]
id = "{FOREIGN_ID}"
role = "sender"
token_file = "fitconnect/foreign"
destinations = []
"#,
        schema = metadata_schema().display()
    ) + &subscribers
        .iter()
        .map(|procedure| {
            let id = subscriber_id(procedure);
            let file = format!("fitconnect/{id}");
            write_private(&data_dir.join(&file), subscriber_secret(procedure).as_bytes());
            format!(
                "\n[[fitconnect.client]]\nid = \"{id}\"\nrole = \"subscriber\"\ntoken_file = \"{file}\"\ndestinations = [\"{}\"]\n",
                destination_of(routing, procedure)
            )
        })
        .collect::<String>()
}

/// The Python of a virtualenv with FIT-Connect's community SDK (PyPI `fitconnect`,
/// pinned), under `target/tmp/fitconnect-venv`.
pub fn python_with_fitconnect() -> PathBuf {
    use std::sync::OnceLock;
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| crate::vendor::python_venv("fitconnect-venv", &["fitconnect==0.4.2"]))
        .clone()
}

/// FIT-Connect's metadata schema 1.0.0 as the SDK carries it (the official file).
pub fn metadata_schema() -> PathBuf {
    let python = python_with_fitconnect();
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import fitconnect, os; print(os.path.join(os.path.dirname(fitconnect.__file__), 'schema', 'metadata.schema.v1.0.0.json'))",
        ])
        .output()
        .expect("the SDK's Python");
    assert!(out.status.success(), "finding the SDK's metadata schema");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.is_file(), "{} is missing", path.display());
    path
}
