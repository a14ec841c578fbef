//! The hub's context: what the core's services, the pipeline and every edge (the API,
//! the admin console, the clerk inbox, the AMQP reply consumers) live off. Nothing here
//! is HTTP: what only the API needs (its clients, limits) stays in `api::ApiState`.

use std::sync::Arc;

use kopplung_core::conversation::Conversation;
use kopplung_core::events::{EventLimits, Events};
use kopplung_core::intake::{IdentityVerifier, Intake, Municipalities};
use kopplung_core::oversight::{
    CertificateStatus, Destination, InForce, MappingStatus, Oversight, ReceiptDeadlines,
};
use kopplung_core::{Ars, Clock};
use kopplung_pipeline::{Keyring, Observer, Preparer, Wakeup};

use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::regions::Regions;
use crate::store::Store;
use crate::topology::Topologies;

/// The hub's context.
pub struct Hub {
    pub catalog: Arc<Catalog>,
    /// The routing table in force: routes, destinations, procedures' tokens, authorities.
    pub topology: Arc<Topologies>,
    pub regions: Arc<Regions>,
    pub store: Arc<dyn Store>,
    /// Wall time for everything stored and shown.
    pub clock: Arc<dyn Clock>,
    /// The keys and certificates in force.
    pub keyring: Arc<Keyring>,
    /// Renders (and seals) messages; the console and inbox show what it renders.
    pub preparer: Arc<Preparer>,
    pub metrics: Arc<Metrics>,
    /// Wakes the outbox after a commit.
    pub wake: Arc<Wakeup>,
    /// Base of links to the hub, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    pub intake: Intake,
    pub events: Arc<Events>,
    pub oversight: Oversight,
    /// The citizen's follow-up messages: answers, documents, objections.
    pub conversation: Conversation,
}

/// What a [`Hub`] is made of.
pub struct HubParts {
    pub catalog: Arc<Catalog>,
    pub topology: Arc<Topologies>,
    pub regions: Arc<Regions>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub preparer: Arc<Preparer>,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Wakeup>,
    pub public_url: String,
    pub event_limits: EventLimits,
    /// Verifies the identity providers' assertions at intake.
    pub identity: Arc<dyn IdentityVerifier>,
    pub receipt_deadlines: ReceiptDeadlines,
    /// The outbox's prepare slots, which sealing at intake shares.
    pub prepare_slots: Arc<tokio::sync::Semaphore>,
}

impl Hub {
    /// The services over the parts.
    pub fn new(parts: HubParts) -> Self {
        let HubParts {
            catalog,
            topology,
            regions,
            store,
            clock,
            preparer,
            metrics,
            wake,
            public_url,
            event_limits,
            identity,
            receipt_deadlines,
            prepare_slots,
        } = parts;
        let keyring = preparer.keyring().clone();
        let intake = Intake {
            store: store.clone(),
            catalog: catalog.clone(),
            routes: topology.clone(),
            municipalities: regions.clone(),
            clock: clock.clone(),
            wake: wake.clone(),
            identity,
            seal_ahead: Some(Arc::new(kopplung_pipeline::Ahead {
                preparer: preparer.clone(),
                slots: prepare_slots,
                observer: metrics.clone(),
            })),
        };
        let events = Arc::new(Events {
            store: store.clone(),
            applications: store.clone(),
            rules: catalog.clone(),
            verifier: keyring.clone(),
            clock: clock.clone(),
            limits: event_limits,
        });
        let in_force = Arc::new(InForceNow {
            catalog: catalog.clone(),
            topology: topology.clone(),
            keyring: keyring.clone(),
        });
        let oversight = Oversight {
            store: store.clone(),
            renderer: preparer.clone(),
            in_force,
            wake: wake.clone(),
            clock: clock.clone(),
            receipt_deadlines,
        };
        let conversation = Conversation {
            store: store.clone(),
            events: store.clone(),
            catalog: catalog.clone(),
            clock: clock.clone(),
            wake: wake.clone(),
            accounting: topology.clone(),
        };
        Self {
            conversation,
            catalog,
            topology,
            regions,
            store,
            clock,
            keyring,
            preparer,
            metrics,
            wake,
            public_url,
            intake,
            events,
            oversight,
        }
    }
}

impl Municipalities for Regions {
    fn knows(&self, region: &Ars) -> bool {
        self.name(region.as_str()).is_some()
    }
}

/// What the status report reads as in force.
struct InForceNow {
    catalog: Arc<Catalog>,
    topology: Arc<Topologies>,
    keyring: Arc<Keyring>,
}

impl InForce for InForceNow {
    fn mappings(&self) -> Vec<MappingStatus> {
        let topology = self.topology.now();
        self.catalog
            .current()
            .values()
            .map(|m| MappingStatus {
                service: m.info.key.clone(),
                name: m.info.name.clone(),
                message_type: m.info.message.message_type.clone(),
                online: topology.routing.serves(&m.info.key),
            })
            .collect()
    }

    fn certificates(&self) -> Vec<CertificateStatus> {
        let stages = self.keyring.certificate_stages();
        self.keyring
            .certificate_expiries()
            .into_iter()
            .map(|(owner, certificate, days_left)| CertificateStatus {
                stage: stages.get(&(owner.clone(), certificate.clone())).copied(),
                owner,
                certificate,
                days_left,
            })
            .collect()
    }

    fn destinations(&self) -> Vec<Destination> {
        self.topology
            .now()
            .destinations
            .iter()
            .map(|(id, d)| Destination {
                procedure: id.clone(),
                transport: d.transport,
                destination: d.destination.clone(),
            })
            .collect()
    }

    fn problems(&self) -> Vec<String> {
        self.keyring.problems()
    }
}

/// The pipeline's observations become the router's metrics.
impl Observer for Metrics {
    fn delivery(&self, procedure: &str, transport: &str, outcome: &str) {
        self.deliveries
            .with_label_values(&[procedure, transport, outcome])
            .inc();
        if outcome == "dead_lettered" {
            self.dead_letters.with_label_values(&[procedure]).inc();
        }
    }

    fn prepare_stage(&self, stage: &str, seconds: f64) {
        self.prepare_seconds
            .with_label_values(&[stage])
            .observe(seconds);
    }

    fn delivery_attempt(&self, transport: &str, seconds: f64) {
        self.delivery_seconds
            .with_label_values(&[transport])
            .observe(seconds);
    }

    fn submit_to_delivered(&self, procedure: &str, seconds: f64) {
        self.submit_to_delivered_seconds
            .with_label_values(&[procedure])
            .observe(seconds);
    }

    fn taken_over(&self, entries: u64) {
        self.outbox_taken_over.inc_by(entries);
    }

    fn sealed_at_intake(&self, sealed: bool) {
        let outcome = if sealed { "sealed" } else { "deferred" };
        self.sealed_at_intake.with_label_values(&[outcome]).inc();
    }

    fn answer_receipt(&self, procedure: &str, outcome: &str) {
        self.answer_receipts
            .with_label_values(&[procedure, outcome])
            .inc();
    }
}
