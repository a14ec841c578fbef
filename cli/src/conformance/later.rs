//! The battery over a transport whose answers come later (AMQP, pull, file drop): the kit
//! plays the hub's side — sends through the procedure's own sink, offers the pull API
//! and the events API, consumes the reply queue, reads the answer folder — and grades
//! what came back for each message.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use kopplung_adapters::amqp::{Handled, consume_replies};
use kopplung_adapters::file::{Answered, watch_answers};
use kopplung_adapters::registry::{DeliveryConfig, Transport};
use kopplung_adapters::{BodyHandler, Outcome, Sink, body_handler};
use kopplung_core::events::EventError;
use kopplung_pipeline::conformance::{Case, Expect, Verdict, grade_later};
use kopplung_router::api::event_problem;
use kopplung_router::hub::Loaded;
use kopplung_router::topology::Topology;
use kopplung_transformers::receipt::Receipt;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio::sync::watch;

use super::answers::Collected;
use super::pull::{self, Pickups};

/// After the last awaited answer, how long forged messages may still draw one.
const GRACE: Duration = Duration::from_secs(3);

pub struct Run<'a> {
    pub loaded: &'a Loaded,
    pub procedure: &'a str,
    pub delivery: &'a DeliveryConfig,
    pub sink: Arc<dyn Sink>,
    pub cases: &'a [Case],
    pub listen: &'a str,
    pub wait: Duration,
}

pub async fn run(run: Run<'_>) -> anyhow::Result<Vec<Verdict>> {
    let Run {
        loaded,
        procedure,
        delivery,
        sink,
        cases,
        listen,
        wait,
    } = run;
    let config = &loaded.config;
    let pulled = matches!(delivery, DeliveryConfig::Pull(_));
    let collected = Collected::new(loaded.keyring.clone(), procedure, pulled);
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    // The hub's API, for the pull API and for answers sent to the events API.
    let tokens = Topology::new(config.clone(), Default::default())?.procedures;
    let pickups = Arc::new(Pickups::default());
    let app = pull::router(procedure, tokens, pickups.clone(), collected.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen there"))?;
    let mut until_stopped = stopped.clone();
    tasks.spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = until_stopped.wait_for(|stop| *stop).await;
            })
            .await;
    });

    if let (Some(queue), Some(broker)) = (delivery.reply_queue(), &config.file.amqp) {
        alone_on(&broker.url, queue).await?;
        let handler = taking(&collected, |taken| match taken {
            Ok(_) => Handled::Done,
            Err(_) => Handled::Refused,
        });
        tasks.spawn(consume_replies(
            broker.clone(),
            vec![(queue.to_owned(), handler)],
            stopped.clone(),
        ));
    }
    if let Some(folder) = delivery.answer_folder(&config.data_dir) {
        let handler = taking(&collected, |taken| match taken {
            Ok(_) => Answered::Taken,
            // The problem document beside the refused file, as the hub writes it.
            Err(reason) => Answered::Refused(event_problem(EventError::Unverifiable(reason))),
        });
        let max = u64::try_from(config.file.limits.max_event_bytes).unwrap_or(u64::MAX);
        tasks.spawn(watch_answers(
            vec![(procedure.to_owned(), folder, handler)],
            max,
            stopped.clone(),
        ));
    }

    let mut unsent = std::collections::BTreeMap::new();
    for case in cases {
        if pulled {
            pickups.offer(&case.message, loaded.clock.now());
        }
        match sink.deliver(&case.message).await {
            Outcome::Delivered | Outcome::DeliveredWithReceipt(_) | Outcome::AwaitingPickup => {}
            Outcome::Permanent { reason }
            | Outcome::Retry { reason, .. }
            | Outcome::Unavailable { reason, .. } => {
                unsent.insert(case.name, reason);
            }
        }
    }

    let started = tokio::time::Instant::now();
    while started.elapsed() < wait && !all_answered(cases, &collected, pulled) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(GRACE.min(wait.saturating_sub(started.elapsed()))).await;
    let waited = started.elapsed().as_secs();
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}

    let verdicts = cases
        .iter()
        .map(|case| match unsent.get(case.name) {
            Some(reason) => Verdict {
                case: case.name,
                passed: false,
                expected: case.expect.as_str_later(),
                got: format!("the kit could not send it: {reason}"),
            },
            None => grade_later(case, &collected.answers(&case.message.message_id), waited),
        })
        .collect();
    for reason in collected.unverifiable() {
        println!("NOTE an answer did not verify and was refused: {reason}");
    }
    let sent: Vec<&str> = cases
        .iter()
        .map(|c| c.message.message_id.as_str())
        .collect();
    for id in collected.strangers(&sent) {
        println!("NOTE an answer about message {id}, which the kit did not send");
    }
    Ok(verdicts)
}

/// Whether every case that must be answered was (pull: the redelivery acknowledged too).
fn all_answered(cases: &[Case], collected: &Collected, pulled: bool) -> bool {
    cases.iter().all(|case| {
        let answers = collected.answers(&case.message.message_id);
        match case.expect {
            Expect::Refuse => true,
            Expect::AcceptAgain if pulled => answers.acknowledged.unwrap_or(0) >= 2,
            _ => !answers.events.is_empty(),
        }
    })
}

/// Takes each answer into `collected` (as the hub would take it); `outcome` says what
/// the answer channel does with it then.
fn taking<T: Send + 'static>(
    collected: &Arc<Collected>,
    outcome: fn(Result<Receipt, String>) -> T,
) -> BodyHandler<T> {
    body_handler(collected.clone(), move |collected, body| async move {
        outcome(collected.take(&body))
    })
}

/// Refuses to run while someone else consumes the reply queue: a hub there would take
/// (and refuse) the receiver's answers, and the kit would grade them missing.
async fn alone_on(url: &str, queue: &str) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .context("the broker cannot be reached")?;
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    let _ = connection.close(200, "".into()).await;
    match declared {
        Ok(declared) if declared.consumer_count() > 0 => bail!(
            "the reply queue {queue} has {} consumer(s): a hub is taking the answers. Stop the hub that serves this procedure for the run, or run the kit against a test broker (another vhost).",
            declared.consumer_count()
        ),
        // Not there yet: nobody consumes it.
        _ => Ok(()),
    }
}
