//! Assembles the router from a configuration and runs it until shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use kopplung_adapters::amqp::AmqpBroker;
use kopplung_adapters::registry::ApiToken;
use kopplung_core::{Clock, SystemClock};
use kopplung_pipeline::{Dispatcher, Keyring, Preparer, RetryPolicies, Wakeup};
use tokio::sync::watch;

use axum::response::IntoResponse;

use crate::Error;
use crate::api::problem::Problem;
use crate::api::{self, ApiState, auth::Clients};
use crate::audit::{ChainHead, Checkpoint, checkpoint};
use crate::catalog::{Catalog, load_checked};
use crate::config::Config;
use crate::context::{Hub, HubParts};
use crate::metrics::Metrics;
use crate::regions::Regions;
use crate::routing::RoutingTable;
use crate::setup;
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::topology::{Topologies, Topology};

/// Loads everything the configuration names and checks that it fits together,
/// without opening the store or the network. `kopplung check` runs exactly this.
pub struct Loaded {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    pub regions: Arc<Regions>,
    /// The keys and certificates in force.
    pub keyring: Arc<Keyring>,
    /// The hub's clock.
    pub clock: Arc<dyn Clock>,
    pub clients: Clients,
    /// The clerks of manual procedures (their passwords checked or hashed).
    pub inbox: crate::inbox::Inbox,
    /// The hub's one login limiter, shared by console, clerk inbox and workbench.
    pub logins: kopplung_web::LoginLimiter,
    /// The portal's rendering of a form for the workbench, handed in by the binary (the
    /// hub does not depend on the portal); `None`: the workbench shows no form.
    pub form_preview: Option<Arc<dyn crate::workbench::FormPreview>>,
}

pub fn load(config: Config) -> Result<Loaded, Error> {
    let regions = Arc::new(Regions::load(&config.regions_file)?);
    let catalog = Arc::new(Catalog::new(Arc::new(load_checked(&config, &regions)?)));
    crate::catalog::check_coverage(
        &config,
        &catalog,
        &regions,
        &RoutingTable::new(&config.routing.routes),
    )?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keyring = Arc::new(Keyring::load(
        &setup::keyring_config(&config)?,
        clock.clone(),
    )?);
    for problem in keyring.problems() {
        // The hub starts; only this procedure's messages wait until it is fixed.
        tracing::error!(%problem, "procedure blocked");
    }
    let clients = Clients::load(&config.file.clients, &config.data_dir)?;
    // One limiter for every UI's logins: an attacker gains nothing by switching UIs.
    let logins = kopplung_web::LoginLimiter::default();
    let inbox = crate::inbox::Inbox::load(&config, logins.clone())?;
    // The FIT-Connect edge's keys, schema and clients, as `run` loads them.
    crate::fitconnect::check(&config)?;
    Ok(Loaded {
        config,
        catalog,
        regions,
        keyring,
        clock,
        clients,
        inbox,
        logins,
        form_preview: None,
    })
}

/// What in the data directory others may read, write or enter: everything but
/// certificates must be private (directories `0700`, files `0600`) — except the
/// exchange folders of `file` procedures inside it (and the folders leading to them),
/// which the procedure's import account shares.
pub fn exposed_files(config: &Config) -> Result<Vec<String>, Error> {
    let data_dir = &config.data_dir;
    let shared: Vec<std::path::PathBuf> = config
        .routing
        .procedures
        .iter()
        .filter_map(|p| match &p.delivery {
            crate::config::DeliveryConfig::File(file) => Some(file.root(data_dir)),
            _ => None,
        })
        .collect();
    let public = |path: &std::path::Path| {
        path.extension().is_some_and(|e| e == "crt")
            || shared
                .iter()
                .any(|s| path.starts_with(s) || s.starts_with(path))
    };
    kopplung_web::files::wider_than_private(data_dir, public)
        .map(|found| found.iter().map(ToString::to_string).collect())
        .map_err(|e| Error::Config {
            file: data_dir.to_owned(),
            message: format!("reading the modes of the data directory: {e}"),
        })
}

/// Runs the hub: the API on `listen` and the outbox, until `shutdown` resolves.
/// Then intake stops first and work in flight is finished or left leased for the
/// next start.
pub async fn run(
    loaded: Loaded,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Loaded {
        config,
        catalog,
        regions,
        keyring,
        clock,
        clients,
        inbox,
        logins,
        form_preview,
    } = loaded;
    // On PostgreSQL the instance appends to its own audit chain, named by its id.
    let instance = crate::instance::id(&config.data_dir)?;
    let mut postgres = None;
    let store: Arc<dyn Store> = match &config.file.store {
        Some(shared) => {
            let store = Arc::new(
                PostgresStore::connect_as(&shared.postgres_url, clock.clone(), &instance).await?,
            );
            postgres = Some(store.clone());
            store
        }
        None => Arc::new(SqliteStore::open(&config.data_dir, clock.clone()).await?),
    };
    for exposed in exposed_files(&config)? {
        tracing::warn!(problem = %exposed, "data directory open to other users");
    }
    // This instance is alive, and what it claimed in an earlier life (killed, crashed)
    // is free again at once.
    store.heartbeat(&instance).await?;
    let released = store.release_stale_leases(&instance).await?;
    tracing::info!(%instance, "instance started");
    if released > 0 {
        tracing::info!(
            released,
            "took back work of an earlier run that did not finish"
        );
    }

    // The chain's head as this start finds it, signed (see audit/checkpoint.rs): a tail
    // removed while the hub was down is noticed against the checkpoints before it.
    let checkpointed = checkpoint_head(store.as_ref(), &keyring, clock.as_ref(), None).await?;

    let broker = config.file.amqp.clone().map(AmqpBroker::new);
    let sinks = setup::build_sinks(&config, broker.as_ref())?;
    let destinations = sinks
        .iter()
        .map(|(id, sink)| (id.clone(), sink.destination()))
        .collect();

    let wake = Arc::new(Wakeup::new());
    let limits = &config.file.limits;
    let clients_behind_proxies = limits.proxies().build().map_err(|e| Error::Config {
        file: config.source.clone(),
        message: e.to_string(),
    })?;
    let server = kopplung_web::Server::new("hub", limits.server(), clients_behind_proxies)
        .on_body_timeout(|limit| {
            Problem::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "The request did not arrive in time",
            )
            .detail(format!(
                "the whole request must arrive within {} seconds",
                limit.as_secs()
            ))
            .into_response()
        });
    let listener = bind(listen).await?;
    let monitoring_listener = match config.file.monitoring.listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let bound = listener.local_addr().map_err(|source| Error::Listen {
        addr: listen,
        source,
    })?;
    let public_url = config
        .file
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let inbox = Arc::new(inbox);
    let metrics = Arc::new(Metrics::new()?);
    if let Some(postgres) = &postgres {
        let waits = metrics.store_lock_wait_seconds.clone();
        postgres.observe_lock_waits(Box::new(move |wait| waits.observe(wait.as_secs_f64())));
    }
    let (retention_store, retention_catalog, retention_metrics) =
        (store.clone(), catalog.clone(), metrics.clone());
    let uploads_store = store.clone();
    let checkpoint_store = store.clone();
    let preparer = Arc::new(Preparer {
        catalog: catalog.clone(),
        regions: regions.names(),
        keyring: keyring.clone(),
        autor: setup::hub_authority(&config),
        public_url: public_url.clone(),
        clock: clock.clone(),
    });
    // Keys are fetched when an assertion first needs them: an identity provider that is
    // down refuses its citizens' applications (503), not the hub's start.
    let identity = Arc::new(
        kopplung_identity::Verifier::new(&config.file.identity_providers, clock.clone()).map_err(
            |e| Error::Config {
                file: config.source.clone(),
                message: e.to_string(),
            },
        )?,
    );
    let prepare_slots = kopplung_pipeline::outbox::prepare_slots();
    let topology = Arc::new(Topologies::new(Topology::new(
        config.clone(),
        destinations,
    )?));
    let hub = Arc::new(Hub::new(HubParts {
        catalog,
        topology: topology.clone(),
        regions,
        store: store.clone(),
        clock: clock.clone(),
        preparer: preparer.clone(),
        metrics: metrics.clone(),
        wake: wake.clone(),
        public_url,
        event_limits: setup::event_limits(&config.file.limits),
        identity,
        receipt_deadlines: setup::receipt_deadlines(&config),
        prepare_slots: prepare_slots.clone(),
    }));

    // The procedures' events on AMQP reply queues and in answer folders (restarted by a
    // reload that changes them). The reply queues of procedures that no longer answer
    // on AMQP are taken until empty (reply_queues.rs).
    let listeners = crate::reload::Listeners::start(&config, &hub.events, api::event_problem);
    let (stop_replies, replies_stopped) = watch::channel(false);
    let mut reply_consumers = Vec::new();
    let left_behind = crate::reply_queues::at_start(&config)?;
    if let Some(broker) = &config.file.amqp
        && !(left_behind.drain.is_empty() && left_behind.gone.is_empty())
    {
        reply_consumers.push(tokio::spawn(crate::reply_queues::drain(
            broker.clone(),
            config.data_dir.clone(),
            left_behind,
            hub.events.clone(),
            replies_stopped.clone(),
        )));
    }

    let mut dispatcher = Dispatcher::new(
        store,
        preparer,
        BTreeMap::new(),
        RetryPolicies::default(),
        wake,
        metrics.clone(),
        clock.clone(),
    );
    dispatcher.replace_deliveries(setup::deliveries(&config, sinks));
    dispatcher.prepare_slots = prepare_slots;
    // A signed receipt in an HTTP answer is an event like any other of that procedure.
    dispatcher.events = Some(hub.events.clone());
    dispatcher.lease = std::time::Duration::from_secs(config.file.delivery.lease_secs);
    dispatcher.owner = instance;
    // Only a shared database has other instances to beat for (SQLite: one process per
    // data directory, and no write every few seconds for nothing).
    dispatcher.heartbeat_timeout = config
        .file
        .store
        .as_ref()
        .map(|_| std::time::Duration::from_secs(config.file.delivery.heartbeat_timeout_secs));
    let dispatcher = Arc::new(dispatcher);
    let reloader = Arc::new(crate::reload::Reloader {
        hub: hub.clone(),
        dispatcher: dispatcher.clone(),
        followers: vec![{
            let inbox = inbox.clone();
            Box::new(move |config: &Config| inbox.replace_procedures(config))
        }],
        refusal: api::event_problem,
        broker: broker.clone(),
        listeners: std::sync::Mutex::new(Some(listeners)),
        running: tokio::sync::Mutex::new(()),
    });
    let hangups = tokio::spawn(reload_on_hangup(reloader.clone(), keyring.clone()));
    let state = Arc::new(ApiState {
        hub: hub.clone(),
        clients,
        brokers: broker.iter().cloned().collect(),
        admins: Clients::load(
            &config
                .file
                .admin
                .iter()
                .flat_map(|a| {
                    // The ids are the roles (see api/admin.rs).
                    std::iter::once(("operator", &a.token_file))
                        .chain(a.auditor_token_file.iter().map(|f| ("auditor", f)))
                        .map(|(role, file)| crate::config::ClientConfig {
                            id: role.into(),
                            token: ApiToken::file(file),
                            asserts_up_to: None,
                        })
                })
                .collect::<Vec<_>>(),
            &config.data_dir,
        )?,
        limits: config.file.limits.clone(),
        reloader: reloader.clone(),
    });
    let (stop_outbox, outbox_stopped) = watch::channel(false);
    let retention = config.file.retention.clone().map(|retention| {
        tokio::spawn(crate::retention::run(
            retention_store,
            retention_catalog,
            retention,
            retention_metrics,
            clock.clone(),
            outbox_stopped.clone(),
        ))
    });
    let uploads = tokio::spawn(crate::retention::discard_abandoned_uploads(
        uploads_store,
        config.file.limits.upload_ttl_hours,
        clock.clone(),
        outbox_stopped.clone(),
    ));
    let checkpoints = tokio::spawn(checkpoint_periodically(
        checkpoint_store.clone(),
        keyring.clone(),
        clock.clone(),
        std::time::Duration::from_secs(config.file.audit.checkpoint_secs),
        checkpointed,
        outbox_stopped.clone(),
    ));
    let auto_resend = setup::auto_resends(&config).map(|(limits, every)| {
        tokio::spawn(crate::auto_resend::run(
            hub.clone(),
            limits,
            every,
            outbox_stopped.clone(),
        ))
    });
    let outbox = tokio::spawn(dispatcher.run(outbox_stopped));

    tracing::info!(%bound, "kopplung listening");
    let monitoring_token = match &config.file.monitoring.token_file {
        Some(file) => Some(Clients::load(
            &[crate::config::ClientConfig {
                id: "monitoring".into(),
                token: ApiToken::file(file),
                asserts_up_to: None,
            }],
            &config.data_dir,
        )?),
        None => None,
    };
    let monitoring_routes = api::monitoring(state.clone(), monitoring_token);
    let engineer_token = config
        .file
        .admin
        .as_ref()
        .and_then(|a| a.engineer_token_file.as_ref());
    let workbench = match engineer_token {
        Some(file) => Some(crate::workbench::router(
            reloader.clone(),
            Clients::load(
                &[crate::config::ClientConfig {
                    id: "engineer".into(),
                    token: ApiToken::file(file),
                    asserts_up_to: None,
                }],
                &config.data_dir,
            )?,
            logins.clone(),
            form_preview,
        )?),
        None => None,
    };
    let mut app = api::router(state.clone())
        .merge(crate::console::router(
            hub.clone(),
            state.admins.clone(),
            logins.clone(),
        )?)
        .merge(crate::inbox::router(hub, inbox));
    if let Some(workbench) = workbench {
        app = app.merge(workbench);
    }
    if let Some(fitconnect) = crate::fitconnect::FitState::load(&config, state.hub.clone())? {
        app = app.merge(crate::fitconnect::router(fitconnect));
    }
    let (stop_monitoring, monitoring_stopped) = watch::channel(false);
    let monitoring = match monitoring_listener {
        Some(listener) => {
            let server = server.clone_named("monitoring");
            metrics
                .connections
                .add_listener("monitoring", server.stats());
            let mut stopped = monitoring_stopped;
            Some(tokio::spawn(server.serve(
                listener,
                monitoring_routes,
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => {
            app = app.merge(monitoring_routes);
            None
        }
    };
    metrics.connections.add_listener("api", server.stats());
    let served = server.serve(listener, app, shutdown).await;
    let _ = stop_monitoring.send(true);
    if let Some(monitoring) = monitoring {
        let _ = monitoring.await;
    }
    hangups.abort();
    reloader.stop_listeners().await;
    let _ = stop_replies.send(true);
    for consumer in reply_consumers {
        let _ = consumer.await;
    }
    let _ = stop_outbox.send(true);
    let _ = outbox.await;
    if let Some(retention) = retention {
        let _ = retention.await;
    }
    if let Some(auto_resend) = auto_resend {
        let _ = auto_resend.await;
    }
    let _ = uploads.await;
    // Every writer of this instance has stopped: the last checkpoint covers all it wrote.
    let last = checkpoints.await.unwrap_or(None);
    if let Err(e) = checkpoint_head(
        checkpoint_store.as_ref(),
        &keyring,
        clock.as_ref(),
        last.as_ref(),
    )
    .await
    {
        tracing::error!(error = %e, "the audit checkpoint at shutdown failed");
    }
    served.map_err(|source| Error::Listen {
        addr: bound,
        source,
    })
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Listen {
            addr: address,
            source,
        })
}

/// Signs the audit chains' heads with the hub's key in force and stores the checkpoint,
/// unless the heads are still `last` (or there are no entries). Returns the heads.
async fn checkpoint_head(
    store: &dyn Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    last: Option<&Vec<ChainHead>>,
) -> Result<Option<Vec<ChainHead>>, Error> {
    let heads = store.audit_heads().await?;
    if heads.is_empty() {
        return Ok(None);
    }
    if last == Some(&heads) {
        return Ok(Some(heads));
    }
    let at = checkpoint::checkpoint_time(clock.now());
    let signature = keyring.sign_detached(checkpoint::heads_statement(&heads, &at).as_bytes())?;
    store
        .record_audit_checkpoint(&Checkpoint {
            heads: heads.clone(),
            at,
            signature,
        })
        .await?;
    let seq: i64 = heads.iter().map(|h| h.seq).sum();
    tracing::info!(chains = heads.len(), seq, "audit checkpoint signed");
    Ok(Some(heads))
}

/// Checkpoints the chains' heads every `every` while they move, until `shutdown`;
/// returns the last heads checkpointed.
async fn checkpoint_periodically(
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    every: std::time::Duration,
    mut last: Option<Vec<ChainHead>>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Vec<ChainHead>> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return last,
        }
        match checkpoint_head(store.as_ref(), &keyring, clock.as_ref(), last.as_ref()).await {
            Ok(heads) => last = heads.or(last),
            Err(e) => tracing::error!(error = %e, "audit checkpoint failed; trying again later"),
        }
    }
}

/// How often the keyring is asked whether a staged rotation switched at its time.
const SWITCH_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs, once, each switch of a staged rotation (a new signing certificate in force, a
/// procedure's next certificate now sealed for): the moment operators and vendors
/// look for when something is refused.
fn report_switches(keyring: &Keyring) {
    for switch in keyring.switches() {
        tracing::info!(%switch, "rotation switched");
    }
}

/// Reloads the routing table, the keys and certificates, and the mappings on SIGHUP
/// (`reload.rs`); between hangups reports the switches of staged rotations. A refused
/// part is logged and counted (`kopplung_routing_reloads_total{outcome="refused"}`,
/// `kopplung_key_reloads_total`, `kopplung_mapping_reloads_total`); what was in force
/// stays in force.
async fn reload_on_hangup(reloader: Arc<crate::reload::Reloader>, keyring: Arc<Keyring>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::error!("cannot listen for SIGHUP: the configuration will not be reloaded");
        loop {
            tokio::time::sleep(SWITCH_CHECK).await;
            report_switches(&keyring);
        }
    };
    loop {
        tokio::select! {
            hangup = hangups.recv() => {
                if hangup.is_none() {
                    return;
                }
            }
            _ = tokio::time::sleep(SWITCH_CHECK) => {
                report_switches(&keyring);
                continue;
            }
        }
        if reloader.reload().await.routing.is_ok() {
            report_switches(&keyring);
            for problem in keyring.problems() {
                tracing::error!(%problem, "procedure blocked");
            }
            for warning in keyring.rotation_warnings() {
                tracing::warn!(%warning, "rotation waiting");
            }
        }
    }
}
