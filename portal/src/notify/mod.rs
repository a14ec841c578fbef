//! Notifications by e-mail: a background task follows the hub's change feed
//! (`GET /api/v1/changes`, its cursor kept in `change_feed`) and, for each change of an
//! application whose owner asked for it, queues a mail in the outbox (`crate::mail`) —
//! in the same transaction that moves the cursor, so a change is mailed once, and a
//! relay that is down delays the mail, never the hub's state change.
//!
//! A mail says only the receipt number, what kind of thing happened and where to read
//! it: no service, no form data, no names. Accounts choose on `/konto/benachrichtigungen`
//! (`pages`); anonymous reporters leave an address for one application's status mails
//! (`anonymous`, double opt-in, with a secret status page).

pub mod anonymous;
pub mod pages;

use std::time::Duration;

use sqlx::{Row, SqliteConnection};

use crate::mail::{self, Outgoing};
use crate::router_client::{Change, Service};
use crate::web::{Failure, Visitor};
use crate::{Error, Shared, db};
use kopplung_forms::Wording;
use kopplung_web::shell::random_hex;

/// The statuses a citizen hears of: the authority's steps. The hub's own (accepted,
/// prepared, delivered) pass within seconds of the submission, and a disturbed delivery
/// is the operators' to fix.
fn announced(status: &str) -> bool {
    matches!(
        status,
        "received" | "in_progress" | "query" | "decided" | "rejected"
    )
}

fn is_final(status: &str) -> bool {
    matches!(status, "decided" | "rejected")
}

/// The words of the service with `key` (Antrag, Meldung …); the default where the hub
/// cannot be asked.
pub(crate) async fn wording_of_service(state: &Shared, key: &str) -> Wording {
    state
        .router
        .services()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.key == key))
        .map(|s| s.wording)
        .unwrap_or_default()
}

/// The words of the service an application was made for, by its draft.
pub(crate) async fn wording_of_application(state: &Shared, application: &str) -> Wording {
    let service: Option<String> =
        sqlx::query_scalar("SELECT service FROM drafts WHERE application_id = ? LIMIT 1")
            .bind(application)
            .fetch_optional(&state.db)
            .await
            .ok()
            .flatten();
    match service {
        Some(key) => wording_of_service(state, &key).await,
        None => Wording::default(),
    }
}

/// What a change is news of, for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct News {
    pub mailbox: bool,
    pub status: bool,
}

/// The lines that say what happened, in plain German and the service's words.
fn what_happened(change: &Change, news: News, wording: Wording) -> String {
    let receipt = &change.receipt;
    let mut lines = Vec::new();
    if news.mailbox {
        lines.push(format!(
            "es gibt eine neue Nachricht zu {} mit der Vorgangsnummer {receipt}.",
            wording.yours_dative()
        ));
    }
    if news.status {
        let sentence = format!(
            "Der Stand {} {receipt} hat sich geändert. Neuer Stand: „{}“.",
            wording.yours_genitive(),
            crate::applications::status_label(&change.status, wording)
        );
        lines.push(if news.mailbox {
            sentence
        } else {
            // The first sentence after the greeting starts in lower case.
            format!("d{}", &sentence[1..])
        });
    }
    lines.join("\n")
}

/// The mail to an account's owner: read it in the Servicekonto.
pub fn account_mail(
    base: &str,
    to: &str,
    draft: &str,
    change: &Change,
    news: News,
    wording: Wording,
) -> Outgoing {
    let how = format!(
        "Mehr dazu lesen Sie in Ihrem Servicekonto, nachdem Sie sich angemeldet haben:\n\n\
             {base}/antraege/{draft}\n\n\
             Sie erhalten diese E-Mail, weil Sie in Ihrem Servicekonto Benachrichtigungen \
             eingeschaltet haben. Dort können Sie sie auch wieder ausschalten:\n\n\
             {base}/konto/benachrichtigungen\n\n"
    );
    news_mail(to, change, news, wording, &how)
}

/// A mail about `change` to `to`: the greeting, what happened, `how` (where to read
/// more and why the mail comes, its paragraphs each ending in a blank line) and the
/// closing.
fn news_mail(to: &str, change: &Change, news: News, wording: Wording, how: &str) -> Outgoing {
    Outgoing::letter(
        to,
        format!(
            "Neuigkeiten zu {} {}",
            wording.yours_dative(),
            change.receipt
        ),
        &format!(
            "{what}\n\n{how}\
             Bitte antworten Sie nicht auf diese E-Mail; sie wurde automatisch versandt.\n\n",
            what = what_happened(change, news, wording),
        ),
    )
}

/// The token of a confirmation mail to `email`: each request sends a mail, so requests
/// are limited per address and per client, like registrations.
fn mail_token(state: &Shared, email: &str, visitor: &Visitor) -> Result<String, Failure> {
    let attempt = crate::account::begin_limited(&state.registrations, email, visitor, |wait| {
        format!(
            "Zu viele E-Mails in kurzer Zeit. Bitte warten Sie {wait} und versuchen Sie es dann erneut."
        )
    })?;
    let _ = attempt.failed();
    Ok(random_hex(32).map_err(Error::from)?)
}

/// Follows the change feed until the portal stops: at once while it has more, else
/// every `[notifications] poll_secs`.
pub async fn run(state: Shared) {
    let poll = Duration::from_secs(state.config.settings.notifications.poll_secs);
    loop {
        match follow(&state).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the hub's change feed could not be followed; trying again later");
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// One page of the feed: the mails it asks for are queued and the cursor moved in one
/// transaction. Whether more is waiting.
pub async fn follow(state: &Shared) -> Result<bool, Error> {
    let cursor: i64 = sqlx::query_scalar("SELECT cursor FROM change_feed WHERE id = 1")
        .fetch_optional(&state.db)
        .await?
        .unwrap_or(0);
    let page = state.router.changes(cursor, 100).await?;
    if page.changes.is_empty() && page.cursor == cursor {
        // Nothing new: no write.
        return Ok(page.more);
    }
    // The services' words (Antrag, Meldung …), fetched once for the page of changes.
    let services = if page.changes.is_empty() {
        Vec::new()
    } else {
        state.router.services().await?
    };
    let mut tx = db::write_transaction(&state.db).await?;
    let mut mails = 0;
    for change in &page.changes {
        mails += mails_for(state, &mut tx, change, &services).await?;
    }
    sqlx::query(
        "INSERT INTO change_feed (id, cursor, updated_at) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )
    .bind(page.cursor)
    .bind(db::now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if mails > 0 {
        state.mailer.wake();
    }
    if !page.changes.is_empty() {
        tracing::info!(
            changes = page.changes.len(),
            mails,
            cursor = page.cursor,
            "change feed followed"
        );
    }
    Ok(page.more)
}

/// Queues the mails `change` asks for (in `tx`); how many.
async fn mails_for(
    state: &Shared,
    tx: &mut SqliteConnection,
    change: &Change,
    services: &[Service],
) -> Result<u64, Error> {
    let base = &state.config.public_url;
    let at =
        time::OffsetDateTime::parse(&change.at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Router(format!("the change feed's time {}: {e}", change.at)))?
            .unix_timestamp();
    let status_news = announced(&change.status);
    if !(status_news || change.mailbox) {
        return Ok(0);
    }
    let mut queued = 0;
    let service: Option<String> =
        sqlx::query_scalar("SELECT service FROM drafts WHERE application_id = ? LIMIT 1")
            .bind(&change.application)
            .fetch_optional(&mut *tx)
            .await?;
    let wording = services
        .iter()
        .find(|s| service.as_deref() == Some(s.key.as_str()))
        .map(|s| s.wording)
        .unwrap_or_default();
    // The account that owns the application, if it asked for this kind of news (since
    // before the change happened).
    let owners = sqlx::query(
        "SELECT d.id AS draft, a.email, a.kind, n.email AS notify_email,
                n.mailbox_since, n.status_since
         FROM drafts d JOIN accounts a ON a.id = d.account_id
         JOIN notification_settings n ON n.account_id = a.id
         WHERE d.application_id = ? AND d.status = 'submitted'",
    )
    .bind(&change.application)
    .fetch_all(&mut *tx)
    .await?;
    for owner in owners {
        let consented = |column: &str| {
            owner
                .get::<Option<i64>, _>(column)
                .is_some_and(|since| since <= at)
        };
        let news = News {
            mailbox: change.mailbox && consented("mailbox_since"),
            status: status_news && consented("status_since"),
        };
        let address = match owner.get::<String, _>("kind").as_str() {
            "password" => Some(owner.get::<String, _>("email")),
            _ => owner.get::<Option<String>, _>("notify_email"),
        };
        if let (Some(to), true) = (address, news.mailbox || news.status) {
            let draft: String = owner.get("draft");
            let mail = account_mail(base, &to, &draft, change, news, wording);
            mail::enqueue(&mut *tx, &mail).await?;
            queued += 1;
        }
    }
    // Anonymous reporters who confirmed their address before the change.
    let subscribers = sqlx::query(
        "SELECT token, email, expires_at FROM status_subscriptions
         WHERE application_id = ? AND confirmed_at IS NOT NULL AND confirmed_at <= ?",
    )
    .bind(&change.application)
    .bind(at)
    .fetch_all(&mut *tx)
    .await?;
    for subscriber in subscribers {
        let news = News {
            mailbox: change.mailbox,
            status: status_news,
        };
        let mail = anonymous::status_mail(
            state,
            &subscriber.get::<String, _>("email"),
            &subscriber.get::<String, _>("token"),
            subscriber.get::<i64, _>("expires_at"),
            change,
            news,
            wording,
        );
        mail::enqueue(&mut *tx, &mail).await?;
        queued += 1;
    }
    if is_final(&change.status) {
        anonymous::application_final(state, tx, &change.application).await?;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: &str, mailbox: bool) -> Change {
        Change {
            application: "0b5c5d4e-0000-4000-8000-000000000001".into(),
            receipt: "K7QX-2M4P".into(),
            status: status.into(),
            mailbox,
            at: "2026-12-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn a_mail_names_the_receipt_what_happened_and_the_link_only() {
        let both = News {
            mailbox: true,
            status: true,
        };
        let mail = account_mail(
            "https://portal.example",
            "a@example.org",
            "draft-1",
            &change("decided", true),
            both,
            Wording::Antrag,
        );
        assert_eq!(mail.subject, "Neuigkeiten zu Ihrem Antrag K7QX-2M4P");
        assert!(mail.body.contains(
            "es gibt eine neue Nachricht zu Ihrem Antrag mit der Vorgangsnummer K7QX-2M4P."
        ));
        assert!(mail.body.contains(
            "Der Stand Ihres Antrags K7QX-2M4P hat sich geändert. Neuer Stand: „Entschieden“."
        ));
        assert!(
            mail.body
                .contains("\nhttps://portal.example/antraege/draft-1\n")
        );
        let status_only = account_mail(
            "https://portal.example",
            "a@example.org",
            "draft-1",
            &change("received", false),
            News {
                mailbox: false,
                status: true,
            },
            Wording::Antrag,
        );
        assert!(status_only.body.contains(
            "Guten Tag,\n\nder Stand Ihres Antrags K7QX-2M4P hat sich geändert. Neuer Stand: „Bei der Behörde eingegangen“."
        ));
        // A report is dealt with, not decided.
        let report = account_mail(
            "https://portal.example",
            "a@example.org",
            "draft-1",
            &change("decided", true),
            both,
            Wording::Meldung,
        );
        assert_eq!(report.subject, "Neuigkeiten zu Ihrer Meldung K7QX-2M4P");
        assert!(report.body.contains(
            "es gibt eine neue Nachricht zu Ihrer Meldung mit der Vorgangsnummer K7QX-2M4P.\nDer Stand Ihrer Meldung K7QX-2M4P hat sich geändert. Neuer Stand: „Erledigt“."
        ));
    }

    #[test]
    fn only_the_authoritys_steps_are_announced() {
        for status in [
            "accepted",
            "prepared",
            "delivered",
            "invalid",
            "dead_lettered",
        ] {
            assert!(!announced(status), "{status}");
        }
        for status in ["received", "in_progress", "query", "decided", "rejected"] {
            assert!(announced(status), "{status}");
        }
    }
}
