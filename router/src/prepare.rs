//! The prepare step: render the application through its service's mapping, check the
//! XML, and seal it for the receiving procedure. Pure work on the transformers.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use kopplung_transformers::mapping::{Anlage, Antrag, Behoerde, MessageContext, Nachricht};
use kopplung_transformers::{Sealer, TrustAnchors};
use openssl::x509::X509;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::catalog::Catalog;
use crate::config::{Authority, Config, HubIdentity};
use crate::regions::Regions;
use crate::store::{PrepareInput, WorkItem};

/// Why a message could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The mapping cannot produce a valid message: an engineer must look; no blind retries.
    #[error("{0}")]
    Invalid(String),
    /// Something an operator can fix (a certificate): try again later.
    #[error("{0}")]
    Blocked(String),
}

struct Recipient {
    certificate: X509,
    leser: Behoerde,
}

/// Everything the prepare step needs, loaded and checked at start-up.
pub struct Preparer {
    catalog: Arc<Catalog>,
    regions: Arc<Regions>,
    sealer: Sealer,
    anchors: TrustAnchors,
    recipients: BTreeMap<String, Recipient>,
    autor: Behoerde,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").finish_non_exhaustive()
    }
}

fn behoerde_of_hub(hub: &HubIdentity) -> Behoerde {
    Behoerde {
        verzeichnisdienst: hub.verzeichnisdienst.clone(),
        verzeichnisdienst_list_version: hub.verzeichnisdienst_list_version.clone(),
        kennung: hub.kennung.clone(),
        name: hub.name.clone(),
    }
}

fn behoerde_of(authority: &Authority) -> Behoerde {
    Behoerde {
        verzeichnisdienst: authority.verzeichnisdienst.clone(),
        verzeichnisdienst_list_version: authority.verzeichnisdienst_list_version.clone(),
        kennung: authority.kennung.clone(),
        name: authority.name.clone(),
    }
}

impl Preparer {
    /// Loads the hub's signing key, the trust anchors and every procedure's certificate.
    /// A certificate that does not chain to the anchors or has expired stops start-up.
    pub fn load(
        config: &Config,
        catalog: Arc<Catalog>,
        regions: Arc<Regions>,
    ) -> Result<Self, crate::Error> {
        let pki = kopplung_transformers::pki::PkiLayout::new(&config.pki_dir);
        let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key())?;
        let anchors = TrustAnchors::load(&pki.ca_cert())?;
        let mut recipients = BTreeMap::new();
        for procedure in &config.routing.procedures {
            let path = config.pki_dir.join(&procedure.certificate);
            let certificate = kopplung_transformers::seal::load_certificate(&path)?;
            anchors
                .check(&certificate)
                .map_err(|e| crate::Error::Config {
                    file: path.clone(),
                    message: format!("certificate of procedure `{}`: {e}", procedure.id),
                })?;
            let authority =
                config
                    .authority(&procedure.authority)
                    .ok_or_else(|| crate::Error::Config {
                        file: path.clone(),
                        message: format!("unknown authority `{}`", procedure.authority),
                    })?;
            recipients.insert(
                procedure.id.clone(),
                Recipient {
                    certificate,
                    leser: behoerde_of(authority),
                },
            );
        }
        Ok(Self {
            catalog,
            regions,
            sealer,
            anchors,
            recipients,
            autor: behoerde_of_hub(&config.file.hub),
        })
    }

    /// Renders, checks and seals one application's message. Returns the sealed DER.
    pub fn prepare(&self, item: &WorkItem, input: &PrepareInput) -> Result<Vec<u8>, PrepareError> {
        // One snapshot for the whole message: a reload never mixes old and new.
        let mappings = self.catalog.current();
        let mapping = mappings.get(&input.service_key).ok_or_else(|| {
            PrepareError::Invalid(format!("no mapping for service {}", input.service_key))
        })?;
        let recipient = self.recipients.get(&item.procedure_id).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {} is not configured", item.procedure_id))
        })?;
        let data = mapping.form.validate(&input.payload).map_err(|errors| {
            // Field names only: the values are personal data.
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            PrepareError::Invalid(format!(
                "stored data no longer fits the form of service {}: fields {}",
                input.service_key,
                fields.join(", ")
            ))
        })?;
        let info = &mapping.info;
        let context = MessageContext {
            nachricht: Nachricht {
                uuid: item.message_id.to_string(),
                typ: info.message.message_type.clone(),
                typ_list_uri: info.message.list_uri.clone(),
                typ_list_version: info.message.list_version.clone(),
                standard: info.message.standard.clone(),
                version: info.message.version.clone(),
                erstellungszeitpunkt: timestamp(OffsetDateTime::now_utc()),
                produkt: "kopplung".into(),
                produkthersteller: "kopplung".into(),
                produktversion: env!("CARGO_PKG_VERSION").into(),
            },
            leser: recipient.leser.clone(),
            autor: self.autor.clone(),
            antrag: Antrag {
                id: input.id.to_string(),
                antragsnummer: input.receipt.clone(),
                eingangszeitpunkt: timestamp(input.created_at),
                leistung_schluessel: info.key.clone(),
                leistung_name: info.name.clone(),
                gebiet_ars: input.region.clone(),
                gebiet_name: self
                    .regions
                    .name(&input.region)
                    .unwrap_or_default()
                    .to_owned(),
            },
            labels: mapping.labels(&data),
            data,
            anlagen: input
                .attachments
                .iter()
                .map(|a| Anlage {
                    dateiname: a.filename.clone(),
                    media_type: a.media_type.clone(),
                    groesse: a.content.len(),
                    sha512: a.sha512.clone(),
                    inhalt_base64: base64::engine::general_purpose::STANDARD.encode(&a.content),
                })
                .collect(),
            gebuehr: info.fee.clone(),
        };
        let xml = mapping
            .render(&context)
            .map_err(|e| PrepareError::Invalid(e.to_string()))?;
        self.anchors
            .check(&recipient.certificate)
            .map_err(|e| PrepareError::Blocked(e.to_string()))?;
        self.sealer
            .seal(xml.as_bytes(), &recipient.certificate)
            .map_err(|e| PrepareError::Blocked(e.to_string()))
    }
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
