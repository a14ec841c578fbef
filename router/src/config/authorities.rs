//! `[[authority]]` of the routing table: the authorities procedures belong to.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::hub::{default_directory, default_directory_version};
use super::problems::Findings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    pub id: String,
    pub name: String,
    /// Identifier in the directory service (DVDV).
    pub kennung: String,
    #[serde(default = "default_directory")]
    pub verzeichnisdienst: String,
    #[serde(default = "default_directory_version")]
    pub verzeichnisdienst_list_version: String,
    /// What the portal's Behördenkatalog shows (all optional, public information).
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// Opening hours, one line per entry (e.g. `Mo, Mi 9–12 Uhr`).
    #[serde(default)]
    pub opening_hours: Vec<String>,
}

/// Checks the authorities; returns their ids.
pub(super) fn check_authorities<'a>(
    authorities: &'a [Authority],
    findings: &mut Findings,
) -> BTreeSet<&'a str> {
    let mut ids = BTreeSet::new();
    for authority in authorities {
        if !ids.insert(authority.id.as_str()) {
            findings.list(
                "authority",
                format!("authority `{}` is defined twice", authority.id),
            );
        }
        if authority.kennung.trim().is_empty() {
            // Every message names its reader (`leser`) by this.
            findings.entry("authority", &authority.id, "kennung", "must not be empty");
        }
    }
    ids
}
