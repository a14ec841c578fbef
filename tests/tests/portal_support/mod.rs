//! What the portal's tests share: a hub, the reference procedure for Dresden's
//! Bürgerbüro and Mängelanzeige (decisions after a second), a real SMTP server
//! (Debian's `python3-aiosmtpd`, storing mails in a Maildir) and the portal itself, each
//! a real process; and a citizen in miniature (cookies, CSRF tokens, redirects by hand)
//! who registers through the confirmation mail.

#![allow(dead_code)]

pub use kopplung_tests::keys::{DRESDEN, MAENGEL};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kopplung_tests::browser::{cookie_header, keep_cookies, no_redirects};
use kopplung_tests::oidc::{Choice, IdpBrowser, OidcProvider};
use kopplung_tests::servicekonto::Servicekonto;
use kopplung_tests::{HubSetup, Process, TestHub, eventually, free_port, kopplung_bin, workspace};
use reqwest::header::{HeaderMap, LOCATION};

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
    // The fonts cut to Latin (the first visit's budget counts on them); scripts/test
    // cuts them, a plain `cargo test` may not have.
    if !dir.join("fonts/kopplung-subset/complete").is_file() {
        let status = Command::new("bash")
            .args([
                "-c",
                "set -euo pipefail; source scripts/lib/setup.sh; portal_fonts",
            ])
            .current_dir(workspace())
            .status()
            .expect("bash");
        assert!(
            status.success(),
            "portal_fonts (scripts/lib/setup.sh) failed"
        );
    }
    dir
}

/// Debian's Python with aiosmtpd: never pyenv's `python3` on the PATH.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// A real SMTP server on loopback (aiosmtpd's Mailbox handler) and its Maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    process: Option<Process>,
}

impl Smtp {
    /// A port and a Maildir below `dir`; the server is not started yet.
    pub fn reserve(dir: &Path) -> Self {
        Self {
            port: free_port(),
            maildir: dir.join("maildir"),
            process: None,
        }
    }

    /// Starts the server; fails loudly when aiosmtpd is missing.
    pub fn start(&mut self) {
        let probe = Command::new(SYSTEM_PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "{SYSTEM_PYTHON} cannot import aiosmtpd: `apt-get install python3-aiosmtpd` (scripts/test does)"
        );
        let log = std::fs::File::create(self.maildir.with_extension("log")).expect("smtp log");
        let child = Command::new(SYSTEM_PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("aiosmtpd");
        self.process = Some(Process(child));
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "aiosmtpd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (a relay that is down); [`Smtp::start`] starts it again on the
    /// same port and Maildir.
    pub fn stop(&mut self) {
        self.process = None;
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < until, "aiosmtpd did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn mailbox(&self) -> Mailbox {
        Mailbox {
            dir: self.maildir.clone(),
        }
    }
}

/// A mail as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope's recipients (aiosmtpd's `X-RcptTo`).
    pub recipients: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub raw: String,
}

impl Mail {
    /// The first line of the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.body
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no link {prefix}… in the mail:\n{}", self.body))
            .to_owned()
    }
}

/// The Maildir the SMTP server writes.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub dir: PathBuf,
}

impl Mailbox {
    pub fn all(&self) -> Vec<Mail> {
        let mut mails = Vec::new();
        for folder in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.join(folder)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            for path in paths {
                let raw = std::fs::read(&path).expect("mail file");
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("a parsable mail");
                mails.push(Mail {
                    recipients: parsed
                        .header_raw("X-RcptTo")
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    to: parsed
                        .to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .unwrap_or_default()
                        .to_owned(),
                    subject: parsed.subject().unwrap_or_default().to_owned(),
                    body: parsed.body_text(0).unwrap_or_default().into_owned(),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                });
            }
        }
        mails
    }

    /// The mails to `to`.
    pub fn to(&self, to: &str) -> Vec<Mail> {
        self.all().into_iter().filter(|m| m.to == to).collect()
    }

    /// Waits up to `limit` for the `n`th mail to `to` (counting from 1).
    pub async fn wait_for_nth(&self, to: &str, n: usize, limit: Duration) -> Mail {
        let until = Instant::now() + limit;
        loop {
            let mails = self.to(to);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(
                Instant::now() < until,
                "no mail #{n} to {to} within {limit:?}; got {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_for(&self, to: &str) -> Mail {
        self.wait_for_nth(to, 1, Duration::from_secs(30)).await
    }
}

/// How a cycle's portal is run.
pub struct Options {
    pub procedures: bool,
    /// More options for `kopplung portal` (e.g. `--public-url`).
    pub args: Vec<String>,
    /// More sections of `portal.toml` (`[limits]`, `[quotas]`, `[accounts]`).
    pub sections: String,
    /// More keys of its `[mail]` section.
    pub mail: String,
    /// Whether the SMTP server runs from the start.
    pub smtp: bool,
    /// oidc-provider (npm) as the portal's identity provider `test`, with these further
    /// keys of its `[[identity_provider]]` (e.g. `max_age_secs = 5`).
    pub oidc: Option<String>,
    /// The lifetime of the provider's ID tokens (its default: an hour).
    pub id_token_ttl_secs: Option<u64>,
    /// The demo Servicekonto (`kopplung idp-sim`) as the identity provider `test`
    /// instead of oidc-provider, with `oidc`'s keys.
    pub servicekonto: bool,
    /// More arguments of the reference procedures (e.g. `--ask-first <procedure>`).
    pub sim_args: Vec<String>,
    /// Edits the hub's routing table (after the test's queue names are set).
    pub edit_routing: fn(String) -> String,
    /// More of the hub's `kopplung.toml` (e.g. `[[clerk]]` sections).
    pub hub_config: String,
    /// The hub's FIT-Connect destinations and subscribers (see `HubSetup`).
    pub fitconnect: Vec<&'static str>,
    pub fitconnect_subscribers: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            procedures: false,
            args: Vec::new(),
            sections: String::new(),
            mail: String::new(),
            smtp: true,
            oidc: None,
            id_token_ttl_secs: None,
            servicekonto: false,
            sim_args: Vec::new(),
            edit_routing: |routing| routing,
            hub_config: String::new(),
            fitconnect: Vec::new(),
            fitconnect_subscribers: Vec::new(),
        }
    }
}

pub struct Cycle {
    pub hub: TestHub,
    pub portal_url: String,
    pub portal_dir: tempfile::TempDir,
    pub smtp: Smtp,
    /// The identity provider, with `Options::oidc`.
    pub idp: Option<OidcProvider>,
    /// The demo Servicekonto, with `Options::servicekonto`.
    pub servicekonto: Option<Servicekonto>,
    _sim: Option<Process>,
    _portal: Process,
}

impl Cycle {
    /// The hub, the portal as one of its clients, and (with `procedures`) the reference
    /// procedures of Dresden that answer with a decision after a second.
    pub async fn start(procedures: bool) -> Self {
        Self::with(Options {
            procedures,
            ..Options::default()
        })
        .await
    }

    /// The same with more options for `kopplung portal` (e.g. `--public-url`).
    pub async fn start_with(procedures: bool, portal_args: &[&str]) -> Self {
        Self::with(Options {
            procedures,
            args: portal_args.iter().map(|a| a.to_string()).collect(),
            ..Options::default()
        })
        .await
    }

    /// The same with more sections of `portal.toml` (`[limits]`, `[quotas]`, …).
    pub async fn with_sections(sections: impl Into<String>) -> Self {
        Self::with(Options {
            sections: sections.into(),
            ..Options::default()
        })
        .await
    }

    /// The same with oidc-provider (npm) as the portal's identity provider `test`.
    pub async fn with_oidc_provider() -> Self {
        Self::with(Options {
            oidc: Some(String::new()),
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> Self {
        let portal_dir = tempfile::tempdir().expect("portal dir");
        let port = free_port();
        let portal_url = format!("http://127.0.0.1:{port}");
        let (mut idp, mut servicekonto) = (None, None);
        // The portal's and the hub's sections for the provider.
        let mut sections = (String::new(), String::new());
        if let Some(keys) = &options.oidc {
            if options.servicekonto {
                let started = Servicekonto::start(&portal_url, portal_dir.path()).await;
                sections = (started.portal_config(keys), started.hub_config());
                servicekonto = Some(started);
            } else {
                let started =
                    OidcProvider::start(&portal_url, portal_dir.path(), options.id_token_ttl_secs);
                sections = (started.portal_config(keys), started.hub_config());
                idp = Some(started);
            }
        }
        // The hub trusts the provider the portal signs citizens in at.
        let hub = TestHub::start(HubSetup {
            extra_config: format!("{}\n{}", sections.1, options.hub_config),
            edit_routing: options.edit_routing,
            fitconnect: options.fitconnect.clone(),
            fitconnect_subscribers: options.fitconnect_subscribers.clone(),
            ..HubSetup::default()
        })
        .await;
        let sim = options.procedures.then(|| {
            let more: Vec<&str> = options.sim_args.iter().map(String::as_str).collect();
            hub.procedure_sim_with(
                &["dresden-buergerbuero", "dresden-maengel", "dresden-kasse"],
                1,
                &more,
            )
        });
        let mut smtp = Smtp::reserve(portal_dir.path());
        if options.smtp {
            smtp.start();
        }
        let config = portal_dir.path().join("portal.toml");
        std::fs::write(
            &config,
            format!(
                "[mail]\nfrom = \"Serviceportal Test <noreply@portal.test>\"\nhost = \"127.0.0.1\"\nport = {}\ntimeout_secs = 5\nretry_first_secs = 1\nretry_max_secs = 2\n{}\n\n{}\n{}\n",
                smtp.port,
                options.mail,
                options.sections,
                sections.0
            ),
        )
        .expect("portal.toml");
        let log = std::fs::File::create(portal_dir.path().join("portal.log")).expect("portal log");
        let portal = Process(
            Command::new(kopplung_bin())
                .arg("portal")
                .arg("--config")
                .arg(&config)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--hub", &hub.url("")])
                .arg("--token-file")
                .arg(hub.data_dir().join("intake-token"))
                .arg("--data-dir")
                .arg(portal_dir.path().join("data"))
                .arg("--kern-dir")
                .arg(kern_dir())
                .args(&options.args)
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
            smtp,
            idp,
            servicekonto,
            _sim: sim,
            _portal: portal,
        };
        cycle.wait_until_up().await;
        cycle
    }

    async fn wait_until_up(&self) {
        let client = reqwest::Client::new();
        let healthz = self.url("/healthz");
        eventually(
            Duration::from_secs(30),
            Duration::from_millis(200),
            async || match client.get(&healthz).send().await {
                Ok(response) if response.status() == 200 => Ok(()),
                _ => Err(()),
            },
            |()| format!("the portal did not come up:\n{}", self.log()),
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.portal_url)
    }

    /// The portal's resident memory in KiB (`VmRSS` of its process).
    pub fn portal_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self._portal.0.id()))
            .expect("the portal's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.portal_dir.path().join("portal.log")).unwrap_or_default()
    }

    pub fn mailbox(&self) -> Mailbox {
        self.smtp.mailbox()
    }

    /// The portal's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.portal_dir.path().join("data")
    }

    /// One value from `portal.sqlite`, read with the `sqlite3` command line.
    pub fn sql(&self, query: &str) -> String {
        kopplung_tests::shared::sqlite3(&self.data_dir().join("portal.sqlite"), query, false)
    }

    /// The hub's id of the application the portal submitted for `draft`.
    pub fn application_of(&self, draft: &str) -> String {
        self.sql(&format!(
            "SELECT application_id FROM drafts WHERE id = '{draft}'"
        ))
        .trim()
        .to_owned()
    }

    /// Waits (up to a minute) until the application of `draft` lists each of `messages`
    /// (kind, procedure, status) among the citizen's messages; its status document.
    pub async fn wait_for_messages(
        &self,
        draft: &str,
        messages: &[(&str, &str, &str)],
    ) -> serde_json::Value {
        self.hub
            .wait_until(
                &self.application_of(draft),
                &format!("list the messages {messages:?}"),
                Duration::from_secs(60),
                |s| messages.iter().all(|wanted| lists_message(s, *wanted)),
            )
            .await
    }
}

/// Whether `status` (an application) lists a message (kind, procedure, status) of the
/// citizen.
pub fn lists_message(
    status: &serde_json::Value,
    (kind, procedure, state): (&str, &str, &str),
) -> bool {
    status["messages"].as_array().is_some_and(|all| {
        all.iter()
            .any(|m| m["kind"] == kind && m["procedure"] == procedure && m["status"] == state)
    })
}

/// A registered citizen (`email`) who submitted the dog tax of the fixture
/// `hundesteuer` in Dresden: the citizen and the draft.
pub async fn dog_tax_submitted(cycle: &Cycle, email: &str) -> (Citizen, String) {
    let mut citizen = Citizen::new(cycle);
    citizen.register(email).await;
    let region = fixture("hundesteuer")["region"]
        .as_str()
        .expect("region")
        .to_owned();
    let location = citizen.start("99999003000000", &region).await;
    let draft = fill_from_fixture(&mut citizen, "hundesteuer", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    citizen.submit_reviewed(&draft, &review).await;
    (citizen, draft)
}

pub const PASSWORD: &str = "ein-langes-Passwort-123";

/// A browser in miniature: cookies, redirects followed by hand.
pub struct Citizen {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub mailbox: Mailbox,
    /// Sent as `X-Forwarded-For` (the portal believes it only from trusted proxies).
    pub forwarded_for: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF token on the page:\n{}", self.body))
            + marker.len();
        self.body[start..start + 64].to_owned()
    }
}

impl Citizen {
    pub fn new(cycle: &Cycle) -> Self {
        Self {
            http: no_redirects(),
            base: cycle.portal_url.clone(),
            cookies: BTreeMap::new(),
            mailbox: cycle.mailbox(),
            forwarded_for: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The `Cookie` header this citizen sends.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| cookie_header(&self.cookies))
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match self.cookie_header() {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let request = match &self.forwarded_for {
            Some(address) => request.header("x-forwarded-for", address),
            None => request,
        };
        let response = request.send().await.expect("request");
        keep_cookies(&mut self.cookies, response.headers());
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(self.url(path)).form(form);
        self.send(request).await
    }

    /// Follows redirects (GET) from `page` to the first page that is none.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..10 {
            if !(300..400).contains(&page.status) {
                return page;
            }
            let location = page.location();
            page = self.get(&location).await;
        }
        panic!("too many redirects");
    }

    /// Fills in the registration form; the answer (a redirect to "check your mail").
    pub async fn register_only(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/konto/registrieren").await;
        let csrf = form.csrf();
        self.post(
            "/konto/registrieren",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("password2", password),
            ],
        )
        .await
    }

    /// Opens the link of `mail` and confirms there: signed in afterwards.
    pub async fn confirm(&mut self, mail: &Mail) -> Page {
        let link = mail.link(&format!("{}/konto/bestaetigen?code=", self.base));
        let page = self.get(&link).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let code = link.rsplit('=').next().unwrap_or_default().to_owned();
        let csrf = page.csrf();
        self.post("/konto/bestaetigen", &[("csrf", &csrf), ("code", &code)])
            .await
    }

    /// Registers, reads the confirmation mail at the SMTP server, confirms: signed in.
    pub async fn register(&mut self, email: &str) {
        let done = self.register_only(email, PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location(), "/konto/registrieren/gesendet");
        let mail = self.mailbox.wait_for(email).await;
        assert!(!mail.raw.contains(PASSWORD), "the password in a mail");
        let confirmed = self.confirm(&mail).await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        assert_eq!(confirmed.location(), "/konto?bestaetigt");
    }

    /// Posts the sign-in form (with the form's CSRF token `csrf`); the answer.
    pub async fn sign_in(&mut self, csrf: &str, email: &str, password: &str) -> Page {
        self.post(
            "/konto/anmelden",
            &[("csrf", csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Signs in with [`PASSWORD`] from a fresh sign-in form (each sign-in replaces the
    /// session and its CSRF token), asking to go on to `next`; the answer.
    pub async fn sign_in_next(&mut self, email: &str, next: &str) -> Page {
        let csrf = self.csrf().await;
        self.post(
            "/konto/anmelden",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await
    }

    pub async fn csrf(&mut self) -> String {
        self.get("/konto/anmelden").await.csrf()
    }

    /// Signs in at the identity provider: from `start` (a portal path that sends the
    /// browser there, e.g. `/konto/oidc/anmelden?…`) through its interaction page, where
    /// `choice` is made, back to the portal; the portal's answer to the return, and the
    /// interaction page's text if the provider showed one.
    pub async fn at_provider(
        &mut self,
        idp: &mut IdpBrowser,
        start: &str,
        choice: Choice<'_>,
    ) -> (Page, Option<String>) {
        let to_provider = self.get(start).await;
        assert_eq!(to_provider.status, 303, "{}", to_provider.body);
        let (back, shown) = idp.authorize(&to_provider.location(), choice).await;
        assert!(
            back.starts_with(&self.base),
            "the provider sent the browser elsewhere: {back}"
        );
        (self.get(&back).await, shown)
    }

    /// Signs in at the provider as `person` at level `acr` (agreeing to the prefill
    /// with `consent`), coming back to `next`; expects to arrive there.
    pub async fn sign_in_at(
        &mut self,
        idp: &mut IdpBrowser,
        person: &str,
        acr: &str,
        next: &str,
        consent: bool,
    ) {
        let start = format!(
            "/konto/oidc/anmelden?anbieter=test{}&weiter={}",
            if consent { "&uebernahme=ja" } else { "" },
            kopplung_tests::oidc::encode(next)
        );
        let (back, _) = self
            .at_provider(idp, &start, Choice::sign_in(person, acr))
            .await;
        assert_eq!(back.status, 303, "{}", back.body);
        assert_eq!(back.location(), next);
    }

    /// Posts the finder's "apply online" button; the answer.
    pub async fn try_start(&mut self, service: &str, region: &str) -> Page {
        let finder = self
            .get(&format!("/zustaendigkeit?leistung={service}&ort={region}"))
            .await;
        assert_eq!(finder.status, 200, "{}", finder.body);
        self.post_start(service, region, &finder.csrf()).await
    }

    /// Posts the form that starts an application with the CSRF token `csrf`; the answer.
    pub async fn post_start(&mut self, service: &str, region: &str, csrf: &str) -> Page {
        self.post(
            &format!("/antrag/{service}/neu"),
            &[("csrf", csrf), ("region", region)],
        )
        .await
    }

    /// Starts an application from the finder's button; the first step's path.
    pub async fn start(&mut self, service: &str, region: &str) -> String {
        let started = self.try_start(service, region).await;
        assert_eq!(started.status, 303, "{}", started.body);
        started.location()
    }

    /// Posts a step and expects to be sent on.
    pub async fn fill(&mut self, step: &str, fields: &[(&str, &str)]) -> String {
        let next = self.press(step, "weiter", fields).await;
        assert_eq!(next.status, 303, "step {step} refused:\n{}", next.body);
        next.location()
    }

    /// Opens a step and presses its button `aktion` (weiter, zurueck, speichern) with
    /// `fields` typed; the answer.
    pub async fn press(&mut self, step: &str, aktion: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(step).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf();
        let mut form = vec![("csrf", csrf.as_str()), ("aktion", aktion)];
        form.extend_from_slice(fields);
        self.post(step, &form).await
    }

    /// Presses the submit button of the draft's review page (whose CSRF token is `csrf`);
    /// the answer.
    pub async fn submit(&mut self, draft: &str, csrf: &str) -> Page {
        self.post(&format!("/entwurf/{draft}/absenden"), &[("csrf", csrf)])
            .await
    }

    /// Pays the draft's fee: from its review page (whose CSRF token is `csrf`) to the
    /// payment provider, where the citizen pays by `method` or cancels (`action`:
    /// `bezahlen`, `abbrechen`), and back. The provider's page and the page back.
    pub async fn pay(
        &mut self,
        draft: &str,
        csrf: &str,
        method: &str,
        action: &str,
    ) -> (Page, Page) {
        let to_provider = self
            .post(&format!("/entwurf/{draft}/bezahlen"), &[("csrf", csrf)])
            .await;
        assert_eq!(to_provider.status, 303, "{}", to_provider.body);
        // A second start (another tab, a double click) pays the same transaction.
        let again = self
            .post(&format!("/entwurf/{draft}/bezahlen"), &[("csrf", csrf)])
            .await;
        assert_eq!(again.location(), to_provider.location(), "one transaction");
        let provider = self.get(&to_provider.location()).await;
        assert_eq!(provider.status, 200, "{}", provider.body);
        let decided = self
            .post(
                &to_provider.location(),
                &[
                    ("csrf", &provider.csrf()),
                    ("zahlart", method),
                    ("aktion", action),
                ],
            )
            .await;
        assert_eq!(decided.status, 303, "{}", decided.body);
        let back = self.follow(decided).await;
        (provider, back)
    }

    /// Submits the draft from its review page (`review`, as shown) and expects to be
    /// sent to its application page.
    pub async fn submit_reviewed(&mut self, draft: &str, review: &Page) {
        let submitted = self.submit(draft, &review.csrf()).await;
        assert_eq!(submitted.status, 303, "{}", submitted.body);
        assert_eq!(
            submitted.location(),
            format!("/antraege/{draft}?eingereicht")
        );
    }

    /// The CSRF token of the draft's attachments page (its upload form).
    pub async fn attachments_csrf(&mut self, draft: &str) -> String {
        self.get(&format!("/entwurf/{draft}/anlagen")).await.csrf()
    }

    /// Uploads `content` as the draft's attachment.
    pub async fn upload(
        &mut self,
        draft: &str,
        csrf: &str,
        filename: &str,
        media_type: &str,
        content: Vec<u8>,
    ) -> Page {
        self.upload_to(draft, csrf, None, (filename, media_type, content))
            .await
    }

    /// Uploads `(filename, media type, content)` into the form's attachment `slot`
    /// (`None`: the further documents).
    pub async fn upload_to(
        &mut self,
        draft: &str,
        csrf: &str,
        slot: Option<&str>,
        (filename, media_type, content): (&str, &str, Vec<u8>),
    ) -> Page {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_owned())
            .text("slot", slot.unwrap_or_default().to_owned())
            .part(
                "datei",
                reqwest::multipart::Part::bytes(content)
                    .file_name(filename.to_owned())
                    .mime_str(media_type)
                    .expect("media type"),
            );
        let request = self
            .http
            .post(self.url(&format!("/entwurf/{draft}/anlagen")))
            .multipart(form);
        self.send(request).await
    }
}

pub const MELDE: &str = "99115003000000";

pub fn draft_of(step: &str) -> String {
    step.split('/').nth(2).expect("draft id").to_owned()
}

/// A Mängelanzeige with a photo, submitted from the review page; the draft id.
pub async fn report_a_pothole(citizen: &mut Citizen) -> String {
    let (draft, next) = start_pothole_report(citizen).await;
    let csrf = citizen.get(&next).await.csrf();
    let upload = citizen
        .upload(&draft, &csrf, "schlagloch.png", "image/png", photo_png())
        .await;
    assert_eq!(upload.status, 303, "{}", upload.body);
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(review.body.contains("schlagloch.png"), "{}", review.body);
    citizen.submit_reviewed(&draft, &review).await;
    draft
}

/// Starts a Mängelanzeige in Dresden and fills its step: the draft's id and the page it
/// goes on to (its attachments).
pub async fn start_pothole_report(citizen: &mut Citizen) -> (String, String) {
    let step = citizen.start(MAENGEL, DRESDEN).await;
    let draft = draft_of(&step);
    let next = citizen
        .fill(
            &step,
            &[
                ("kategorie", "strassenschaden"),
                ("beschreibung", "Tiefes Schlagloch vor der Grundschule"),
                ("ort.strasse", "Königsbrücker Straße"),
                ("ort.hausnummer", "12"),
            ],
        )
        .await;
    assert_eq!(next, format!("/entwurf/{draft}/anlagen"));
    (draft, next)
}

/// The complete fixture of the mapping in `mappings/<folder>`.
pub fn fixture(folder: &str) -> serde_json::Value {
    let path = workspace().join(format!(
        "mappings/{folder}/fixtures/vollstaendig.input.json"
    ));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

/// `data` as the form's dotted input names (booleans as a checked box's `true`).
pub fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, out);
            }
        }
        // A repeatable group's entries, named from 0 (`hunde.1.name`).
        serde_json::Value::Array(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                flatten(&format!("{prefix}.{index}"), entry, out);
            }
        }
        serde_json::Value::Bool(true) => out.push((prefix.to_owned(), "true".to_owned())),
        serde_json::Value::Bool(false) | serde_json::Value::Null => {}
        serde_json::Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// One repeatable group's path per entry beyond the first.
fn entries_to_add(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    if let serde_json::Value::Object(map) = value {
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                serde_json::Value::Array(entries) => {
                    out.extend(std::iter::repeat_n(path, entries.len().saturating_sub(1)));
                }
                other => entries_to_add(&path, other, out),
            }
        }
    }
}

/// Fills a draft's steps from `location` (its first step) with the complete fixture of
/// `mappings/<folder>` — every step gets all inputs, each takes its own — and uploads
/// the fixture's attachments; the draft's id.
pub async fn fill_from_fixture(
    citizen: &mut Citizen,
    folder: &str,
    mut location: String,
) -> String {
    use base64::Engine;
    let fixture = fixture(folder);
    let mut pairs = Vec::new();
    flatten("", &fixture["data"], &mut pairs);
    let draft = draft_of(&location);
    // A repeatable group shows one entry at first: "add" as often as the fixture has more.
    let mut adds = Vec::new();
    entries_to_add("", &fixture["data"], &mut adds);
    for group in adds {
        let page = citizen.get(&location).await;
        let csrf = page.csrf();
        let action = format!("hinzufuegen:{group}");
        let added = citizen
            .post(&location, &[("csrf", &csrf), ("aktion", &action)])
            .await;
        assert_eq!(added.status, 303, "{folder} {location}:\n{}", added.body);
    }
    while location.contains("/schritt/") {
        let page = citizen.get(&location).await;
        assert_eq!(page.status, 200, "{folder} {location}:\n{}", page.body);
        let csrf = page.csrf();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("aktion", "weiter")];
        form.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let next = citizen.post(&location, &form).await;
        assert_eq!(next.status, 303, "{folder} {location}:\n{}", next.body);
        location = next.location();
    }
    if location.ends_with("/anlagen") {
        let csrf = citizen.get(&location).await.csrf();
        for attachment in fixture["attachments"].as_array().into_iter().flatten() {
            let content = base64::engine::general_purpose::STANDARD
                .decode(attachment["content_base64"].as_str().unwrap())
                .unwrap();
            let file = (
                attachment["filename"].as_str().unwrap(),
                attachment["media_type"].as_str().unwrap(),
                content,
            );
            let uploaded = citizen
                .upload_to(&draft, &csrf, attachment["slot"].as_str(), file)
                .await;
            assert_eq!(uploaded.status, 303, "{folder}: {}", uploaded.body);
        }
    }
    draft
}

/// A small real PNG (the portal decodes every photo it takes).
pub fn photo_png() -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 12, y as u8 * 16, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .expect("PNG");
    out
}

/// A small real JPEG.
pub fn photo_jpeg() -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 12, 80, y as u8 * 16]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 85,
        ))
        .expect("JPEG");
    out
}

/// A JPEG of `width` × `height` noise (it compresses as badly as a photo) with a GPS
/// position in its EXIF, as a phone writes it.
pub fn phone_photo(width: u32, height: u32, (lat, lon): (f64, f64)) -> Vec<u8> {
    use image::ImageEncoder;
    let mut seed = 11u32;
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let [a, _, _, _] = seed.to_le_bytes();
        // A gradient with noise on it.
        image::Rgb([(x % 256) as u8 ^ a, (y % 256) as u8, a])
    });
    let dms = |value: f64| {
        let degrees = value.trunc();
        let minutes = ((value - degrees) * 60.0).trunc();
        let seconds = ((value - degrees) * 60.0 - minutes) * 60.0;
        vec![
            exif::Rational::from((degrees as u32, 1)),
            exif::Rational::from((minutes as u32, 1)),
            exif::Rational::from(((seconds * 1000.0).round() as u32, 1000)),
        ]
    };
    let field = |tag, value| exif::Field {
        tag,
        ifd_num: exif::In::PRIMARY,
        value,
    };
    let fields = [
        field(
            exif::Tag::GPSLatitudeRef,
            exif::Value::Ascii(vec![b"N".to_vec()]),
        ),
        field(exif::Tag::GPSLatitude, exif::Value::Rational(dms(lat))),
        field(
            exif::Tag::GPSLongitudeRef,
            exif::Value::Ascii(vec![b"E".to_vec()]),
        ),
        field(exif::Tag::GPSLongitude, exif::Value::Rational(dms(lon))),
        field(
            exif::Tag::Make,
            exif::Value::Ascii(vec![b"Telefonbau".to_vec()]),
        ),
    ];
    let mut writer = exif::experimental::Writer::new();
    fields.iter().for_each(|f| writer.push_field(f));
    let mut blob = std::io::Cursor::new(Vec::new());
    writer.write(&mut blob, false).unwrap();
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 97);
    encoder.set_exif_metadata(blob.into_inner()).unwrap();
    encoder
        .write_image(
            picture.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}
