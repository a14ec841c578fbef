//! Group commit of intakes on PostgreSQL.
//!
//! An application stored on its own is a transaction of four round trips (BEGIN, the
//! application with its outbox entry and history, the audit append, COMMIT) and a WAL
//! flush. Applications without attachments (most of them) queue instead, and a writer
//! task takes what is queued (up to [`BATCH`]) and stores it in one transaction of
//! multi-row statements, as the outbox's writer does for its state changes
//! (`super::writer`). Nobody is answered before the COMMIT; the 202 still follows a
//! durable write.
//!
//! Each application keeps the answers it would get on its own: a receipt number taken
//! (`ON CONFLICT (receipt) DO NOTHING`) is `ReceiptTaken` for it alone; an idempotency
//! key answered before returns that answer; a key that a concurrent transaction took
//! meanwhile (or a second request with it in the same batch) keeps nothing of that
//! application and answers `None`, so that the caller looks the answer up, as after
//! its own transaction lost the race. If the server refuses the batch, it is rolled back
//! and its applications are stored one by one, each with its own answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sqlx::Postgres;
use sqlx::postgres::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::chain::Chains;
use crate::shared::history::Change;
use crate::shared::{millis, rfc3339};
use kopplung_core::Clock;
use kopplung_core::store::rules;
use kopplung_core::store::{Accepted, Inserted, NewApplication, StoreError, StoredForm};

/// The most applications one transaction takes.
const BATCH: usize = 64;

/// Writers storing batches at once: while one waits for its commit's WAL flush, the
/// next stores what queued meanwhile.
const WRITERS: usize = 2;

/// What one attempt at storing an application answers: `None` if its idempotency key
/// was taken meanwhile (nothing of it is kept).
pub(crate) type Answer = Result<Option<Inserted>, StoreError>;

/// A queued application and where its answer goes.
struct Job {
    new: NewApplication,
    form: StoredForm,
    answer: oneshot::Sender<Answer>,
}

/// What a batch runs on.
#[derive(Clone)]
struct Db {
    pool: PgPool,
    chain: Arc<Chains>,
    clock: Arc<dyn Clock>,
}

/// Where the store's intakes without attachments queue; the writers end when it is
/// dropped.
pub(crate) struct Intakes {
    jobs: mpsc::UnboundedSender<Job>,
    db: Db,
}

impl Intakes {
    /// Starts the writers on the current Tokio runtime.
    pub(crate) fn start(pool: PgPool, chain: Arc<Chains>, clock: Arc<dyn Clock>) -> Self {
        let (jobs, queued) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queued));
        let db = Db { pool, chain, clock };
        for _ in 0..WRITERS {
            tokio::spawn(db.clone().write(queue.clone()));
        }
        Self { jobs, db }
    }

    /// Stores `new` (which has no attachments) in the next batch.
    pub(crate) async fn insert(&self, new: &NewApplication) -> Answer {
        let form = new.stored_form()?;
        let (answer, answered) = oneshot::channel();
        let job = Job {
            new: new.clone(),
            form,
            answer,
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job) {
            // The writers are gone with the runtime they were started on: stored here.
            let mut answers = self.db.commit(&[job.new], &[job.form]).await?;
            return answers.pop().unwrap_or(Err(database("no answer")));
        }
        answered
            .await
            .map_err(|_| database("the store's intake writer stopped before it answered"))?
    }
}

impl Db {
    /// One writer: takes a batch while no other writer takes one, stores it, answers.
    async fn write(self, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
        loop {
            let batch = {
                let mut queue = queue.lock().await;
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    let Ok(job) = queue.try_recv() else {
                        break;
                    };
                    batch.push(job);
                }
                batch
            };
            let mut news = Vec::with_capacity(batch.len());
            let mut forms = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            for job in batch {
                news.push(job.new);
                forms.push(job.form);
                replies.push(job.answer);
            }
            match self.commit(&news, &forms).await {
                Ok(answers) => {
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        // A caller that gave up waiting needs no answer.
                        let _ = reply.send(answer);
                    }
                }
                Err(e) if news.len() > 1 => {
                    tracing::warn!(error = %e, applications = news.len(), "a batch of intakes was refused; storing them one by one");
                    for ((new, form), reply) in news.into_iter().zip(forms).zip(replies) {
                        let answer = match self
                            .commit(std::slice::from_ref(&new), std::slice::from_ref(&form))
                            .await
                        {
                            Ok(mut answers) => answers.pop().unwrap_or(Err(database("no answer"))),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(answer);
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(database(&e.to_string())));
                    }
                }
            }
        }
    }

    /// Stores `news` in one transaction: each one's answer, in order.
    async fn commit(
        &self,
        news: &[NewApplication],
        forms: &[StoredForm],
    ) -> Result<Vec<Answer>, StoreError> {
        let mut answers: Vec<Option<Answer>> = news.iter().map(|_| None).collect();
        let mut tx = self.pool.begin().await.map_err(sql)?;
        // Keys answered before, and a key's second request in this batch: no insert.
        let earlier = earlier_answers(&mut tx, news).await?;
        let mut keys_seen = BTreeSet::new();
        for (n, new) in news.iter().enumerate() {
            let Some(key) = &new.idempotency else {
                continue;
            };
            let id = (new.client_id.clone(), key.key.clone());
            if let Some((hash, application, receipt)) = earlier.get(&id) {
                answers[n] =
                    Some(rules::earlier_answer(hash, application, receipt.clone(), key).map(Some));
            } else if !keys_seen.insert(id) {
                answers[n] = Some(Ok(None));
            }
        }
        let candidates: Vec<usize> = (0..news.len()).filter(|n| answers[*n].is_none()).collect();
        let inserted = insert_applications(&mut tx, news, forms, &candidates).await?;
        for n in &candidates {
            if !inserted.contains(n) {
                answers[*n] = Some(Ok(Some(Inserted::ReceiptTaken)));
            }
        }
        let lost_keys = insert_keys(&mut tx, news, &inserted).await?;
        if !lost_keys.is_empty() {
            let ids: Vec<String> = lost_keys.iter().map(|n| news[*n].id.to_string()).collect();
            sqlx::query("DELETE FROM applications WHERE id = ANY($1::text[])")
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(sql)?;
            for n in &lost_keys {
                answers[*n] = Some(Ok(None));
            }
        }
        let stored: Vec<usize> = inserted
            .iter()
            .copied()
            .filter(|n| !lost_keys.contains(n))
            .collect();
        let at = rfc3339(self.clock.now());
        let mut audit = Vec::new();
        for n in &stored {
            let new = &news[*n];
            audit.push((
                at.clone(),
                Change::accepted(new, forms[*n].content_sha256.clone()),
            ));
            audit.extend(Change::sealed_ahead(new).map(|change| (at.clone(), change)));
        }
        if !stored.is_empty() {
            insert_deliveries_and_history(&mut tx, news, &stored, &at, &audit).await?;
        }
        // The lane is kept until the commit is done (see `super::chain`).
        let _lane = self.chain.append(&mut tx, &audit).await?;
        tx.commit().await.map_err(sql)?;
        for n in stored {
            answers[n] = Some(Ok(Some(Inserted::Created(Accepted {
                id: news[n].id,
                receipt: news[n].receipt.clone(),
            }))));
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or(Err(database("no answer for an application"))))
            .collect())
    }
}

/// The earlier answers for the batch's idempotency keys: (client, key) → (request hash,
/// application id, receipt number).
async fn earlier_answers(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    news: &[NewApplication],
) -> Result<BTreeMap<(String, String), (String, String, String)>, StoreError> {
    let (clients, keys): (Vec<&str>, Vec<&str>) = news
        .iter()
        .filter_map(|new| {
            Some((
                new.client_id.as_str(),
                new.idempotency.as_ref()?.key.as_str(),
            ))
        })
        .unzip();
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT i.client_id, i.key, i.request_sha256, a.id, a.receipt FROM idempotency_keys i
         JOIN applications a ON a.id = i.application_id
         WHERE (i.client_id, i.key) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
    )
    .bind(&clients)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await
    .map_err(sql)?;
    Ok(rows
        .into_iter()
        .map(|(client, key, hash, id, receipt)| ((client, key), (hash, id, receipt)))
        .collect())
}

/// Inserts the applications `candidates` (indexes into `news`): those whose receipt
/// number was free.
async fn insert_applications(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    news: &[NewApplication],
    forms: &[StoredForm],
    candidates: &[usize],
) -> Result<BTreeSet<usize>, StoreError> {
    if candidates.is_empty() {
        return Ok(BTreeSet::new());
    }
    let column = |f: &dyn Fn(&NewApplication, &StoredForm) -> Option<String>| {
        candidates
            .iter()
            .map(|n| f(&news[*n], &forms[*n]))
            .collect::<Vec<_>>()
    };
    let ids: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO applications
           (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at, authentication)
         SELECT id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, created_at, authentication
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
              AS u(id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, authentication)
         ON CONFLICT (receipt) DO NOTHING
         RETURNING id",
    )
    .persistent(false)
    .bind(column(&|new, _| Some(new.id.to_string())))
    .bind(column(&|new, _| Some(new.receipt.clone())))
    .bind(column(&|new, _| Some(new.client_id.clone())))
    .bind(column(&|new, _| Some(new.service_key.clone())))
    .bind(column(&|new, _| Some(new.region.clone())))
    .bind(column(&|new, _| Some(new.procedure_id.clone())))
    .bind(column(&|new, _| Some(new.first_state().0.as_str().to_owned())))
    .bind(column(&|_, form| Some(form.payload.clone())))
    .bind(column(&|new, _| Some(rfc3339(new.received_at))))
    .bind(column(&|_, form| form.authentication.clone()))
    .fetch_all(&mut **tx)
    .await
    .map_err(sql)?;
    let ids: BTreeSet<String> = ids.into_iter().map(|(id,)| id).collect();
    Ok(candidates
        .iter()
        .copied()
        .filter(|n| ids.contains(&news[*n].id.to_string()))
        .collect())
}

/// Inserts the idempotency keys of the applications `inserted`: those whose key a
/// concurrent transaction took meanwhile (it waited for that one's commit).
async fn insert_keys(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    news: &[NewApplication],
    inserted: &BTreeSet<usize>,
) -> Result<BTreeSet<usize>, StoreError> {
    let with_keys: Vec<usize> = inserted
        .iter()
        .copied()
        .filter(|n| news[*n].idempotency.is_some())
        .collect();
    if with_keys.is_empty() {
        return Ok(BTreeSet::new());
    }
    let column = |f: &dyn Fn(&NewApplication) -> String| {
        with_keys.iter().map(|n| f(&news[*n])).collect::<Vec<_>>()
    };
    let key = |new: &NewApplication| {
        new.idempotency
            .as_ref()
            .map(|k| (k.key.clone(), k.request_sha256.clone()))
            .unwrap_or_default()
    };
    let claimed: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT DO NOTHING
         RETURNING application_id",
    )
    .persistent(false)
    .bind(column(&|new| new.client_id.clone()))
    .bind(column(&|new| key(new).0))
    .bind(column(&|new| key(new).1))
    .bind(column(&|new| new.id.to_string()))
    .bind(column(&|new| rfc3339(new.received_at)))
    .fetch_all(&mut **tx)
    .await
    .map_err(sql)?;
    let claimed: BTreeSet<String> = claimed.into_iter().map(|(id,)| id).collect();
    Ok(with_keys
        .into_iter()
        .filter(|n| !claimed.contains(&news[*n].id.to_string()))
        .collect())
}

/// The outbox entries of the applications `stored` and the history entries of `audit`
/// (stamped `at`, in order), in one statement.
async fn insert_deliveries_and_history(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    news: &[NewApplication],
    stored: &[usize],
    at: &str,
    audit: &[(String, Change)],
) -> Result<(), StoreError> {
    let column = |f: &dyn Fn(&NewApplication) -> String| {
        stored.iter().map(|n| f(&news[*n])).collect::<Vec<_>>()
    };
    sqlx::query(
        "WITH delivery AS (
             INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at, sealed)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bytea[]))
         INSERT INTO history (application_id, at, status, detail)
         SELECT h.application_id, $9, h.status, h.detail
         FROM UNNEST($10::text[], $11::text[], $12::text[]) WITH ORDINALITY AS h(application_id, status, detail, n)
         ORDER BY h.n",
    )
    .persistent(false)
    .bind(column(&|new| new.id.to_string()))
    .bind(column(&|new| new.service_key.clone()))
    .bind(column(&|new| new.procedure_id.clone()))
    .bind(column(&|new| new.message_id.to_string()))
    .bind(column(&|new| new.message_type.clone()))
    .bind(column(&|new| new.first_state().1.as_str().to_owned()))
    .bind(
        stored
            .iter()
            .map(|n| millis(news[*n].received_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        stored
            .iter()
            .map(|n| news[*n].first_state().2)
            .collect::<Vec<_>>(),
    )
    .bind(at)
    .bind(
        audit
            .iter()
            .map(|(_, c)| c.application_id.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(audit.iter().map(|(_, c)| c.status.as_str()).collect::<Vec<_>>())
    .bind(audit.iter().map(|(_, c)| c.detail.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map_err(sql)?;
    Ok(())
}

fn sql(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn database(reason: &str) -> StoreError {
    StoreError::Database(reason.to_owned())
}
