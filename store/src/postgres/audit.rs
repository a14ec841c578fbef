//! The PostgreSQL store's read side of the audit trail: entries, checkpoints, and what
//! verification needs of each application's stored content. What to compare is
//! [`kopplung_core::audit`]'s; this only reads (and hashes) what is stored, never a large upload
//! whole.

use super::*;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use kopplung_core::audit::content::{self, Needs};
use kopplung_core::audit::{
    AuditEntry, AuditReport, AuditVerifier, Checkpoint, FileDigest, FileHasher, StoredContent,
    sha256_hex,
};
use kopplung_core::store::StoreError;

/// Rows per page of a walk through the chain or the applications.
const PAGE: i64 = 1000;

/// The columns of an audit entry (a macro, so that the queries stay string literals).
macro_rules! audit_columns {
    () => {
        "seq, version, application_id, at, status, detail, message_sha256, content_sha256,
         prev_hash, hash"
    };
}

fn audit_entry(row: &PgRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        version: row.try_get("version")?,
        application_id: row.try_get("application_id")?,
        at: row.try_get("at")?,
        status: row.try_get("status")?,
        detail: row.try_get("detail")?,
        message_sha256: row.try_get("message_sha256")?,
        content_sha256: row.try_get("content_sha256")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The entries of one application in chain order. `lenient`: rows that cannot be read
/// are left out instead of failing (PostgreSQL's typed columns make that rare).
async fn entries_of(
    conn: &mut PgConnection,
    application_id: &str,
    lenient: bool,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE application_id = $1 ORDER BY seq"
    ))
    .bind(application_id)
    .fetch_all(&mut *conn)
    .await
    .sql()?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        match audit_entry(row) {
            Ok(entry) => entries.push(entry),
            Err(_) if lenient => {}
            Err(e) => {
                return Err(StoreError::Corrupt(format!(
                    "audit entry of {application_id}: {e}"
                )));
            }
        }
    }
    Ok(entries)
}

/// The last entry's seq and hash.
async fn head(conn: &mut PgConnection) -> Result<Option<(i64, String)>, StoreError> {
    sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .sql()
}

/// The stored checkpoints, by seq.
async fn checkpoints(conn: &mut PgConnection) -> Result<Vec<Checkpoint>, StoreError> {
    let rows: Vec<(i64, String, String, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq, id")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| StoreError::Corrupt(format!("audit checkpoints: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(seq, hash, at, signature)| Checkpoint {
            seq,
            hash,
            at,
            signature,
        })
        .collect())
}

/// Feeds the whole trail into `verifier` from the snapshot of the open read transaction
/// `conn`: checkpoints, the chain, then application by application its content.
async fn verify(
    conn: &mut PgConnection,
    mut verifier: AuditVerifier,
) -> Result<AuditReport, StoreError> {
    verifier.stored_checkpoints(checkpoints(&mut *conn).await?);
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await
        .sql()?;
        for row in &rows {
            let seq: i64 = row.try_get("seq").sql()?;
            match audit_entry(row) {
                Ok(entry) => verifier.entry(&entry),
                Err(e) => verifier.unreadable(seq, e.to_string()),
            }
            after = seq;
        }
        if rows.len() < PAGE as usize {
            break;
        }
    }
    let issued: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_issued")
        .fetch_optional(&mut *conn)
        .await
        .sql()?;
    let mut after = String::new();
    loop {
        // Along the index on (application_id, seq).
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT application_id FROM audit_log
             WHERE application_id > $1 ORDER BY application_id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await
        .sql()?;
        for id in &ids {
            let entries = entries_of(&mut *conn, id, true).await?;
            let needs = content::needs(&entries);
            let stored = if needs.any() {
                stored_content(&mut *conn, id, needs).await?
            } else {
                StoredContent::default()
            };
            verifier.application(&entries, &stored);
        }
        match ids.last() {
            Some(last) if ids.len() == PAGE as usize => after = last.clone(),
            _ => break,
        }
    }
    Ok(verifier.finish(issued))
}

/// What `needs` asks of one application's stored content, hashed.
async fn stored_content(
    conn: &mut PgConnection,
    application_id: &str,
    needs: Needs,
) -> Result<StoredContent, StoreError> {
    let payload: Option<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM applications WHERE id = $1")
            .bind(application_id)
            .fetch_optional(&mut *conn)
            .await
            .sql()?;
    let mut stored = StoredContent {
        exists: payload.is_some(),
        payload: payload.flatten().unwrap_or_default(),
        ..StoredContent::default()
    };
    if needs.payload {
        let rows = sqlx::query(
            "SELECT filename, media_type, upload_id,
                    CASE WHEN upload_id IS NULL THEN content END AS content
             FROM attachments WHERE application_id = $1 ORDER BY position",
        )
        .bind(application_id)
        .fetch_all(&mut *conn)
        .await
        .sql()?;
        for row in &rows {
            let mut hasher = FileHasher::new();
            match row.try_get::<Option<String>, _>("upload_id").sql()? {
                None => hasher.update(&row.try_get::<Vec<u8>, _>("content").unwrap_or_default()),
                Some(upload) => hash_upload(&mut *conn, &upload, &mut hasher).await?,
            }
            stored.attachments.push(
                hasher.finish(
                    &row.try_get::<Option<String>, _>("filename")
                        .sql()?
                        .unwrap_or_default(),
                    &row.try_get::<Option<String>, _>("media_type")
                        .sql()?
                        .unwrap_or_default(),
                ),
            );
        }
    }
    if needs.sealed {
        let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT sealed FROM deliveries WHERE application_id = $1 ORDER BY procedure_id LIMIT 1",
        )
        .bind(application_id)
        .fetch_optional(&mut *conn)
        .await
        .sql()?;
        stored.sealed_sha256 = sealed.flatten().as_deref().map(sha256_hex);
    }
    if needs.receipts {
        let signed: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT signed FROM receipts WHERE application_id = $1")
                .bind(application_id)
                .fetch_all(&mut *conn)
                .await
                .sql()?;
        stored.receipts_sha256 = signed.iter().map(|s| sha256_hex(s)).collect();
    }
    if needs.documents {
        let rows: Vec<(Option<String>, Option<String>, Vec<u8>)> = sqlx::query_as(
            "SELECT filename, media_type, content FROM documents WHERE application_id = $1",
        )
        .bind(application_id)
        .fetch_all(&mut *conn)
        .await
        .sql()?;
        stored.documents = rows
            .into_iter()
            .map(|(filename, media_type, content)| document_digest(filename, media_type, &content))
            .collect();
    }
    Ok(stored)
}

fn document_digest(
    filename: Option<String>,
    media_type: Option<String>,
    content: &[u8],
) -> FileDigest {
    let mut hasher = FileHasher::new();
    hasher.update(content);
    hasher.finish(
        &filename.unwrap_or_default(),
        &media_type.unwrap_or_default(),
    )
}

/// Hashes an upload's stored chunks one by one, in order, until the first missing one.
async fn hash_upload(
    conn: &mut PgConnection,
    upload: &str,
    hasher: &mut FileHasher,
) -> Result<(), StoreError> {
    for seq in 0i64.. {
        let chunk: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT content FROM upload_chunks WHERE upload_id = $1 AND seq = $2",
        )
        .bind(upload)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await
        .sql()?;
        match chunk {
            Some(chunk) => hasher.update(&chunk),
            None => break,
        }
    }
    Ok(())
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit_entries(&self, application_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        entries_of(&mut connection, &application_id.to_string(), false).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        head(&mut connection).await
    }

    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        // Not part of the chain: no chain lock.
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4)",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.hash)
        .bind(&checkpoint.at)
        .bind(&checkpoint.signature)
        .execute(&self.pool)
        .await
        .sql()?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        checkpoints(&mut connection).await
    }

    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError> {
        // One REPEATABLE READ transaction: one consistent snapshot for every page, the
        // highest issued seq and the content, while the instances go on appending.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .sql()?;
        let report = verify(&mut tx, verifier).await?;
        tx.rollback().await.sql()?;
        Ok(report)
    }
}
