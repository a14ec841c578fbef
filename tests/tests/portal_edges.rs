//! The portal's edges against visitors without any token (issue 16, "Hold the edges"),
//! on the real hub and portal processes: silent, slow-header and slow-body clients are
//! cut on the portal's listener while a normal client gets its page; an anonymous
//! visitor meets each quota with a German page; expired anonymous drafts and their
//! files are swept; cookie-less visits store no sessions; the store and the data
//! directory are private from the start; a configuration file with mistakes is refused
//! with every problem named.

mod portal_support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use kopplung_tests::shared::assert_contains_all;
use portal_support::{Citizen, Cycle, DRESDEN, MAENGEL, draft_of};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// A client that sends `head`, then each of `pieces`, `every` apart, until the server
/// closes the connection: whether it did within 15 s, after how long, and what it answered.
fn trickling_client(
    addr: &str,
    head: &'static [u8],
    pieces: impl Iterator<Item = Vec<u8>> + Send + 'static,
    every: Duration,
) -> tokio::task::JoinHandle<(bool, Duration, String)> {
    let addr = addr.to_owned();
    tokio::spawn(async move {
        let start = Instant::now();
        let stream = TcpStream::connect(&addr).await.expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(head).await.expect("head");
        let trickle = tokio::spawn(async move {
            for piece in pieces {
                tokio::time::sleep(every).await;
                if writer.write_all(&piece).await.is_err() {
                    break;
                }
            }
        });
        let received = read_until_closed(&mut reader, Duration::from_secs(15)).await;
        trickle.abort();
        (
            received.is_some(),
            start.elapsed(),
            String::from_utf8_lossy(&received.unwrap_or_default()).into_owned(),
        )
    })
}

fn address(cycle: &Cycle) -> String {
    cycle.portal_url.trim_start_matches("http://").to_owned()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn silent_slow_header_and_slow_body_clients_are_cut_while_a_normal_client_gets_a_page() {
    let cycle = Cycle::with_sections(
        "[limits]\nheader_timeout_secs = 2\nrequest_timeout_secs = 3\nidle_timeout_secs = 2\n",
    )
    .await;
    let addr = address(&cycle);

    // The store and its directory are private from the first start.
    let data = cycle.data_dir();
    assert_eq!(mode(&data), 0o700, "data directory");
    for file in ["portal.sqlite", "portal.sqlite-wal", "portal.sqlite-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }

    let silent = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut stream = TcpStream::connect(&addr).await.expect("connect");
            let closed = read_until_closed(&mut stream, Duration::from_secs(15)).await;
            (closed.is_some(), start.elapsed())
        })
    };
    let slow_header = trickling_client(
        &addr,
        b"GET / HTTP/1.1\r\nHost: portal\r\n",
        (0..100).map(|i| format!("X-Slow-{i}: 1\r\n").into_bytes()),
        Duration::from_millis(250),
    );
    let slow_body = trickling_client(
        &addr,
        b"POST /konto/anmelden HTTP/1.1\r\nHost: portal\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=",
        (0..200).map(|_| b"a".to_vec()),
        Duration::from_millis(200),
    );
    // Meanwhile a normal visitor is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let normal = reqwest::get(cycle.url("/")).await.expect("a normal client");
    assert_eq!(normal.status(), 200);
    assert!(normal.text().await.unwrap().contains("lang=\"de\""));

    let (closed, took) = silent.await.unwrap();
    assert!(closed, "the silent client was never cut");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "silent client cut after {took:?} (header_timeout_secs = 2)"
    );
    let (closed, took, _) = slow_header.await.unwrap();
    assert!(closed, "the trickling head was never cut");
    assert!(
        took < Duration::from_secs(6),
        "slow head cut after {took:?}: trickled bytes must not extend the deadline"
    );
    let (closed, took, answer) = slow_body.await.unwrap();
    assert!(closed, "the slow body was never cut");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(8),
        "slow body cut after {took:?} (request_timeout_secs = 3)"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.contains("Zeit überschritten") && answer.contains("innerhalb von 3 Sekunden"),
        "a German page: {answer}"
    );
    assert!(answer.contains("content-security-policy"), "{answer}");

    // Form posts are small: 20 parallel 31 MB bodies are refused after 64 KiB each, with
    // a German page, and hardly move the portal's memory.
    let before = cycle.portal_rss_kib();
    let body = bytes::Bytes::from(vec![b'a'; 31 * 1024 * 1024]);
    let mut posts = Vec::new();
    for _ in 0..20 {
        let (url, body) = (cycle.url("/konto/anmelden"), body.clone());
        posts.push(tokio::spawn(async move {
            let answer = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
            // The portal may close before the whole body is sent: no answer to read.
            match answer {
                Ok(answer) => Some((
                    answer.status().as_u16(),
                    answer.text().await.unwrap_or_default(),
                )),
                Err(_) => None,
            }
        }));
    }
    let mut answered = 0;
    for post in posts {
        if let Some((status, page)) = post.await.unwrap() {
            answered += 1;
            assert_eq!(status, 413, "{page}");
            assert!(page.contains("zu umfangreich"), "{page}");
        }
    }
    let grown = cycle.portal_rss_kib().saturating_sub(before);
    println!("20 × 31 MB form posts: {answered} answered 413, RSS grew by {grown} KiB");
    assert!(grown < 40 * 1024, "the portal's memory grew by {grown} KiB");

    // A kept-alive connection that idles is closed after idle_timeout_secs.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kopplung_tests::shared::healthz_on(&mut kept, "portal").await;
    let idle = Instant::now();
    let closed = read_until_closed(&mut kept, Duration::from_secs(15)).await;
    assert!(closed.is_some(), "an idle connection was kept");
    assert!(
        idle.elapsed() < Duration::from_secs(5),
        "idle connection closed after {:?} (idle_timeout_secs = 2)",
        idle.elapsed()
    );
}

/// A PDF of `bytes` (stored as it comes; a photo would be scaled down on arrival and
/// stored smaller, which these quota cases must not depend on).
fn pdf(bytes: usize) -> Vec<u8> {
    let mut content = b"%PDF-1.4\n".to_vec();
    content.resize(bytes, b' ');
    content
}

/// A visitor behind the trusted proxy 127.0.0.1, at client address `ip`.
fn visitor_at(cycle: &Cycle, ip: &str) -> Citizen {
    let mut citizen = Citizen::new(cycle);
    citizen.forwarded_for = Some(ip.to_owned());
    citizen
}

fn assert_german_quota(page: &portal_support::Page, status: u16, text: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.body.contains(text), "{text}:\n{}", page.body);
    assert!(
        page.body
            .contains("Grenze für die Nutzung ohne Anmeldung erreicht")
            && page.body.contains("href=\"/konto/anmelden\""),
        "the page offers to sign in:\n{}",
        page.body
    );
}

#[tokio::test]
async fn an_anonymous_visitor_meets_each_quota_with_a_german_page() {
    let cycle = Cycle::with_sections("[limits]\ntrusted_proxies = [\"127.0.0.1\"]\nphoto_upload_bytes = 5242880\n\n[quotas]\nanonymous_drafts_per_session = 2\nanonymous_drafts_per_address = 3\nanonymous_uploads_per_session = 2\nanonymous_upload_bytes_per_session = 300000\nanonymous_uploads_per_address = 4\nsessions_per_address = 2\nmin_free_disk_mib = 0\n").await;

    // One session: two open drafts, then the session's quota.
    let mut anna = visitor_at(&cycle, "203.0.113.1");
    let first = draft_of(&anna.start(MAENGEL, DRESDEN).await);
    anna.start(MAENGEL, DRESDEN).await;
    let third = anna.try_start(MAENGEL, DRESDEN).await;
    assert_german_quota(&third, 429, "bereits 2 Formulare begonnen");

    // Uploads of the session: bytes (413), then files (429).
    let csrf = anna.attachments_csrf(&first).await;
    // Larger than the service allows, declared: refused before a byte is read.
    let oversized = anna
        .upload(
            &first,
            &csrf,
            "gross.pdf",
            "application/pdf",
            pdf(6 * 1024 * 1024),
        )
        .await;
    assert_eq!(oversized.status, 413, "{}", oversized.body);
    assert!(oversized.body.contains("Die Datei ist zu groß"));
    // Stored, over the bytes quota (413), stored, over the files quota (429).
    for (file, size, refused) in [
        ("a.pdf", 200_000, None),
        ("b.pdf", 150_000, Some((413, "insgesamt höchstens"))),
        ("c.pdf", 1_000, None),
        ("d.pdf", 1_000, Some((429, "höchstens 2 Dateien"))),
    ] {
        let page = anna
            .upload(&first, &csrf, file, "application/pdf", pdf(size))
            .await;
        match refused {
            None => assert_eq!(page.status, 303, "{file}: {}", page.body),
            Some((status, says)) => assert_german_quota(&page, status, says),
        }
    }
    assert_eq!(
        cycle.sql("SELECT COUNT(*) || ' ' || SUM(size) FROM draft_attachments"),
        "2 201000"
    );
    // The address's uploads: a new session at the same address has one left.
    let mut albert = visitor_at(&cycle, "203.0.113.1");
    let draft = draft_of(&albert.start(MAENGEL, DRESDEN).await);
    let csrf = albert.attachments_csrf(&draft).await;
    let stored = albert
        .upload(&draft, &csrf, "e.pdf", "application/pdf", pdf(1_000))
        .await;
    assert_eq!(stored.status, 303, "{}", stored.body);
    let refused = albert
        .upload(&draft, &csrf, "f.pdf", "application/pdf", pdf(1_000))
        .await;
    assert_german_quota(&refused, 429, "Dateien ohne Anmeldung hochgeladen");
    assert!(refused.headers.contains_key("retry-after"));

    // Drafts started from one address, across sessions.
    let mut bernd = visitor_at(&cycle, "203.0.113.2");
    bernd.start(MAENGEL, DRESDEN).await;
    bernd.start(MAENGEL, DRESDEN).await;
    let mut berta = visitor_at(&cycle, "203.0.113.2");
    berta.start(MAENGEL, DRESDEN).await;
    let refused = berta.try_start(MAENGEL, DRESDEN).await;
    assert_german_quota(&refused, 429, "Von Ihrem Internetanschluss");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 3000 && wait <= 3600, "Retry-After {wait}");

    // New sessions per address.
    let sessions_before = cycle.sql("SELECT COUNT(*) FROM sessions");
    for name in ["carl", "clara"] {
        let mut visitor = visitor_at(&cycle, "203.0.113.3");
        visitor.start(MAENGEL, DRESDEN).await;
        assert!(visitor.cookies.contains_key("portal_session"), "{name}");
    }
    let mut third = visitor_at(&cycle, "203.0.113.3");
    let refused = third.try_start(MAENGEL, DRESDEN).await;
    assert_german_quota(&refused, 429, "Von Ihrem Internetanschluss");
    assert!(!third.cookies.contains_key("portal_session"));
    let sessions_after: u64 = cycle.sql("SELECT COUNT(*) FROM sessions").parse().unwrap();
    assert_eq!(
        sessions_after,
        sessions_before.parse::<u64>().unwrap() + 2,
        "no session stored for the refused one"
    );
}

#[tokio::test]
async fn expired_anonymous_drafts_and_their_files_are_swept_and_reading_pages_stores_no_sessions() {
    let cycle =
        Cycle::with_sections("[quotas]\nanonymous_expire_secs = 4\nsweep_interval_secs = 1\n")
            .await;

    // 3,000 visits without a cookie: pages with forms and CSRF tokens, no session.
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut workers = Vec::new();
    for worker in 0..6 {
        let http = http.clone();
        let base = cycle.portal_url.clone();
        workers.push(tokio::spawn(async move {
            let paths = ["/", "/konto/anmelden", "/konto/registrieren"];
            for i in 0..500 {
                let path = paths[(worker + i) % 3];
                let response = http
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .expect("a page");
                assert_eq!(response.status(), 200);
                let cookie = response.headers()["set-cookie"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(cookie.starts_with("portal_csrf="), "{cookie}");
                let body = response.text().await.unwrap();
                assert!(path == "/" || body.contains("name=\"csrf\""), "{path}");
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    println!("3,000 cookie-less GETs in {:?}", started.elapsed());
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM sessions"), "0");

    // An anonymous draft with a photo, and a signed-in citizen's draft.
    let mut visitor = Citizen::new(&cycle);
    let step = visitor.start(MAENGEL, DRESDEN).await;
    let draft = draft_of(&step);
    let csrf = visitor.attachments_csrf(&draft).await;
    let stored = visitor
        .upload(&draft, &csrf, "foto.pdf", "application/pdf", pdf(10_000))
        .await;
    assert_eq!(stored.status, 303, "{}", stored.body);
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM sessions"), "1");
    assert_eq!(
        cycle.sql(&format!(
            "SELECT COUNT(*) FROM draft_attachments WHERE draft_id = '{draft}'"
        )),
        "1"
    );
    let mut citizen = Citizen::new(&cycle);
    citizen.register("dauer@example.org").await;
    let kept = draft_of(&citizen.start(MAENGEL, DRESDEN).await);

    // After the expiry the sweep has deleted the anonymous draft and its file.
    let until = Instant::now() + Duration::from_secs(20);
    while cycle.sql(&format!("SELECT COUNT(*) FROM drafts WHERE id = '{draft}'")) != "0" {
        assert!(
            Instant::now() < until,
            "the anonymous draft outlived its expiry:\n{}",
            cycle.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM draft_attachments"), "0");
    assert_eq!(
        cycle.sql(&format!("SELECT COUNT(*) FROM drafts WHERE id = '{kept}'")),
        "1",
        "an account's draft stays"
    );
    assert_eq!(visitor.get(&step).await.status, 404);
    assert!(cycle.log().contains("retention sweep"), "{}", cycle.log());
}

#[tokio::test]
async fn a_configuration_file_with_mistakes_is_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portal.toml");
    let stderr = portal_refuses(
        &config,
        "[limits]\nheader_timeout_secs = 0\nmax_form_bytes = \"viel\"\n\n[quotas]\nanonymous_drafts = 3\n\n[mail]\nfrom = \"noreply@portal.test\"\nviewer = true\n\n[colour]\nx = 1\n",
    );
    assert_contains_all(
        &stderr,
        &[
            config.display().to_string().as_str(),
            "[colour]: unknown section",
            "[limits] max_form_bytes: invalid type",
            "[quotas] anonymous_drafts: unknown field",
        ],
    );
    // With the keys right, the values are checked, again all at once.
    let stderr = portal_refuses(
        &config,
        "[limits]\nheader_timeout_secs = 0\n\n[mail]\nfrom = \"noreply@portal.test\"\nviewer = true\n\n[operator]\nemail = \"nirgends\"\n\n[operator.accessibility]\nstatus = \"bald\"\n",
    );
    assert!(
        stderr.contains("[operator] email: \"nirgends\" is no e-mail address")
            && stderr.contains("[operator.accessibility] status: \"bald\" is none of"),
        "{stderr}"
    );
    assert!(
        stderr.contains("header_timeout_secs: must be at least 1")
            && stderr
                .contains("[mail] viewer: the development mail viewer needs transport = \"drop\""),
        "{stderr}"
    );
}

/// Writes `content` to `config` and runs `kopplung portal` with it, which must refuse to
/// start; what it said on stderr.
fn portal_refuses(config: &std::path::Path, content: &str) -> String {
    std::fs::write(config, content).unwrap();
    let output = std::process::Command::new(kopplung_tests::kopplung_bin())
        .arg("portal")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--hub", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A connection from `local` (any address of 127.0.0.0/8) to `server`.
async fn connect_from(local: &str, server: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(
        local.parse().expect("address"),
        0,
    ))?;
    socket.connect(server.parse().expect("server")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_leave_room_for_a_citizen() {
    const CAP: usize = 200;
    const HELD: usize = 1000;
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
    let cycle = Cycle::with_sections(format!(
        "[limits]\nmax_connections = {CAP}\nmax_connections_per_peer = 50\n"
    ))
    .await;
    let server = address(&cycle);
    // One address gets its share only; twenty hold 1,000 silent connections.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        let mut stream = connect_from("127.0.2.1", &server).await.expect("connect");
        let mut first = [0u8; 12];
        // A refused connection is answered at once: 503 and closed.
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut first)).await
            && first[..n].starts_with(b"HTTP/1.1 503")
        {
            refused += 1;
        }
        held.push(stream);
    }
    assert_eq!(refused, 50, "one address beyond its share");
    for n in 0..HELD {
        if let Ok(stream) = connect_from(&format!("127.0.2.{}", 10 + n % 20), &server).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let mut slowest = Duration::ZERO;
    for round in 0..5 {
        for path in ["/", "/leistungen", "/zustaendigkeit"] {
            let started = Instant::now();
            let page = client
                .get(cycle.url(path))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} within 1 s in round {round}: {e}"));
            assert_eq!(page.status(), 200, "{path}");
            slowest = slowest.max(started.elapsed());
        }
        for n in 0..50 {
            if let Ok(stream) = connect_from(&format!("127.0.2.{}", 40 + n % 20), &server).await {
                held.push(stream);
            }
        }
    }
    kopplung_tests::faults::summary(
        "hostile-idle-sockets-portal",
        &[
            ("held", held.len().to_string()),
            ("cap", CAP.to_string()),
            ("refused_per_peer", refused.to_string()),
            ("citizen_slowest", format!("{:.3}s", slowest.as_secs_f64())),
        ],
    );
}

#[tokio::test]
async fn a_fresh_demo_keeps_its_data_directory_private() {
    portal_support::kern_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("demo-data");
    let (hub_port, portal_port) = (kopplung_tests::free_port(), kopplung_tests::free_port());
    let log = std::fs::File::create(dir.path().join("demo.log")).expect("log");
    let mut demo = kopplung_tests::Process(
        std::process::Command::new(kopplung_tests::kopplung_bin())
            .args(["demo", "--no-procedures", "--data-dir"])
            .arg(&data)
            // As scripts/demo starts it: with FIT-Connect's metadata schema.
            .arg("--fitconnect-metadata-schema")
            .arg(kopplung_tests::fitconnect::metadata_schema())
            .args(["--listen", &format!("127.0.0.1:{hub_port}")])
            .args(["--portal-listen", &format!("127.0.0.1:{portal_port}")])
            .current_dir(kopplung_tests::workspace())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("kopplung demo"),
    );
    // A first start makes the demo PKI with an RSA-4096 key per FIT-Connect destination.
    let deadline = Instant::now() + Duration::from_secs(180);
    for port in [hub_port, portal_port] {
        loop {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            if let Ok(Some(status)) = demo.0.try_wait() {
                panic!(
                    "the demo exited ({status}): {}",
                    std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "the demo did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every folder 0700, every file 0600 — only certificates may be read by others.
    let mut checked = 0;
    let mut pending = vec![data.clone()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        } else if path.extension().is_some_and(|e| e == "crt") {
            assert_eq!(mode & 0o022, 0, "{}", path.display());
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        checked += 1;
    }
    for store in [
        "kopplung.db",
        "kopplung.db-wal",
        "kopplung.db-shm",
        "portal/portal.sqlite",
        "portal/portal.sqlite-wal",
    ] {
        assert_eq!(mode(&data.join(store)), 0o600, "{store}");
    }
    kopplung_tests::run_ok(
        std::process::Command::new(kopplung_tests::kopplung_bin())
            .args(["check", "--data-dir"])
            .arg(&data)
            .current_dir(kopplung_tests::workspace()),
        "kopplung check",
    );
    kopplung_tests::faults::summary(
        "demo-file-modes",
        &[
            ("paths_checked", checked.to_string()),
            ("open_to_others", "0".into()),
        ],
    );
    drop(demo);
}
