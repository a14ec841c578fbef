//! Anonymous clients cannot take the hub down (`docs/reliability.md`, "Hostile
//! clients"): idle and slow connections are cut by deadlines that start at accept, a
//! full listener makes room by closing idle connections (never one that is serving),
//! receipts and events are refused before their bodies are buffered unless the
//! procedure's token comes with them, and logins are limited with attempts in flight
//! counted. Each test runs against the real `kopplung` binary and prints its figures.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use kopplung_tests::browser::Browser;
use kopplung_tests::faults::summary;
use kopplung_tests::{HubSetup, TestHub, procedure_token};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn valid() -> Value {
    json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {
            "kategorie": "strassenschaden",
            "beschreibung": "Tiefes Schlagloch vor der Grundschule",
            "ort": {"strasse": "Königsbrücker Straße", "hausnummer": "12"}
        }
    })
}

/// A connection from `local` (any address of 127.0.0.0/8) to `server`.
async fn connect_from(local: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(server).await
}

/// How long until the server closes `stream` (reads until EOF or an error), at most
/// `within`; `None` if it stayed open.
/// The server must close `stream` no sooner than `earliest` and no later than `latest`;
/// how long that took.
async fn cut_between(stream: &mut TcpStream, earliest: Duration, latest: Duration) -> Duration {
    let cut = closed_after(stream, Duration::from_secs(10))
        .await
        .expect("closed");
    assert!(cut >= earliest && cut <= latest, "{cut:?}");
    cut
}

async fn closed_after(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// The hub process's resident memory in MiB, from `/proc`.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

fn raise_open_file_limit() {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
}

async fn metric(hub: &TestHub, series: &str) -> f64 {
    hub.metric(series).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_leave_room_for_normal_clients() {
    const CAP: usize = 200;
    const PER_PEER: usize = 50;
    const HELD: usize = 1000;
    raise_open_file_limit();
    let hub = TestHub::start(HubSetup {
        extra_limits: format!(
            "max_connections = {CAP}\nmax_connections_per_peer = {PER_PEER}\nheader_timeout_secs = 30"
        ),
        ..HubSetup::default()
    })
    .await;
    let server: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();
    let mut held = Vec::new();
    // One address gets its share, no more.
    for _ in 0..2 * PER_PEER {
        if let Ok(stream) = connect_from("127.0.1.1".parse().unwrap(), server).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = metric(
        &hub,
        "kopplung_connections_total{listener=\"api\",outcome=\"refused_peer\"}",
    )
    .await;
    assert_eq!(refused, PER_PEER as f64, "one address beyond its share");
    // Attackers on 20 addresses hold 1,000 silent connections: far beyond the cap.
    for n in 0..HELD {
        let local: IpAddr = format!("127.0.1.{}", 10 + n % 20).parse().unwrap();
        if let Ok(stream) = connect_from(local, server).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A normal client meanwhile: every request within a second.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut slowest = Duration::ZERO;
    for n in 0..5 {
        let started = Instant::now();
        let health = client
            .get(hub.url("/healthz"))
            .send()
            .await
            .expect("/healthz within 1 s");
        assert_eq!(health.status(), 200);
        let intake = client
            .post(hub.url("/api/v1/applications"))
            .bearer_auth(&hub.token)
            .header("idempotency-key", format!("beside-the-idle-{n}"))
            .json(&valid())
            .send()
            .await
            .expect("intake within 1 s");
        assert_eq!(intake.status(), 202);
        slowest = slowest.max(started.elapsed());
        // New idle sockets keep coming while the normal client works.
        for k in 0..50 {
            let local: IpAddr = format!("127.0.1.{}", 40 + k % 20).parse().unwrap();
            if let Ok(stream) = connect_from(local, server).await {
                held.push(stream);
            }
        }
    }
    let open = metric(&hub, "kopplung_connections_open{listener=\"api\"}").await;
    let evicted = metric(
        &hub,
        "kopplung_connections_total{listener=\"api\",outcome=\"evicted\"}",
    )
    .await;
    assert!(open <= CAP as f64, "{open} open connections, cap {CAP}");
    assert!(evicted > 0.0, "idle connections were closed for newcomers");
    summary(
        "hostile-idle-sockets",
        &[
            ("held", held.len().to_string()),
            ("cap", CAP.to_string()),
            ("per_peer", PER_PEER.to_string()),
            ("open_at_hub", open.to_string()),
            ("evicted", evicted.to_string()),
            ("refused_per_peer", refused.to_string()),
            (
                "normal_client_slowest",
                format!("{:.3}s", slowest.as_secs_f64()),
            ),
        ],
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_cut_within_the_limits() {
    let hub = TestHub::start(HubSetup {
        request_timeout_secs: Some(3),
        extra_limits: "header_timeout_secs = 2\nidle_timeout_secs = 3".into(),
        ..HubSetup::default()
    })
    .await;
    let server: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();
    let slack = Duration::from_millis(1500);

    // Silent: never sends a byte.
    let mut silent = TcpStream::connect(server).await.unwrap();
    let silent_cut = cut_between(
        &mut silent,
        Duration::from_millis(1800),
        Duration::from_secs(2) + slack,
    )
    .await;

    // Slow head: a byte every 300 ms; the head's deadline counts from the accept.
    let mut slow_head = TcpStream::connect(server).await.unwrap();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Langsam: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for byte in head {
        if slow_head.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let slow_head_cut = started.elapsed();
    let remaining = closed_after(&mut slow_head, Duration::from_secs(5)).await;
    assert!(remaining.is_some(), "the slow head was cut");
    assert!(
        slow_head_cut <= Duration::from_secs(2) + slack,
        "{slow_head_cut:?}"
    );

    // Slow body: the head at once, the body a byte a second: 408 at the body deadline.
    let mut slow_body = TcpStream::connect(server).await.unwrap();
    let body = valid().to_string();
    slow_body
        .write_all(
            format!(
                "POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                hub.token,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    for byte in body.as_bytes() {
        if slow_body.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), slow_body.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let slow_body_cut = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        slow_body_cut <= Duration::from_secs(3) + slack,
        "{slow_body_cut:?}"
    );

    // Kept alive and idle after a request: closed after the idle timeout.
    let mut idle = TcpStream::connect(server).await.unwrap();
    kopplung_tests::shared::healthz_on(&mut idle, "x").await;
    let idle_cut = cut_between(
        &mut idle,
        Duration::from_millis(2800),
        Duration::from_secs(3) + slack,
    )
    .await;

    assert!(
        metric(
            &hub,
            "kopplung_connections_total{listener=\"api\",outcome=\"header_timeout\"}"
        )
        .await
            >= 2.0
    );
    summary(
        "hostile-deadlines-hub",
        &[
            ("header_timeout_secs", "2".into()),
            ("silent_cut", format!("{:.2}s", silent_cut.as_secs_f64())),
            (
                "slow_head_cut",
                format!("{:.2}s", slow_head_cut.as_secs_f64()),
            ),
            ("request_timeout_secs", "3".into()),
            (
                "slow_body_408",
                format!("{:.2}s", slow_body_cut.as_secs_f64()),
            ),
            ("idle_timeout_secs", "3".into()),
            ("idle_cut", format!("{:.2}s", idle_cut.as_secs_f64())),
        ],
    );
}

/// Sends a request head declaring a 16 MiB body (`Content-Length`, or chunked with a
/// first 80 KiB chunk), then writes nothing more: the answer must come at once.
async fn stalled_event(
    server: SocketAddr,
    path: &str,
    chunked: bool,
    token: Option<&str>,
) -> (String, Duration) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_owned()
    } else {
        format!("Content-Length: {}\r\n", 16 * 1024 * 1024)
    };
    stream
        .write_all(
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs7-mime\r\n{auth}{framing}\r\n").as_bytes(),
        )
        .await
        .unwrap();
    if chunked {
        let chunk = vec![b'x'; 80 * 1024];
        let _ = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = stream.write_all(&chunk).await;
    } else {
        let _ = stream.write_all(&vec![b'x'; 1024 * 1024]).await;
    }
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_events_are_refused_before_their_bodies_are_buffered() {
    const CLIENTS: usize = 40;
    let hub = TestHub::start(HubSetup::default()).await;
    let server: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();
    let pid = hub.pid().expect("hub pid");
    // Warm up, then the baseline.
    for _ in 0..3 {
        let _ = stalled_event(
            server,
            "/api/v1/procedures/dresden-maengel/events",
            false,
            None,
        )
        .await;
    }
    let before = rss_mib(pid);

    // An unknown procedure reads nothing: 404 at once.
    let (answer, _) = stalled_event(
        server,
        "/api/v1/procedures/gibt-es-nicht/events",
        false,
        None,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    let mut flood = tokio::task::JoinSet::new();
    for n in 0..CLIENTS {
        let path = if n % 2 == 0 {
            "/api/v1/procedures/dresden-maengel/events"
        } else {
            "/api/v1/procedures/leipzig-maengel/receipts"
        };
        flood.spawn(async move { stalled_event(server, path, n % 4 >= 2, None).await });
    }
    let mut peak = before;
    let mut slowest = Duration::ZERO;
    let mut refused = 0;
    while let Some(done) = flood.join_next().await {
        let (answer, took) = done.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        refused += 1;
        slowest = slowest.max(took);
        peak = peak.max(rss_mib(pid));
    }
    // The answer came although the clients stalled after the head (and at most 80 KiB
    // of body): the hub read no more than that.
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    let rise = peak - before;
    assert!(rise < 20.0, "RSS rose by {rise:.1} MiB");

    // With the procedure's token a larger event is read (and then judged by its
    // signature); a foreign token is refused before reading.
    let big = vec![b'x'; 1024 * 1024];
    let with_token = reqwest::Client::new()
        .post(hub.url("/api/v1/procedures/dresden-maengel/events"))
        .bearer_auth(procedure_token("dresden-maengel"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_token.status(),
        403,
        "read, then refused as unverifiable"
    );
    let problem: Value = with_token.json().await.unwrap();
    assert_eq!(problem["type"], "urn:kopplung:problem:receipt-unverifiable");
    let foreign = reqwest::Client::new()
        .post(hub.url("/api/v1/procedures/dresden-maengel/events"))
        .bearer_auth(procedure_token("leipzig-maengel"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 401);
    summary(
        "hostile-event-bodies",
        &[
            ("clients", CLIENTS.to_string()),
            ("declared_each", "16MiB".into()),
            ("refused_413", refused.to_string()),
            ("slowest_answer", format!("{:.3}s", slowest.as_secs_f64())),
            ("rss_before_mib", format!("{before:.1}")),
            ("rss_peak_mib", format!("{peak:.1}")),
            ("rss_rise_mib", format!("{rise:.1}")),
        ],
    );
}

/// 40 parallel wrong logins at the form `path`: how many were checked (401) and how
/// many refused before the check (429).
async fn parallel_wrong_logins(
    hub: &TestHub,
    path: &'static str,
    fields: fn(usize) -> Vec<(&'static str, String)>,
) -> (usize, usize) {
    let mut logins = tokio::task::JoinSet::new();
    for n in 0..40 {
        let mut browser = Browser::new(hub);
        logins.spawn(async move {
            let fields = fields(n);
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.log_in(path, &fields).await.status.as_u16()
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(status) = logins.join_next().await {
        match status.unwrap() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    (checked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_logins_reach_the_check_at_most_five_times() {
    let hub = TestHub::start(HubSetup::default()).await;
    let (inbox_checked, inbox_refused) = parallel_wrong_logins(&hub, "/inbox/login", |n| {
        vec![
            ("clerk", "demo-sachbearbeitung".into()),
            ("password", format!("falsch-{n}-falsch-falsch")),
        ]
    })
    .await;
    assert!(
        inbox_checked <= 5,
        "{inbox_checked} reached the password check"
    );
    assert_eq!(inbox_checked + inbox_refused, 40);
    let (console_checked, console_refused) = parallel_wrong_logins(&hub, "/console/login", |n| {
        vec![("token", format!("geraten-{n}-0123456789abcdef"))]
    })
    .await;
    assert!(
        console_checked <= 5,
        "{console_checked} reached the token check"
    );
    assert_eq!(console_checked + console_refused, 40);
    let log = hub.log();
    assert!(
        !log.contains("falsch-") && !log.contains("geraten-"),
        "no secrets in the log"
    );
    summary(
        "hostile-parallel-logins",
        &[
            ("attempts_each", "40".into()),
            ("inbox_checked", inbox_checked.to_string()),
            ("inbox_refused", inbox_refused.to_string()),
            ("console_checked", console_checked.to_string()),
            ("console_refused", console_refused.to_string()),
        ],
    );
}

#[tokio::test]
async fn monitoring_can_move_to_its_own_listener_or_behind_a_token() {
    let port = kopplung_tests::free_port();
    let hub = TestHub::start(HubSetup {
        extra_config: format!("[monitoring]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..HubSetup::default()
    })
    .await;
    let public = reqwest::get(hub.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let own = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(
        own.text()
            .await
            .unwrap()
            .contains("kopplung_connections_open{listener=\"monitoring\"}")
    );
    let status_of = async |url: String| reqwest::get(&url).await.unwrap().status();
    assert_eq!(
        status_of(format!("http://127.0.0.1:{port}/readyz")).await,
        200
    );
    assert_eq!(status_of(hub.url("/healthz")).await, 200);
    drop(hub);

    let guarded = TestHub::start(HubSetup {
        extra_config: "[monitoring]\ntoken_file = \"admin-token\"\n".into(),
        ..HubSetup::default()
    })
    .await;
    for (path, token, expected) in [
        ("/metrics", None, 401),
        ("/readyz", None, 401),
        ("/metrics", Some(kopplung_tests::ADMIN_TOKEN), 200),
    ] {
        assert_eq!(
            guarded.fetch(path, token).await.status(),
            expected,
            "{path}"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_with_control_characters_are_refused() {
    let hub = TestHub::start(HubSetup::default()).await;
    for key in ["ab\tcd", "mit leerzeichen"] {
        let response = reqwest::Client::new()
            .post(hub.url("/api/v1/applications"))
            .bearer_auth(&hub.token)
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_str(key).unwrap(),
            )
            .json(&valid())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{key:?}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:kopplung:problem:bad-idempotency-key");
    }
    assert_eq!(
        hub.store_counts()
            .into_iter()
            .find(|(t, _)| t == "applications")
            .map(|(_, n)| n),
        Some(0)
    );
}
