//! The services the hub offers: the loaded mappings, swapped whole on reload.
//!
//! Readers take a snapshot (`Catalog::current`) and keep it for the whole request or
//! message, so nothing is ever validated or rendered with half old, half new mappings.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kopplung_transformers::Mapping;

use crate::Error;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::regions::Regions;

pub type Mappings = Arc<BTreeMap<String, Mapping>>;

/// The name to show for a service: its mapping's name, or the key itself if no mapping
/// has it (any more).
pub fn service_name(mappings: &Mappings, key: &str) -> String {
    mappings
        .get(key)
        .map_or_else(|| key.to_owned(), |m| m.info.name.clone())
}

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

    fn replace(&self, mappings: Mappings) {
        match self.current.write() {
            Ok(mut guard) => *guard = mappings,
            Err(poisoned) => *poisoned.into_inner() = mappings,
        }
    }

    /// Loads the mappings again and switches to them if they are complete and valid;
    /// otherwise keeps the current ones and returns why.
    pub fn reload(
        &self,
        config: &Config,
        regions: &Regions,
        metrics: &Metrics,
    ) -> Result<usize, Error> {
        let outcome = load_checked(config, regions);
        match outcome {
            Ok(mappings) => {
                let count = mappings.len();
                self.replace(Arc::new(mappings));
                metrics
                    .mapping_reloads
                    .with_label_values(&["applied"])
                    .inc();
                Ok(count)
            }
            Err(e) => {
                metrics
                    .mapping_reloads
                    .with_label_values(&["refused"])
                    .inc();
                Err(e)
            }
        }
    }
}

/// Loads every mapping and checks that each routed service still has one.
pub fn load_checked(
    config: &Config,
    regions: &Regions,
) -> Result<BTreeMap<String, Mapping>, Error> {
    let env =
        kopplung_transformers::mapping::MappingEnv::load(&config.mappings_dir, regions.names())?;
    let mappings = kopplung_transformers::mapping::load_all(&config.mappings_dir, &env)?;
    for route in &config.routing.routes {
        if !mappings.contains_key(route.service.as_str()) {
            return Err(Error::Config {
                file: config.mappings_dir.clone(),
                message: format!(
                    "route {} / {} names service {}, which has no mapping",
                    route.service, route.region, route.service
                ),
            });
        }
    }
    Ok(mappings)
}
