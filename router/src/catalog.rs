//! The services the hub offers: the loaded mappings, swapped whole on reload.
//!
//! Readers take a snapshot (`Catalog::current`) and keep it for the whole request or
//! message, so nothing is ever validated or rendered with half old, half new mappings.

use std::collections::BTreeMap;
use std::sync::Arc;

use kopplung_transformers::Mapping;

use crate::Error;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::regions::Regions;
use crate::routing::RoutingTable;

pub use kopplung_pipeline::catalog::{Catalog, Mappings};

/// The name to show for a service: its mapping's name, or the key itself if no mapping
/// has it (any more).
pub fn service_name(mappings: &Mappings, key: &str) -> String {
    mappings
        .get(key)
        .map_or_else(|| key.to_owned(), |m| m.info.name.clone())
}

/// Loads the mappings again and puts them in force if they are complete and valid;
/// otherwise keeps the current ones and returns why.
pub fn reload(
    catalog: &Catalog,
    config: &Config,
    regions: &Regions,
    metrics: &Metrics,
) -> Result<usize, Error> {
    match load_checked(config, regions) {
        Ok(mappings) => {
            let count = mappings.len();
            catalog.replace(Arc::new(mappings));
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

/// Loads every mapping, runs each one's lint and fixtures, and checks that each routed
/// service still has one.
pub fn load_checked(
    config: &Config,
    regions: &Regions,
) -> Result<BTreeMap<String, Mapping>, Error> {
    let env =
        kopplung_transformers::mapping::MappingEnv::load(&config.mappings_dir, regions.names())?;
    let mappings = kopplung_transformers::mapping::load_all(&config.mappings_dir, &env)?;
    let problems: Vec<String> = mappings
        .values()
        .flat_map(kopplung_transformers::verify::problems)
        .collect();
    if !problems.is_empty() {
        return Err(Error::Mappings(problems));
    }
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

/// Every municipality a service claims (`available_in` of its `service.toml`) must have
/// a route: otherwise a citizen there would be told "online" and then refused.
pub fn check_coverage(
    config: &Config,
    catalog: &Catalog,
    regions: &Regions,
    routing: &RoutingTable,
) -> Result<(), Error> {
    for mapping in catalog.current().values() {
        let info = &mapping.info;
        let uncovered: Vec<String> = regions
            .iter()
            .filter(|(ars, _)| {
                info.available_in
                    .iter()
                    .any(|p| ars.starts_with(p.as_str()))
            })
            .filter(|(ars, _)| routing.resolve(&info.key, ars).is_none())
            .map(|(ars, name)| format!("{name} ({ars})"))
            .collect();
        if uncovered.is_empty() {
            continue;
        }
        let shown = uncovered
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = uncovered.len().saturating_sub(5);
        return Err(Error::Config {
            file: mapping.folder.join("service.toml"),
            message: format!(
                "available_in: service {} ({}) claims {} municipalit{} without a route in {}: {shown}{}",
                info.key,
                info.name,
                uncovered.len(),
                if uncovered.len() == 1 { "y" } else { "ies" },
                config.source.with_file_name(&config.file.routing).display(),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        });
    }
    Ok(())
}
