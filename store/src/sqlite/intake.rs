//! The SQLite store's intake (applications, uploads, idempotency, the status view).

use super::*;
use crate::Taken;
use crate::shared::intake::AttachmentInsert;
use crate::shared::roles::role_impl;

/// The query of an earlier request with the same idempotency key.
const EARLIER_ANSWER: &str = "SELECT i.request_sha256, a.id, a.receipt FROM idempotency_keys i
     JOIN applications a ON a.id = i.application_id
     WHERE i.client_id = ?1 AND i.key = ?2";

/// Looks up an idempotency key inside a write.
fn earlier_answer(
    tx: &WriteTx<'_>,
    client_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Inserted>, StoreError> {
    let row = tx
        .prepare_cached(EARLIER_ANSWER)
        .sql()?
        .query_row(params![client_id, key.key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()
        .sql()?;
    row.map(|(hash, id, receipt): (String, String, String)| {
        rules::earlier_answer(&hash, &id, receipt, key)
    })
    .transpose()
}

/// Stores an application in one write (see [`Store::insert_application`]).
fn insert_application(
    tx: &mut WriteTx<'_>,
    new: &NewApplication,
    form: StoredForm,
) -> Result<Inserted, StoreError> {
    if let Some(key) = &new.idempotency
        && let Some(answer) = earlier_answer(tx, &new.client_id, key)?
    {
        return Ok(answer);
    }
    // Checked in the same write as the insert: the writer runs one write at a time.
    if let Some(of) = &new.follow_up
        && let Some(per_event) = of.once()
    {
        let [a, b, c] = kopplung_core::follow_up::ENDED.map(|s| s.as_str());
        let standing = tx
            .prepare_cached(crate::shared::statements::STANDING_FOLLOW_UP)
            .sql()?
            .exists(params![
                of.parent_id.to_string(),
                of.kind.as_str(),
                i64::from(per_event),
                of.refers_to.as_deref(),
                a,
                b,
                c
            ])
            .sql()?;
        if standing {
            return Ok(Inserted::AlreadySent);
        }
    }
    let id = new.id.to_string();
    let at = rfc3339(new.received_at);
    let (status, stage, sealed) = new.first_state();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO applications
               (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at, authentication, parent_id, follow_up, refers_to, reply_channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14)",
        ).sql()?
        .execute(params![
            id,
            new.receipt,
            new.client_id,
            new.service_key,
            new.region,
            new.procedure_id,
            status.as_str(),
            form.payload,
            at,
            form.authentication,
            new.follow_up.as_ref().map(|f| f.parent_id.to_string()),
            new.follow_up.as_ref().map(|f| f.kind.as_str()),
            new.follow_up.as_ref().and_then(|f| f.refers_to.as_deref()),
            new.reply_channel.as_deref()
        ]);
    if inserted.unless_taken("receipt")?.is_none() {
        return Ok(Inserted::ReceiptTaken);
    }
    for attachment in AttachmentInsert::all(new) {
        if let Some(bind) = attachment.bind_upload(&id, &new.client_id)
            && Bound::from(bind).execute(tx)? != 1
        {
            // Nothing of this application may stay.
            tx.discard();
            return Ok(Inserted::UploadTaken(attachment.position));
        }
        Bound::from(attachment.insert(&id)).execute(tx)?;
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at, sealed, sent_xml)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    ).sql()?
    .execute(params![
        id,
        new.service_key,
        new.procedure_id,
        new.message_id.to_string(),
        new.message_type,
        stage.as_str(),
        millis(new.received_at),
        sealed,
        new.sent_xml()
    ]).sql()?;
    if let Some(key) = &new.idempotency {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        ).sql()?
        .execute(params![new.client_id, key.key, key.request_sha256, id, at]).sql()?;
    }
    append_history(tx, Change::accepted(new, form.content_sha256))?;
    if let Some(prepared) = Change::sealed_ahead(new) {
        append_history(tx, prepared)?;
    }
    Ok(Inserted::Created(Accepted {
        id: new.id,
        receipt: new.receipt.clone(),
    }))
}

role_impl!(IntakeStore for SqliteStore {
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        // Serialised and hashed here, not on the writer thread.
        let form = new.stored_form()?;
        let new = new.clone();
        let binds_uploads = new
            .attachments
            .iter()
            .any(|a| matches!(a.content, kopplung_core::store::AttachmentContent::Upload(_)));
        if binds_uploads {
            // An upload taken meanwhile discards what was written before it.
            return self
                .writer
                .write(move |tx| insert_application(tx, &new, form))
                .await;
        }
        // Without uploads nothing is discarded: a taken receipt number fails its
        // statement alone, before anything is written.
        self.writer
            .write_without_savepoint(move |tx| insert_application(tx, &new, form))
            .await
    }

    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.writer
            .write(move |tx| {
                let free = fetch_for(
                    tx,
                    "SELECT id FROM uploads WHERE id = ?1 AND application_id IS NULL",
                    &id,
                )?;
                if free.is_none() {
                    return Ok(false);
                }
                execute_for(tx, "DELETE FROM upload_chunks WHERE upload_id = ?1", &id)?;
                execute_for(tx, "DELETE FROM uploads WHERE id = ?1", &id)?;
                Ok(true)
            })
            .await
    }

    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError> {
        let row: Option<(String, String, String)> = sqlx::query_as(EARLIER_ANSWER)
            .bind(client_id)
            .bind(&key.key)
            .fetch_optional(&self.pool)
            .await
            .sql()?;
        row.map(|(hash, id, receipt)| rules::earlier_answer(&hash, &id, receipt, key))
            .transpose()
    }
});
