//! Mail to citizens (the account confirmation): queued in the `mail_outbox` table in
//! the same breath as what it is about, and sent by a background task — so a relay that
//! is down delays a mail (retried with a doubling wait) but never fails or blocks the
//! request that queued it. Sent over SMTP with `lettre` (STARTTLS when the relay offers
//! it, or as configured), or, for development and the demo, dropped as files into
//! `<data-dir>/mail/` and shown by the development mail viewer (`viewer`).
//!
//! Logs name a mail by its id only: never the recipient, the subject or the relay's
//! answer text (which may quote the address).

pub mod viewer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::{Row, SqliteExecutor};
use tokio::sync::Notify;

use crate::config::{self, MailTransport, StartTls};
use crate::{Error, Shared, db};

/// A mail to queue. It carries no personal data beyond the address it goes to.
pub struct Outgoing {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Outgoing {
    /// The portal's letter to `to`: the greeting, `text` (its paragraphs each ending in
    /// a blank line) and the closing.
    pub fn letter(to: &str, subject: impl Into<String>, text: &str) -> Self {
        Self {
            to: to.to_owned(),
            subject: subject.into(),
            body: format!("Guten Tag,\n\n{text}Mit freundlichen Grüßen\nIhr Serviceportal\n"),
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Drop(PathBuf),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    settings: config::Mail,
    wake: Notify,
}

/// Why a mail was not sent.
enum Failed {
    /// Retry later.
    Transient(String),
    /// The relay (or the address) will never take it.
    Permanent(String),
}

impl Mailer {
    /// The transport of `settings`; the drop's folder below `data_dir` is created private.
    pub fn new(settings: &config::Mail, data_dir: &Path, public_host: &str) -> Result<Self, Error> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| Error::Mail(format!("[mail] from: {e}")))?;
        let transport = match settings.transport {
            MailTransport::Drop => {
                let dir = data_dir.join("mail");
                kopplung_web::files::create_private_dir(&dir)?;
                tracing::warn!(
                    viewer = settings.viewer,
                    "development mail drop: mails are written to <data-dir>/mail, not sent"
                );
                Transport::Drop(dir)
            }
            MailTransport::Smtp => {
                let tls = || {
                    TlsParameters::new(settings.host.clone())
                        .map_err(|e| Error::Mail(format!("[mail] TLS: {e}")))
                };
                let tls = match settings.starttls {
                    StartTls::Opportunistic => Tls::Opportunistic(tls()?),
                    StartTls::Required => Tls::Required(tls()?),
                    StartTls::Never => Tls::None,
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                        .port(settings.port)
                        .tls(tls)
                        .hello_name(ClientId::Domain(public_host.to_owned()))
                        .timeout(Some(Duration::from_secs(settings.timeout_secs)));
                if let (Some(user), Some(file)) = (&settings.username, &settings.password_file) {
                    let password = std::fs::read_to_string(file).map_err(|e| {
                        Error::Mail(format!("[mail] password_file {}: {e}", file.display()))
                    })?;
                    builder =
                        builder.credentials(Credentials::new(user.clone(), password.trim().into()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self {
            transport,
            from,
            settings: settings.clone(),
            wake: Notify::new(),
        })
    }

    /// The drop's folder, with `transport = "drop"`.
    pub fn drop_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Drop(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// How long a mail is kept at most: in the outbox, and in the drop.
    pub fn expire(&self) -> Duration {
        Duration::from_secs(self.settings.expire_hours.saturating_mul(3600))
    }

    /// The development viewer's folder, when it is on.
    pub fn viewer_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Drop(dir) if self.settings.viewer => Some(dir),
            _ => None,
        }
    }

    /// Tells the sender that a mail is waiting (after the queuing transaction commits).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), Failed> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| Failed::Permanent("the recipient is no valid address".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| Failed::Permanent(format!("building the mail: {e}")))?;
        match &self.transport {
            Transport::Drop(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
                    uuid::Uuid::new_v4()
                );
                let path = dir.join(name);
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || {
                    kopplung_web::files::write_private_file(&path, &bytes)
                })
                .await
                .map_err(|e| Failed::Transient(e.to_string()))?
                .map_err(|e| Failed::Transient(format!("writing the drop: {}", e.kind())))
            }
            Transport::Smtp(smtp) => {
                let limit = Duration::from_secs(self.settings.timeout_secs);
                match tokio::time::timeout(limit, smtp.send(message)).await {
                    Err(_) => Err(Failed::Transient("timed out".into())),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => {
                        // Kind and code only: the relay's text may quote the address.
                        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                        if e.is_permanent() {
                            Err(Failed::Permanent(format!("refused permanently {code}")))
                        } else if e.is_transient() {
                            Err(Failed::Transient(format!("refused for now {code}")))
                        } else if e.is_timeout() {
                            Err(Failed::Transient("timed out".into()))
                        } else if e.is_tls() {
                            Err(Failed::Transient("TLS failed".into()))
                        } else {
                            Err(Failed::Transient("relay not reachable".into()))
                        }
                    }
                }
            }
        }
    }

    /// The wait before attempt `attempts + 1`.
    fn backoff(&self, attempts: u32) -> i64 {
        let first = self.settings.retry_first_secs;
        let wait = first
            .saturating_mul(1u64 << attempts.min(20))
            .min(self.settings.retry_max_secs);
        i64::try_from(wait).unwrap_or(i64::MAX)
    }
}

/// Queues `mail` (in the caller's transaction, if it passes one).
pub async fn enqueue<'e>(
    executor: impl SqliteExecutor<'e>,
    mail: &Outgoing,
) -> Result<(), sqlx::Error> {
    let now = db::now();
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, body, created_at, attempts, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, 0, ?)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.body)
    .bind(now)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Sends what is due, then waits for the next due mail or a wake-up; runs until the
/// portal stops.
pub async fn run(state: Shared) {
    loop {
        let next = match deliver_due(&state).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "the mail outbox could not be read");
                Some(db::now() + 5)
            }
        };
        let wait = next
            .map(|at| u64::try_from(at - db::now()).unwrap_or(0))
            .unwrap_or(60)
            .min(60);
        tokio::select! {
            _ = state.mailer.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
        }
    }
}

/// One round: gives up expired mails, sends the due ones; when the next one is due.
async fn deliver_due(state: &Shared) -> Result<Option<i64>, Error> {
    let mailer = &state.mailer;
    let expire =
        i64::try_from(mailer.settings.expire_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let given_up = sqlx::query("DELETE FROM mail_outbox WHERE created_at <= ?")
        .bind(db::now().saturating_sub(expire))
        .execute(&state.db)
        .await?
        .rows_affected();
    if given_up > 0 {
        tracing::warn!(
            count = given_up,
            "mails given up: not delivered within expire_hours"
        );
    }
    let due = sqlx::query(
        "SELECT id, recipient, subject, body, attempts FROM mail_outbox
         WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 20",
    )
    .bind(db::now())
    .fetch_all(&state.db)
    .await?;
    for row in due {
        let id: String = row.get("id");
        let attempts = u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(u32::MAX);
        let sent = mailer
            .send(
                &row.get::<String, _>("recipient"),
                &row.get::<String, _>("subject"),
                &row.get::<String, _>("body"),
            )
            .await;
        match sent {
            Ok(()) => {
                sqlx::query("DELETE FROM mail_outbox WHERE id = ?")
                    .bind(&id)
                    .execute(&state.db)
                    .await?;
                tracing::info!(mail = %id, attempts = attempts + 1, "mail sent");
            }
            Err(Failed::Permanent(reason)) => {
                sqlx::query("DELETE FROM mail_outbox WHERE id = ?")
                    .bind(&id)
                    .execute(&state.db)
                    .await?;
                tracing::warn!(mail = %id, %reason, "mail given up");
            }
            Err(Failed::Transient(reason)) => {
                let wait = mailer.backoff(attempts);
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?",
                )
                .bind(db::now().saturating_add(wait))
                .bind(&id)
                .execute(&state.db)
                .await?;
                tracing::warn!(mail = %id, attempts = attempts + 1, %reason, retry_in_secs = wait, "mail not sent; it waits in the outbox");
            }
        }
    }
    let next: Option<i64> = sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM mail_outbox")
        .fetch_one(&state.db)
        .await?;
    Ok(next)
}
