//! Large attachments: uploaded on their own and streamed into the store, delivered by
//! claim check. The procedure finds the hash, size and link in the signed message,
//! fetches the fragments with its own token and opens them with stock tools (`openssl
//! cms` for the `cms` profile, Python's jwcrypto for the `jose` profile).

use kopplung_tests::keys::{DRESDEN, LEIPZIG};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use kopplung_tests::{
    HubSetup, OTHER_TOKEN, TestHub, amqp, delete_queue, drain, open_cms, procedure_token,
    python_with_jwcrypto, run_ok, workspace, xpath,
};
use openssl::sha::sha512;
use serde_json::{Value, json};

/// The fragment size the hub documents (docs/vendors.md).
const FRAGMENT_BYTES: usize = 1024 * 1024;
const GEWERBEANMELDUNG: &str = "99050012104000";

/// The test hub: the demo routing gives every procedure with an interface an API token
/// (see `procedure_token`), with which it fetches attachments.
async fn hub() -> TestHub {
    TestHub::start(HubSetup::default()).await
}

/// Fragment `k` of the attachment at `address`, fetched by `procedure` with its token:
/// the answer, after checking that it is 200.
async fn fragment(address: &str, k: usize, procedure: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(format!("{address}/{k}"))
        .bearer_auth(procedure_token(procedure))
        .send()
        .await
        .expect("fragment");
    assert_eq!(response.status(), 200);
    response
}

/// A PDF-looking file of `len` pseudo-random bytes.
fn pdf(len: usize) -> Vec<u8> {
    let mut content = Vec::with_capacity(len);
    content.extend_from_slice(b"%PDF-1.7\n");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    while content.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        content.extend_from_slice(&state.to_le_bytes());
    }
    content.truncate(len);
    content
}

async fn upload(
    hub: &TestHub,
    token: &str,
    filename: &str,
    media_type: &str,
    content: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(hub.url("/api/v1/attachments"))
        .query(&[("filename", filename)])
        .bearer_auth(token)
        .header("content-type", media_type)
        .body(content)
        .send()
        .await
        .expect("upload")
}

fn gewerbeanmeldung(region: &str, attachments: Value) -> Value {
    let mut body = kopplung_tests::shared::fixture_request(
        "gewerbeanmeldung/fixtures/minimal",
        GEWERBEANMELDUNG,
        region,
    );
    body["attachments"] = attachments;
    body
}

/// What docs/vendors.md tells a vendor to run on a fragment of the `cms` profile.
fn openssl_decrypt(
    file: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::process::Output {
    Command::new("openssl")
        .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in"])
        .arg(file)
        .arg("-recip")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .output()
        .expect("openssl")
}

fn count(hub: &TestHub, table: &str) -> u64 {
    hub.sql(&format!("SELECT count(*) FROM {table}"))
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn a_large_upload_reaches_an_amqp_procedure_by_claim_check_and_opens_with_openssl() {
    let broker = amqp().await;
    let hub = hub().await;
    // 18 MiB and a bit: 19 fragments, the last one short.
    let content = pdf(18 * 1024 * 1024 + 12_345);
    let parts = content.len().div_ceil(FRAGMENT_BYTES);
    assert_eq!(parts, 19);
    let response = upload(
        &hub,
        &hub.token,
        "Lageplan Werkstatt.pdf",
        "application/pdf",
        content.clone(),
    )
    .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let uploaded: Value = response.json().await.expect("JSON");
    assert_eq!(uploaded["size"], content.len() as u64);
    assert_eq!(uploaded["sha512"], hex::encode(sha512(&content)));
    let upload_id = uploaded["id"].as_str().expect("id").to_owned();

    // Another client cannot use it; the right one can, once.
    let other = reqwest::Client::new()
        .post(hub.url("/api/v1/applications"))
        .bearer_auth(OTHER_TOKEN)
        .json(&gewerbeanmeldung(DRESDEN, json!([{ "upload": upload_id }])))
        .send()
        .await
        .expect("submit");
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "attachments[0].upload");

    let id = hub
        .submit_accepted(
            &gewerbeanmeldung(DRESDEN, json!([{ "upload": upload_id }])),
            None,
        )
        .await;
    let again = hub
        .submit(
            &gewerbeanmeldung(DRESDEN, json!([{ "upload": upload_id }])),
            None,
        )
        .await;
    assert_eq!(again.status(), 422, "an upload belongs to one application");

    let status = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await;
    let message_id = status["delivery"]["message_id"]
        .as_str()
        .expect("message id");
    let queue = hub.queue("dresden-buergerbuero");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    assert!(
        received[0].body.len() < 64 * 1024,
        "the broker message carries the claim check, not the file ({} bytes)",
        received[0].body.len()
    );
    let pki = hub.pki_dir();
    let cert = pki.join("procedures/dresden-buergerbuero.crt");
    let key = pki.join("procedures/dresden-buergerbuero.key");
    let xml = open_cms(
        &received[0].body,
        &cert,
        &key,
        &pki.join("ca.crt"),
        &pki.join("hub.crt"),
    );
    assert_eq!(
        xpath(&xml, "string(//anlage/dateiname)"),
        "Lageplan Werkstatt.pdf"
    );
    assert_eq!(
        xpath(&xml, "string(//anlage/groesse)"),
        content.len().to_string()
    );
    assert_eq!(
        xpath(&xml, "string(//anlage/hashwert)"),
        hex::encode(sha512(&content))
    );
    assert_eq!(xpath(&xml, "count(//anlage/inhalt)"), "0");
    assert_eq!(xpath(&xml, "string(//anlage/abruf/format)"), "CMS");
    assert_eq!(
        xpath(&xml, "string(//anlage/abruf/teile)"),
        parts.to_string()
    );
    let address = xpath(&xml, "string(//anlage/abruf/adresse)");
    assert_eq!(
        address,
        hub.url(&format!(
            "/api/v1/procedures/dresden-buergerbuero/messages/{message_id}/attachments/1"
        ))
    );

    // The vendor's side: fetch each fragment with its token, `openssl cms -decrypt`.
    let work = tempfile::tempdir().expect("temp dir");
    let mut joined = Vec::new();
    let http = reqwest::Client::new();
    for k in 1..=parts {
        let response = fragment(&address, k, "dresden-buergerbuero").await;
        kopplung_tests::shared::assert_content_type(response.headers(), "application/pkcs7-mime");
        let sealed = response.bytes().await.expect("bytes");
        let file = work.path().join(format!("teil{k}.p7m"));
        std::fs::write(&file, &sealed).expect("write");
        let output = openssl_decrypt(&file, &cert, &key);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        joined.extend_from_slice(&output.stdout);

        // One flipped byte in the ciphertext: GCM refuses it.
        let mut tampered = sealed.to_vec();
        let at = tampered.len() - 100;
        tampered[at] ^= 1;
        std::fs::write(&file, &tampered).expect("write");
        let refused = openssl_decrypt(&file, &cert, &key);
        assert!(!refused.status.success() || refused.stdout != output.stdout);
    }
    assert_eq!(joined.len(), content.len());
    assert!(joined == content, "the fragments joined are the file");

    // Only this procedure, only existing fragments.
    let dresden = procedure_token("dresden-buergerbuero");
    let leipzig = procedure_token("leipzig-buergerbuero");
    let get = |url: String, token: Option<String>| {
        let request = http.get(url);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let leipzig_path = address.replace("dresden-buergerbuero", "leipzig-buergerbuero");
    let other_attachment = address.replace("/attachments/1", "/attachments/2");
    let stranger = "not-a-token-of-anyone-at-all".to_owned();
    for (url, token, expected) in [
        (format!("{address}/1"), None, 401),
        (format!("{address}/1"), Some(stranger), 401),
        (format!("{address}/1"), Some(leipzig.clone()), 403),
        (format!("{leipzig_path}/1"), Some(leipzig), 404),
        (
            format!("{address}/{}", parts + 1),
            Some(dresden.clone()),
            404,
        ),
        (format!("{address}/0"), Some(dresden.clone()), 404),
        (format!("{other_attachment}/1"), Some(dresden), 404),
    ] {
        assert_eq!(get(url.clone(), token).await, expected, "{url}");
    }
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn jose_attachments_travel_as_separate_jwes_that_jwcrypto_opens() {
    use base64::Engine;
    let broker = amqp().await;
    let hub = hub().await;
    let small = pdf(200_000);
    let large = pdf(5 * 1024 * 1024);
    let response = upload(
        &hub,
        &hub.token,
        "Gewerbeerlaubnis.pdf",
        "application/pdf",
        large.clone(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let upload_id = response.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let id = hub
        .submit_accepted(
            &gewerbeanmeldung(
                LEIPZIG,
                json!([
                    {
                        "filename": "Mietvertrag.pdf",
                        "media_type": "application/pdf",
                        "content_base64": base64::engine::general_purpose::STANDARD.encode(&small),
                    },
                    { "upload": upload_id },
                ]),
            ),
            None,
        )
        .await;
    let status = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await;
    let queue = hub.queue("leipzig-buergerbuero");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    let pki = hub.pki_dir();
    let xml =
        kopplung_tests::open_jose_with_python(&received[0].body, &pki, "leipzig-buergerbuero");
    assert_eq!(
        xpath(&xml, "count(//anlage/inhalt)"),
        "0",
        "no content inside the JWE"
    );
    assert_eq!(xpath(&xml, "string(//anlage[1]/abruf/format)"), "JWE");
    assert_eq!(xpath(&xml, "string(//anlage[1]/abruf/teile)"), "1");
    assert_eq!(xpath(&xml, "string(//anlage[2]/abruf/teile)"), "5");
    let message_id = status["delivery"]["message_id"]
        .as_str()
        .expect("message id");

    let work = tempfile::tempdir().expect("temp dir");
    for (n, expected, parts) in [(1, &small, 1), (2, &large, 5)] {
        let address = xpath(&xml, &format!("string(//anlage[{n}]/abruf/adresse)"));
        assert!(address.ends_with(&format!("/messages/{message_id}/attachments/{n}")));
        assert_eq!(
            xpath(&xml, &format!("string(//anlage[{n}]/hashwert)")),
            hex::encode(sha512(expected))
        );
        let mut joined = Vec::new();
        for k in 1..=parts {
            let response = fragment(&address, k, "leipzig-buergerbuero").await;
            assert_eq!(response.headers()["content-type"], "application/jose");
            let jwe = response.bytes().await.expect("bytes");
            assert_eq!(
                jwe.iter().filter(|b| **b == b'.').count(),
                4,
                "a compact JWE"
            );
            let file = work.path().join("anlage.jwe");
            std::fs::File::create(&file)
                .and_then(|mut f| f.write_all(&jwe))
                .expect("write");
            let output = run_ok(
                Command::new(python_with_jwcrypto())
                    .arg(workspace().join("transformers/tests/jose_verify.py"))
                    .arg("--attachment")
                    .arg(&file)
                    .arg(pki.join("procedures/leipzig-buergerbuero.crt"))
                    .arg(pki.join("procedures/leipzig-buergerbuero.key")),
                "jose_verify.py --attachment",
            );
            joined.extend_from_slice(&output.stdout);
        }
        assert!(
            &joined == expected,
            "attachment {n} opened by jwcrypto is the file"
        );
    }
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_kept() {
    let hub = hub().await;
    // A media type no service takes (415, as a problem); a "PDF" that is HTML; path
    // traversal and control characters in the file name; empty; a wrong token.
    let token = hub.token.as_str();
    let html = b"<html><script>alert(1)</script>".to_vec();
    for (token, name, media_type, content, expected) in [
        (
            token,
            "x.exe",
            "application/x-msdownload",
            b"MZ".to_vec(),
            415,
        ),
        (token, "rechnung.pdf", "application/pdf", html, 422),
        (token, "../../etc/passwd", "application/pdf", pdf(100), 422),
        (token, "a\\b.pdf", "application/pdf", pdf(100), 422),
        (token, "zeile\nzwei.pdf", "application/pdf", pdf(100), 422),
        (token, "", "application/pdf", pdf(100), 422),
        (token, "leer.pdf", "application/pdf", Vec::new(), 422),
        (
            "wrong-token-wrong-token",
            "a.pdf",
            "application/pdf",
            pdf(100),
            401,
        ),
    ] {
        let response = upload(&hub, token, name, media_type, content).await;
        assert_eq!(response.status(), expected, "{name:?}");
        if expected == 415 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
    // Declared larger than the limit: refused before a byte is read.
    let response = reqwest::Client::new()
        .post(hub.url("/api/v1/attachments?filename=gross.pdf"))
        .bearer_auth(&hub.token)
        .header("content-type", "application/pdf")
        .header("content-length", (200u64 * 1024 * 1024).to_string())
        .body(Vec::new())
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // A client that goes away in the middle of a 9 MiB upload: the chunks already
    // stored are removed with it.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(hub.url("").trim_start_matches("http://"))
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/attachments?filename=abgebrochen.pdf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\n\r\n",
            hub.token,
            20 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream.write_all(&pdf(9 * 1024 * 1024)).await.expect("body");
        stream.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(stream);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&hub, "upload_chunks") > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&hub, "upload_chunks"), 0, "nothing half-stored");
    assert_eq!(count(&hub, "uploads"), 0, "no upload kept");
    // An unknown upload in an application.
    let response = hub
        .submit(
            &gewerbeanmeldung(
                DRESDEN,
                json!([{ "upload": "3f1c2d4e-0000-4000-8000-000000000000" }]),
            ),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    // Both an upload and content: ambiguous.
    let response = hub
        .submit(
            &gewerbeanmeldung(
                DRESDEN,
                json!([{ "upload": "3f1c2d4e-0000-4000-8000-000000000000", "filename": "a.pdf" }]),
            ),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(count(&hub, "applications"), 0);
    // Another method on a known path: 405 as a problem document, with Allow.
    let wrong_method = reqwest::Client::new()
        .delete(hub.url("/api/v1/attachments"))
        .bearer_auth(&hub.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(wrong_method.headers()["allow"], "POST");
    let health = reqwest::get(hub.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200, "the hub stays up");
}
