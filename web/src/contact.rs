//! An office's public contact details, as the Behördenkatalog shows them: given in the
//! hub's routing table (`[[authority]]`), served by its directory API and shown by the
//! portal. One type for all three, so the keys cannot drift apart.

use serde::{Deserialize, Serialize};

/// Flattened into whatever describes the office, so its keys stand beside the office's
/// own (`id`, `name`); every one is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub address: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    /// Opening hours, one line per entry (e.g. `Mo, Mi 9–12 Uhr`).
    pub opening_hours: Vec<String>,
}
