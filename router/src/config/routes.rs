//! `[[route]]` of the routing table: which procedure receives a service's applications
//! from a region.

use std::collections::BTreeSet;

use kopplung_core::{ArsPrefix, ProcedureId, ServiceKey};
use serde::Deserialize;

use super::problems::Findings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// LeiKa key of the service.
    pub service: ServiceKey,
    /// ARS or a prefix of it (`14612` = every municipality in Dresden).
    pub region: ArsPrefix,
    pub procedure: ProcedureId,
}

pub(super) fn check_routes(
    routes: &[RouteConfig],
    procedures: &BTreeSet<&str>,
    findings: &mut Findings,
) {
    let mut seen = BTreeSet::new();
    for route in routes {
        let id = format!("{} / {}", route.service, route.region);
        if !procedures.contains(route.procedure.as_str()) {
            findings.entry(
                "route",
                &id,
                "procedure",
                format!("unknown procedure `{}`", route.procedure),
            );
        }
        if !seen.insert((&route.service, &route.region)) {
            findings.list("route", format!("route {id} is defined twice (ambiguous)"));
        }
    }
}
