//! Against real HTTP servers on loopback: axum for plain HTTP, an OpenSSL TLS server
//! that demands a client certificate for mutual TLS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use tokio::sync::Mutex;

use super::sink::classify_for_tests;
use super::*;
use crate::test_support::receiver;
use crate::{OutboundMessage, Outcome, Sink};

/// Settings for a loopback receiver without TLS (which production refuses unless
/// allowed per procedure).
fn plain_http(url: impl Into<String>) -> HttpSinkConfig {
    HttpSinkConfig {
        allow_plain_http: true,
        ..HttpSinkConfig::new(url)
    }
}

/// A sink for `url` with the system's trust store and no client certificate.
fn plain_sink(url: impl Into<String>) -> HttpSink {
    HttpSink::new(plain_http(url), HttpTls::default()).expect("sink")
}

fn message() -> OutboundMessage {
    OutboundMessage {
        message_id: "3f2c3a52-52a4-4b55-9f8e-000000000001".into(),
        correlation_id: "a6f5e0c4-0000-4000-8000-000000000002".into(),
        message_type: "maengelanzeige.meldung.0101".into(),
        content_type: "application/pkcs7-mime; smime-type=authEnveloped-data".into(),
        headers: vec![("application_id".into(), "a6f5e0c4".into())],
        body: Bytes::from_static(b"sealed bytes"),
    }
}

/// A receiver that answers the scripted statuses in turn, then 200; records what came.
async fn scripted(
    script: Vec<(u16, Option<&'static str>)>,
) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU32::new(0));
    let recorded = seen.clone();
    let url = receiver("/inbox", move |headers: HeaderMap, body: Bytes| {
        let seen = recorded.clone();
        let calls = calls.clone();
        let script = script.clone();
        async move {
            seen.lock().await.push((headers, body));
            let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
            let (status, retry_after) = script.get(n).copied().unwrap_or((200, None));
            let mut response = axum::response::Response::new(axum::body::Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", value.parse().expect("header"));
            }
            response
        }
    })
    .await;
    (url, seen)
}

#[tokio::test]
async fn a_2xx_is_delivered_with_the_message_id_as_idempotency_key() {
    let (url, seen) = scripted(vec![]).await;
    let sink = plain_sink(url);
    assert_eq!(sink.deliver(&message()).await, Outcome::Delivered);
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(body.as_ref(), b"sealed bytes");
    assert_eq!(
        headers["idempotency-key"],
        "3f2c3a52-52a4-4b55-9f8e-000000000001"
    );
    assert_eq!(
        headers["x-kopplung-message-id"],
        "3f2c3a52-52a4-4b55-9f8e-000000000001"
    );
    assert_eq!(
        headers["content-type"],
        "application/pkcs7-mime; smime-type=authEnveloped-data"
    );
    assert_eq!(headers["x-kopplung-application-id"], "a6f5e0c4");
}

#[tokio::test]
async fn statuses_are_classified_and_retry_after_is_honoured() {
    let (url, seen) = scripted(vec![
        (503, Some("7")),
        (429, None),
        (408, None),
        (500, Some("Thu, 01 Jan 1970 00:00:00 GMT")),
        (400, None),
        (404, None),
    ])
    .await;
    let sink = plain_sink(url);
    let m = message();
    assert_eq!(
        sink.deliver(&m).await,
        Outcome::Retry {
            reason: "the procedure answered 503 Service Unavailable".into(),
            not_before: Some(Duration::from_secs(7)),
        }
    );
    assert!(matches!(
        sink.deliver(&m).await,
        Outcome::Retry {
            not_before: None,
            ..
        }
    ));
    assert!(matches!(
        sink.deliver(&m).await,
        Outcome::Retry {
            not_before: None,
            ..
        }
    ));
    // A date in the past: retry at once.
    assert!(matches!(
        sink.deliver(&m).await,
        Outcome::Retry { not_before: Some(d), .. } if d == Duration::ZERO
    ));
    assert!(matches!(sink.deliver(&m).await, Outcome::Permanent { .. }));
    assert!(matches!(sink.deliver(&m).await, Outcome::Permanent { .. }));
    assert_eq!(sink.deliver(&m).await, Outcome::Delivered);
    assert_eq!(seen.lock().await.len(), 7);
}

#[test]
fn a_2xx_with_a_body_hands_the_receipt_over() {
    assert_eq!(
        classify_for_tests(200, None, b"eyJhbGciOi.receipt"),
        Outcome::DeliveredWithReceipt(Bytes::from_static(b"eyJhbGciOi.receipt"))
    );
    assert_eq!(classify_for_tests(204, None, b"  \n"), Outcome::Delivered);
    assert!(matches!(
        classify_for_tests(302, None, b""),
        Outcome::Permanent { .. }
    ));
}

#[test]
fn retry_after_as_seconds_and_as_http_date() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    // RFC 9110's example date is 784111777 + 0 s: "Sun, 06 Nov 1994 08:49:37 GMT".
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
        Some(Duration::from_secs(60))
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(
        parse_retry_after("99999999999", now),
        Some(Duration::from_secs(24 * 60 * 60))
    );
}

#[tokio::test]
async fn a_closed_port_is_unavailable_not_an_attempt() {
    let port = crate::test_support::closed_port();
    let sink = plain_sink(format!("http://127.0.0.1:{port}/inbox"));
    assert!(matches!(
        sink.deliver(&message()).await,
        Outcome::Unavailable { .. }
    ));
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_cut_off_and_retried() {
    // Accepts the connection, reads, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut config = plain_http(format!("http://{addr}/inbox"));
    config.timeout_ms = 300;
    config.connect_timeout_ms = 300;
    let sink = HttpSink::new(config, HttpTls::default()).expect("sink");
    match sink.deliver(&message()).await {
        Outcome::Retry { reason, .. } => assert!(reason.contains("within 300 ms"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_instead_of_http_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"\x00\x01garbage\r\n\r\n");
        }
    });
    let sink = plain_sink(format!("http://{addr}/inbox"));
    assert!(matches!(
        sink.deliver(&message()).await,
        Outcome::Retry { .. }
    ));
}

#[test]
fn bad_configurations_are_named() {
    assert!(!HttpSinkConfig::new("ftp://x/").problems().is_empty());
    assert!(!HttpSinkConfig::new("not a url").problems().is_empty());
    let mut config = HttpSinkConfig::new("https://fv.example/inbox");
    assert_eq!(config.problems(), Vec::new());
    config.client_certificate = Some("client.crt".into());
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].to_string().contains("client_key"),
        "{problems:?}"
    );
    // Every problem at once, each naming its key.
    config.url = "ftp://x/".into();
    config.timeout_ms = 0;
    let keys: Vec<&str> = config.problems().iter().map(|p| p.key).collect();
    assert_eq!(keys, ["url", "timeout_ms", "client_key"]);
}

#[test]
fn plain_http_is_refused_unless_allowed_for_the_procedure() {
    let plain = HttpSinkConfig::new("http://fv.example/inbox");
    let problems = plain.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "url");
    assert!(
        problems[0].to_string().contains("allow_plain_http"),
        "{problems:?}"
    );
    assert_eq!(plain_http("http://fv.example/inbox").problems(), Vec::new());
    assert!(HttpSink::new(plain, HttpTls::default()).is_err());
}

mod mtls {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
    }

    fn certificate(
        name: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        server: bool,
    ) -> X509 {
        let mut subject = X509NameBuilder::new().expect("name");
        subject.append_entry_by_text("CN", name).expect("cn");
        let subject = subject.build();
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("version");
        let serial = BigNum::from_u32(rand::random::<u32>() >> 1).expect("serial");
        builder
            .set_serial_number(&serial.to_asn1_integer().expect("serial"))
            .expect("serial");
        builder.set_subject_name(&subject).expect("subject");
        builder
            .set_issuer_name(issuer.map_or(&subject, |(c, _)| c.subject_name()))
            .expect("issuer");
        builder.set_pubkey(key).expect("pubkey");
        builder
            .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("nb");
        builder
            .set_not_after(&Asn1Time::days_from_now(2).expect("time"))
            .expect("na");
        if issuer.is_none() {
            builder
                .append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("bc");
        } else if server {
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .build(&builder.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .expect("san");
            builder.append_extension(san).expect("san");
            builder
                .append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
                .expect("eku");
        } else {
            builder
                .append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
                .expect("eku");
        }
        let signer = issuer.map_or(key, |(_, k)| k);
        builder.sign(signer, MessageDigest::sha256()).expect("sign");
        builder.build()
    }

    /// A TLS server on loopback that requires a client certificate from `ca`, answers
    /// 202 to one request per connection and reports whether a client certificate came.
    fn tls_server(
        ca: &X509,
        cert: X509,
        key: PKey<Private>,
    ) -> (String, std::sync::mpsc::Receiver<bool>) {
        let mut acceptor =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        acceptor.set_certificate(&cert).expect("cert");
        acceptor.set_private_key(&key).expect("key");
        let mut store = openssl::x509::store::X509StoreBuilder::new().expect("store");
        store.add_cert(ca.clone()).expect("ca");
        acceptor
            .set_verify_cert_store(store.build())
            .expect("store");
        acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let acceptor = acceptor.build();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (report, reports) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming().flatten() {
                match acceptor.accept(stream) {
                    Ok(mut tls) => {
                        let had_cert = tls.ssl().peer_certificate().is_some();
                        let mut buffer = vec![0u8; 65536];
                        let _ = tls.read(&mut buffer);
                        let _ = tls.write_all(
                            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        let _ = report.send(had_cert);
                    }
                    Err(_) => {
                        let _ = report.send(false);
                    }
                }
            }
        });
        (format!("https://127.0.0.1:{}/inbox", addr.port()), reports)
    }

    #[tokio::test]
    async fn mutual_tls_with_a_client_certificate() {
        let ca_key = key();
        let ca = certificate("Test CA", &ca_key, None, false);
        let server_key = key();
        let server = certificate("fv.example", &server_key, Some((&ca, &ca_key)), true);
        let client_key = key();
        let client = certificate("kopplung hub", &client_key, Some((&ca, &ca_key)), false);
        let (url, reports) = tls_server(&ca, server, server_key);

        let mut config = plain_http(&url);
        config.client_certificate = Some("client.crt".into());
        config.client_key = Some("client.key".into());
        let with_cert = HttpSink::new(
            config,
            HttpTls {
                server_ca: Some(ca.clone()),
                client: Some((client, client_key)),
            },
        )
        .expect("sink");
        assert_eq!(with_cert.deliver(&message()).await, Outcome::Delivered);
        assert_eq!(reports.recv_timeout(Duration::from_secs(5)), Ok(true));

        // Without a client certificate the server refuses the handshake.
        let without = HttpSink::new(
            plain_http(&url),
            HttpTls {
                server_ca: Some(ca.clone()),
                client: None,
            },
        )
        .expect("sink");
        assert!(!matches!(
            without.deliver(&message()).await,
            Outcome::Delivered
        ));

        // A server whose certificate does not chain to the configured CA is refused.
        let other_ca_key = key();
        let other_ca = certificate("Other CA", &other_ca_key, None, false);
        let untrusting = HttpSink::new(
            plain_http(&url),
            HttpTls {
                server_ca: Some(other_ca),
                client: None,
            },
        )
        .expect("sink");
        assert!(!matches!(
            untrusting.deliver(&message()).await,
            Outcome::Delivered
        ));
    }
}

/// The overall timeout on tokio's paused clock: a receiver that answers once on a
/// keep-alive connection and then goes silent is cut off after exactly `timeout_ms`.
#[tokio::test]
async fn a_silent_receiver_is_cut_off_at_the_timeout_on_the_paused_clock() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
            // The second request on the same connection gets no answer at all.
            let _ = stream.read(&mut buffer);
            std::thread::sleep(Duration::from_secs(30));
        }
    });
    let mut config = plain_http(format!("http://{addr}/inbox"));
    config.timeout_ms = 20_000;
    let sink = HttpSink::new(config, HttpTls::default()).expect("sink");
    // The first delivery opens the pooled connection in real time.
    assert_eq!(sink.deliver(&message()).await, Outcome::Delivered);

    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let outcome = sink.deliver(&message()).await;
    let waited = started.elapsed();
    match outcome {
        Outcome::Retry { reason, not_before } => {
            assert!(reason.contains("within 20000 ms"), "{reason}");
            assert_eq!(not_before, None);
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // Exactly the configured limit, not a moment less (and no real 20 s spent).
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
}
