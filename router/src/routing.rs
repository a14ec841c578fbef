//! Zuständigkeit: which procedure receives a service's applications from a region.

use std::collections::BTreeMap;

use crate::config::RouteConfig;

/// Routes by service key; within a service the longest matching ARS prefix wins.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    // service key -> (region prefix -> procedure id)
    routes: BTreeMap<String, BTreeMap<String, String>>,
}

impl RoutingTable {
    pub fn new(routes: &[RouteConfig]) -> Self {
        let mut table = Self::default();
        for route in routes {
            table
                .routes
                .entry(route.service.to_string())
                .or_default()
                .insert(route.region.to_string(), route.procedure.to_string());
        }
        table
    }

    /// The procedure responsible for `service` in the municipality `ars`, if any.
    pub fn resolve(&self, service: &str, ars: &str) -> Option<&str> {
        let by_region = self.routes.get(service)?;
        (1..=ars.len())
            .rev()
            .find_map(|len| by_region.get(&ars[..len]))
            .map(String::as_str)
    }

    /// The procedures any route of the service leads to.
    pub fn procedures_of(&self, service: &str) -> impl Iterator<Item = &str> {
        self.routes
            .get(service)
            .into_iter()
            .flat_map(|by_region| by_region.values().map(String::as_str))
    }

    /// The services with a route to `procedure`.
    pub fn services_of(&self, procedure: &str) -> Vec<&str> {
        self.routes
            .iter()
            .filter(|(_, by_region)| by_region.values().any(|p| p == procedure))
            .map(|(service, _)| service.as_str())
            .collect()
    }

    /// The region prefixes of the routes of `service` to `procedure`.
    pub fn regions_of(&self, service: &str, procedure: &str) -> Vec<&str> {
        self.routes
            .get(service)
            .into_iter()
            .flat_map(|by_region| by_region.iter())
            .filter(|(_, p)| p.as_str() == procedure)
            .map(|(region, _)| region.as_str())
            .collect()
    }

    /// Whether any route exists for the service.
    pub fn serves(&self, service: &str) -> bool {
        self.routes.contains_key(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(service: &str, region: &str, procedure: &str) -> RouteConfig {
        RouteConfig {
            service: service.parse().unwrap(),
            region: region.parse().unwrap(),
            procedure: procedure.parse().unwrap(),
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let table = RoutingTable::new(&[
            route("99999001000000", "14", "land"),
            route("99999001000000", "14612", "dresden"),
            route("99999001000000", "146120000000", "dresden-altstadt"),
        ]);
        assert_eq!(
            table.resolve("99999001000000", "146120000000"),
            Some("dresden-altstadt")
        );
        assert_eq!(
            table.resolve("99999001000000", "146129999999"),
            Some("dresden")
        );
        assert_eq!(
            table.resolve("99999001000000", "145210010010"),
            Some("land")
        );
        assert_eq!(table.resolve("99999001000000", "091620000000"), None);
        assert_eq!(table.resolve("99115005000000", "146120000000"), None);
    }
}
