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
use crate::router_client::Change;
use crate::{Error, Shared, db};

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

/// What a change is news of, for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct News {
    pub mailbox: bool,
    pub status: bool,
}

/// The lines that say what happened, in plain German.
fn what_happened(receipt: &str, status: &str, news: News) -> String {
    let mut lines = Vec::new();
    if news.mailbox {
        lines.push(format!(
            "es gibt eine neue Nachricht zu Ihrem Antrag mit der Vorgangsnummer {receipt}."
        ));
    }
    if news.status {
        let sentence = format!(
            "Der Stand Ihres Antrags {receipt} hat sich geändert: {}.",
            crate::applications::status_label(status)
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
pub fn account_mail(base: &str, to: &str, draft: &str, change: &Change, news: News) -> Outgoing {
    Outgoing {
        to: to.to_owned(),
        subject: format!("Neuigkeiten zu Ihrem Antrag {}", change.receipt),
        body: format!(
            "Guten Tag,\n\n\
             {what}\n\n\
             Mehr dazu lesen Sie in Ihrem Servicekonto, nachdem Sie sich angemeldet haben:\n\n\
             {base}/antraege/{draft}\n\n\
             Sie erhalten diese E-Mail, weil Sie in Ihrem Servicekonto Benachrichtigungen \
             eingeschaltet haben. Dort können Sie sie auch wieder ausschalten:\n\n\
             {base}/konto/benachrichtigungen\n\n\
             Bitte antworten Sie nicht auf diese E-Mail; sie wurde automatisch versandt.\n\n\
             Mit freundlichen Grüßen\nIhr Serviceportal\n",
            what = what_happened(&change.receipt, &change.status, news),
        ),
    }
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
    let mut tx = db::write_transaction(&state.db).await?;
    let mut mails = 0;
    for change in &page.changes {
        mails += mails_for(state, &mut tx, change).await?;
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
            mail::enqueue(&mut *tx, &account_mail(base, &to, &draft, change, news)).await?;
            queued += 1;
        }
    }
    // Anonymous reporters who confirmed their address before the change.
    let subscribers = sqlx::query(
        "SELECT token, email FROM status_subscriptions
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
            change,
            news,
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
        );
        assert_eq!(mail.subject, "Neuigkeiten zu Ihrem Antrag K7QX-2M4P");
        assert!(mail.body.contains(
            "es gibt eine neue Nachricht zu Ihrem Antrag mit der Vorgangsnummer K7QX-2M4P."
        ));
        assert!(
            mail.body
                .contains("Der Stand Ihres Antrags K7QX-2M4P hat sich geändert: Entschieden.")
        );
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
        );
        assert!(status_only.body.contains(
            "Guten Tag,\n\nder Stand Ihres Antrags K7QX-2M4P hat sich geändert: Bei der Behörde eingegangen."
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
