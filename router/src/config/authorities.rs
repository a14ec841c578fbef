//! `[[authority]]` of the routing table: the authorities procedures belong to.

use std::collections::BTreeSet;

use kopplung_web::contact::Contact;
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
    #[serde(flatten)]
    pub contact: Contact,
}

/// Checks the authorities; returns their ids.
pub(super) fn check_authorities<'a>(
    authorities: &'a [Authority],
    findings: &mut Findings,
) -> BTreeSet<&'a str> {
    let ids = findings.ids("authority", authorities, |a| &a.id);
    for authority in authorities {
        if authority.kennung.trim().is_empty() {
            // Every message names its reader (`leser`) by this.
            findings.entry("authority", &authority.id, "kennung", "must not be empty");
        }
    }
    ids
}
