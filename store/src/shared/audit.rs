//! The read side of the audit trail, once for both backends: entries, checkpoints, and
//! what verification needs of each application's stored content. What to compare is
//! [`kopplung_core::audit`]'s; this only reads (and hashes) what is stored, never a large
//! upload whole. The statements are each backend's ([`AuditSql`]).

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::Sql;
use kopplung_core::audit::checkpoint::parse_heads_lines;
use kopplung_core::audit::content::{self, Needs};
use kopplung_core::audit::{
    AuditEntry, AuditReport, AuditVerifier, ChainHead, Checkpoint, FileDigest, FileHasher,
    StoredContent, sha256_hex,
};
use kopplung_core::store::StoreError;

/// Rows per page of a walk through the chain or the applications.
pub(crate) const PAGE: i64 = 1000;

/// A backend's statements of the audit trail's read side. The entry queries select the
/// columns of [`AuditEntry`] by name; `?1`-style parameters are the backend's own.
pub(crate) trait AuditSql: Database {
    /// The entries of application `$1`, in the order they were written (by the second
    /// of `at`, then chain and seq).
    const ENTRIES_OF: &'static str;
    /// chain, seq, hash of every chain's last entry, by chain.
    const HEADS: &'static str;
    /// seq, hash, at, signature, heads of every checkpoint, in the order they were
    /// signed.
    const CHECKPOINTS: &'static str;
    /// A page of the chains: entries after chain `$1` seq `$2`, by chain and seq, at
    /// most `$3`.
    const CHAIN_PAGE: &'static str;
    /// chain and the highest seq ever issued in it, of every chain.
    const ISSUED: &'static str;
    /// A page of application ids (as text) in the chain after `$1`, at most `$2`.
    const APPLICATION_PAGE: &'static str;
    /// The payload (as text) of application `$1`.
    const PAYLOAD: &'static str;
    /// filename, media_type, upload_id and (inline) content of its attachments.
    const ATTACHMENTS: &'static str;
    /// The sealed message of application `$1`.
    const SEALED: &'static str;
    /// The signed receipts of application `$1`.
    const RECEIPTS: &'static str;
    /// filename, media_type, content of its documents.
    const DOCUMENTS: &'static str;
    /// Chunk `$2` of upload `$1`.
    const CHUNK: &'static str;
}

/// Reads the audit trail over one connection (a read transaction's, for verification).
pub(crate) struct AuditReader<'c, DB: Database> {
    conn: &'c mut DB::Connection,
}

impl<'c, DB> AuditReader<'c, DB>
where
    DB: AuditSql,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    pub(crate) fn new(conn: &'c mut DB::Connection) -> Self {
        Self { conn }
    }

    fn entry(row: &DB::Row) -> Result<AuditEntry, sqlx::Error> {
        Ok(AuditEntry {
            chain: row.try_get("chain")?,
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

    /// The entries of one application in chain order. `lenient`: rows that cannot be
    /// read are left out (verification reports them as broken links) instead of failing.
    pub(crate) async fn entries_of(
        &mut self,
        application_id: &str,
        lenient: bool,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query::<DB>(DB::ENTRIES_OF)
            .bind(application_id)
            .fetch_all(&mut *self.conn)
            .await
            .sql()?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            match Self::entry(row) {
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

    /// Every chain's last entry, by chain.
    pub(crate) async fn heads(&mut self) -> Result<Vec<ChainHead>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(DB::HEADS)
            .fetch_all(&mut *self.conn)
            .await
            .sql()?;
        Ok(rows
            .into_iter()
            .map(|(chain, seq, hash)| ChainHead { chain, seq, hash })
            .collect())
    }

    /// The stored checkpoints, in the order they were signed.
    pub(crate) async fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        type Row = (i64, String, String, Vec<u8>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(DB::CHECKPOINTS)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(|e| StoreError::Corrupt(format!("audit checkpoints: {e}")))?;
        rows.into_iter()
            .map(|(seq, hash, at, signature, heads)| {
                let heads = match heads {
                    // Format 1: the global chain's head.
                    None => vec![ChainHead::global(seq, hash)],
                    Some(lines) => parse_heads_lines(&lines).ok_or_else(|| {
                        StoreError::Corrupt(format!("the heads of the audit checkpoint of {at}"))
                    })?,
                };
                Ok(Checkpoint {
                    heads,
                    at,
                    signature,
                })
            })
            .collect()
    }

    /// Feeds the whole trail into `verifier` from the snapshot of the open read
    /// transaction: checkpoints, the chain, then application by application its content.
    pub(crate) async fn verify(
        &mut self,
        mut verifier: AuditVerifier,
    ) -> Result<AuditReport, StoreError> {
        verifier.stored_checkpoints(self.checkpoints().await?);
        let (mut after_chain, mut after_seq) = (String::new(), i64::MIN);
        loop {
            let rows = sqlx::query::<DB>(DB::CHAIN_PAGE)
                .bind(after_chain.as_str())
                .bind(after_seq)
                .bind(PAGE)
                .fetch_all(&mut *self.conn)
                .await
                .sql()?;
            for row in &rows {
                let chain: String = row.try_get("chain").sql()?;
                let seq: i64 = row.try_get("seq").sql()?;
                match Self::entry(row) {
                    Ok(entry) => verifier.entry(&entry),
                    Err(e) => verifier.unreadable_in(&chain, seq, e.to_string()),
                }
                (after_chain, after_seq) = (chain, seq);
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        let issued: Vec<(String, i64)> = sqlx::query_as(DB::ISSUED)
            .fetch_all(&mut *self.conn)
            .await
            .sql()?;
        let mut after = String::new();
        loop {
            // Along the index on (application_id, seq).
            let ids: Vec<String> = sqlx::query_scalar(DB::APPLICATION_PAGE)
                .bind(after.as_str())
                .bind(PAGE)
                .fetch_all(&mut *self.conn)
                .await
                .sql()?;
            for id in &ids {
                let entries = self.entries_of(id, true).await?;
                let needs = content::needs(&entries);
                let stored = if needs.any() {
                    self.stored_content(id, needs).await?
                } else {
                    StoredContent::default()
                };
                verifier.application(&entries, &stored);
            }
            match ids.last() {
                // A row whose id is no text sorts after all text (SQLite): stop rather
                // than loop.
                Some(last) if ids.len() == PAGE as usize && *last > after => after = last.clone(),
                _ => break,
            }
        }
        Ok(verifier.finish_chains(issued.into_iter().collect()))
    }

    /// What `needs` asks of one application's stored content, hashed.
    async fn stored_content(
        &mut self,
        application_id: &str,
        needs: Needs,
    ) -> Result<StoredContent, StoreError> {
        let payload: Option<Option<String>> = sqlx::query_scalar(DB::PAYLOAD)
            .bind(application_id)
            .fetch_optional(&mut *self.conn)
            .await
            .sql()?;
        let mut stored = StoredContent {
            exists: payload.is_some(),
            payload: payload.flatten().unwrap_or_default(),
            ..StoredContent::default()
        };
        if needs.payload {
            let authentication: Option<Option<String>> =
                sqlx::query_scalar(super::statements::AUTHENTICATION)
                    .bind(application_id)
                    .fetch_optional(&mut *self.conn)
                    .await
                    .sql()?;
            stored.authentication = authentication.flatten();
            let rows = sqlx::query::<DB>(DB::ATTACHMENTS)
                .bind(application_id)
                .fetch_all(&mut *self.conn)
                .await
                .sql()?;
            for row in &rows {
                let mut hasher = FileHasher::new();
                match row.try_get::<Option<String>, _>("upload_id").sql()? {
                    None => {
                        hasher.update(&row.try_get::<Vec<u8>, _>("content").unwrap_or_default())
                    }
                    Some(upload) => self.hash_upload(&upload, &mut hasher).await?,
                }
                let text = |column| row.try_get::<Option<String>, _>(column).sql();
                stored.attachments.push(hasher.finish(
                    &text("filename")?.unwrap_or_default(),
                    &text("media_type")?.unwrap_or_default(),
                ));
            }
        }
        if needs.sealed {
            let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(DB::SEALED)
                .bind(application_id)
                .fetch_optional(&mut *self.conn)
                .await
                .sql()?;
            stored.sealed_sha256 = sealed.flatten().as_deref().map(sha256_hex);
        }
        if needs.receipts {
            let signed: Vec<Vec<u8>> = sqlx::query_scalar(DB::RECEIPTS)
                .bind(application_id)
                .fetch_all(&mut *self.conn)
                .await
                .sql()?;
            stored.receipts_sha256 = signed.iter().map(|s| sha256_hex(s)).collect();
        }
        if needs.documents {
            let rows: Vec<(Option<String>, Option<String>, Vec<u8>)> =
                sqlx::query_as(DB::DOCUMENTS)
                    .bind(application_id)
                    .fetch_all(&mut *self.conn)
                    .await
                    .sql()?;
            stored.documents = rows
                .into_iter()
                .map(|(filename, media_type, content)| {
                    document_digest(filename, media_type, &content)
                })
                .collect();
        }
        Ok(stored)
    }

    /// Hashes an upload's stored chunks one by one, in order, until the first missing one.
    async fn hash_upload(
        &mut self,
        upload: &str,
        hasher: &mut FileHasher,
    ) -> Result<(), StoreError> {
        for seq in 0i64.. {
            let chunk: Option<Vec<u8>> = sqlx::query_scalar(DB::CHUNK)
                .bind(upload)
                .bind(seq)
                .fetch_optional(&mut *self.conn)
                .await
                .sql()?;
            match chunk {
                Some(chunk) => hasher.update(&chunk),
                None => break,
            }
        }
        Ok(())
    }
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
