//! The services the hub offers: the loaded mappings, swapped whole on reload.
//!
//! Readers take a snapshot (`Catalog::current`) and keep it for the whole request or
//! message, so nothing is ever validated or rendered with half old, half new mappings.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kopplung_core::ServiceKey;
use kopplung_core::events::{DecisionDocument, DecisionRules};
use kopplung_core::identity::Requirement;
use kopplung_core::intake::{Offer, ServiceCatalog, ServiceSnapshot};
use kopplung_transformers::Mapping;

pub type Mappings = Arc<BTreeMap<String, Mapping>>;

pub struct Catalog {
    current: RwLock<Mappings>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    pub fn new(mappings: Mappings) -> Self {
        Self {
            current: RwLock::new(mappings),
        }
    }

    /// The mappings in force now.
    pub fn current(&self) -> Mappings {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts complete, checked mappings in force.
    pub fn replace(&self, mappings: Mappings) {
        match self.current.write() {
            Ok(mut guard) => *guard = mappings,
            Err(poisoned) => *poisoned.into_inner() = mappings,
        }
    }
}

/// One snapshot of the mappings, as intake sees it.
struct Snapshot(Mappings);

impl ServiceSnapshot for Snapshot {
    fn offer(&self, service: &ServiceKey) -> Option<Offer<'_>> {
        self.0.get(service.as_str()).map(|mapping| Offer {
            form: &mapping.form,
            message_type: &mapping.info.message.message_type,
            requirement: Requirement {
                level: mapping.info.trust_level,
                anonymous: mapping.info.anonymous,
            },
        })
    }
}

impl ServiceCatalog for Catalog {
    fn snapshot(&self) -> Box<dyn ServiceSnapshot> {
        Box::new(Snapshot(self.current()))
    }
}

impl DecisionRules for Catalog {
    fn decision_document(&self, service: &str) -> DecisionDocument {
        self.current()
            .get(service)
            .map_or(DecisionDocument::Any, |m| m.info.decision.document)
    }
}
