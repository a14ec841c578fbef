//! Harness of the end-to-end tests: runs the real `kopplung` binary as a child process
//! against the real RabbitMQ, and opens messages with the `openssl` command line as a
//! vendor would. A missing service fails the tests loudly; nothing is skipped.
#![forbid(unsafe_code)]

pub mod algorithms;
pub mod amqp;
pub mod browser;
pub mod chromium;
pub mod clerks;
pub mod contract;
pub mod faults;
pub mod fitconnect;
pub mod hub;
pub mod issuer;
pub mod keys;
pub mod oidc;
pub mod pki;
pub mod postgres;
pub mod routing;
pub mod servicekonto;
pub mod shared;
pub mod site;
pub mod vendor;

pub use amqp::*;
pub use hub::*;
pub use postgres::*;
pub use routing::*;
pub use vendor::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Copies a folder tree (for a scratch copy of the mappings).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// A scratch copy of the repository's mappings, for a test that changes them.
pub fn mappings_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    copy_dir(&workspace().join("mappings"), dir.path());
    dir
}

/// Replaces the first `old` (which must be there) by `new` in `file`; returns the text
/// before, to put it back.
pub fn replace_in(file: &Path, old: &str, new: &str) -> String {
    let text = std::fs::read_to_string(file).expect("read the file");
    assert!(text.contains(old), "{} has no `{old}`", file.display());
    std::fs::write(file, text.replacen(old, new, 1)).expect("write the file");
    text
}

/// `tests/<folder>`, with its npm packages installed (`npm ci`) when one of `needed` is
/// missing (scripts/test installs them); `what` names the test that needs Node.js.
pub fn node_packages(folder: &str, needed: &[&str], what: &str) -> PathBuf {
    let dir = workspace().join("tests").join(folder);
    if needed
        .iter()
        .any(|package| !dir.join("node_modules").join(package).is_dir())
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("npm (Node.js) is needed for {what}: {e}"));
        assert!(status.success(), "npm ci --prefix tests/{folder} failed");
    }
    dir
}

/// The workspace root (where `config/` and `mappings/` are).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `kopplung` binary: `$KOPPLUNG_BIN`, or the one cargo built next to this test.
pub fn kopplung_bin() -> PathBuf {
    if let Ok(path) = std::env::var("KOPPLUNG_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/kopplung; a binary of this crate
    // (the benchmark) lives in target/<profile> itself.
    let dir = exe.parent().expect("target directory");
    let bin = if dir.ends_with("deps") {
        dir.parent().expect("target directory").join("kopplung")
    } else {
        dir.join("kopplung")
    };
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A free TCP port on loopback, for a process that binds it later.
pub fn free_port() -> u16 {
    // The port is free only until the process it is meant for binds it. It is taken
    // below Linux's ephemeral range (32768–60999), where no outgoing connection of a
    // parallel test lands on it meanwhile, and held by a lock file for as long as this
    // process lives, so that no parallel test process (nextest runs each test as its
    // own) is handed the same one; the kernel drops the lock when the process ends.
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static HELD: std::sync::Mutex<Vec<(u16, std::fs::File)>> = std::sync::Mutex::new(Vec::new());
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join("kopplung-test-ports");
    std::fs::create_dir_all(&dir).expect("the folder of the port locks");
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(COUNT)) as u32;
    for offset in 0..COUNT {
        let port = (FIRST + (start + offset) % COUNT) as u16;
        if held.iter().any(|(p, _)| *p == port) {
            continue;
        }
        let Ok(lock) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        if lock.try_lock().is_err() || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        held.push((port, lock));
        return port;
    }
    panic!("no free port between {FIRST} and {}", FIRST + COUNT)
}

/// A folder of a data directory, `0700` as the hub wants it (`kopplung check`).
pub fn private_dir(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .expect("private dir");
}

/// A secret of a data directory (a token), `0600` as the hub wants it.
pub fn write_private(path: &Path, content: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("private file");
    file.write_all(content).expect("write private file");
}

/// Now as RFC 3339, for the `issued_at` of receipts and events the tests sign (the hub
/// refuses events older than `[limits] event_max_age_secs`).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format now")
}

/// Now in seconds since the epoch, for the `iat` of Security Event Tokens.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs `command` and insists that it succeeds. `what` names the tool (and where to get
/// it, or what must run for it) in the failure, which shows everything it printed.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fails unless `text` (a page, a log, a document) contains `part`; the failure shows
/// the whole text, which is what one needs to see why.
#[track_caller]
pub fn assert_has(text: impl AsRef<str>, part: impl AsRef<str>) {
    let (text, part) = (text.as_ref(), part.as_ref());
    assert!(text.contains(part), "{part:?} is missing from:\n{text}");
}

/// Fails if `text` contains `part`, showing the whole text.
#[track_caller]
pub fn assert_lacks(text: impl AsRef<str>, part: impl AsRef<str>) {
    let (text, part) = (text.as_ref(), part.as_ref());
    assert!(!text.contains(part), "{part:?} must not appear in:\n{text}");
}

/// What a command printed on stdout, as text.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asks `check` every `every` until it gives a value. After `within` the test fails
/// with `fail` of what `check` saw last (the state, for the message with the log).
pub async fn eventually<T, S>(
    within: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, S>,
    fail: impl FnOnce(S) -> String,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => panic!("{}", fail(seen)),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`eventually`] for a count: asks `count` every `every` until it is `expected`;
/// after `within` the test fails with `fail` of the last count.
pub async fn eventually_count(
    within: Duration,
    every: Duration,
    expected: usize,
    mut count: impl FnMut() -> usize,
    fail: impl FnOnce(usize) -> String,
) {
    eventually(
        within,
        every,
        async || match count() {
            n if n == expected => Ok(()),
            n => Err(n),
        },
        fail,
    )
    .await;
}
