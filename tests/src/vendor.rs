//! What a vendor does with the hub's messages, with tools independent of the hub's own
//! code: `openssl cms`, `xmllint`, and jwcrypto (Python).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{TestHub, drain_one, run_ok, stdout_of, workspace};

impl TestHub {
    /// Waits until application `id` is delivered to `procedure` (an AMQP one, `cms`), takes
    /// the one message off its queue and opens it as a vendor would: the XML it reads.
    pub async fn delivered_xml(
        &self,
        broker: &lapin::Connection,
        id: &str,
        procedure: &str,
    ) -> String {
        self.wait_delivered_to(id, procedure, std::time::Duration::from_secs(60))
            .await;
        let message = drain_one(broker, &self.queue(procedure)).await;
        open_with_openssl_cli(&message.body, &self.pki_dir(), procedure)
    }
}

/// Opens a sealed message exactly as `docs/vendors.md` tells a vendor: `openssl cms`
/// decrypt with the procedure's key, then verify against the CA, checking that the
/// signer is the hub; checks the algorithms it uses ([`crate::algorithms`]). Returns
/// the XML.
pub fn open_with_openssl_cli(sealed: &[u8], pki: &Path, procedure: &str) -> String {
    open_cms(
        sealed,
        &pki.join(format!("procedures/{procedure}.crt")),
        &pki.join(format!("procedures/{procedure}.key")),
        &pki.join("ca.crt"),
        &pki.join("hub.crt"),
    )
}

/// The vendor's commands with explicit files: the recipient's certificate and key, the
/// CA, and the certificate of the hub that must have signed.
pub fn open_cms(sealed: &[u8], cert: &Path, key: &Path, ca: &Path, hub: &Path) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let message = work.path().join("nachricht.p7m");
    std::fs::write(&message, sealed).expect("write message");
    let run = |args: &[&str]| {
        stdout_of(&run_ok(
            Command::new("openssl").args(args).current_dir(work.path()),
            &format!("openssl {} (on PATH)", args.join(" ")),
        ))
    };
    run(&[
        "cms",
        "-decrypt",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "nachricht.p7m",
        "-recip",
        &cert.to_string_lossy(),
        "-inkey",
        &key.to_string_lossy(),
        "-out",
        "signiert.der",
    ]);
    run(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "signiert.der",
        "-CAfile",
        &ca.to_string_lossy(),
        "-signer",
        "absender.pem",
        "-out",
        "nachricht.xml",
    ]);
    let hub_fingerprint = run(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        &hub.to_string_lossy(),
    ]);
    let signer_fingerprint = run(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        "absender.pem",
    ]);
    assert_eq!(signer_fingerprint, hub_fingerprint, "the signer is the hub");
    // Every message that opens also shows which algorithms it uses (BSI TR-02102-1);
    // checked last, so that a forged message is refused by the vendor's commands.
    let signed = std::fs::read(work.path().join("signiert.der")).expect("decrypted SignedData");
    crate::algorithms::assert_cms_algorithms(sealed, &signed);
    std::fs::read_to_string(work.path().join("nachricht.xml")).expect("decrypted XML")
}

/// Evaluates an XPath expression with `xmllint`, an XML parser independent of the
/// hub's own code, as a vendor's tooling would.
pub fn xpath(xml: &str, expression: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("m.xml");
    std::fs::write(&file, xml).expect("write xml");
    let text = stdout_of(&run_ok(
        Command::new("xmllint")
            .arg("--xpath")
            .arg(expression)
            .arg(&file),
        &format!("xmllint --xpath {expression} (apt-get install libxml2-utils)"),
    ));
    // xmllint ends the result with a newline of its own.
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// The Python of a virtualenv with jwcrypto (a JOSE library of another ecosystem) and
/// an OpenAPI validator, pinned; shared with the transformers' tests under
/// `target/tmp/jose-venv`.
pub fn python_with_jwcrypto() -> PathBuf {
    use std::sync::OnceLock;
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            python_venv(
                "jose-venv",
                &["jwcrypto==1.5.6", "openapi-spec-validator==0.7.1"],
            )
        })
        .clone()
}

/// The Python of a virtualenv with pika, the AMQP client a Python vendor takes
/// (`examples/receivers/python/`, transport `amqp`), pinned.
pub fn python_with_pika() -> PathBuf {
    use std::sync::OnceLock;
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("pika-venv", &["pika==1.4.4"]))
        .clone()
}

/// The `schemathesis` command of a virtualenv with schemathesis (PyPI, pinned), under
/// `target/tmp/schemathesis-venv`. Created once; fails loudly when it cannot be.
pub fn schemathesis_command() -> PathBuf {
    use std::sync::OnceLock;
    static COMMAND: OnceLock<PathBuf> = OnceLock::new();
    COMMAND
        .get_or_init(|| {
            python_venv("schemathesis-venv", &["schemathesis==4.32.5"])
                .with_file_name("schemathesis")
        })
        .clone()
}

/// The Python of the virtualenv `target/tmp/<name>` holding `packages` (pinned from
/// PyPI). Created once per set of packages, under a lock shared by the test binaries;
/// fails loudly when it cannot be.
pub(crate) fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    let marker = packages.join("+");
    let target = workspace().join("target/tmp");
    std::fs::create_dir_all(&target).expect("target/tmp");
    let venv = target.join(name);
    let ready = venv.join(format!("kopplung-ready-{marker}"));
    let lock = std::fs::File::create(target.join(format!("{name}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    if !ready.is_file() {
        if venv.exists() {
            std::fs::remove_dir_all(&venv).expect("remove old venv");
        }
        for command in [
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(packages),
        ] {
            run_ok(
                command,
                &format!("setting up the Python virtualenv {name} ({marker})"),
            );
        }
        std::fs::write(&ready, b"").expect("marker");
    }
    let _ = lock.unlock();
    venv.join("bin/python")
}

/// Opens a `jose` message with jwcrypto exactly as docs/vendors.md shows
/// (`transformers/tests/jose_verify.py`), pinning the hub's certificate; checks the
/// algorithms of its headers ([`crate::algorithms`]). Returns the XML.
pub fn open_jose_with_python(jwe: &[u8], pki: &Path, procedure: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("nachricht.jwe");
    std::fs::write(&file, jwe).expect("write message");
    let fingerprint = stdout_of(&run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(pki.join("hub.crt")),
        "openssl x509 (on PATH)",
    ));
    let fingerprint = fingerprint
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_owned();
    let xml = stdout_of(&run_ok(
        Command::new(python_with_jwcrypto())
            .arg(workspace().join("transformers/tests/jose_verify.py"))
            .arg(&file)
            .arg(pki.join(format!("procedures/{procedure}.crt")))
            .arg(pki.join(format!("procedures/{procedure}.key")))
            .arg(pki.join("ca.crt"))
            .arg(&fingerprint),
        "jose_verify.py (jwcrypto refused the message)",
    ));
    // Checked once jwcrypto took it, so that a forged message is refused by jwcrypto.
    crate::algorithms::assert_jose_algorithms(jwe, pki, procedure);
    xml
}

/// A receipt (event) signed as a `cms` procedure signs it, with `openssl cms -sign` and
/// the procedure's signing key from the demo PKI.
pub fn sign_cms_receipt(pki: &Path, procedure: &str, receipt: &Value) -> Vec<u8> {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("receipt.json"), receipt.to_string()).expect("write");
    run_ok(
        Command::new("openssl")
            .args([
                "cms",
                "-sign",
                "-binary",
                "-nodetach",
                "-outform",
                "DER",
                "-md",
                "sha256",
                "-in",
                "receipt.json",
                "-out",
                "receipt.p7m",
                "-signer",
            ])
            .arg(pki.join(format!("procedures/{procedure}-signatur.crt")))
            .arg("-inkey")
            .arg(pki.join(format!("procedures/{procedure}-signatur.key")))
            .current_dir(work.path()),
        "openssl cms -sign (on PATH)",
    );
    std::fs::read(work.path().join("receipt.p7m")).expect("signed receipt")
}

/// The hex SHA-256 of a token, as `token_sha256` in the configuration wants it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

/// A Security Event Token (an event of a `jose` procedure) signed with jwcrypto, as a
/// FIT-Connect style procedure signs it (docs/vendors.md), with `procedure`'s signing key.
pub fn sign_set_with_jwcrypto(pki: &Path, procedure: &str, claims: &Value) -> Vec<u8> {
    let script = r#"
import json, sys
from jwcrypto import jwk, jwt
key = jwk.JWK.from_pem(open(sys.argv[1], 'rb').read())
token = jwt.JWT(header={"alg": "ES256", "typ": "secevent+jwt"}, claims=json.loads(sys.argv[2]))
token.make_signed_token(key)
print(token.serialize())
"#;
    run_ok(
        Command::new(python_with_jwcrypto())
            .arg("-c")
            .arg(script)
            .arg(pki.join(format!("procedures/{procedure}-signatur.key")))
            .arg(claims.to_string()),
        "jwcrypto signing a Security Event Token",
    )
    .stdout
}
