//! Hostile input against the running hub (issue #10): invalid UTF-8, deep nesting, huge
//! numbers, control characters, XML injection and entity expansion in every text field,
//! path traversal in attachment names, content-type confusion, oversized and many-field
//! bodies, garbage receipts and events, a bounded mutation fuzz of intake JSON, and
//! slowloris clients. Each refused input gets a clear 4xx as problem+json, nothing is
//! stored, and the hub keeps answering. Prints a table and `SUMMARY hostile-input: …`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use kopplung_tests::faults::{Rng, summary};
use kopplung_tests::{ADMIN_TOKEN, HubSetup, TestHub, xpath};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_BODY: usize = 1024 * 1024;

fn valid() -> Value {
    json!({"service": "99999001000000", "region": "146120000000",
           "data": {"kategorie": "strassenschaden", "beschreibung": "Tiefes Schlagloch vor der Schule",
                    "ort": {"strasse": "Königsbrücker Straße", "hausnummer": "12"}}})
}

fn with(path: &[&str], value: Value) -> Value {
    let mut body = valid();
    let mut at = &mut body;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    body
}

fn attachment(filename: &str, media_type: &str, content: &[u8]) -> Value {
    let mut body = valid();
    body["attachments"] = json!([{"filename": filename, "media_type": media_type,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(content)}]);
    body
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// One hostile request: its name, what it must get, and the request.
struct Case {
    name: String,
    expected: &'static [u16],
    content_type: Option<&'static str>,
    body: Vec<u8>,
    idempotency_key: Option<Vec<u8>>,
}

fn case(name: &str, expected: &'static [u16], body: Vec<u8>) -> Case {
    Case {
        name: name.to_owned(),
        expected,
        content_type: Some("application/json"),
        body,
        idempotency_key: None,
    }
}

fn json_case(name: &str, expected: &'static [u16], body: &Value) -> Case {
    case(name, expected, body.to_string().into_bytes())
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Not UTF-8, not JSON, not of the shape.
    let mut bytes = valid().to_string().into_bytes();
    let at = bytes.windows(6).position(|w| w == b"Tiefes").expect("text");
    bytes[at] = 0xFF;
    bytes[at + 1] = 0xFE;
    cases.push(case("invalid UTF-8 in a text field", &[400], bytes));
    cases.push(case(
        "invalid UTF-8 overlong encoding",
        &[400],
        b"{\"service\":\"\xC0\xAF\"}".to_vec(),
    ));
    cases.push(case(
        "lone surrogate escape",
        &[400, 422],
        br#"{"service":"99999001000000","region":"146120000000","data":{"kategorie":"muell","beschreibung":"\ud800\ud800\ud800 Schlagloch","ort":{"strasse":"A"}}}"#.to_vec(),
    ));
    cases.push(case("empty body", &[400], Vec::new()));
    cases.push(case("JSON null", &[400], b"null".to_vec()));
    cases.push(case(
        "trailing garbage after JSON",
        &[400],
        format!("{}<xml/>", valid()).into_bytes(),
    ));
    cases.push(case(
        "byte order mark",
        &[400],
        [b"\xEF\xBB\xBF".as_slice(), valid().to_string().as_bytes()].concat(),
    ));
    cases.push(case(
        "duplicate keys",
        &[400],
        br#"{"service":"99999001000000","service":"99999001000000","region":"146120000000","data":{}}"#.to_vec(),
    ));
    cases.push(json_case(
        "unknown top-level key",
        &[400],
        &with(&["__proto__"], json!({"admin": true})),
    ));
    cases.push(json_case(
        "service as a number",
        &[400],
        &with(&["service"], json!(99999001000000u64)),
    ));
    cases.push(json_case(
        "attachments as an object",
        &[400],
        &with(&["attachments"], json!({"0": {}})),
    ));
    // Deep nesting: past the parser's limit, and within it where a text is expected.
    let deep = format!(
        r#"{{"service":"99999001000000","region":"146120000000","data":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    cases.push(case("nesting 100,000 deep", &[400], deep.into_bytes()));
    let mut nested = json!("Schlagloch");
    for _ in 0..100 {
        nested = json!({ "x": nested });
    }
    cases.push(json_case(
        "nested objects as a text field",
        &[422],
        &with(&["data", "beschreibung"], nested),
    ));
    // Huge numbers.
    cases.push(case(
        "number beyond f64",
        &[400],
        valid()
            .to_string()
            .replace("\"12\"}", "\"12\",\"lat\":1e400}")
            .into_bytes(),
    ));
    cases.push(case(
        "400-digit integer",
        &[400, 422],
        valid()
            .to_string()
            .replace("\"12\"}", &format!("\"12\",\"lat\":{}}}", "9".repeat(400)))
            .into_bytes(),
    ));
    cases.push(json_case(
        "latitude 1e300",
        &[422],
        &with(&["data", "ort", "lat"], json!(1e300)),
    ));
    cases.push(json_case(
        "number where text belongs",
        &[422],
        &with(&["data", "beschreibung"], json!(1.7976931348623157e308)),
    ));
    cases.push(json_case(
        "text where a number belongs",
        &[422],
        &with(&["data", "ort", "lat"], json!("NaN")),
    ));
    // Control characters and terminal escapes in text fields.
    for (name, text) in [
        ("NUL in a text field", "Schlagloch\u{0}vor der Schule"),
        (
            "BEL in a text field",
            "Schlagloch\u{7}\u{7}\u{7}vor der Schule",
        ),
        (
            "ANSI escape in a text field",
            "\u{1b}[31mSchlagloch\u{1b}[0m vor der Schule",
        ),
        (
            "bidi override in a text field",
            "Schlagloch \u{202E}eluhcS red rov",
        ),
    ] {
        cases.push(json_case(
            name,
            &[422],
            &with(&["data", "beschreibung"], json!(text)),
        ));
    }
    cases.push(json_case(
        "XML in an e-mail address",
        &[422],
        &with(&["data", "kontakt"], json!({"email": "a@b.de<x/>"})),
    ));
    // Many fields.
    let many: serde_json::Map<String, Value> = (0..50_000)
        .map(|i| (format!("feld{i}"), json!("x")))
        .collect();
    cases.push(json_case(
        "50,000 unknown form fields",
        &[422],
        &with(&["data"], Value::Object(many)),
    ));
    let mut body = valid();
    body["attachments"] = Value::Array(
        (0..1_000)
            .map(|_| json!({"filename": "a.png", "media_type": "image/png", "content_base64": ""}))
            .collect(),
    );
    cases.push(json_case("1,000 attachments", &[422], &body));
    // Attachment names that climb out of a folder or hide their type.
    for (name, filename) in [
        ("path traversal ../", "../../../etc/passwd"),
        ("path traversal ..\\", "..\\..\\windows\\win.ini"),
        ("absolute path", "/etc/shadow"),
        ("drive path", "C:\\boot.ini"),
        ("only dots", ".."),
        ("a single dot", "."),
        ("NUL in a file name", "foto.png\u{0}.exe"),
        ("newline in a file name", "foto\n.png"),
        ("empty file name", ""),
        ("file name of blanks", "   "),
        ("file name of 300 characters", &"a".repeat(300)),
    ] {
        cases.push(json_case(
            &format!("file name: {name}"),
            &[422],
            &attachment(filename, "image/png", PNG),
        ));
    }
    // Content-type confusion.
    for (name, media_type, content) in [
        (
            "HTML declared as PNG",
            "image/png",
            b"<html><script>alert(1)</script></html>".as_slice(),
        ),
        (
            "SVG declared as PNG",
            "image/png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".as_slice(),
        ),
        (
            "script declared as JPEG",
            "image/jpeg",
            b"#!/bin/sh\nrm -rf /".as_slice(),
        ),
        (
            "PDF declared as JPEG",
            "image/jpeg",
            b"%PDF-1.7\n".as_slice(),
        ),
        ("SVG as its own type", "image/svg+xml", b"<svg/>".as_slice()),
        ("HTML as its own type", "text/html", b"<html/>".as_slice()),
        ("PNG with a parameter", "image/png; charset=utf-8", PNG),
    ] {
        cases.push(json_case(
            &format!("content type: {name}"),
            &[422],
            &attachment("foto.png", media_type, content),
        ));
    }
    let mut body = valid();
    body["attachments"] = json!([{"filename": "foto.png", "media_type": "image/png", "content_base64": "not base64!!"}]);
    cases.push(json_case("attachment not base64", &[422], &body));
    // The request's own content type.
    for (name, content_type) in [
        ("text/plain", Some("text/plain")),
        ("application/xml", Some("application/xml")),
        ("form-encoded", Some("application/x-www-form-urlencoded")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("application/jsonx", Some("application/jsonx")),
        ("no content type", None),
    ] {
        let mut c = json_case(&format!("request content type: {name}"), &[415], &valid());
        c.content_type = content_type;
        cases.push(c);
    }
    // Oversized.
    let mut body = valid();
    body["data"]["beschreibung"] = json!("x".repeat(MAX_BODY + 10));
    cases.push(json_case("body over the limit", &[413], &body));
    // Idempotency keys.
    let mut c = json_case("Idempotency-Key of 300 characters", &[400], &valid());
    c.idempotency_key = Some(vec![b'k'; 300]);
    cases.push(c);
    let mut c = json_case("Idempotency-Key not ASCII", &[400], &valid());
    c.idempotency_key = Some("schlüssel".as_bytes().to_vec());
    cases.push(c);
    cases
}

struct Answer {
    status: u16,
    content_type: String,
    problem_type: String,
}

async fn send(hub: &TestHub, case: &Case) -> Answer {
    let mut request = reqwest::Client::new()
        .post(hub.url("/api/v1/applications"))
        .bearer_auth(&hub.token)
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(key) = &case.idempotency_key {
        request = request.header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(key).expect("header value"),
        );
    }
    let response = request.send().await.expect("the hub answers");
    let status = response.status().as_u16();
    let content_type = kopplung_tests::shared::header_text(response.headers(), "content-type");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        problem_type: body["type"].as_str().unwrap_or_default().to_owned(),
    }
}

async fn healthy(hub: &TestHub) -> bool {
    reqwest::get(hub.url("/healthz"))
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn stored(hub: &TestHub) -> BTreeMap<String, i64> {
    hub.store_counts().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_intake_input_gets_a_clear_4xx_and_nothing_is_stored() {
    let hub = TestHub::start(HubSetup {
        max_body_bytes: MAX_BODY,
        ..HubSetup::default()
    })
    .await;
    let before = stored(&hub);
    let cases = cases();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let answer = send(&hub, case).await;
        let ok = case.expected.contains(&answer.status)
            && answer.content_type == "application/problem+json"
            && answer.problem_type.starts_with("urn:kopplung:problem:");
        rows.push(format!(
            "{:<48} {:>8} {:>4} {:<40} {}",
            case.name,
            case.expected
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join("|"),
            answer.status,
            answer.problem_type,
            if ok { "ok" } else { "MISMATCH" }
        ));
        if !ok {
            failures.push(case.name.clone());
        }
        assert!(
            healthy(&hub).await,
            "the hub went down after: {}",
            case.name
        );
    }
    println!(
        "{:<48} {:>8} {:>4} {:<40}\n{}",
        "input",
        "expected",
        "got",
        "problem type",
        rows.join("\n")
    );
    let after = stored(&hub);
    summary(
        "hostile-input",
        &[
            ("inputs", cases.len().to_string()),
            ("clear_4xx", (cases.len() - failures.len()).to_string()),
            ("mismatches", failures.len().to_string()),
            (
                "stored_by_refused",
                (after["applications"] - before["applications"]).to_string(),
            ),
            ("hub_up", healthy(&hub).await.to_string()),
        ],
    );
    assert!(failures.is_empty(), "unexpected answers: {failures:#?}");
    assert_eq!(
        before, after,
        "a refused request left something in the store"
    );
}

/// Texts an XML parser would take for markup, in every text field. They are legitimate
/// text (a citizen may type `<` or `&`): accepted, and in the XML escaped, well-formed,
/// schema-valid and equal to what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_injection_in_every_text_field_stays_text() {
    let hub = TestHub::start(HubSetup::default()).await;
    let beschreibung = "<!DOCTYPE m [<!ENTITY x \"xx\"><!ENTITY y \"&x;&x;&x;&x;\">]>&y; ]]> <![CDATA[</beschreibung><evil/>]]> & &amp; &#x41; \"zitat\" 'apostroph' <?php echo 1; ?>";
    let strasse = "</strasse><injected>1</injected><strasse>";
    let hausnummer = "&x;<a/>]]>";
    let name = "\"><!--<?xml version=\"1.0\"?>--><name>";
    let body = json!({"service": "99999001000000", "region": "146120000000",
        "data": {"kategorie": "sonstiges", "beschreibung": beschreibung,
                 "ort": {"strasse": strasse, "hausnummer": hausnummer},
                 "kontakt": {"name": name}}});
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await;
    let response = reqwest::Client::new()
        .get(hub.url(&format!("/api/v1/admin/applications/{id}/message")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("message view");
    assert_eq!(response.status(), 200);
    let xml = response.text().await.expect("xml");
    assert!(!xml.contains("<!DOCTYPE") && !xml.contains("<!ENTITY"));
    assert!(!xml.contains("<injected>") && !xml.contains("<evil/>"));
    // An independent parser (xmllint) reads every text back exactly.
    for (element, text) in [
        ("mangel']/*[local-name()='beschreibung", beschreibung),
        ("ort']/*[local-name()='strasse", strasse),
        ("ort']/*[local-name()='hausnummer", hausnummer),
        ("kontakt']/*[local-name()='name", name),
    ] {
        let read = xpath(&xml, &format!("string(//*[local-name()='{element}'])"));
        assert_eq!(read, text, "{element} came out changed");
    }
    assert_eq!(
        xpath(
            &xml,
            "count(//*[local-name()='injected' or local-name()='evil'])"
        ),
        "0"
    );
    summary(
        "hostile-xml-injection",
        &[
            ("fields", "4".into()),
            ("well_formed", "true".into()),
            ("schema_valid", "true".into()),
            ("text_preserved", "4".into()),
        ],
    );
}

/// A bounded mutation fuzz of intake JSON against the running hub: every answer is 202
/// or a 4xx problem, never a 5xx or a dropped connection, and exactly the accepted ones
/// are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_intake_json_never_breaks_the_hub() {
    const ROUNDS: usize = 400;
    let hub = TestHub::start(HubSetup::default()).await;
    let (mut rng, seed) = Rng::from_env();
    let base = json!({"service": "99999001000000", "region": "146120000000",
        "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg <b>&amp;",
                 "ort": {"strasse": "Prager Straße", "hausnummer": "1a", "lat": 51.05, "lon": 13.74},
                 "kontakt": {"name": "Erika Mustermann", "email": "erika@example.org"}},
        "attachments": [{"filename": "foto.png", "media_type": "image/png",
                         "content_base64": base64::engine::general_purpose::STANDARD.encode(PNG)}]})
    .to_string()
    .into_bytes();
    const INTERESTING: &[u8] = b"{}[]\",:\\0-e.<>&\xff\x00\x7f\n ";
    let before = stored(&hub)["applications"];
    let client = reqwest::Client::new();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut body = base.clone();
        for _ in 0..rng.range(1, 4) {
            let at = rng.range(0, body.len() as u64) as usize;
            match rng.range(0, 5) {
                0 => body[at] = rng.next_u64() as u8,
                1 => body[at] = INTERESTING[rng.range(0, INTERESTING.len() as u64) as usize],
                2 => {
                    let end = (at + rng.range(1, 16) as usize).min(body.len());
                    body.drain(at..end);
                }
                3 => {
                    let end = (at + rng.range(1, 32) as usize).min(body.len());
                    let piece = body[at..end].to_vec();
                    body.splice(at..at, piece);
                }
                _ => body.truncate(at),
            }
            if body.is_empty() {
                break;
            }
        }
        let response = client
            .post(hub.url("/api/v1/applications"))
            .bearer_auth(&hub.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): no answer: {e}"));
        let status = response.status().as_u16();
        assert!(
            status == 202 || (400..500).contains(&status),
            "round {round} (seed {seed}): {status} for {}",
            String::from_utf8_lossy(&body)
        );
        if status != 202 {
            let problem: Value = response.json().await.expect("problem json");
            assert!(
                problem["type"].as_str().is_some(),
                "round {round}: {problem}"
            );
        }
        *by_status.entry(status).or_default() += 1;
    }
    let accepted = by_status.get(&202).copied().unwrap_or(0) as i64;
    let after = stored(&hub)["applications"];
    summary(
        "hostile-fuzz-intake",
        &[
            ("inputs", ROUNDS.to_string()),
            ("seed", seed.to_string()),
            ("answers", kopplung_tests::faults::counts(&by_status)),
            ("server_errors", "0".into()),
            (
                "stored_beyond_accepted",
                (after - before - accepted).to_string(),
            ),
            ("hub_up", healthy(&hub).await.to_string()),
        ],
    );
    assert_eq!(after - before, accepted, "stored != accepted");
}

/// Garbage where a procedure's signed receipt or event belongs (CMS and JOSE): refused
/// as unverifiable, nothing recorded.
#[tokio::test]
async fn garbage_receipts_and_events_are_refused() {
    let hub = TestHub::start(HubSetup::default()).await;
    let before = stored(&hub);
    let client = reqwest::Client::new();
    let mut inputs: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("dresden-maengel", "empty", Vec::new(), 403),
        ("dresden-maengel", "JSON, unsigned", br#"{"type":"accept","message_id":"x"}"#.to_vec(), 403),
        ("dresden-maengel", "DER header only", vec![0x30, 0x82, 0xFF, 0xFF], 403),
        ("dresden-maengel", "DER length bomb", [vec![0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF], vec![0x30; 64]].concat(), 403),
        ("dresden-maengel", "deeply nested DER", [0x30u8, 0x80].repeat(5_000), 403),
        ("dresden-maengel", "XML bomb", b"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><l>&b;</l>".to_vec(), 403),
        ("leipzig-buergerbuero", "compact JWS of dots", b"....".to_vec(), 403),
        ("leipzig-buergerbuero", "JWS with garbage parts", b"eyJhbGciOiJub25lIn0.e30.".to_vec(), 403),
        ("leipzig-buergerbuero", "JWS alg none", b"eyJhbGciOiJub25lIiwidHlwIjoic2VjZXZlbnQrand0In0.eyJqdGkiOiJ4In0.".to_vec(), 403),
        ("leipzig-buergerbuero", "10,000 dots", vec![b'.'; 10_000], 403),
        ("leipzig-buergerbuero", "invalid UTF-8", vec![0xFF; 100], 403),
        ("no-such-procedure", "garbage to an unknown procedure", b"x".to_vec(), 404),
        ("../admin", "path traversal in the procedure id", b"x".to_vec(), 404),
    ];
    let mut random = Rng::seeded(1);
    for n in 0..40 {
        let len = random.range(0, 4096) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| random.next_u64() as u8).collect();
        let procedure = if n % 2 == 0 {
            "dresden-maengel"
        } else {
            "leipzig-buergerbuero"
        };
        inputs.push((procedure, "random bytes", bytes, 403));
    }
    let mut mismatches = Vec::new();
    for (procedure, name, body, expected) in &inputs {
        let response = client
            .post(hub.url(&format!("/api/v1/procedures/{procedure}/events")))
            .body(body.clone())
            .send()
            .await
            .expect("the hub answers");
        let status = response.status().as_u16();
        if status != *expected {
            mismatches.push(format!("{procedure} {name}: {status}, expected {expected}"));
        }
    }
    assert!(healthy(&hub).await);
    assert_eq!(before, stored(&hub), "a refused event changed the store");
    summary(
        "hostile-receipts",
        &[
            ("inputs", inputs.len().to_string()),
            ("refused", (inputs.len() - mismatches.len()).to_string()),
            ("mismatches", mismatches.len().to_string()),
            ("recorded", "0".into()),
        ],
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Writes `bytes` one at a time, `pause` apart, until the server closes or answers;
/// returns what it answered (empty if it just closed) and how many bytes went out.
async fn trickle(
    stream: &mut tokio::net::TcpStream,
    bytes: &[u8],
    pause: Duration,
) -> (Vec<u8>, usize) {
    let mut answer = Vec::new();
    for (sent, byte) in bytes.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return (answer, sent);
        }
        let mut buffer = [0u8; 4096];
        match tokio::time::timeout(pause, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (answer, sent),
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                // The rest of the answer, until the server closes.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        answer.extend_from_slice(&buffer[..n]);
                    }
                })
                .await;
                return (answer, sent + 1);
            }
            Err(_) => {}
        }
    }
    (answer, bytes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off_and_do_not_block_others() {
    const TIMEOUT_SECS: u64 = 2;
    const SLOW_CLIENTS: usize = 20;
    let hub = TestHub::start(HubSetup {
        request_timeout_secs: Some(TIMEOUT_SECS),
        extra_limits: format!("header_timeout_secs = {TIMEOUT_SECS}"),
        ..HubSetup::default()
    })
    .await;
    let before = stored(&hub);
    let addr = format!("127.0.0.1:{}", hub.port);
    let pause = Duration::from_millis(250);
    // Far more bytes than the time limit lets through at 4 bytes a second.
    let head_bytes = format!(
        "POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nX-Langsam: {}\r\n\r\n",
        "a".repeat(200)
    )
    .into_bytes();
    let body = valid().to_string();
    let body_request = format!(
        "POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        hub.token,
        body.len()
    );
    let mut slow = tokio::task::JoinSet::new();
    for n in 0..SLOW_CLIENTS {
        let (addr, head_bytes, body_request, body) = (
            addr.clone(),
            head_bytes.clone(),
            body_request.clone(),
            body.clone(),
        );
        slow.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            if n % 2 == 0 {
                // A head a byte at a time.
                let (answer, sent) = trickle(&mut stream, &head_bytes, pause).await;
                ("head", answer, sent, head_bytes.len())
            } else {
                // The head at once, the body a byte at a time.
                stream
                    .write_all(body_request.as_bytes())
                    .await
                    .expect("head");
                let (answer, sent) = trickle(&mut stream, body.as_bytes(), pause).await;
                ("body", answer, sent, body.len())
            }
        });
    }
    // Meanwhile everyone else is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let started = Instant::now();
    let mut served = 0;
    for n in 0..10 {
        let response = client
            .post(hub.url("/api/v1/applications"))
            .bearer_auth(&hub.token)
            .json(&valid())
            .header("idempotency-key", format!("neben-slowloris-{n}"))
            .send()
            .await
            .expect("a normal client is served beside the slow ones");
        assert_eq!(response.status(), 202);
        served += 1;
    }
    let served_in = started.elapsed();
    let mut cut_off = 0;
    let mut answered_408 = 0;
    while let Some(done) = slow.join_next().await {
        let (kind, answer, sent, total) = done.expect("slow client");
        assert!(
            sent < total,
            "a {kind} slowloris sent all {total} bytes without being cut off"
        );
        cut_off += 1;
        let text = String::from_utf8_lossy(&answer);
        if kind == "body" {
            assert!(
                text.starts_with("HTTP/1.1 408"),
                "a slow body is answered 408: {text}"
            );
            assert!(text.contains("application/problem+json"), "{text}");
            kopplung_tests::assert_has(&text, "urn:kopplung:problem:request-timeout");
            answered_408 += 1;
        }
    }
    let after = stored(&hub);
    assert_eq!(
        after["applications"] - before["applications"],
        served,
        "only the normal clients' applications are stored"
    );
    assert!(healthy(&hub).await);
    summary(
        "hostile-slowloris",
        &[
            ("slow_clients", SLOW_CLIENTS.to_string()),
            ("cut_off", cut_off.to_string()),
            ("answered_408", answered_408.to_string()),
            ("limit_secs", TIMEOUT_SECS.to_string()),
            ("normal_requests_served_meanwhile", served.to_string()),
            (
                "normal_served_in",
                format!("{:.2}s", served_in.as_secs_f64()),
            ),
            ("stored_from_slow", "0".into()),
        ],
    );
}
