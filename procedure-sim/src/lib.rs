//! A reference specialist procedure (Fachverfahren) for demos and for vendors to read:
//! it receives its messages the way its transport says — consumes its RabbitMQ queue,
//! answers the hub's HTTP POSTs, or polls the pull API —, opens each message exactly as
//! `docs/vendors.md` describes (decrypt, verify the hub's signature, validate the XML
//! against its schema), and answers with a signed receipt — accept, or reject with a
//! problem — and, later, a decision with a generated document.
//!
//! It knows only what a vendor knows: its procedure id, transport (queue, URL or pull
//! token), envelope profile, its keys, the hub's CA and certificate, and the hub's URL.
//! It reads those from the routing table, the PKI folder and the data directory for
//! convenience, not from the hub's internals.
#![forbid(unsafe_code)]

mod bescheid;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kopplung_transformers::receipt::{self, Receipt, ReceiptEvent, ReceiptProblem};
use kopplung_transformers::seal::{TrustAnchors, load_certificate, load_private_key};
use kopplung_transformers::{jose, schema, seal};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Deserialize;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    #[error(transparent)]
    Transform(#[from] kopplung_transformers::Error),
}

/// What the simulator needs to know.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The hub's routing table (procedures with queue, envelope, certificates).
    pub routing: PathBuf,
    /// The PKI folder with the procedures' keys, `ca.crt` and `hub.crt`.
    pub pki_dir: PathBuf,
    /// The hub's data directory: pull procedures' `token_file`s are relative to it.
    pub data_dir: PathBuf,
    /// The mapping folders, to find each message type's schema.
    pub mappings: PathBuf,
    pub amqp_url: String,
    /// The hub's base URL, e.g. `http://127.0.0.1:8080`.
    pub hub_url: String,
    /// Only these procedures; all that have an interface (amqp, http, pull) if empty.
    pub only: Vec<String>,
    /// How long after the receipt the decision (Bescheid) follows; none if `None`.
    pub decision_delay: Option<Duration>,
}

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
    delivery: DeliveryEntry,
    /// The procedure's token for the hub's API (claim-check downloads), relative to the
    /// data directory; a pull procedure's is in `[delivery]`.
    #[serde(default)]
    token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct DeliveryEntry {
    transport: String,
    queue: Option<String>,
    #[serde(default)]
    reply_queue: Option<String>,
    /// `http`: where the hub POSTs.
    url: Option<String>,
    /// `pull`: the file with the procedure's token, relative to the data directory.
    token_file: Option<PathBuf>,
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

/// How one simulated procedure gets its messages.
enum Transport {
    /// Consumes `queue`; events go back on `reply_queue`, or over HTTP if `None`.
    Amqp {
        queue: String,
        reply_queue: Option<String>,
    },
    /// Listens on `listen` and takes POSTs on `path`; the receipt is the answer's body.
    Http { listen: SocketAddr, path: String },
    /// Polls the pull API with `token`; the receipt goes with the acknowledgement.
    Pull { token: String },
}

/// One simulated procedure with its keys.
struct Procedure {
    id: String,
    transport: Transport,
    jose: bool,
    cert: X509,
    key: PKey<Private>,
    signing_cert: X509,
    signing_key: PKey<Private>,
    /// Bearer token for the hub's API: pull, and attachments fetched by claim check.
    api_token: Option<String>,
}

/// Everything every procedure shares.
struct Shared {
    hub_cert: X509,
    anchors: TrustAnchors,
    schemas: BTreeMap<String, PathBuf>,
    hub_url: String,
    http: reqwest::Client,
    decision_delay: Option<Duration>,
}

fn config_error(file: &Path, message: impl Into<String>) -> Error {
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
        out.insert(parsed.message.message_type, entry.path().join(schema));
    }
    Ok(out)
}

fn load(config: &SimConfig) -> Result<(Vec<Procedure>, Shared), Error> {
    let text = std::fs::read_to_string(&config.routing)
        .map_err(|e| config_error(&config.routing, e.to_string()))?;
    let routing: RoutingFile =
        toml::from_str(&text).map_err(|e| config_error(&config.routing, e.to_string()))?;
    let pki = &config.pki_dir;
    let mut procedures = Vec::new();
    for entry in routing.procedures {
        if !config.only.is_empty() && !config.only.contains(&entry.id) {
            continue;
        }
        let delivery = entry.delivery;
        let transport = match delivery.transport.as_str() {
            "amqp" => match delivery.queue {
                Some(queue) => Transport::Amqp {
                    queue,
                    reply_queue: delivery.reply_queue,
                },
                None => continue,
            },
            "http" => {
                let url = delivery.url.unwrap_or_default();
                let (listen, path) = listen_address(&url).ok_or_else(|| {
                    config_error(
                        &config.routing,
                        format!(
                            "procedure {}: url `{url}` is no http://host:port/path",
                            entry.id
                        ),
                    )
                })?;
                Transport::Http { listen, path }
            }
            "pull" => {
                let Some(file) = delivery.token_file else {
                    // Only its hash is in the configuration: the simulator cannot play it.
                    tracing::warn!(procedure = %entry.id, "pull procedure without token_file: not simulated");
                    continue;
                };
                let path = config.data_dir.join(file);
                let token = std::fs::read_to_string(&path)
                    .map_err(|e| config_error(&path, e.to_string()))?;
                Transport::Pull {
                    token: token.trim().to_owned(),
                }
            }
            // `manual`: no interface; a clerk reads it in the hub's inbox.
            _ => continue,
        };
        let file = |suffix: &str| pki.join("procedures").join(format!("{}{suffix}", entry.id));
        let api_token = match (&transport, &entry.token_file) {
            (Transport::Pull { token }, _) => Some(token.clone()),
            (_, Some(token_file)) => {
                let path = config.data_dir.join(token_file);
                let token = std::fs::read_to_string(&path)
                    .map_err(|e| config_error(&path, e.to_string()))?;
                Some(token.trim().to_owned())
            }
            (_, None) => None,
        };
        procedures.push(Procedure {
            api_token,
            transport,
            jose: entry.envelope == "jose",
            cert: load_certificate(&file(".crt"))?,
            key: load_private_key(&file(".key"))?,
            signing_cert: load_certificate(&file("-signatur.crt"))?,
            signing_key: load_private_key(&file("-signatur.key"))?,
            id: entry.id,
        });
    }
    let shared = Shared {
        hub_cert: load_certificate(&pki.join("hub.crt"))?,
        anchors: TrustAnchors::load(&pki.join("ca.crt"))?,
        schemas: schemas(&config.mappings)?,
        hub_url: config.hub_url.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        decision_delay: config.decision_delay,
    };
    Ok((procedures, shared))
}

/// `http://127.0.0.1:9101/eingang` → the address to listen on and the path.
fn listen_address(url: &str) -> Option<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let listen = authority.parse().ok()?;
    Some((listen, format!("/{path}")))
}

/// Runs all simulated procedures until `shutdown` turns true.
pub async fn run(config: SimConfig, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
    let (procedures, shared) = load(&config)?;
    let shared = Arc::new(shared);
    tracing::info!(
        procedures = procedures.len(),
        "reference procedures started"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for procedure in procedures {
        let procedure = Arc::new(procedure);
        match &procedure.transport {
            Transport::Amqp { .. } => tasks.spawn(consume(
                procedure.clone(),
                shared.clone(),
                config.amqp_url.clone(),
                shutdown.clone(),
            )),
            Transport::Http { .. } => tasks.spawn(serve_http(
                procedure.clone(),
                shared.clone(),
                shutdown.clone(),
            )),
            Transport::Pull { .. } => {
                tasks.spawn(poll(procedure.clone(), shared.clone(), shutdown.clone()))
            }
        };
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Consumes one procedure's queue, reconnecting with a growing pause.
async fn consume(
    procedure: Arc<Procedure>,
    shared: Arc<Shared>,
    amqp_url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let Transport::Amqp { queue, .. } = &procedure.transport else {
        return;
    };
    let mut pause = Duration::from_secs(1);
    while !*shutdown.borrow() {
        let session = async {
            let connection =
                Connection::connect(&amqp_url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            // The hub declares the queue on first delivery; a vendor may start first.
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await?;
            channel.basic_qos(8, BasicQosOptions::default()).await?;
            // Events on the reply queue wait for the broker's confirm.
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    format!("sim-{}", procedure.id).as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery?;
                let property = |value: &Option<lapin::types::ShortString>| {
                    value.as_ref().map(|m| m.to_string()).unwrap_or_default()
                };
                let message_type = property(delivery.properties.kind());
                let message_id = property(delivery.properties.message_id());
                let handled = match open(&procedure, &shared, &delivery.data, &message_type).await {
                    Ok(handled) => send(&procedure, &shared, Some(&channel), &handled.receipt)
                        .await
                        .map(|()| handled),
                    Err(outcome) => Err(outcome),
                };
                match handled {
                    Ok(handled) => {
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                        later_decide(&procedure, &shared, Some(channel.clone()), handled.accepted);
                    }
                    Err(Outcome::TryLater(reason)) => {
                        tracing::warn!(procedure = %procedure.id, %message_id, %reason, "receipt not sent; message stays in the queue");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        delivery
                            .acker
                            .nack(BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            })
                            .await?;
                    }
                    Err(Outcome::Refused(reason)) => {
                        tracing::error!(procedure = %procedure.id, %message_id, %reason, "message refused (not from the hub or not for us)");
                        delivery.acker.nack(BasicNackOptions::default()).await?;
                    }
                }
            }
            Ok::<(), lapin::Error>(())
        };
        tokio::select! {
            outcome = session => {
                if let Err(e) = outcome {
                    tracing::warn!(procedure = %procedure.id, error = %e, "broker connection lost; reconnecting");
                }
            }
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

enum Outcome {
    TryLater(String),
    Refused(String),
}

/// A receipt id that is the same each time for the same message and event, so a
/// repeated attempt is recognised by the hub as the same receipt.
fn receipt_id(procedure: &str, message_id: &str, event: ReceiptEvent) -> String {
    let name = format!("{procedure}/{message_id}/{}", event.uri_name());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

/// The text between two markers (enough for reading the reference procedure's own XML).
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    Some(&rest[..rest.find(end)?])
}

/// What a decision needs to know about an accepted message.
struct Accepted {
    receipt: Receipt,
    receipt_number: String,
    service: String,
    authority: String,
}

/// What opening a message produced: the receipt to send, and what the decision needs
/// if the message was accepted.
struct Handled {
    receipt: Receipt,
    accepted: Option<Accepted>,
    /// Attachments to fetch from the hub (claim check) before the receipt goes out.
    claims: Vec<Claim>,
}

/// An attachment the message refers to instead of carrying it.
struct Claim {
    adresse: String,
    teile: u64,
    sha512: String,
}

/// The `<anlage>` elements with an `<abruf>`.
fn claims_in(xml: &str) -> Vec<Claim> {
    let mut claims = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<anlage>") {
        let Some(end) = rest[start..].find("</anlage>") else {
            break;
        };
        let part = &rest[start..start + end];
        rest = &rest[start + end..];
        let (Some(adresse), Some(teile), Some(sha512)) = (
            between(part, "<adresse>", "</adresse>"),
            between(part, "<teile>", "</teile>").and_then(|t| t.parse().ok()),
            between(part, "\">", "</hashwert>"),
        ) else {
            continue;
        };
        claims.push(Claim {
            adresse: adresse.replace("&amp;", "&"),
            teile,
            sha512: sha512.to_ascii_lowercase(),
        });
    }
    claims
}

/// Opens a message like a vendor: [`handle`], then fetches each attachment by its
/// claim check, fragment by fragment, decrypts and checks its SHA-512. An attachment
/// that does not match turns the receipt into a rejection.
async fn open(
    procedure: &Procedure,
    shared: &Shared,
    body: &[u8],
    message_type: &str,
) -> Result<Handled, Outcome> {
    let mut handled = handle(procedure, shared, body, message_type)?;
    if handled.receipt.event != ReceiptEvent::Accept || handled.claims.is_empty() {
        return Ok(handled);
    }
    let Some(token) = &procedure.api_token else {
        return Err(Outcome::Refused(
            "the message refers to attachments, but this procedure has no API token".into(),
        ));
    };
    for claim in &handled.claims {
        let mut hasher = openssl::sha::Sha512::new();
        for k in 1..=claim.teile {
            let fragment = async {
                shared
                    .http
                    .get(format!("{}/{k}", claim.adresse))
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            }
            .await
            .map_err(|e| Outcome::TryLater(format!("attachment download: {e}")))?;
            let plain = if procedure.jose {
                std::str::from_utf8(&fragment)
                    .map_err(|_| {
                        kopplung_transformers::Error::JoseRefused("not a compact JWE".into())
                    })
                    .and_then(|jwe| {
                        jose::unseal_attachment(jwe.trim(), &procedure.cert, &procedure.key)
                    })
            } else {
                seal::decrypt(&fragment, &procedure.cert, &procedure.key)
            };
            match plain {
                Ok(plain) => hasher.update(&plain),
                Err(e) => {
                    reject(procedure, &mut handled, format!("fragment {k}: {e}"));
                    return Ok(handled);
                }
            }
        }
        if hex::encode(hasher.finish()) != claim.sha512 {
            reject(
                procedure,
                &mut handled,
                "SHA-512 differs from the message".into(),
            );
            return Ok(handled);
        }
    }
    tracing::info!(procedure = %procedure.id, attachments = handled.claims.len(), "attachments fetched by claim check and verified");
    Ok(handled)
}

/// Turns an accepting receipt into a rejection for a bad attachment.
fn reject(procedure: &Procedure, handled: &mut Handled, detail: String) {
    tracing::warn!(procedure = %procedure.id, %detail, "attachment refused");
    let receipt = &mut handled.receipt;
    receipt.event = ReceiptEvent::Reject;
    receipt.receipt_id = receipt_id(&procedure.id, &receipt.message_id, ReceiptEvent::Reject);
    receipt.problems.push(ReceiptProblem {
        kind: "urn:kopplung:problem:attachment".into(),
        title: "Eine Anlage konnte nicht geöffnet oder geprüft werden".into(),
        detail: Some(detail),
    });
    handled.accepted = None;
}

/// Opens one message like a vendor and writes the receipt (accept or reject).
fn handle(
    procedure: &Procedure,
    shared: &Shared,
    body: &[u8],
    message_type: &str,
) -> Result<Handled, Outcome> {
    let xml = if procedure.jose {
        let text =
            std::str::from_utf8(body).map_err(|_| Outcome::Refused("not a compact JWE".into()))?;
        jose::unseal(
            text.trim(),
            &procedure.cert,
            &procedure.key,
            &shared.hub_cert,
            &shared.anchors,
        )
    } else {
        seal::unseal(
            body,
            &procedure.cert,
            &procedure.key,
            &shared.hub_cert,
            &shared.anchors,
        )
    }
    .map_err(|e| Outcome::Refused(e.to_string()))?;
    let xml = String::from_utf8(xml).map_err(|_| Outcome::Refused("not UTF-8".into()))?;
    // The ids come from the signed message, not from the (unsigned) AMQP properties.
    let message_id = between(&xml, "<nachrichtenUUID>", "</nachrichtenUUID>")
        .ok_or_else(|| Outcome::Refused("no nachrichtenUUID".into()))?
        .to_owned();
    let application_id = between(&xml, "<antragsID>", "</antragsID>")
        .ok_or_else(|| Outcome::Refused("no antragsID".into()))?
        .to_owned();
    let problems = match shared.schemas.get(message_type) {
        Some(xsd) => match schema::validate(xsd, &xml) {
            Ok(()) => Vec::new(),
            Err(_) => vec![ReceiptProblem {
                kind: "urn:kopplung:problem:schema".into(),
                title: "Die Nachricht entspricht nicht ihrem Schema".into(),
                detail: None,
            }],
        },
        None => vec![ReceiptProblem {
            kind: "urn:kopplung:problem:unknown-message-type".into(),
            title: "Unbekannter Nachrichtentyp".into(),
            detail: None,
        }],
    };
    let event = if problems.is_empty() {
        ReceiptEvent::Accept
    } else {
        ReceiptEvent::Reject
    };
    let receipt = Receipt {
        receipt_id: receipt_id(&procedure.id, &message_id, event),
        procedure: procedure.id.clone(),
        message_id,
        application_id,
        event,
        problems,
        message: None,
        document: None,
        issued_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    if event != ReceiptEvent::Accept {
        return Ok(Handled {
            receipt,
            accepted: None,
            claims: Vec::new(),
        });
    }
    let text = |section: &str, name: &str| {
        between(&xml, &format!("<{section}"), &format!("</{section}>"))
            .and_then(|part| between(part, &format!("<{name}>"), &format!("</{name}>")))
            .unwrap_or_default()
            .replace("&amp;", "&")
    };
    Ok(Handled {
        accepted: Some(Accepted {
            receipt_number: between(&xml, "<antragsnummer>", "</antragsnummer>")
                .unwrap_or_default()
                .to_owned(),
            service: text("leistung", "name"),
            authority: text("leser", "name"),
            receipt: receipt.clone(),
        }),
        claims: claims_in(&xml),
        receipt,
    })
}

/// The decision follows after the configured delay, independent of the message.
fn later_decide(
    procedure: &Arc<Procedure>,
    shared: &Arc<Shared>,
    channel: Option<lapin::Channel>,
    accepted: Option<Accepted>,
) {
    if let (Some(accepted), Some(delay)) = (accepted, shared.decision_delay) {
        let (procedure, shared) = (procedure.clone(), shared.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            decide(&procedure, &shared, channel.as_ref(), accepted).await;
        });
    }
}

/// Sends the decision (Bescheid) with a generated PDF, retrying a few times.
async fn decide(
    procedure: &Procedure,
    shared: &Shared,
    channel: Option<&lapin::Channel>,
    accepted: Accepted,
) {
    use base64::Engine;
    let number = &accepted.receipt_number;
    let today = time::OffsetDateTime::now_utc().date();
    let lines = vec![
        accepted.authority.clone(),
        String::new(),
        format!("Ihr Antrag: {}, Antragsnummer {number}", accepted.service),
        format!(
            "Datum: {:02}.{:02}.{}",
            today.day(),
            u8::from(today.month()),
            today.year()
        ),
        String::new(),
        "Ihrem Antrag wird stattgegeben.".to_owned(),
        "Dieser Bescheid wurde vom Referenz-Fachverfahren (Demo) erzeugt.".to_owned(),
    ];
    let document = bescheid::pdf("Bescheid", &lines);
    let decision = Receipt {
        receipt_id: receipt_id(
            &procedure.id,
            &accepted.receipt.message_id,
            ReceiptEvent::Decision,
        ),
        event: ReceiptEvent::Decision,
        problems: Vec::new(),
        message: Some(format!(
            "Bescheid zu Ihrem Antrag {number}: Ihrem Antrag wird stattgegeben."
        )),
        document: Some(receipt::EventDocument {
            filename: format!("bescheid-{number}.pdf"),
            media_type: "application/pdf".into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(&document),
        }),
        issued_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        ..accepted.receipt
    };
    for attempt in 1..=5u32 {
        match send(procedure, shared, channel, &decision).await {
            Ok(()) => return,
            Err(Outcome::Refused(reason)) => {
                tracing::error!(procedure = %procedure.id, %reason, "decision refused by the hub");
                return;
            }
            Err(Outcome::TryLater(reason)) => {
                tracing::warn!(procedure = %procedure.id, %reason, attempt, "decision not sent yet");
                tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
            }
        }
    }
}

/// An event signed in the procedure's profile, with its content type.
fn sign(procedure: &Procedure, event: &Receipt) -> Result<(Vec<u8>, &'static str), Outcome> {
    let (signed, content_type) = if procedure.jose {
        (
            receipt::sign_set(event, &procedure.signing_cert, &procedure.signing_key)
                .map(String::into_bytes),
            "application/secevent+jwt",
        )
    } else {
        (
            receipt::sign_cms(event, &procedure.signing_cert, &procedure.signing_key),
            "application/pkcs7-mime",
        )
    };
    let signed = signed.map_err(|e| Outcome::TryLater(e.to_string()))?;
    Ok((signed, content_type))
}

/// Signs an event and sends it to the hub: on the reply queue if the procedure has one
/// (and a channel is at hand), else by HTTP.
async fn send(
    procedure: &Procedure,
    shared: &Shared,
    channel: Option<&lapin::Channel>,
    event: &Receipt,
) -> Result<(), Outcome> {
    let (signed, content_type) = sign(procedure, event)?;
    let reply_queue = match &procedure.transport {
        Transport::Amqp { reply_queue, .. } => reply_queue.as_ref(),
        _ => None,
    };
    if let (Some(queue), Some(channel)) = (reply_queue, channel) {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &signed,
                BasicProperties::default()
                    .with_content_type(content_type.into())
                    .with_delivery_mode(2),
            )
            .await
            .map_err(|e| Outcome::TryLater(e.to_string()))?
            .await
            .map_err(|e| Outcome::TryLater(e.to_string()))?;
        return match confirm {
            Confirmation::Ack(None) => {
                tracing::info!(procedure = %procedure.id, event = ?event.event, %queue, "event sent on the reply queue");
                Ok(())
            }
            other => Err(Outcome::TryLater(format!("reply queue: {other:?}"))),
        };
    }
    let url = format!(
        "{}/api/v1/procedures/{}/events",
        shared.hub_url, procedure.id
    );
    let mut request = shared.http.post(&url).header("content-type", content_type);
    // With its API token an event may carry a document (up to 16 MiB); without it the
    // hub reads at most 64 KiB.
    if let Some(token) = &procedure.api_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .body(signed)
        .send()
        .await
        .map_err(|e| Outcome::TryLater(format!("hub not reachable: {e}")))?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::CONFLICT {
        // 409: the hub already has this receipt or the application is final.
        tracing::info!(procedure = %procedure.id, event = ?event.event, "event sent");
        Ok(())
    } else if status.is_server_error()
        || status == reqwest::StatusCode::FORBIDDEN
        || status == reqwest::StatusCode::NOT_FOUND
    {
        // Perhaps a certificate being rotated or an older hub: try again later.
        Err(Outcome::TryLater(format!("hub answered {status}")))
    } else {
        Err(Outcome::Refused(format!("hub refused the event: {status}")))
    }
}

/// Takes the hub's POSTs (`transport = "http"`): opens the message and answers 200 with
/// the signed receipt; 400 for what is not for us, 503 (with `Retry-After`) to be asked
/// again later.
async fn serve_http(
    procedure: Arc<Procedure>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    let Transport::Http { listen, path } = &procedure.transport else {
        return;
    };
    let app = {
        let (procedure, shared) = (procedure.clone(), shared.clone());
        axum::Router::new().route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (procedure, shared) = (procedure.clone(), shared.clone());
                async move {
                    let message_type = headers
                        .get("x-kopplung-message-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let handled = open(&procedure, &shared, &body, &message_type)
                        .await
                        .and_then(|handled| {
                            sign(&procedure, &handled.receipt).map(|signed| (handled, signed))
                        });
                    match handled {
                        Ok((handled, (signed, content_type))) => {
                            tracing::info!(procedure = %procedure.id, event = ?handled.receipt.event, "receipt in the HTTP answer");
                            later_decide(&procedure, &shared, None, handled.accepted);
                            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], signed)
                                .into_response()
                        }
                        Err(Outcome::Refused(reason)) => {
                            tracing::error!(procedure = %procedure.id, %reason, "message refused (not from the hub or not for us)");
                            StatusCode::BAD_REQUEST.into_response()
                        }
                        Err(Outcome::TryLater(reason)) => {
                            tracing::warn!(procedure = %procedure.id, %reason, "asking the hub to try again");
                            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")])
                                .into_response()
                        }
                    }
                }
            }),
        )
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(procedure = %procedure.id, %listen, error = %e, "cannot listen");
            return;
        }
    };
    tracing::info!(procedure = %procedure.id, %listen, "receiving over HTTP");
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(procedure = %procedure.id, error = %e, "HTTP receiver failed");
    }
}

/// One waiting message of the pull API's listing.
#[derive(Deserialize)]
struct Waiting {
    message_id: String,
    message_type: String,
}

#[derive(Deserialize)]
struct Listing {
    messages: Vec<Waiting>,
}

/// Polls the pull API (`transport = "pull"`): lists, downloads, opens and acknowledges
/// each message with the signed receipt, as docs/vendors.md shows with curl.
async fn poll(procedure: Arc<Procedure>, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let Transport::Pull { token } = &procedure.transport else {
        return;
    };
    let base = format!(
        "{}/api/v1/procedures/{}/messages",
        shared.hub_url, procedure.id
    );
    // Messages we cannot open stay listed; say so once, not on every poll.
    let mut refused = std::collections::HashSet::new();
    tracing::info!(procedure = %procedure.id, "polling the pull API");
    while !*shutdown.borrow() {
        let listing = async {
            shared
                .http
                .get(&base)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json::<Listing>()
                .await
        };
        match listing.await {
            Ok(listing) => {
                for waiting in listing.messages {
                    if refused.contains(&waiting.message_id) {
                        continue;
                    }
                    match collect(&procedure, &shared, token, &base, &waiting).await {
                        Ok(()) => {}
                        Err(Outcome::Refused(reason)) => {
                            tracing::error!(procedure = %procedure.id, message_id = %waiting.message_id, %reason, "message refused (not from the hub or not for us); left unacknowledged");
                            refused.insert(waiting.message_id);
                        }
                        Err(Outcome::TryLater(reason)) => {
                            tracing::warn!(procedure = %procedure.id, message_id = %waiting.message_id, %reason, "not collected yet");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(procedure = %procedure.id, error = %e, "listing failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Downloads, opens and acknowledges one waiting message.
async fn collect(
    procedure: &Arc<Procedure>,
    shared: &Arc<Shared>,
    token: &str,
    base: &str,
    waiting: &Waiting,
) -> Result<(), Outcome> {
    let url = format!("{base}/{}", waiting.message_id);
    let sealed = async {
        shared
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await
    }
    .await
    .map_err(|e| Outcome::TryLater(format!("download: {e}")))?;
    let handled = open(procedure, shared, &sealed, &waiting.message_type).await?;
    let (signed, content_type) = sign(procedure, &handled.receipt)?;
    let acknowledged = shared
        .http
        .post(format!("{url}/ack"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(signed)
        .send()
        .await
        .map_err(|e| Outcome::TryLater(format!("acknowledgement: {e}")))?;
    if !acknowledged.status().is_success() {
        return Err(Outcome::TryLater(format!(
            "acknowledgement answered {}",
            acknowledged.status()
        )));
    }
    tracing::info!(procedure = %procedure.id, event = ?handled.receipt.event, "collected and acknowledged with the receipt");
    later_decide(procedure, shared, None, handled.accepted);
    Ok(())
}
