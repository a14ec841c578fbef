//! Reloading without a restart (SIGHUP, `POST /api/v1/admin/reload`): the routing table —
//! procedures of every transport, routes, authorities —, the keys and certificates, and
//! the mappings. Everything a new routing table needs is read and checked first (the
//! configuration, every sink's files, the procedures' tokens, the keys); only then is it
//! put in force, as a whole. A refused reload changes nothing. A delivery in flight
//! finishes with the sink it started with; what starts afterwards uses the new table.
//!
//! What still needs a restart: the server, store, broker and limits of `kopplung.toml`,
//! the clients and clerks, and `receipt_auto_resends`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use kopplung_adapters::amqp::{AmqpBroker, ReplyHandler, consume_replies};
use kopplung_adapters::registry::Transport;
use kopplung_core::events::Events;
use kopplung_pipeline::Dispatcher;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use crate::answer_folders::Refusal;
use crate::config::Config;
use crate::context::Hub;
use crate::routing::RoutingTable;
use crate::setup;
use crate::topology::Topology;

/// The tasks that take the procedures' events from AMQP reply queues and answer folders.
pub struct Listeners {
    /// What they listen to, to see whether a reload changes it.
    listening: BTreeSet<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Starts listening for the events of `config`'s procedures.
    pub fn start(config: &Config, events: &Arc<Events>, refusal: Refusal) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(broker) = &config.file.amqp {
            let queues: Vec<(String, ReplyHandler)> = config
                .routing
                .procedures
                .iter()
                .filter_map(|procedure| {
                    let queue = procedure.delivery.reply_queue()?.to_owned();
                    let id = procedure.id.to_string();
                    Some((queue, crate::reply_queues::handler(events.clone(), id)))
                })
                .collect();
            tasks.push(tokio::spawn(consume_replies(
                broker.clone(),
                queues,
                stopped.clone(),
            )));
        }
        let folders: Vec<_> = config
            .routing
            .procedures
            .iter()
            .filter_map(|procedure| {
                let folder = procedure.delivery.answer_folder(&config.data_dir)?;
                let id = procedure.id.to_string();
                let handler = crate::answer_folders::handler(events.clone(), id.clone(), refusal);
                Some((id, folder, handler))
            })
            .collect();
        if !folders.is_empty() {
            tasks.push(tokio::spawn(kopplung_adapters::file::watch_answers(
                folders,
                u64::try_from(config.file.limits.max_event_bytes).unwrap_or(u64::MAX),
                stopped,
            )));
        }
        Self {
            listening: listening(config),
            stop,
            tasks,
        }
    }

    /// Stops them and waits until they ended (a message being taken is finished or
    /// left to the broker or the folder).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Every reply queue and answer folder of `config`, with its procedure.
fn listening(config: &Config) -> BTreeSet<String> {
    config
        .routing
        .procedures
        .iter()
        .flat_map(|p| {
            let queue = p
                .delivery
                .reply_queue()
                .map(|q| format!("{} amqp {q}", p.id));
            let folder = p
                .delivery
                .answer_folder(&config.data_dir)
                .map(|f| format!("{} file {} {:?}", p.id, f.path.display(), f.poll));
            queue.into_iter().chain(folder)
        })
        .collect()
}

/// What a reload put in force.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub procedures: usize,
    pub routes: usize,
    /// Procedures that are new, or gone.
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// What became of each part of a reload.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The routing table with the keys and certificates: applied, or why not.
    pub routing: Result<Applied, String>,
    /// The mappings (services): how many are in force, or why the old ones stay.
    pub mappings: Result<usize, String>,
}

impl Report {
    pub fn applied(&self) -> bool {
        self.routing.is_ok() && self.mappings.is_ok()
    }
}

/// A part told of each routing table put in force.
pub type Follower = Box<dyn Fn(&Config) + Send + Sync>;

/// Everything a reload replaces: the hub's routing table, keys, mappings and receipt
/// deadlines (in its context), the outbox's deliveries, the event listeners.
pub struct Reloader {
    pub hub: Arc<Hub>,
    pub dispatcher: Arc<Dispatcher>,
    /// Further parts that follow a reloaded routing table (the clerk inbox's manual
    /// procedures), told once it is in force.
    pub followers: Vec<Follower>,
    /// The problem document of a refused event file (the API's, `api::event_problem`).
    pub refusal: Refusal,
    pub broker: Option<Arc<AmqpBroker>>,
    /// The event listeners in force; `None` once the hub stops.
    pub listeners: Mutex<Option<Listeners>>,
    /// One reload at a time.
    pub running: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reads the configuration again and puts what is valid in force: the routing table
    /// with the keys as one part, the mappings as the other.
    pub async fn reload(&self) -> Report {
        let _one = self.running.lock().await;
        let routing = self.reload_routing().await;
        let outcome = if routing.is_ok() {
            "applied"
        } else {
            "refused"
        };
        for counter in [
            &self.hub.metrics.key_reloads,
            &self.hub.metrics.routing_reloads,
        ] {
            counter.with_label_values(&[outcome]).inc();
        }
        match &routing {
            Ok(applied) => tracing::info!(
                procedures = applied.procedures,
                routes = applied.routes,
                added = ?applied.added,
                removed = ?applied.removed,
                "routing table, keys and certificates reloaded"
            ),
            Err(e) => {
                tracing::error!(error = %e, "reload of the routing table and keys refused; the previous ones stay in force")
            }
        }
        let mappings = self.reload_mappings().await;
        Report {
            routing: routing.map_err(|e| e.to_string()),
            mappings,
        }
    }

    /// Writes a change of mapping files and puts the mappings in force as a reload does,
    /// one reload at a time (the workbench's "apply"). When the reload refuses them,
    /// `undo` restores the files before any other reload can read them: nothing stays
    /// half applied. Returns the number of services in force, or the reasons.
    pub async fn change_mappings<E>(
        &self,
        change: impl FnOnce() -> Result<(), E>,
        undo: impl FnOnce(),
    ) -> Result<Result<usize, String>, E> {
        let _one = self.running.lock().await;
        change()?;
        let outcome = self.reload_mappings().await;
        if outcome.is_err() {
            undo();
        }
        Ok(outcome)
    }

    /// The mapping part of a reload (the caller holds `running`): load, check, put in
    /// force or keep the old ones, counted and logged.
    async fn reload_mappings(&self) -> Result<usize, String> {
        let (catalog, config, regions, metrics) = (
            self.hub.catalog.clone(),
            self.hub.topology.now().config.clone(),
            self.hub.regions.clone(),
            self.hub.metrics.clone(),
        );
        let mappings = tokio::task::spawn_blocking(move || {
            crate::catalog::reload(&catalog, &config, &regions, &metrics)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|outcome| outcome.map_err(|e| e.to_string()));
        match &mappings {
            Ok(services) => tracing::info!(services, "mappings reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "mapping reload refused; the previous mappings stay in force")
            }
        }
        mappings
    }

    async fn reload_routing(&self) -> Result<Applied, Error> {
        let current = self.hub.topology.now();
        let (source, data_dir) = (
            current.config.source.clone(),
            current.config.data_dir.clone(),
        );
        let (catalog, regions, broker) = (
            self.hub.catalog.clone(),
            self.hub.regions.clone(),
            self.broker.clone(),
        );
        // Everything is read and checked before anything changes.
        let prepared = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let fresh = Config::load(&source, &data_dir)?;
            crate::reply_queues::at_reload(&fresh)?;
            let routing = RoutingTable::new(&fresh.routing.routes);
            crate::catalog::check_coverage(&fresh, &catalog, &regions, &routing)?;
            let keys = setup::keyring_config(&fresh)?;
            let sinks = setup::build_sinks(&fresh, broker.as_ref())?;
            let destinations = sinks
                .iter()
                .map(|(id, sink)| (id.clone(), sink.destination()))
                .collect();
            let deliveries = setup::deliveries(&fresh, sinks);
            let deadlines = setup::receipt_deadlines(&fresh);
            let topology = Topology::new(fresh, destinations)?;
            Ok((keys, deliveries, deadlines, topology))
        })
        .await
        .map_err(|e| Error::Config {
            file: current.config.source.clone(),
            message: format!("reload stopped: {e}"),
        })??;
        let (keys, deliveries, deadlines, topology) = prepared;
        self.hub.keyring.reload_procedures(&keys)?;
        // In force from here on, as a whole.
        let ids = |t: &Topology| -> BTreeSet<String> { t.destinations.keys().cloned().collect() };
        let (before, after) = (ids(&current), ids(&topology));
        let applied = Applied {
            procedures: topology.config.routing.procedures.len(),
            routes: topology.config.routing.routes.len(),
            added: after.difference(&before).cloned().collect(),
            removed: before.difference(&after).cloned().collect(),
        };
        for q in crate::reply_queues::dropped_by(&current.config, &topology.config) {
            tracing::warn!(procedure = %q.procedure, queue = %q.queue, "the reply queue is no longer consumed; what is left in it is taken at the next start");
        }
        let config = topology.config.clone();
        self.dispatcher.replace_deliveries(deliveries);
        self.hub.oversight.receipt_deadlines.replace(&deadlines);
        for follow in &self.followers {
            follow(&config);
        }
        self.hub.topology.replace(topology);
        // What waited for a procedure that exists now goes out at once.
        kopplung_core::Wake::wake(self.dispatcher.wake.as_ref());
        self.restart_listeners(&config).await;
        Ok(applied)
    }

    /// Listens anew when the reply queues or answer folders changed.
    async fn restart_listeners(&self, config: &Config) {
        let old = {
            let mut guard = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(current) if current.listening == listening(config) => return,
                // Stopping: nothing to listen to any more.
                None => return,
                Some(_) => guard.replace(Listeners::start(config, &self.hub.events, self.refusal)),
            }
        };
        if let Some(old) = old {
            old.stop().await;
        }
    }

    /// Stops the event listeners (the hub shuts down).
    pub async fn stop_listeners(&self) {
        let current = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(current) = current {
            current.stop().await;
        }
    }
}
