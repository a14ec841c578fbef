//! What the portal's tests share: a hub, the reference procedure for Dresden's
//! Bürgerbüro and Mängelanzeige (decisions after a second), and the portal itself, each
//! a real process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kopplung_tests::{HubSetup, TestHub, free_port, kopplung_bin, workspace};

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The KERN UX assets that `npm ci --prefix portal` installs; fails loudly without them.
pub fn kern_dir() -> PathBuf {
    let dir = workspace().join("portal/node_modules/@kern-ux/native/dist");
    if !dir.join("kern.min.css").is_file() {
        // scripts/test runs it; a plain `cargo test` may not have.
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(workspace().join("portal"))
            .status()
            .expect("npm (Node.js) is needed for the portal's KERN UX assets");
        assert!(status.success(), "npm ci --prefix portal failed");
    }
    dir
}

pub struct Cycle {
    pub hub: TestHub,
    pub portal_url: String,
    pub portal_dir: tempfile::TempDir,
    _sim: Option<Process>,
    _portal: Process,
}

impl Cycle {
    /// The hub, the portal as one of its clients, and (with `procedures`) the reference
    /// procedures of Dresden that answer with a decision after a second.
    pub async fn start(procedures: bool) -> Self {
        Self::start_with(procedures, &[]).await
    }

    /// The same with more options for `kopplung portal` (e.g. `--public-url`).
    pub async fn start_with(procedures: bool, portal_args: &[&str]) -> Self {
        let hub = TestHub::start(HubSetup::default()).await;
        let sim = procedures.then(|| {
            let log = std::fs::File::create(hub.dir.path().join("sim.log")).expect("sim log");
            Process(
                Command::new(kopplung_bin())
                    .arg("procedure-sim")
                    .arg("--config")
                    .arg(hub.config_path())
                    .arg("--data-dir")
                    .arg(hub.data_dir())
                    .arg("--hub")
                    .arg(hub.url(""))
                    .args(["--only", "dresden-buergerbuero"])
                    .args(["--only", "dresden-maengel"])
                    .args(["--decision-delay-secs", "1"])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("procedure-sim"),
            )
        });
        let portal_dir = tempfile::tempdir().expect("portal dir");
        let port = free_port();
        let portal_url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(portal_dir.path().join("portal.log")).expect("portal log");
        let portal = Process(
            Command::new(kopplung_bin())
                .arg("portal")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--hub", &hub.url("")])
                .arg("--token-file")
                .arg(hub.data_dir().join("intake-token"))
                .arg("--data-dir")
                .arg(portal_dir.path().join("data"))
                .arg("--kern-dir")
                .arg(kern_dir())
                .args(portal_args)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("kopplung portal"),
        );
        let cycle = Self {
            hub,
            portal_url,
            portal_dir,
            _sim: sim,
            _portal: portal,
        };
        cycle.wait_until_up().await;
        cycle
    }

    async fn wait_until_up(&self) {
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(self.url("/healthz")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the portal did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.portal_url)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.portal_dir.path().join("portal.log")).unwrap_or_default()
    }
}
