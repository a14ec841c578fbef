//! The FIT-Connect destinations of the routing table: each procedure offered with
//! `[procedure.fitconnect]`, the key the hub holds for it, and a subscriber's key.
//! Loaded with the topology, so that a reload swaps them with the routing table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kopplung_transformers::fitconnect::DestinationKey;
use uuid::Uuid;

use crate::Error;
use crate::config::Config;

/// A procedure offered as a FIT-Connect destination, with the key the hub holds for it.
#[derive(Debug, Clone)]
pub struct FitDestination {
    pub procedure: String,
    pub key: Arc<DestinationKey>,
    /// For a procedure that collects as a FIT-Connect subscriber (`transport =
    /// "fitconnect"`): its public encryption key, for which what it collects is
    /// encrypted.
    pub subscriber: Option<Arc<serde_json::Value>>,
}

/// The destinations of the routing table with their keys: the key and certificate of
/// `[procedure.fitconnect]`, or `fitconnect/<procedure>.key` and `.crt` of the PKI
/// folder; the PKI's `ca.crt`, if there, completes the chain.
pub fn load_destinations(config: &Config) -> Result<BTreeMap<Uuid, FitDestination>, Error> {
    let pki = &config.pki_dir;
    let ca = pki.join("ca.crt");
    let chain: Vec<&std::path::Path> = if ca.is_file() {
        vec![ca.as_path()]
    } else {
        Vec::new()
    };
    let mut destinations = BTreeMap::new();
    for procedure in &config.routing.procedures {
        let Some(offer) = &procedure.fitconnect else {
            continue;
        };
        let id = procedure.id.as_str();
        let path = |given: &Option<PathBuf>, default: &str| {
            pki.join(
                given
                    .clone()
                    .unwrap_or_else(|| format!("fitconnect/{id}.{default}").into()),
            )
        };
        let key = DestinationKey::load(
            &path(&offer.certificate, "crt"),
            &path(&offer.key, "key"),
            &chain,
        )
        .map_err(|e| Error::Config {
            file: config.source.clone(),
            message: format!("[[procedure]] {id}: the FIT-Connect destination's key: {e}"),
        })?;
        let subscriber = match &procedure.delivery {
            kopplung_adapters::registry::DeliveryConfig::FitConnect(settings) => {
                let path = pki.join(&settings.certificate);
                let jwk = kopplung_transformers::TrustAnchors::load(&ca)
                    .and_then(|anchors| {
                        kopplung_transformers::fitconnect::subscriber_jwk(&path, &anchors)
                    })
                    .map_err(|e| Error::Config {
                        file: config.source.clone(),
                        message: format!(
                            "[[procedure]] {id}: [procedure.delivery] certificate: {e}"
                        ),
                    })?;
                Some(Arc::new(jwk))
            }
            _ => None,
        };
        destinations.insert(
            offer.destination,
            FitDestination {
                procedure: id.to_owned(),
                key: Arc::new(key),
                subscriber,
            },
        );
    }
    Ok(destinations)
}
