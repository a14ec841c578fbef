//! What visitors without an account may store (`[quotas]`): per client address, sliding
//! windows kept in memory (anonymous drafts started, uploads and their bytes, new
//! sessions); per session, what its anonymous drafts hold (read from the store where it
//! is checked). Every refusal is a German page that says what to do: sign in, or wait.
//!
//! Amounts are taken when a request begins (an upload's declared length), so that
//! parallel requests cannot all pass before any is counted. Time comes from Tokio's
//! clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kopplung_web::client::limit_address;
use kopplung_web::limiter::wait_in_minutes;
use tokio::time::Instant;

use crate::config;
use crate::web::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sessions,
    Drafts,
    Uploads,
    UploadBytes,
}

/// What each address took within the window, and when.
type Windows = HashMap<(Kind, IpAddr), VecDeque<(Instant, u64)>>;

/// The per-address windows.
pub struct Quotas {
    settings: config::Quotas,
    windows: Mutex<Windows>,
}

/// Windows kept before empty ones are swept.
const SWEEP_ABOVE: usize = 10_000;

impl Quotas {
    pub fn new(settings: config::Quotas) -> Self {
        Self {
            settings,
            windows: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &config::Quotas {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, Windows> {
        match self.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes `amount` of `kind` for `address` if the window has room for it; otherwise
    /// how long until it has.
    fn take(&self, kind: Kind, address: IpAddr, amount: u64, limit: u64) -> Result<(), Duration> {
        let window = self.settings.window();
        let now = Instant::now();
        let mut windows = self.lock();
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, entries| {
                entries
                    .back()
                    .is_some_and(|(at, _)| now.duration_since(*at) < window)
            });
        }
        let entries = windows.entry((kind, limit_address(address))).or_default();
        while entries
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= window)
        {
            entries.pop_front();
        }
        let used: u64 = entries.iter().map(|(_, n)| *n).sum();
        if used.saturating_add(amount) <= limit {
            entries.push_back((now, amount));
            return Ok(());
        }
        // Room comes as the oldest entries leave the window.
        let mut freed = 0u64;
        for (at, n) in entries.iter() {
            freed = freed.saturating_add(*n);
            if used.saturating_sub(freed).saturating_add(amount) <= limit {
                return Err(window.saturating_sub(now.duration_since(*at)));
            }
        }
        Err(window)
    }

    /// An anonymous session is to be stored for `address`.
    pub fn new_session(&self, address: IpAddr) -> Result<(), Failure> {
        self.take(
            Kind::Sessions,
            address,
            1,
            self.settings.sessions_per_address,
        )
        .map_err(|wait| from_address("Formulare ohne Anmeldung begonnen", wait))
    }

    /// An anonymous draft is to be started from `address`.
    pub fn anonymous_draft(&self, address: IpAddr) -> Result<(), Failure> {
        self.take(
            Kind::Drafts,
            address,
            1,
            self.settings.anonymous_drafts_per_address,
        )
        .map_err(|wait| from_address("Formulare ohne Anmeldung begonnen", wait))
    }

    /// An anonymous upload of (at most) `bytes` begins from `address`.
    pub fn anonymous_upload(&self, address: IpAddr, bytes: u64) -> Result<(), Failure> {
        let what = "Dateien ohne Anmeldung hochgeladen";
        self.take(
            Kind::Uploads,
            address,
            1,
            self.settings.anonymous_uploads_per_address,
        )
        .map_err(|wait| from_address(what, wait))?;
        self.take(
            Kind::UploadBytes,
            address,
            bytes,
            self.settings.anonymous_upload_bytes_per_address,
        )
        .map_err(|wait| from_address(what, wait))
    }

    /// What a session's anonymous drafts hold, against the per-session quotas.
    pub fn check_session_drafts(&self, open_drafts: u64) -> Result<(), Failure> {
        let limit = self.settings.anonymous_drafts_per_session;
        if open_drafts < limit {
            return Ok(());
        }
        Err(Failure::without_account(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            if limit == 1 {
                "Sie haben ohne Anmeldung bereits ein Formular begonnen und noch nicht abgesendet. Bitte senden Sie es zuerst ab oder verwerfen Sie es – Sie finden es mit „Zurück“ in Ihrem Browser –, oder melden Sie sich mit Ihrem Servicekonto an, um weitere zu beginnen.".to_owned()
            } else {
                format!(
                    "Sie haben ohne Anmeldung bereits {limit} Formulare begonnen und noch nicht abgesendet. Bitte senden Sie zuerst eines davon ab oder verwerfen Sie es – Sie finden sie mit „Zurück“ in Ihrem Browser –, oder melden Sie sich mit Ihrem Servicekonto an, um weitere zu beginnen."
                )
            },
        ))
    }

    /// A further upload of `bytes` into a session's anonymous drafts that hold `files`
    /// files of `stored` bytes.
    pub fn check_session_uploads(
        &self,
        files: u64,
        stored: u64,
        bytes: u64,
    ) -> Result<(), Failure> {
        let s = &self.settings;
        if files >= s.anonymous_uploads_per_session {
            return Err(Failure::without_account(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Ohne Anmeldung können Sie höchstens {} hochladen. Bitte entfernen Sie eine Datei, die Sie nicht brauchen, oder melden Sie sich mit Ihrem Servicekonto an.",
                    match s.anonymous_uploads_per_session {
                        1 => "eine Datei".to_owned(),
                        n => format!("{n} Dateien"),
                    }
                ),
            ));
        }
        if stored.saturating_add(bytes) > s.anonymous_upload_bytes_per_session {
            return Err(Failure::without_account(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Ohne Anmeldung können Sie insgesamt höchstens {} hochladen; mit dieser Datei wären es mehr. Bitte entfernen Sie eine Datei oder verkleinern Sie sie, oder melden Sie sich mit Ihrem Servicekonto an.",
                    human_bytes(s.anonymous_upload_bytes_per_session)
                ),
            ));
        }
        Ok(())
    }

    /// Anonymous uploads while the disk of `data_dir` has room.
    pub fn check_disk(&self, data_dir: &Path) -> Result<(), Failure> {
        let min = self.settings.min_free_disk_mib;
        if min == 0 {
            return Ok(());
        }
        match free_mib(data_dir) {
            Some(free) if free < min => {
                tracing::warn!(
                    free_mib = free,
                    min_free_disk_mib = min,
                    "anonymous upload refused: little free disk space"
                );
                Err(Failure {
                    retry_after: Some(Duration::from_secs(600)),
                    ..Failure::without_account(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "Das Hochladen von Dateien ohne Anmeldung ist gerade nicht möglich. Bitte versuchen Sie es später noch einmal, oder melden Sie sich mit Ihrem Servicekonto an.",
                    )
                })
            }
            _ => Ok(()),
        }
    }
}

fn from_address(what: &str, wait: Duration) -> Failure {
    Failure {
        retry_after: Some(wait.max(Duration::from_secs(1))),
        ..Failure::without_account(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Von Ihrem Internetanschluss wurden in kurzer Zeit sehr viele {what}. Bitte warten Sie {} und versuchen Sie es dann erneut, oder melden Sie sich mit Ihrem Servicekonto an.",
                wait_in_minutes(wait)
            ),
        )
    }
}

/// `25 MB`, `512 KB`
pub fn human_bytes(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        let tenths = bytes * 10 / (1024 * 1024);
        if tenths.is_multiple_of(10) {
            format!("{} MB", tenths / 10)
        } else {
            format!("{},{} MB", tenths / 10, tenths % 10)
        }
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// Free space for unprivileged writers on the disk of `path`, in MiB.
fn free_mib(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    fn quotas() -> Quotas {
        Quotas::new(config::Quotas {
            anonymous_drafts_per_address: 2,
            anonymous_uploads_per_address: 10,
            anonymous_upload_bytes_per_address: 100,
            address_window_secs: 60,
            ..config::Quotas::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_gets_its_window_and_is_told_how_long_to_wait() {
        let quotas = quotas();
        quotas.anonymous_draft(HOME).unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        quotas.anonymous_draft(HOME).unwrap();
        let refused = quotas.anonymous_draft(HOME).unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(40)));
        assert!(
            refused.message.contains("melden Sie sich"),
            "{}",
            refused.message
        );
        assert!(quotas.anonymous_draft(ELSEWHERE).is_ok());
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(quotas.anonymous_draft(HOME).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn upload_bytes_are_taken_before_the_body_arrives() {
        let quotas = quotas();
        quotas.anonymous_upload(HOME, 60).unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        quotas.anonymous_upload(HOME, 30).unwrap();
        let refused = quotas.anonymous_upload(HOME, 20).unwrap_err();
        assert_eq!(refused.retry_after, Some(Duration::from_secs(50)));
        assert!(quotas.anonymous_upload(HOME, 10).is_ok());
    }

    #[test]
    fn session_quotas_and_sizes() {
        let quotas = Quotas::new(config::Quotas {
            anonymous_drafts_per_session: 2,
            anonymous_uploads_per_session: 3,
            anonymous_upload_bytes_per_session: 1024 * 1024,
            min_free_disk_mib: 1,
            ..config::Quotas::default()
        });
        assert!(quotas.check_session_drafts(1).is_ok());
        assert_eq!(quotas.check_session_drafts(2).unwrap_err().status, 429);
        assert!(quotas.check_session_uploads(2, 1000, 1000).is_ok());
        assert_eq!(
            quotas.check_session_uploads(3, 0, 1).unwrap_err().status,
            429
        );
        let too_large = quotas
            .check_session_uploads(1, 1024 * 1024 - 10, 11)
            .unwrap_err();
        assert_eq!(too_large.status, 413);
        assert!(
            too_large.message.contains("höchstens 1 MB"),
            "{}",
            too_large.message
        );
        assert_eq!(human_bytes(25 * 1024 * 1024), "25 MB");
        assert_eq!(human_bytes(1536 * 1024), "1,5 MB");
        assert_eq!(human_bytes(1000), "1 KB");
        let blocked = Quotas::new(config::Quotas {
            min_free_disk_mib: u64::MAX,
            ..config::Quotas::default()
        });
        assert_eq!(blocked.check_disk(Path::new("/")).unwrap_err().status, 503);
        assert!(quotas.check_disk(Path::new("/")).is_ok());
    }
}
