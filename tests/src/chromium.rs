//! The walks in a real browser: `node tests/browser/<script>` drives Debian's
//! `chromium` through `playwright-core` (npm, never a downloaded browser), with
//! `axe-core` on the pages. A script prints `PASSED` at its end and leaves
//! `failure.html` in its output folder when a step fails.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The browser the scripts drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// One run of a script, its arguments and environment.
pub struct Walk {
    script: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    out: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

/// How a walk ended.
pub struct Walked {
    pub passed: bool,
    pub stdout: String,
    pub stderr: String,
    /// The page the script was on when it failed (its first 6,000 characters).
    pub page: String,
}

impl Walk {
    /// `tests/browser/<script>`, its packages installed (scripts/test installs them);
    /// its output folder is `$SCREENSHOTS` (kept) or a temporary one.
    pub fn new(script: &str) -> Self {
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test does)"
        );
        let dir = crate::node_packages(
            "browser",
            &["playwright-core", "axe-core"],
            "the browser tests",
        );
        let (out, temporary) = match std::env::var_os("SCREENSHOTS") {
            Some(folder) => (PathBuf::from(folder), None),
            None => {
                let temporary = tempfile::tempdir().expect("output folder");
                (temporary.path().to_owned(), Some(temporary))
            }
        };
        Self {
            script: dir.join(script),
            args: Vec::new(),
            envs: Vec::new(),
            out,
            _temporary: temporary,
        }
    }

    /// Its output folder (screenshots, `failure.html`).
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Output in `folder` below the one it had, e.g. one per run of a test.
    pub fn into_folder(mut self, folder: &str) -> Self {
        self.out = self.out.join(folder);
        std::fs::create_dir_all(&self.out).expect("output folder");
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    /// Runs the script to its end.
    pub async fn run(self) -> Walked {
        // The temporary folder lives until the failing page is read.
        let Walk {
            script,
            args,
            envs,
            out,
            _temporary,
        } = self;
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg(script)
                .args(args)
                .envs(envs)
                .env("CHROMIUM", CHROMIUM)
                .output()
                .expect("node (Node.js) runs the browser scripts")
        })
        .await
        .expect("browser run");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let passed = output.status.success() && stdout.contains("PASSED");
        let page = if passed {
            String::new()
        } else {
            std::fs::read_to_string(out.join("failure.html"))
                .unwrap_or_default()
                .chars()
                .take(6000)
                .collect()
        };
        Walked {
            passed,
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            page,
        }
    }
}

impl Walked {
    /// Fails the test unless the walk passed, with what it printed, the page it was on
    /// and `logs` (name, text) of the processes it used.
    pub fn assert_passed(&self, logs: &[(&str, String)]) {
        if self.passed {
            return;
        }
        let logs: String = logs
            .iter()
            .map(|(name, text)| format!("\n--- {name} ---\n{text}"))
            .collect();
        panic!(
            "the browser run failed:\n{}\n{}\n--- page ---\n{}{logs}",
            self.stdout, self.stderr, self.page
        );
    }

    /// Fails the test unless the script checked each of `pages` with axe-core.
    pub fn assert_checked(&self, pages: &[&str]) {
        for page in pages {
            assert!(
                self.stdout.contains(&format!("ok axe-core {page}:")),
                "{page} was not checked with axe-core:\n{}",
                self.stdout
            );
        }
    }
}
