//! Setting up a deployment without hand work: `kopplung tokens init` writes every
//! secret file the configuration names, `kopplung check --connect` tries the database,
//! the broker and the procedures' HTTP endpoints, and `serve` against a database that
//! is down says so at once, naming it. All against the real binary, PostgreSQL and
//! RabbitMQ.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kopplung_tests::shared::assert_contains_all;
use kopplung_tests::site::Site;
use kopplung_tests::{PostgresDatabase, deliver_over, free_port, kopplung_bin, run_ok, stdout_of};

/// `tokens init` and the demo PKI: what the site needs before `check`; what `tokens init`
/// printed.
fn set_up(site: &Site) -> String {
    let tokens = stdout_of(&run_ok(
        &mut site.kopplung(&["tokens", "init"]),
        "kopplung tokens init",
    ));
    site.keys_init();
    tokens
}

/// Makes the demo's procedures without a broker reachable, as their vendors would: the
/// file procedure's exchange folder exists, and the HTTP procedure's URL points at a
/// listener (kept while the returned value lives).
fn reachable(site: &Site) -> std::net::TcpListener {
    std::fs::create_dir_all(site.data().join("exchange/vogtlandkreis-maengel")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    site.edit(
        "config/routing.toml",
        "http://127.0.0.1:9101/",
        &format!("http://127.0.0.1:{port}/"),
    );
    listener
}

/// A site set up (see [`set_up`]) whose store is a fresh PostgreSQL database.
fn set_up_on_postgresql() -> (Site, PostgresDatabase, std::net::TcpListener) {
    let site = Site::new();
    set_up(&site);
    let listening = reachable(&site);
    let database = PostgresDatabase::create();
    site.append(
        "config/kopplung.toml",
        &format!("\n[store]\npostgres_url = \"{}\"\n", database.url()),
    );
    (site, database, listening)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn sha256_hex(text: &str) -> String {
    hex::encode(openssl::sha::sha256(text.trim().as_bytes()))
}

/// Every file of a folder tree below `dir` with its content.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(contents(&path));
        } else {
            all.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    all
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn tokens_init_and_check_connect_pass_on_a_fresh_site() {
    let site = Site::new();
    // Plain `check` on the bare site fails: the token files are not there yet.
    let bare = site.run(&["check"]);
    assert!(!bare.status.success(), "check passed without tokens");

    let printed = set_up(&site);
    let _listening = reachable(&site);
    assert_eq!(mode(&site.data()), 0o700, "the data directory");
    assert_eq!(mode(&site.data().join("procedure-tokens")), 0o700);
    for file in [
        "intake-token",
        "portal-token",
        "admin-token",
        "auditor-token",
        "engineer-token",
        "clerk-password",
        "procedure-tokens/dresden-maengel",
    ] {
        let path = site.data().join(file);
        assert_eq!(mode(&path), 0o600, "{file}");
        let token = std::fs::read_to_string(&path).unwrap();
        assert_eq!(token.trim().len(), 64, "{file}: 256 bits in hex");
        let line = printed
            .lines()
            .find(|l| l.contains(&format!("{} ", path.display())))
            .unwrap_or_else(|| panic!("{file} not printed:\n{printed}"));
        assert!(line.starts_with("created"), "{line}");
        if file != "clerk-password" {
            let hash = format!("token_sha256 = \"{}\"", sha256_hex(&token));
            assert!(line.contains(&hash), "{line}");
        }
    }
    assert!(
        printed.contains("[[client]] demo: token_file"),
        "each file names its key:\n{printed}"
    );

    let offline = site.run(&["check"]);
    assert!(offline.status.success(), "{}", text(&offline));
    assert!(
        stdout_of(&offline).contains("connections not tried"),
        "plain check must not claim the deployment is reachable: {}",
        text(&offline)
    );
    // The lease, its floor and what sets it (issue 19): the formula is printed, not only
    // in an error message once the lease is too short.
    assert!(
        stdout_of(&offline).contains("lease: 120 s ([delivery] lease_secs), at least "),
        "{}",
        text(&offline)
    );
    assert!(
        stdout_of(&offline).contains("4/3 x the longest delivery attempt"),
        "{}",
        text(&offline)
    );

    let online = site.run(&["check", "--connect"]);
    let out = stdout_of(&online);
    assert!(online.status.success(), "{}", text(&online));
    assert_contains_all(
        &out,
        &[
            "ok      database SQLite",
            "ok      broker amqp://guest:***@127.0.0.1:5672",
            "ok      procedure vogtlandkreis-maengel: exchange folder",
            "all 4 connection(s) ok",
        ],
    );
    assert!(
        !out.contains("guest:guest"),
        "a password in the output: {out}"
    );
}

#[test]
fn tokens_init_never_overwrites_and_keeps_files_private() {
    let site = Site::new();
    std::fs::create_dir_all(site.data()).unwrap();
    std::fs::set_permissions(site.data(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let own = "an-operators-own-admin-token-0123456789";
    std::fs::write(site.data().join("admin-token"), own).unwrap();
    std::fs::set_permissions(
        site.data().join("admin-token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let first = stdout_of(&run_ok(
        &mut site.kopplung(&["tokens", "init"]),
        "kopplung tokens init",
    ));
    assert_eq!(
        std::fs::read_to_string(site.data().join("admin-token")).unwrap(),
        own,
        "an existing token was overwritten"
    );
    let kept = first
        .lines()
        .find(|l| l.contains("[admin] token_file"))
        .unwrap();
    assert!(kept.starts_with("kept"), "{kept}");
    assert!(kept.contains(&sha256_hex(own)), "{kept}");

    let before = contents(&site.data());
    let second = stdout_of(&run_ok(
        &mut site.kopplung(&["tokens", "init"]),
        "kopplung tokens init (again)",
    ));
    assert!(second.contains("0 file(s) created"), "{second}");
    assert!(
        !second.lines().any(|l| l.starts_with("created")),
        "{second}"
    );
    assert_eq!(
        before,
        contents(&site.data()),
        "a second run changed a file"
    );
    for path in before.keys() {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
}

#[test]
fn check_connect_reports_a_closed_broker_and_http_endpoint_as_failed() {
    let site = Site::new();
    set_up(&site);
    let _reachable = reachable(&site);
    let closed = free_port();
    let config = std::fs::read_to_string(site.config()).unwrap().replace(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        &format!("amqp://guest:guest@127.0.0.1:{closed}/%2f"),
    );
    std::fs::write(site.config(), config).unwrap();
    // One procedure over HTTP to a server that listens, one to a port nobody holds.
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listening.local_addr().unwrap().port();
    let closed_http = free_port();
    let routing_path = site.path("config/routing.toml");
    let routing = std::fs::read_to_string(&routing_path).unwrap();
    let routing = deliver_over(
        &routing,
        "dresden-maengel",
        &format!(
            "transport = \"http\"\nallow_plain_http = true\nurl = \"http://127.0.0.1:{open}/in\"\n"
        ),
    );
    let routing = deliver_over(
        &routing,
        "leipzig-maengel",
        &format!(
            "transport = \"http\"\nallow_plain_http = true\nurl = \"http://127.0.0.1:{closed_http}/in\"\n"
        ),
    );
    std::fs::write(&routing_path, routing).unwrap();

    let output = site.run(&["check", "--connect"]);
    let out = stdout_of(&output);
    assert!(!output.status.success(), "check passed:\n{}", text(&output));
    assert!(out.contains("ok      database SQLite"), "{out}");
    let broker = out
        .lines()
        .find(|l| l.contains("broker"))
        .unwrap_or_else(|| panic!("no broker line:\n{out}"));
    assert!(broker.starts_with("failed"), "{broker}");
    assert!(broker.contains(&format!("127.0.0.1:{closed}")), "{broker}");
    assert!(
        out.contains(&format!(
            "ok      procedure dresden-maengel: http http://127.0.0.1:{open}/in"
        )),
        "{out}"
    );
    let http = out
        .lines()
        .find(|l| l.contains("leipzig-maengel"))
        .unwrap_or_else(|| panic!("no line of the closed endpoint:\n{out}"));
    assert!(http.starts_with("failed"), "{http}");
    assert!(http.contains("refused"), "{http}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("2 of 6 connection(s) failed"),
        "{}",
        text(&output)
    );
    drop(listening);
}

#[test]
fn check_connect_tries_postgresql() {
    let (site, database, _listening) = set_up_on_postgresql();
    let output = site.run(&["check", "--connect"]);
    assert!(output.status.success(), "{}", text(&output));
    let expected = format!(
        "ok      database PostgreSQL 127.0.0.1:5432/{}",
        database.name
    );
    assert!(stdout_of(&output).contains(&expected), "{}", text(&output));
    assert!(
        !stdout_of(&output).contains("postgres@"),
        "{}",
        text(&output)
    );

    let closed = free_port();
    let config = std::fs::read_to_string(site.config())
        .unwrap()
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{closed}"));
    std::fs::write(site.config(), config).unwrap();
    let output = site.run(&["check", "--connect"]);
    let out = stdout_of(&output);
    assert!(!output.status.success(), "{}", text(&output));
    let line = out.lines().find(|l| l.contains("database")).unwrap();
    assert!(line.starts_with("failed"), "{line}");
    kopplung_tests::assert_has(line, format!("PostgreSQL at 127.0.0.1:{closed}"));
}

#[test]
fn serve_against_a_stopped_database_fails_within_seconds_naming_it() {
    let site = Site::new();
    set_up(&site);
    let closed = free_port();
    site.append(
        "config/kopplung.toml",
        &format!("\n[store]\npostgres_url = \"postgres://postgres@127.0.0.1:{closed}/test\"\n"),
    );
    let started = Instant::now();
    let mut child = site
        .kopplung(&["serve"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().ok();
            child.wait().ok();
            panic!("serve still runs after 10 s against a stopped database");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "serve exited successfully: {stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{closed}")),
        "the error must name host and port: {stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

#[test]
fn audit_verify_on_postgresql_needs_only_the_configuration() {
    let (site, _database, _listening) = set_up_on_postgresql();
    let verify = || {
        Command::new(kopplung_bin())
            .args(["audit", "verify", "--config"])
            .arg(site.config())
            .arg("--ca")
            .arg(site.data().join("pki/ca.crt"))
            .output()
            .unwrap()
    };
    // The first run creates the schema; the second finds it and must not say so.
    let first = verify();
    assert!(first.status.success(), "{}", text(&first));
    let second = verify();
    assert!(second.status.success(), "{}", text(&second));
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(
        !log.contains("already exists"),
        "the migration NOTICE: {log}"
    );

    // Without --ca the chain is still verified; the signatures are said to be unchecked.
    let bare = Command::new(kopplung_bin())
        .args(["audit", "verify", "--config"])
        .arg(site.config())
        .output()
        .unwrap();
    assert!(bare.status.success(), "{}", text(&bare));
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("checkpoint signatures not checked"),
        "{}",
        text(&bare)
    );
}
