//! The hub's configuration: `kopplung.toml` (server, hub identity, broker, clients)
//! and the routing table it names (authorities, procedures, routes).
//!
//! Paths in `kopplung.toml` are relative to that file; `pki_dir` and `token_file`
//! are relative to the data directory; procedure certificates to the PKI folder.
//! Everything is checked at load time, each section by itself, and every problem of
//! every section is reported at once: a running hub only ever holds a valid config.

mod access;
mod authorities;
mod delivery;
mod fitconnect;
mod hub;
mod identity;
mod problems;
mod procedures;
mod retention;
mod routes;
mod secrets;
mod server;

use std::path::{Path, PathBuf};

use kopplung_adapters::amqp::AmqpBrokerConfig;
use kopplung_adapters::registry::CheckContext;
use serde::Deserialize;

use crate::Error;

pub use access::{AdminConfig, ClerkConfig, ClientConfig};
pub use authorities::Authority;
pub use delivery::{LeaseFloor, RetryPolicy};
pub use fitconnect::{DestinationConfig, FitClientConfig, FitConnectConfig, FitRole};
pub use hub::{AuditConfig, HubIdentity, SigningConfig};
pub use identity::IdentityProviderConfig;
/// The transports are listed once, in the adapters.
pub use kopplung_adapters::manual::ManualConfig;
pub use kopplung_adapters::registry::DeliveryConfig;
pub use problems::{Problem, Problems};
pub use procedures::{Envelope, ProcedureConfig};
pub use retention::RetentionConfig;
pub use routes::RouteConfig;
pub use secrets::{SecretFile, SecretKind};
pub use server::{Limits, MonitoringConfig, ServerConfig, StoreConfig};

use problems::{Findings, read_toml};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    pub hub: HubIdentity,
    /// The mapping folders, one per service.
    pub mappings: PathBuf,
    /// Authorities, procedures and routes.
    pub routing: PathBuf,
    /// The municipalities (ARS, name) the hub accepts as `region`.
    pub regions: PathBuf,
    #[serde(default = "default_pki_dir")]
    pub pki_dir: PathBuf,
    /// Where applications and the outbox live: SQLite in the data directory by default,
    /// or a PostgreSQL database shared by several hub instances.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    pub amqp: Option<AmqpBrokerConfig>,
    #[serde(default)]
    pub delivery: RetryPolicy,
    pub signing: Option<SigningConfig>,
    pub admin: Option<AdminConfig>,
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    /// Identity providers whose assertions identify applicants at intake.
    #[serde(default, rename = "identity_provider")]
    pub identity_providers: Vec<IdentityProviderConfig>,
    /// Clerks of procedures without an interface (`transport = "manual"`).
    #[serde(default, rename = "clerk")]
    pub clerks: Vec<ClerkConfig>,
    /// When personal data is deleted after an application's final state; kept until an
    /// operator deletes it otherwise.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// The audit trail's signed checkpoints.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The FIT-Connect edge (senders and subscribers); absent: not offered.
    #[serde(default)]
    pub fitconnect: Option<FitConnectConfig>,
}

fn default_pki_dir() -> PathBuf {
    "pki".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    #[serde(default, rename = "authority")]
    pub authorities: Vec<Authority>,
    #[serde(default, rename = "procedure")]
    pub procedures: Vec<ProcedureConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// A loaded configuration with every path resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for reloads).
    pub source: PathBuf,
    pub file: FileConfig,
    pub routing: RoutingFile,
    pub mappings_dir: PathBuf,
    pub regions_file: PathBuf,
    pub data_dir: PathBuf,
    pub pki_dir: PathBuf,
}

impl Config {
    /// Reads `kopplung.toml` and its routing table and checks every section of both;
    /// the error names every problem found, each with its file and key.
    pub fn load(path: &Path, data_dir: &Path) -> Result<Self, Error> {
        // Without the main file nothing else can be found or checked.
        let file: FileConfig =
            read_toml(path).map_err(|problem| Error::Invalid(Problems::new(vec![problem])))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let routing_path = base.join(&file.routing);
        let mut problems: Vec<Problem> = file.check().in_file(path).collect();
        let routing = match read_toml::<RoutingFile>(&routing_path) {
            Ok(routing) => {
                problems.extend(routing.check(&file).in_file(&routing_path));
                // The FIT-Connect clients are kopplung.toml's; the routing table has
                // the destinations they name.
                if let Some(fitconnect) = &file.fitconnect {
                    let mut theirs = Findings::default();
                    fitconnect.check_destinations(&routing.destination_ids(), &mut theirs);
                    problems.extend(theirs.in_file(path));
                }
                Some(routing)
            }
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let (Some(routing), true) = (routing, problems.is_empty()) else {
            return Err(Error::Invalid(Problems::new(problems)));
        };
        Ok(Self {
            source: path.to_owned(),
            mappings_dir: base.join(&file.mappings),
            regions_file: base.join(&file.regions),
            pki_dir: data_dir.join(&file.pki_dir),
            data_dir: data_dir.to_owned(),
            file,
            routing,
        })
    }

    /// What bounds `[delivery] lease_secs` from below (see [`LeaseFloor`]).
    pub fn lease_floor(&self) -> Option<LeaseFloor> {
        delivery::lease_floor(self.file.amqp.as_ref(), &self.routing.procedures)
    }

    pub fn procedure(&self, id: &str) -> Option<&ProcedureConfig> {
        self.routing.procedures.iter().find(|p| p.id.as_str() == id)
    }

    pub fn authority(&self, id: &str) -> Option<&Authority> {
        self.routing.authorities.iter().find(|a| a.id == id)
    }
}

impl FileConfig {
    /// Every section of `kopplung.toml`.
    fn check(&self) -> Findings {
        let mut findings = Findings::default();
        self.server.check(&mut findings);
        self.limits.check(&mut findings);
        self.monitoring.check(&self.server, &mut findings);
        self.hub.check(&mut findings);
        if let Some(store) = &self.store {
            store.check(&mut findings);
        }
        self.delivery.check(&mut findings);
        if let Some(broker) = &self.amqp {
            delivery::check_broker(broker, self.delivery.lease(), &mut findings);
        }
        if let Some(signing) = &self.signing {
            signing.check(&mut findings);
        }
        if let Some(admin) = &self.admin {
            admin.check(&mut findings);
        }
        access::check_clients(&self.clients, &mut findings);
        identity::check_identity_providers(&self.identity_providers, &mut findings);
        access::check_clerks(&self.clerks, &mut findings);
        if let Some(retention) = &self.retention {
            retention.check(&mut findings);
        }
        self.audit.check(&mut findings);
        if let Some(fitconnect) = &self.fitconnect {
            fitconnect.check(&mut findings);
            // One id, one client: the applications a client submitted are found by it.
            for client in &fitconnect.clients {
                if self.clients.iter().any(|c| c.id == client.id) {
                    findings.entry(
                        "fitconnect.client",
                        &client.id,
                        "id",
                        "a [[client]] of the hub's API has this id; give the FIT-Connect client an id of its own",
                    );
                }
            }
        }
        findings
    }
}

impl RoutingFile {
    /// Every section of the routing table, against what `kopplung.toml` offers it.
    fn check(&self, main: &FileConfig) -> Findings {
        // The clerks' problems are `kopplung.toml`'s; here only their ids count.
        let clerks = access::check_clerks(&main.clerks, &mut Findings::default());
        let transports = CheckContext {
            broker: main.amqp.as_ref(),
            lease: main.delivery.lease(),
            clerks: &clerks,
        };
        let mut findings = Findings::default();
        let authorities = authorities::check_authorities(&self.authorities, &mut findings);
        let procedures = procedures::check_procedures(
            &self.procedures,
            &authorities,
            &transports,
            &mut findings,
        );
        routes::check_routes(&self.routes, &procedures, &mut findings);
        self.check_destinations(main, &mut findings);
        findings
    }

    /// The FIT-Connect destinations of the procedures.
    fn destination_ids(&self) -> std::collections::BTreeSet<uuid::Uuid> {
        self.procedures
            .iter()
            .filter_map(|p| p.fitconnect.as_ref().map(|d| d.destination))
            .collect()
    }

    /// Each FIT-Connect destination once, and only with `[fitconnect]`.
    fn check_destinations(&self, main: &FileConfig, findings: &mut Findings) {
        let mut known = std::collections::BTreeSet::new();
        for procedure in &self.procedures {
            let Some(destination) = &procedure.fitconnect else {
                if matches!(procedure.delivery, DeliveryConfig::FitConnect(_)) {
                    findings.entry(
                        "procedure",
                        procedure.id.as_str(),
                        "fitconnect",
                        "a procedure that collects as a FIT-Connect subscriber needs [procedure.fitconnect] with its destination",
                    );
                }
                continue;
            };
            if !known.insert(destination.destination) {
                findings.entry(
                    "procedure",
                    procedure.id.as_str(),
                    "fitconnect.destination",
                    "another procedure has this destination",
                );
            }
            if main.fitconnect.is_none() {
                findings.entry(
                    "procedure",
                    procedure.id.as_str(),
                    "fitconnect",
                    "a FIT-Connect destination needs [fitconnect] in kopplung.toml",
                );
            }
        }
    }
}
