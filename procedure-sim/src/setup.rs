//! What a simulated procedure knows, read from the routing table (its `[procedure.delivery]`
//! parsed by the hub's own list of transports), the PKI folder and the data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kopplung_adapters::registry::{ApiToken, DeliveryConfig};
use kopplung_transformers::follow_up;
use kopplung_transformers::seal::{TrustAnchors, load_certificate, load_private_key};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Deserialize;

use crate::outbox::Outbox;
use crate::{Error, SimConfig};

#[derive(Deserialize)]
struct RoutingFile {
    #[serde(default, rename = "procedure")]
    procedures: Vec<ProcedureEntry>,
}

#[derive(Deserialize)]
struct ProcedureEntry {
    id: String,
    /// Absent for `manual` procedures, which the simulator does not play.
    #[serde(default)]
    envelope: String,
    delivery: DeliveryConfig,
    /// Its encryption certificates as the hub has them (relative to the PKI folder);
    /// the key of each is the file beside it ending in `.key`, where the vendor has it.
    #[serde(default)]
    certificate: Option<PathBuf>,
    #[serde(default)]
    certificates: Vec<PathBuf>,
    /// The next one of a staged rotation: decrypting with it must work before the
    /// operator tells the hub to seal for it.
    #[serde(default)]
    certificate_next: Option<PathBuf>,
    /// Its receipt signing certificates; it signs with the next one once the operator
    /// lists it (the hub accepts both then) and its key lies beside it.
    #[serde(default)]
    receipt_certificate: Option<PathBuf>,
    #[serde(default)]
    receipt_certificate_next: Option<PathBuf>,
    /// The procedure's token for the hub's API (claim-check downloads); a pull
    /// procedure's is in `[delivery]`. Only a `token_file` can be played.
    #[serde(flatten)]
    token: ApiToken,
}

#[derive(Deserialize)]
struct ServiceEntry {
    message: MessageEntry,
}

#[derive(Deserialize)]
struct MessageEntry {
    #[serde(rename = "type")]
    message_type: String,
    #[serde(default)]
    schema: Option<String>,
}

/// One simulated procedure with its keys.
pub(crate) struct Procedure {
    pub id: String,
    /// How it receives its messages: `amqp`, `http` or `pull` (see [`load`]).
    pub delivery: DeliveryConfig,
    pub jose: bool,
    /// The keys it decrypts with: several during a rotation of its certificate,
    /// read again on SIGHUP.
    keys: RwLock<Arc<Vec<KeyPair>>>,
    /// The key it signs its receipts and events with, read again on SIGHUP.
    signer: RwLock<Arc<KeyPair>>,
    /// Bearer token for the hub's API: pull, and attachments fetched by claim check.
    pub api_token: Option<String>,
    /// A `file` procedure's exchange folders: where the hub's messages arrive and where
    /// its answers go.
    pub folders: Option<Folders>,
}

/// The two folders of a `file` procedure's exchange folder.
#[derive(Debug, Clone)]
pub(crate) struct Folders {
    pub outgoing: PathBuf,
    pub incoming: PathBuf,
}

/// A certificate and its key: one the procedure receives for, or signs with.
pub(crate) struct KeyPair {
    pub cert: X509,
    pub key: PKey<Private>,
    /// The key's file, for the log.
    pub key_file: PathBuf,
}

impl Procedure {
    /// The keys in force, the newest certificate first.
    pub fn keys(&self) -> Arc<Vec<KeyPair>> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The signing key in force.
    pub fn signer(&self) -> Arc<KeyPair> {
        match self.signer.read() {
            Ok(signer) => signer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_keys(&self, keys: Vec<KeyPair>, signer: KeyPair) {
        match self.keys.write() {
            Ok(mut guard) => *guard = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        match self.signer.write() {
            Ok(mut guard) => *guard = Arc::new(signer),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(signer),
        }
    }
}

/// Whom the procedure believes: the hub's signing certificates (several during a
/// rotation of the hub's key) and the CA they chain to; read again on SIGHUP.
pub(crate) struct Trust {
    pub hub_certs: Vec<X509>,
    pub anchors: TrustAnchors,
}

/// Everything every procedure shares.
pub(crate) struct Shared {
    trust: RwLock<Arc<Trust>>,
    pub schemas: BTreeMap<String, PathBuf>,
    /// The hub's instances, tried in this order.
    pub hubs: Vec<String>,
    pub http: reqwest::Client,
    pub outbox: Outbox,
    pub decision_delay: Option<Duration>,
    /// The procedures that ask a question before they decide.
    pub ask_first: Vec<String>,
    /// Writes the decisions' PDF/A; none when the procedures do not decide.
    pub bescheid: Option<crate::bescheid::Writer>,
}

pub(crate) fn config_error(file: &Path, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// Message type -> schema file, from the mapping folders.
fn schemas(mappings: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(mappings).map_err(|e| config_error(mappings, e.to_string()))?;
    for entry in entries.flatten() {
        let service = entry.path().join("service.toml");
        let Ok(text) = std::fs::read_to_string(&service) else {
            continue;
        };
        let parsed: ServiceEntry =
            toml::from_str(&text).map_err(|e| config_error(&service, e.to_string()))?;
        let schema = parsed
            .message
            .schema
            .unwrap_or_else(|| "nachricht.xsd".into());
        // The service's follow-up messages share one schema (`<family>.antwort.0201`, …).
        let follow_ups = mappings.join(follow_up::SCHEMA);
        if follow_ups.is_file() {
            let family = parsed
                .message
                .message_type
                .split('.')
                .next()
                .unwrap_or_default();
            for (_, element) in follow_up::ELEMENTS {
                out.insert(format!("{family}.{element}"), follow_ups.clone());
            }
        }
        out.insert(parsed.message.message_type, entry.path().join(schema));
    }
    Ok(out)
}

fn read_token(path: &Path) -> Result<String, Error> {
    let token = std::fs::read_to_string(path).map_err(|e| config_error(path, e.to_string()))?;
    Ok(token.trim().to_owned())
}

impl Shared {
    /// The trust in force.
    pub fn trust(&self) -> Arc<Trust> {
        match self.trust.read() {
            Ok(trust) => trust.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn read_routing(config: &SimConfig) -> Result<RoutingFile, Error> {
    let text = std::fs::read_to_string(&config.routing)
        .map_err(|e| config_error(&config.routing, e.to_string()))?;
    toml::from_str(&text).map_err(|e| config_error(&config.routing, e.to_string()))
}

/// The hub's certificates the procedure trusts (every one in the PEM file) and the CA.
fn load_trust(config: &SimConfig) -> Result<Trust, Error> {
    let file = &config.hub_certificates;
    let pem = std::fs::read(file).map_err(|e| config_error(file, e.to_string()))?;
    let hub_certs = X509::stack_from_pem(&pem)
        .map_err(|e| config_error(file, format!("not PEM certificates: {e}")))?;
    if hub_certs.is_empty() {
        return Err(config_error(file, "holds no certificate"));
    }
    Ok(Trust {
        hub_certs,
        anchors: TrustAnchors::load(&config.pki_dir.join("ca.crt"))?,
    })
}

/// The procedure's decryption keys: each certificate of its routing entry whose key
/// lies beside it (`.key`), the next one first; `procedures/<id>.crt` and `.key` if
/// none has. A vendor that retires its old key takes it out of the entry.
fn load_keys(pki: &Path, entry: &ProcedureEntry) -> Result<Vec<KeyPair>, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    for file in entry
        .certificate_next
        .iter()
        .chain(entry.certificates.iter().rev())
        .chain(entry.certificate.iter())
    {
        let path = pki.join(file);
        if path.with_extension("key").is_file() && !files.contains(&path) {
            files.push(path);
        } else if entry.certificate_next.as_ref() == Some(file) {
            // Listed by the operator, but the vendor has not installed its key: what
            // the hub seals for it once activated cannot be opened.
            tracing::warn!(procedure = %entry.id, certificate_next = %path.display(), missing_key = %path.with_extension("key").display(), "next certificate listed, but no key beside it: messages sealed for it cannot be opened");
        }
    }
    if files.is_empty() {
        files.push(pki.join("procedures").join(format!("{}.crt", entry.id)));
    }
    files
        .into_iter()
        .map(|cert| {
            let key_file = cert.with_extension("key");
            Ok(KeyPair {
                key: load_private_key(&key_file)?,
                cert: load_certificate(&cert)?,
                key_file,
            })
        })
        .collect()
}

/// The key the procedure signs with: the routing entry's next receipt certificate, or
/// its receipt certificate, whose key lies beside it; `procedures/<id>-signatur.crt`
/// and `.key` otherwise.
fn load_signer(pki: &Path, entry: &ProcedureEntry) -> Result<KeyPair, Error> {
    let cert = entry
        .receipt_certificate_next
        .iter()
        .chain(entry.receipt_certificate.iter())
        .map(|file| pki.join(file))
        .find(|path| path.with_extension("key").is_file())
        .unwrap_or_else(|| {
            pki.join("procedures")
                .join(format!("{}-signatur.crt", entry.id))
        });
    let key_file = cert.with_extension("key");
    Ok(KeyPair {
        key: load_private_key(&key_file)?,
        cert: load_certificate(&cert)?,
        key_file,
    })
}

/// Reads the trust and every played procedure's keys again (SIGHUP): a rotation of the
/// hub's key or of a procedure's certificate. On an error what was in force stays.
pub(crate) fn reload(
    config: &SimConfig,
    procedures: &[Arc<Procedure>],
    shared: &Shared,
) -> Result<(), Error> {
    let trust = load_trust(config)?;
    let routing = read_routing(config)?;
    let mut fresh = Vec::new();
    for procedure in procedures {
        if let Some(entry) = routing.procedures.iter().find(|e| e.id == procedure.id) {
            let keys = load_keys(&config.pki_dir, entry)?;
            // The next certificate's key, if installed (`load_keys` puts it first).
            let next = entry
                .certificate_next
                .as_ref()
                .map(|file| config.pki_dir.join(file).with_extension("key"))
                .filter(|key| keys.iter().any(|k| &k.key_file == key));
            fresh.push((procedure, keys, next, load_signer(&config.pki_dir, entry)?));
        }
    }
    for (procedure, keys, next, signer) in fresh {
        let next_key = next.map_or_else(|| "none".to_owned(), |k| k.display().to_string());
        tracing::info!(procedure = %procedure.id, decryption_keys = keys.len(), %next_key, signing_key = %signer.key_file.display(), "keys reloaded");
        procedure.set_keys(keys, signer);
    }
    match shared.trust.write() {
        Ok(mut guard) => *guard = Arc::new(trust),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(trust),
    }
    Ok(())
}

pub(crate) fn load(config: &SimConfig) -> Result<(Vec<Procedure>, Shared), Error> {
    let routing = read_routing(config)?;
    if config.hub_urls.is_empty() {
        return Err(config_error(
            &config.routing,
            "no hub URL: answers would have nowhere to go",
        ));
    }
    let pki = &config.pki_dir;
    let mut procedures = Vec::new();
    for entry in routing.procedures {
        if !config.only.is_empty() && !config.only.contains(&entry.id) {
            continue;
        }
        let pull_token = match &entry.delivery {
            DeliveryConfig::Amqp(_) => None,
            DeliveryConfig::Http(http) => {
                if listen_address(&http.url).is_none() {
                    return Err(config_error(
                        &config.routing,
                        format!(
                            "procedure {}: url `{}` is no http://host:port/path",
                            entry.id, http.url
                        ),
                    ));
                }
                None
            }
            DeliveryConfig::Pull(pull) => {
                let Some(file) = &pull.token.file else {
                    // Only its hash is in the configuration: the simulator cannot play it.
                    tracing::warn!(procedure = %entry.id, "pull procedure without token_file: not simulated");
                    continue;
                };
                Some(read_token(&config.data_dir.join(file))?)
            }
            DeliveryConfig::File(_) => None,
            // No interface: a clerk reads it in the hub's clerk inbox.
            DeliveryConfig::Manual(_) => continue,
            // A FIT-Connect subscriber collects with FIT-Connect's own tools
            // (docs/fit-connect.md), not with the reference procedure.
            DeliveryConfig::FitConnect(_) => continue,
        };
        let folders = match &entry.delivery {
            DeliveryConfig::File(file) => Some(Folders {
                outgoing: file.outgoing_dir(&config.data_dir),
                incoming: file.incoming_dir(&config.data_dir),
            }),
            _ => None,
        };
        let api_token = match (pull_token, &entry.token.file) {
            (Some(token), _) => Some(token),
            (None, Some(file)) => Some(read_token(&config.data_dir.join(file))?),
            (None, None) => None,
        };
        let keys = load_keys(pki, &entry)?;
        let signer = load_signer(pki, &entry)?;
        procedures.push(Procedure {
            api_token,
            folders,
            delivery: entry.delivery,
            jose: entry.envelope == "jose",
            keys: RwLock::new(Arc::new(keys)),
            signer: RwLock::new(Arc::new(signer)),
            id: entry.id,
        });
    }
    let shared = Shared {
        trust: RwLock::new(Arc::new(load_trust(config)?)),
        schemas: schemas(&config.mappings)?,
        hubs: config
            .hub_urls
            .iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect(),
        // A dead instance refuses at once; one that does not answer at all must not
        // hold the procedure longer than this before the next is tried.
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| config_error(&config.routing, format!("HTTP client: {e}")))?,
        outbox: Outbox::open(&config.state_dir)?,
        decision_delay: config.decision_delay,
        ask_first: config.ask_first.clone(),
        bescheid: match config.decision_delay {
            Some(_) => {
                let font = Path::new(crate::bescheid::FONT);
                Some(crate::bescheid::Writer::load(font).map_err(|e| config_error(font, e))?)
            }
            None => None,
        },
    };
    Ok((procedures, shared))
}

/// `http://127.0.0.1:9101/eingang` → the address to listen on and the path.
pub(crate) fn listen_address(url: &str) -> Option<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let listen = authority.parse().ok()?;
    Some((listen, format!("/{path}")))
}
