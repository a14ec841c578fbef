//! What the routing table decides — the routes, each procedure's destination and API
//! tokens, the authorities — held as one value that a reload replaces as a whole
//! (`reload.rs`). A request reads the value in force when it starts and keeps it to its
//! end; nothing sees half of an old table and half of a new one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kopplung_adapters::DestinationInfo;
use kopplung_adapters::registry::Transport as _;
use kopplung_core::conversation::Accounting;
use kopplung_core::intake::Routes;
use kopplung_core::{Ars, ServiceKey};

use crate::auth::Clients;
use crate::config::{Authority, ClientConfig, Config};
use crate::routing::RoutingTable;

/// The routing table in force.
pub struct Topology {
    /// The configuration it was read from: a mapping reload checks its routes.
    pub config: Config,
    pub routing: RoutingTable,
    /// Where each configured procedure's messages go.
    pub destinations: BTreeMap<String, DestinationInfo>,
    /// The procedures' tokens for the hub's API: the one a pull procedure collects with,
    /// and the one any procedure may have for attachments and events.
    pub procedures: Clients,
    /// The authorities of the routing table (Behördenkatalog, Zuständigkeitsfinder).
    pub authorities: Vec<Authority>,
    /// Which authority each procedure belongs to.
    pub procedure_authority: BTreeMap<String, String>,
    /// The procedures offered as FIT-Connect destinations, by destination id.
    pub fitconnect: BTreeMap<uuid::Uuid, crate::destinations::FitDestination>,
}

impl Topology {
    /// The topology of `config`, with the destinations of its procedures' sinks.
    pub fn new(
        config: Config,
        destinations: BTreeMap<String, DestinationInfo>,
    ) -> Result<Self, crate::Error> {
        let tokens: Vec<ClientConfig> = config
            .routing
            .procedures
            .iter()
            .flat_map(|p| {
                let api = Some(&p.token).filter(|token| token.is_given());
                p.delivery
                    .api_token()
                    .into_iter()
                    .chain(api)
                    .map(|token| ClientConfig {
                        id: p.id.to_string(),
                        token: token.clone(),
                        asserts_up_to: None,
                    })
            })
            .collect();
        let procedures = Clients::load(&tokens, &config.data_dir)?;
        let fitconnect = crate::destinations::load_destinations(&config)?;
        Ok(Self {
            fitconnect,
            routing: RoutingTable::new(&config.routing.routes),
            destinations,
            procedures,
            authorities: config.routing.authorities.clone(),
            procedure_authority: config
                .routing
                .procedures
                .iter()
                .map(|p| (p.id.to_string(), p.authority.clone()))
                .collect(),
            config,
        })
    }
}

/// The topology in force, replaceable.
pub struct Topologies(RwLock<Arc<Topology>>);

impl Topologies {
    pub fn new(topology: Topology) -> Self {
        Self(RwLock::new(Arc::new(topology)))
    }

    /// The topology in force now.
    pub fn now(&self) -> Arc<Topology> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `fresh` in force for everything that starts from now on.
    pub fn replace(&self, fresh: Topology) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
    }
}

impl Accounting for Topologies {
    fn accounting_of(&self, procedure: &str) -> Option<String> {
        self.now()
            .config
            .routing
            .procedures
            .iter()
            .find(|p| p.id.as_str() == procedure)
            .and_then(|p| p.accounting.as_ref())
            .map(ToString::to_string)
    }
}

impl Routes for Topologies {
    fn resolve(&self, service: &ServiceKey, region: &Ars) -> Option<String> {
        self.now()
            .routing
            .resolve(service.as_str(), region.as_str())
            .map(str::to_owned)
    }
}
