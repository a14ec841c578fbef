//! The AMQP reply queues the hub consumes, and those a transport change left behind.
//!
//! When a procedure moves from AMQP to another transport (a restart with the changed
//! routing table), the configuration no longer names its old events queue — but that
//! queue may still hold receipts and decisions the procedure sent before the switch.
//! So the hub remembers in the data directory (`reply-queues.json`) every reply queue it
//! consumed; at start, each remembered queue the configuration no longer consumes is
//! drained — taken until empty, then forgotten. Queues of procedures that are gone from
//! the configuration cannot be taken (their events cannot be verified): they are named
//! with their message count at every start until they are empty or deleted. Without an
//! `[amqp]` broker nothing can be looked at: named at every start. `kopplung check`
//! names them all (docs/operations.md, "Changing a procedure's transport").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kopplung_adapters::amqp::{
    AmqpBrokerConfig, Drained, Handled, ReplyHandler, drain_queue, queue_length,
};
use kopplung_adapters::registry::Transport;
use kopplung_core::events::{EventError, Events};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Error;
use crate::answer_channels::taking_events;
use crate::config::Config;

/// The file in the data directory.
const FILE: &str = "reply-queues.json";

/// A reply queue and the procedure whose events it carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplyQueue {
    pub procedure: String,
    pub queue: String,
}

/// What becomes of a queue the configuration no longer consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftBehind {
    /// Its procedure is still configured and the hub has a broker: drained at start.
    Drained(ReplyQueue),
    /// Its procedure is gone from the configuration: its events cannot be taken.
    ProcedureGone(ReplyQueue),
    /// The configuration has no `[amqp]` broker to take them from.
    NoBroker(ReplyQueue),
}

impl std::fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Drained(q) => write!(
                f,
                "procedure `{}` no longer answers on AMQP: its old reply queue `{}` is taken until empty at start",
                q.procedure, q.queue
            ),
            Self::ProcedureGone(q) => write!(
                f,
                "procedure `{}` is no longer configured: its old reply queue `{}` may hold events no one takes (see docs/operations.md)",
                q.procedure, q.queue
            ),
            Self::NoBroker(q) => write!(
                f,
                "procedure `{}` no longer answers on AMQP and there is no [amqp] broker: its old reply queue `{}` may hold events no one takes (see docs/operations.md)",
                q.procedure, q.queue
            ),
        }
    }
}

/// The reply queues the configuration consumes now.
fn consumed(config: &Config) -> BTreeSet<ReplyQueue> {
    config
        .routing
        .procedures
        .iter()
        .filter_map(|p| {
            Some(ReplyQueue {
                procedure: p.id.to_string(),
                queue: p.delivery.reply_queue()?.to_owned(),
            })
        })
        .collect()
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The reply queues remembered in `data_dir` (none if the file does not exist yet).
fn remembered(data_dir: &Path) -> Result<BTreeSet<ReplyQueue>, Error> {
    let path = file(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(unreadable(&path, &e.to_string())),
    };
    serde_json::from_str(&text).map_err(|e| unreadable(&path, &e.to_string()))
}

fn unreadable(path: &Path, message: &str) -> Error {
    Error::Config {
        file: path.to_owned(),
        message: format!("the remembered reply queues: {message}"),
    }
}

/// Writes `queues` into `data_dir` (private; replaced whole, so a crash leaves the old
/// list or the new one).
fn remember(data_dir: &Path, queues: &BTreeSet<ReplyQueue>) -> Result<(), Error> {
    let path = file(data_dir);
    let fresh = data_dir.join(format!("{FILE}.new"));
    let written = serde_json::to_vec_pretty(queues)
        .map_err(std::io::Error::other)
        .and_then(|json| {
            match std::fs::remove_file(&fresh) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            kopplung_web::files::write_private_file(&fresh, &json)?;
            std::fs::rename(&fresh, &path)
        });
    written.map_err(|e| Error::Config {
        file: path,
        message: format!("remembering the reply queues: {e}"),
    })
}

/// The remembered queues that the configuration no longer consumes, and what becomes
/// of each. Reads only; `kopplung check` shows them.
pub fn left_behind(config: &Config) -> Result<Vec<LeftBehind>, Error> {
    let now = consumed(config);
    Ok(remembered(&config.data_dir)?
        .into_iter()
        .filter(|q| !now.contains(q))
        .map(|q| {
            if !config
                .routing
                .procedures
                .iter()
                .any(|p| p.id.as_str() == q.procedure)
            {
                LeftBehind::ProcedureGone(q)
            } else if config.file.amqp.is_none() {
                LeftBehind::NoBroker(q)
            } else {
                LeftBehind::Drained(q)
            }
        })
        .collect())
}

/// The reply queues `running` consumes that `fresh` (the configuration as a reload reads
/// it) no longer does: the change takes effect at the next start, which drains them.
pub fn dropped_by(running: &Config, fresh: &Config) -> Vec<ReplyQueue> {
    let kept = consumed(fresh);
    consumed(running)
        .into_iter()
        .filter(|q| !kept.contains(q))
        .collect()
}

/// At a reload: remembers the queues `fresh` consumes beside those remembered, so that a
/// queue a reload adds and a later one drops is drained at the next start too.
pub fn at_reload(fresh: &Config) -> Result<(), Error> {
    let mut queues = remembered(&fresh.data_dir)?;
    let before = queues.len();
    queues.extend(consumed(fresh));
    if queues.len() == before {
        return Ok(());
    }
    remember(&fresh.data_dir, &queues)
}

/// What the start does with the queues left behind.
#[derive(Debug, Default)]
pub struct AtStart {
    /// Taken until empty, then forgotten.
    pub drain: Vec<ReplyQueue>,
    /// Of procedures no longer configured: looked at, forgotten once empty or gone.
    pub gone: Vec<ReplyQueue>,
}

/// At start: remembers the queues consumed now besides those left behind, logs each
/// left behind, and says what to do with them.
pub fn at_start(config: &Config) -> Result<AtStart, Error> {
    let left = left_behind(config)?;
    let mut keep = consumed(config);
    let mut todo = AtStart::default();
    for entry in left {
        match &entry {
            LeftBehind::Drained(q) => {
                tracing::info!(procedure = %q.procedure, queue = %q.queue, "{entry}");
                todo.drain.push(q.clone());
            }
            // Looked at with the broker (the warning then gives its message count).
            LeftBehind::ProcedureGone(q) if config.file.amqp.is_some() => {
                todo.gone.push(q.clone());
            }
            LeftBehind::ProcedureGone(q) | LeftBehind::NoBroker(q) => {
                tracing::warn!(procedure = %q.procedure, queue = %q.queue, "{entry}");
            }
        }
        let (LeftBehind::Drained(q) | LeftBehind::ProcedureGone(q) | LeftBehind::NoBroker(q)) =
            entry;
        keep.insert(q);
    }
    if keep != remembered(&config.data_dir)? {
        remember(&config.data_dir, &keep)?;
    }
    Ok(todo)
}

/// Takes a procedure's events from an AMQP message body, as `POST …/events` does.
pub fn handler(events: Arc<Events>, procedure: String) -> ReplyHandler {
    taking_events(events, procedure, |taken| match taken {
        Ok(_) => Handled::Done,
        // Nothing was recorded: the broker keeps it for later.
        Err(EventError::Unavailable(_)) => Handled::Later,
        Err(_) => Handled::Refused,
    })
}

/// Drains each queue of `todo.drain` in turn until it is empty, then forgets it; stops at
/// `shutdown` (what is left is drained at the next start). Of `todo.gone` it names those
/// that still hold messages, and forgets the others.
pub async fn drain(
    broker: AmqpBrokerConfig,
    data_dir: PathBuf,
    todo: AtStart,
    events: Arc<Events>,
    shutdown: watch::Receiver<bool>,
) {
    for q in todo.gone {
        match queue_length(&broker, &q.queue).await {
            Ok(None | Some(0)) => forget(&data_dir, &q),
            Ok(Some(waiting)) => {
                tracing::warn!(procedure = %q.procedure, queue = %q.queue, waiting, "{}", LeftBehind::ProcedureGone(q.clone()))
            }
            Err(e) => {
                tracing::warn!(procedure = %q.procedure, queue = %q.queue, error = %e, "{}", LeftBehind::ProcedureGone(q.clone()))
            }
        }
    }
    for q in todo.drain {
        let handle = handler(events.clone(), q.procedure.clone());
        let taken = match drain_queue(&broker, &q.queue, &handle, shutdown.clone()).await {
            Drained::Empty { taken } => taken,
            Drained::Missing => 0,
            Drained::Stopped { taken } => {
                tracing::info!(procedure = %q.procedure, queue = %q.queue, taken, "draining an old reply queue stopped; it goes on at the next start");
                return;
            }
        };
        tracing::info!(procedure = %q.procedure, queue = %q.queue, taken, "old reply queue drained; no longer consumed");
        forget(&data_dir, &q);
    }
}

/// Removes `q` from the remembered queues.
fn forget(data_dir: &Path, q: &ReplyQueue) {
    let forgotten = remembered(data_dir).and_then(|mut all| {
        all.remove(q);
        remember(data_dir, &all)
    });
    if let Err(e) = forgotten {
        tracing::error!(error = %e, queue = %q.queue, "the reply queue stays remembered; it is looked at again at the next start");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_config(data_dir: &Path) -> Config {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kopplung.toml");
        Config::load(&root, data_dir).unwrap()
    }

    fn queue(procedure: &str, queue: &str) -> ReplyQueue {
        ReplyQueue {
            procedure: procedure.into(),
            queue: queue.into(),
        }
    }

    #[test]
    fn what_the_configuration_no_longer_consumes_is_left_behind_and_kept_until_drained() {
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(dir.path());
        let now = consumed(&config);
        let leipzig = queue(
            "landkreis-leipzig-maengel",
            "kopplung.landkreis-leipzig-maengel.events",
        );
        assert!(now.contains(&leipzig), "{now:?}");
        // A first start remembers what it consumes; nothing is left behind.
        assert!(at_start(&config).unwrap().drain.is_empty());
        assert_eq!(remembered(dir.path()).unwrap(), now);

        // Dresden answered on AMQP once; a procedure since removed too.
        let dresden = queue("dresden-maengel", "kopplung.dresden-maengel.events");
        let removed = queue("bautzen-alt", "kopplung.bautzen-alt.events");
        let mut before = now.clone();
        before.extend([dresden.clone(), removed.clone()]);
        remember(dir.path(), &before).unwrap();
        assert_eq!(
            left_behind(&config).unwrap(),
            vec![
                LeftBehind::ProcedureGone(removed.clone()),
                LeftBehind::Drained(dresden.clone()),
            ]
        );
        let todo = at_start(&config).unwrap();
        assert_eq!(todo.drain, vec![dresden.clone()]);
        assert_eq!(todo.gone, vec![removed.clone()]);
        // Still remembered until drained (a crash meanwhile loses nothing).
        assert_eq!(remembered(dir.path()).unwrap(), before);
        forget(dir.path(), &dresden);
        assert!(!remembered(dir.path()).unwrap().contains(&dresden));

        // Without a broker nothing can be drained: named, and kept at start.
        let mut brokerless = config.clone();
        brokerless.file.amqp = None;
        remember(dir.path(), &before).unwrap();
        assert!(
            left_behind(&brokerless)
                .unwrap()
                .contains(&LeftBehind::NoBroker(dresden.clone()))
        );
        let todo = at_start(&brokerless).unwrap();
        assert!(todo.drain.is_empty());
        assert!(remembered(dir.path()).unwrap().contains(&dresden));
        assert!(
            LeftBehind::NoBroker(dresden)
                .to_string()
                .contains("kopplung.dresden-maengel.events")
        );
    }

    #[test]
    fn a_reload_names_the_reply_queues_the_fresh_configuration_drops() {
        let dir = tempfile::tempdir().unwrap();
        let running = demo_config(dir.path());
        let mut fresh = running.clone();
        assert!(dropped_by(&running, &fresh).is_empty());
        fresh
            .routing
            .procedures
            .retain(|p| p.id.as_str() != "landkreis-leipzig-maengel");
        assert_eq!(
            dropped_by(&running, &fresh),
            vec![queue(
                "landkreis-leipzig-maengel",
                "kopplung.landkreis-leipzig-maengel.events"
            )]
        );
    }
}
