//! The retention sweep: every `[quotas] sweep_interval_secs`, expired sessions, expired
//! registrations, anonymous drafts (with their files, and the portal's copy of
//! anonymous applications) whose session has ended or that were last changed
//! `anonymous_expire_secs` ago, dropped mails older than `[mail] expire_hours`,
//! anonymous reporters' addresses for status mails that expired (`crate::notify`), and
//! sign-ins and logouts at identity providers that did not come back in time are
//! deleted. Nothing stays only because nobody comes back for it.

use std::path::Path;
use std::time::Duration;

use crate::payment::refund;
use crate::{Shared, db};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub anonymous_drafts: u64,
    pub registrations: u64,
    pub dropped_mails: u64,
    /// Anonymous reporters' addresses for status mails (unconfirmed, expired, or after
    /// the application became final).
    pub status_subscriptions: u64,
    /// Sign-ins and logouts at identity providers that did not come back in time.
    pub sign_ins: u64,
}

/// Runs the sweep now and then, until the portal stops.
pub async fn run(state: Shared) {
    let interval = Duration::from_secs(state.config.settings.quotas.sweep_interval_secs);
    loop {
        match sweep(&state).await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(
                    sessions = swept.sessions,
                    anonymous_drafts = swept.anonymous_drafts,
                    registrations = swept.registrations,
                    dropped_mails = swept.dropped_mails,
                    status_subscriptions = swept.status_subscriptions,
                    sign_ins = swept.sign_ins,
                    "retention sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the retention sweep failed; it runs again later"),
        }
        tokio::time::sleep(interval).await;
    }
}

pub async fn sweep(state: &Shared) -> Result<Swept, sqlx::Error> {
    let now = db::now();
    let expire =
        i64::try_from(state.config.settings.quotas.anonymous_expire_secs).unwrap_or(i64::MAX);
    // Signed-in sessions also end after their idle time.
    let idle = state.config.settings.accounts.idle_seconds();
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE expires_at <= ?
           OR (account_id IS NOT NULL AND COALESCE(last_seen_at, created_at) <= ?)",
    )
    .bind(now)
    .bind(now.saturating_sub(idle))
    .execute(&state.db)
    .await?
    .rows_affected();
    let sign_ins = crate::oidc::store::sweep(state, now).await?;
    let anonymous_drafts = sweep_anonymous_drafts(state, now.saturating_sub(expire)).await?;
    // Unconfirmed registrations and unused password reset links.
    let registrations = db::delete_expired(&state.db, "registrations", now).await?
        + db::delete_expired(&state.db, "password_resets", now).await?;
    let status_subscriptions = db::delete_expired(&state.db, "status_subscriptions", now).await?;
    let dropped_mails = match state.mailer.drop_dir() {
        Some(dir) => {
            let (dir, expire) = (dir.to_owned(), state.mailer.expire());
            tokio::task::spawn_blocking(move || remove_older(&dir, expire))
                .await
                .unwrap_or(0)
        }
        None => 0,
    };
    Ok(Swept {
        sessions,
        anonymous_drafts,
        registrations,
        dropped_mails,
        status_subscriptions,
        sign_ins,
    })
}

/// Deletes the abandoned anonymous drafts, with their files (ON DELETE CASCADE). One
/// with a payment is settled first (a paid fee refunded, an open one cancelled); where
/// the provider cannot do that now, the draft waits for the next sweep.
async fn sweep_anonymous_drafts(state: &Shared, before: i64) -> Result<u64, sqlx::Error> {
    // Abandoned: the session ended, or last changed before `before`.
    let with_payment: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM drafts WHERE account_id IS NULL
           AND status = 'draft' AND payment_transaction IS NOT NULL
           AND (updated_at <= ? OR session_id IS NULL
                OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = drafts.session_id))",
    )
    .bind(before)
    .fetch_all(&state.db)
    .await?;
    let mut deleted = 0;
    for id in with_payment {
        let Some(draft) = crate::forms::drafts::load(state, &id).await? else {
            continue;
        };
        match refund::settle(state, &draft, refund::Reason::Expired).await {
            Ok(_) => deleted += crate::forms::drafts::delete(state, &draft).await?,
            Err(e) => {
                tracing::warn!(draft = %id, error = %e, "abandoned draft kept until its payment is settled")
            }
        }
    }
    // A submitted anonymous application's portal copy goes too, as before.
    let rest = sqlx::query(
        "DELETE FROM drafts WHERE account_id IS NULL
           AND NOT (status = 'draft' AND payment_transaction IS NOT NULL)
           AND (updated_at <= ? OR session_id IS NULL
                OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = drafts.session_id))",
    )
    .bind(before)
    .execute(&state.db)
    .await?
    .rows_affected();
    Ok(deleted + rest)
}

/// Removes the files in `dir` last changed more than `age` ago; how many.
fn remove_older(dir: &Path, age: Duration) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
