//! Drafts (Temp. Ablage) and their attachments in the portal's database. Every read goes
//! through `load_owned`: a draft or application of someone else is "not found".

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::router_client::OutgoingAttachment;
use crate::web::{Failure, Visitor};
use crate::{Shared, db};

#[derive(Debug, Clone)]
pub struct Draft {
    pub id: String,
    pub account_id: Option<String>,
    pub session_id: Option<String>,
    pub service: String,
    pub service_name: String,
    pub region: String,
    pub region_name: String,
    pub data: Value,
    pub status: String,
    pub payment_transaction: Option<String>,
    pub payment_reference: Option<String>,
    pub application_id: Option<String>,
    pub receipt: Option<String>,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
}

impl Draft {
    pub fn submitted(&self) -> bool {
        self.status == "submitted"
    }

    fn from_row(row: &SqliteRow) -> Self {
        Self {
            id: row.get("id"),
            account_id: row.get("account_id"),
            session_id: row.get("session_id"),
            service: row.get("service"),
            service_name: row.get("service_name"),
            region: row.get("region"),
            region_name: row.get("region_name"),
            data: serde_json::from_str(&row.get::<String, _>("data"))
                .unwrap_or_else(|_| Value::Object(Default::default())),
            status: row.get("status"),
            payment_transaction: row.get("payment_transaction"),
            payment_reference: row.get("payment_reference"),
            application_id: row.get("application_id"),
            receipt: row.get("receipt"),
            updated_at: row.get("updated_at"),
            submitted_at: row.get("submitted_at"),
        }
    }

    /// Whether `visitor` owns it: the account, or — for anonymous ones — the session.
    pub fn owned_by(&self, visitor: &Visitor) -> bool {
        match (&visitor.account, &self.account_id) {
            (Some(account), Some(owner)) => &account.id == owner,
            (_, None) => {
                self.session_id.is_some()
                    && self.session_id.as_deref() == visitor.session_id.as_deref()
            }
            (None, Some(_)) => false,
        }
    }
}

pub struct NewDraft<'a> {
    pub service: &'a str,
    pub service_name: &'a str,
    pub region: &'a str,
    pub region_name: &'a str,
    pub data: &'a Value,
}

pub async fn create(
    state: &Shared,
    visitor: &Visitor,
    new: NewDraft<'_>,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = db::now();
    let account = visitor.account.as_ref().map(|a| a.id.clone());
    sqlx::query(
        "INSERT INTO drafts (id, account_id, session_id, service, service_name, region, region_name, data, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&account)
    .bind(account.is_none().then_some(visitor.session_id.as_deref()).flatten())
    .bind(new.service)
    .bind(new.service_name)
    .bind(new.region)
    .bind(new.region_name)
    .bind(new.data.to_string())
    .bind(now)
    .bind(now)
    .execute(&state.db)
    .await?;
    Ok(id)
}

/// The draft or application `id`, whoever owns it (for the portal's own jobs).
pub async fn load(state: &Shared, id: &str) -> Result<Option<Draft>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM drafts WHERE id = ?")
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    Ok(row.map(|r| Draft::from_row(&r)))
}

/// The draft or application `id` if `visitor` owns it; otherwise 404 (never 403: an
/// id of someone else must not even be confirmed to exist).
pub async fn load_owned(state: &Shared, visitor: &Visitor, id: &str) -> Result<Draft, Failure> {
    match load(state, id).await? {
        Some(draft) if draft.owned_by(visitor) => Ok(draft),
        _ => Err(Failure::not_found()),
    }
}

/// Whose drafts are counted.
pub enum Owner<'a> {
    Account(&'a str),
    /// The anonymous drafts of a session.
    Session(&'a str),
}

/// Open (not submitted) drafts of `owner`.
pub async fn count_open(state: &Shared, owner: Owner<'_>) -> Result<u64, sqlx::Error> {
    let (sql, id) = match owner {
        Owner::Account(id) => (
            "SELECT COUNT(*) FROM drafts WHERE account_id = ? AND status = 'draft'",
            id,
        ),
        Owner::Session(id) => (
            "SELECT COUNT(*) FROM drafts WHERE session_id = ? AND account_id IS NULL AND status = 'draft'",
            id,
        ),
    };
    let count: i64 = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&state.db)
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Files and bytes stored in the anonymous drafts of session `session_id`.
pub async fn session_uploads(state: &Shared, session_id: &str) -> Result<(u64, u64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(a.id) AS files, COALESCE(SUM(a.size), 0) AS bytes
         FROM draft_attachments a JOIN drafts d ON d.id = a.draft_id
         WHERE d.session_id = ? AND d.account_id IS NULL",
    )
    .bind(session_id)
    .fetch_one(&state.db)
    .await?;
    let files: i64 = row.get("files");
    let bytes: i64 = row.get("bytes");
    Ok((
        u64::try_from(files).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// The account's drafts or applications, newest first.
pub async fn list(
    state: &Shared,
    account_id: &str,
    status: &str,
) -> Result<Vec<Draft>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT * FROM drafts WHERE account_id = ? AND status = ? ORDER BY updated_at DESC, id",
    )
    .bind(account_id)
    .bind(status)
    .fetch_all(&state.db)
    .await?;
    Ok(rows.iter().map(Draft::from_row).collect())
}

pub async fn save_data(state: &Shared, id: &str, data: &Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE drafts SET data = ?, updated_at = ? WHERE id = ? AND status = 'draft'")
        .bind(data.to_string())
        .bind(db::now())
        .bind(id)
        .execute(&state.db)
        .await?;
    Ok(())
}

/// Deletes `draft` (not a submitted application) once its payment is settled
/// (`payment::refund::settle`); how many went (0 or 1). Only while it still has the
/// transaction that was settled: one started meanwhile in another tab keeps it.
pub async fn delete(state: &Shared, draft: &Draft) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM drafts WHERE id = ? AND status = 'draft' AND payment_transaction IS ?",
    )
    .bind(&draft.id)
    .bind(&draft.payment_transaction)
    .execute(&state.db)
    .await?
    .rows_affected())
}

pub async fn set_payment(
    state: &Shared,
    id: &str,
    transaction: &str,
    reference: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE drafts SET payment_transaction = ?, payment_reference = ?, payment_paid_at = ?,
           updated_at = ? WHERE id = ? AND status = 'draft'",
    )
    .bind(transaction)
    .bind(reference)
    .bind(reference.map(|_| db::now()))
    .bind(db::now())
    .bind(id)
    .execute(&state.db)
    .await?;
    Ok(())
}

pub async fn mark_submitted(
    state: &Shared,
    id: &str,
    application_id: &str,
    receipt: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now();
    sqlx::query(
        "UPDATE drafts SET status = 'submitted', application_id = ?, receipt = ?, submitted_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(application_id)
    .bind(receipt)
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&state.db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub id: String,
    pub filename: String,
    pub media_type: String,
    pub size: i64,
    /// The form's attachment slot it fills, if any.
    pub slot: Option<String>,
}

pub async fn attachments(
    state: &Shared,
    draft: &str,
) -> Result<Vec<StoredAttachment>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, filename, media_type, size, slot FROM draft_attachments WHERE draft_id = ? ORDER BY created_at, id",
    )
    .bind(draft)
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .iter()
        .map(|r| StoredAttachment {
            id: r.get("id"),
            filename: r.get("filename"),
            media_type: r.get("media_type"),
            size: r.get("size"),
            slot: r.get("slot"),
        })
        .collect())
}

/// A draft's attachments with their content, as intake takes them.
pub async fn attachment_contents(
    state: &Shared,
    draft: &str,
) -> Result<Vec<OutgoingAttachment>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT filename, media_type, content, slot FROM draft_attachments WHERE draft_id = ? ORDER BY created_at, id",
    )
    .bind(draft)
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .iter()
        .map(|r| OutgoingAttachment {
            filename: r.get("filename"),
            media_type: r.get("media_type"),
            content: r.get("content"),
            slot: r.get("slot"),
        })
        .collect())
}

pub async fn add_attachment(
    state: &Shared,
    draft: &str,
    filename: &str,
    media_type: &str,
    content: &[u8],
    slot: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO draft_attachments (id, draft_id, filename, media_type, size, content, created_at, slot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(draft)
    .bind(filename)
    .bind(media_type)
    .bind(content.len() as i64)
    .bind(content)
    .bind(db::now())
    .bind(slot)
    .execute(&state.db)
    .await?;
    Ok(())
}

pub async fn remove_attachment(state: &Shared, draft: &str, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM draft_attachments WHERE draft_id = ? AND id = ?")
        .bind(draft)
        .bind(id)
        .execute(&state.db)
        .await?;
    Ok(())
}
