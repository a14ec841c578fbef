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

/// Writes the token key and the clients' secrets into `data_dir`; returns the
/// `[fitconnect]` section of `kopplung.toml`.
pub fn configure(data_dir: &Path) -> String {
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
    )
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
