//! The portal's small, typed view of the router's public HTTP API (`docs/api.md`).

use std::time::Duration;

use kopplung_forms::FieldError;
use kopplung_forms::form::{AttachmentRules, Field, FormDefinition, StepTitle};
use kopplung_forms::{Charge, Fee, TrustLevel};
use kopplung_web::contact::Contact;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::peer::Peer;

#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub online: bool,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub attachments: AttachmentRules,
    #[serde(default)]
    pub steps: Vec<StepTitle>,
    #[serde(default)]
    pub available_in: Vec<String>,
    #[serde(default)]
    pub fee: Option<Fee>,
    #[serde(default)]
    pub charge: Option<Charge>,
    #[serde(default)]
    pub trust_level: TrustLevel,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub documents: Vec<String>,
    /// Search words and synonyms (`keywords` in `service.toml`).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// How citizens speak of what they send (Antrag, Meldung …).
    #[serde(default)]
    pub wording: kopplung_forms::Wording,
}

impl Service {
    /// The form definition, checked and with its patterns compiled.
    pub fn form(&self) -> Result<FormDefinition, Error> {
        let mut form = FormDefinition {
            fields: self.fields.clone(),
            attachments: self.attachments.clone(),
            steps: self.steps.clone(),
        };
        form.compile()
            .map_err(|e| Error::Router(format!("form of service {}: {e}", self.key)))?;
        Ok(form)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    pub ars: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authority {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub contact: Contact,
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Responsibility {
    pub service: String,
    pub service_name: String,
    pub region: String,
    pub region_name: String,
    pub authority: Option<Authority>,
    pub online: bool,
}

/// An attachment as intake takes it.
pub struct OutgoingAttachment {
    pub filename: String,
    pub media_type: String,
    pub content: Vec<u8>,
    /// The form's attachment slot it fills, if any.
    pub slot: Option<String>,
}

/// How intake answered a submission.
pub enum Submitted {
    Accepted {
        id: String,
        receipt: String,
    },
    /// Field errors (422 `validation`), with the paths below `data.`.
    Invalid(Vec<FieldError>),
    /// Intake did not accept who applied; `kind` is its problem type (for the log).
    Unidentified {
        why: Unidentified,
        kind: String,
    },
    /// Any other refusal, in the router's words (for the log and a general message).
    Refused {
        status: u16,
        kind: String,
    },
}

/// Why intake did not accept the applicant's identification, by its problem type
/// (docs/api.md): what the citizen can do about it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unidentified {
    /// The sign-in expired or became too old: signing in again helps.
    SignInAgain,
    /// Identified below the service's Vertrauensniveau.
    LevelTooLow,
    /// The identity provider's keys could not be fetched: try again later.
    ProviderUnavailable,
    /// Anything else about the identification (unknown issuer, bad signature, …).
    NotRecognized,
}

impl Unidentified {
    /// The identification problem a problem type (without its URN prefix) stands for.
    fn of(kind: &str) -> Option<Self> {
        Some(match kind {
            "assertion-expired" | "authentication-too-old" => Self::SignInAgain,
            "trust-level-too-low" => Self::LevelTooLow,
            "identity-provider-unavailable" => Self::ProviderUnavailable,
            "authentication-required"
            | "authentication-malformed"
            | "issuer-unknown"
            | "assertion-signature"
            | "assertion-audience"
            | "assertion-incomplete"
            | "client-may-not-assert" => Self::NotRecognized,
            _ => return None,
        })
    }
}

/// A follow-up message for the hub: `kind` is `antwort`, `nachreichung`,
/// `widerspruch` or `zahlung`; the key makes a repeated request harmless. No `Debug`:
/// it holds the citizen's text and files.
#[derive(Clone, Copy)]
pub struct FollowUpOut<'a> {
    pub kind: &'a str,
    pub refers_to: Option<&'a str>,
    pub text: Option<&'a str>,
    pub attachments: &'a [OutgoingAttachment],
    pub payment: Option<&'a PaymentRecord>,
    pub idempotency_key: &'a str,
}

/// A paid fee, reported to the hub for the authority's accounting (`kind` `zahlung`).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRecord {
    /// `"108.00"`.
    pub amount: String,
    pub purpose: String,
    pub reference: String,
    /// RFC 3339.
    pub paid_at: String,
}

/// How the hub answered a follow-up message.
#[derive(Debug)]
pub enum FollowUpSent {
    Accepted,
    /// Fields are wrong; the messages are German.
    Invalid(Vec<FieldError>),
    /// Not possible now; the German reason, as the hub says it.
    Refused(String),
    /// A file is larger than the service takes.
    TooLarge,
    /// The hub knows no such application of the portal.
    Unknown,
}

/// A document of an application, as downloaded.
pub struct Document {
    pub media_type: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// One change of the portal's applications, from the hub's change feed.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub application: String,
    pub receipt: String,
    pub status: String,
    /// The change brought a mailbox entry (a question, a decision).
    pub mailbox: bool,
    /// RFC 3339.
    pub at: String,
}

/// A page of the change feed.
#[derive(Debug, Clone, Deserialize)]
pub struct Changes {
    pub changes: Vec<Change>,
    pub cursor: i64,
    pub more: bool,
}

/// The router's public API, called with the portal's client token.
pub struct RouterClient(Peer);

impl RouterClient {
    pub fn new(base: &str, token: &str) -> Result<Self, Error> {
        Peer::new(base, token.trim(), Duration::from_secs(30))
            .map(Self)
            .map_err(|e| Error::Router(e.to_string()))
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, Value), Error> {
        let response = self
            .0
            .request(Method::GET, path)
            .query(query)
            .send()
            .await
            .map_err(|e| Error::Router(format!("GET {path}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .json::<Value>()
            .await
            .map_err(|e| Error::Router(format!("GET {path}: {e}")))?;
        Ok((status, body))
    }

    /// The list under `key` of the answer to `GET path`.
    async fn get_list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<Vec<T>, Error> {
        let (status, mut body) = self.get_json(path, query).await?;
        if status != 200 {
            return Err(Error::Router(format!("GET {path}: {status}")));
        }
        Self::parse(key, body[key].take())
    }

    fn parse<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, Error> {
        serde_json::from_value(value).map_err(|e| Error::Router(format!("{what}: {e}")))
    }

    pub async fn services(&self) -> Result<Vec<Service>, Error> {
        self.get_list("/api/v1/services", &[], "services").await
    }

    pub async fn service(&self, key: &str) -> Result<Option<Service>, Error> {
        Ok(self.services().await?.into_iter().find(|s| s.key == key))
    }

    pub async fn regions(&self, query: &str) -> Result<Vec<Region>, Error> {
        self.get_list("/api/v1/regions", &[("q", query)], "regions")
            .await
    }

    pub async fn authorities(&self) -> Result<Vec<Authority>, Error> {
        self.get_list("/api/v1/authorities", &[], "authorities")
            .await
    }

    pub async fn authority(&self, id: &str) -> Result<Option<Authority>, Error> {
        let (status, body) = self
            .get_json(&format!("/api/v1/authorities/{}", encode(id)), &[])
            .await?;
        match status {
            200 => Self::parse("authority", body).map(Some),
            404 => Ok(None),
            other => Err(Error::Router(format!("GET /api/v1/authorities/…: {other}"))),
        }
    }

    pub async fn responsibility(
        &self,
        service: &str,
        region: &str,
    ) -> Result<Option<Responsibility>, Error> {
        let (status, body) = self
            .get_json(
                "/api/v1/responsibility",
                &[("service", service), ("region", region)],
            )
            .await?;
        match status {
            200 => Self::parse("responsibility", body).map(Some),
            400 | 404 => Ok(None),
            other => Err(Error::Router(format!(
                "GET /api/v1/responsibility: {other}"
            ))),
        }
    }

    /// Submits an application, with `applicant.authentication` when the citizen signed
    /// in; `idempotency_key` makes a repeated click harmless.
    pub async fn submit(
        &self,
        service: &str,
        region: &str,
        data: &Value,
        attachments: &[OutgoingAttachment],
        applicant: Option<&Value>,
        idempotency_key: &str,
    ) -> Result<Submitted, Error> {
        use base64::Engine;
        let attachments: Vec<Value> = attachments
            .iter()
            .map(|a| {
                let mut attachment = json!({
                    "filename": a.filename,
                    "media_type": a.media_type,
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&a.content),
                });
                if let Some(slot) = &a.slot {
                    attachment["slot"] = json!(slot);
                }
                attachment
            })
            .collect();
        let mut body = json!({
            "service": service,
            "region": region,
            "data": data,
            "attachments": attachments,
        });
        // Who applies and how they were identified (docs/api.md, `applicant`).
        if let Some(applicant) = applicant {
            body["applicant"] = applicant.clone();
        }
        let response = self
            .0
            .request(Method::POST, "/api/v1/applications")
            .header("Idempotency-Key", idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Router(format!("POST /api/v1/applications: {e}")))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| Error::Router(format!("POST /api/v1/applications: {e}")))?;
        if status == 202 {
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            let receipt = body["receipt"].as_str().unwrap_or_default().to_owned();
            if id.is_empty() {
                return Err(Error::Router("202 without an id".into()));
            }
            return Ok(Submitted::Accepted { id, receipt });
        }
        let kind = body["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:kopplung:problem:")
            .to_owned();
        if status == 422 && kind == "validation" {
            let errors: Vec<FieldError> = body["errors"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|e| {
                            FieldError::new(
                                e["field"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .trim_start_matches("data."),
                                e["message"].as_str().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Ok(Submitted::Invalid(errors));
        }
        if let Some(why) = Unidentified::of(&kind) {
            return Ok(Submitted::Unidentified { why, kind });
        }
        Ok(Submitted::Refused { status, kind })
    }

    /// Sends a follow-up message (`POST /api/v1/applications/{id}/messages`).
    pub async fn send_follow_up(
        &self,
        application: &str,
        message: &FollowUpOut<'_>,
    ) -> Result<FollowUpSent, Error> {
        use base64::Engine;
        let FollowUpOut {
            kind,
            refers_to,
            text,
            attachments,
            payment,
            idempotency_key,
        } = *message;
        let attachments: Vec<Value> = attachments
            .iter()
            .map(|a| {
                json!({
                    "filename": a.filename,
                    "media_type": a.media_type,
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&a.content),
                })
            })
            .collect();
        let mut body = json!({"kind": kind, "attachments": attachments});
        if let Some(refers_to) = refers_to {
            body["refers_to"] = json!(refers_to);
        }
        if let Some(text) = text {
            body["text"] = json!(text);
        }
        if let Some(payment) = payment {
            body["payment"] = json!(payment);
        }
        let path = format!("/api/v1/applications/{}/messages", encode(application));
        let response = self
            .0
            .request(Method::POST, &path)
            .header("Idempotency-Key", idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Router(format!("POST …/messages: {e}")))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| Error::Router(format!("POST …/messages: {e}")))?;
        if body["status"] == "accepted" {
            return Ok(FollowUpSent::Accepted);
        }
        // The problem's type says what happened, never the status alone.
        let kind = body["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:kopplung:problem:");
        let detail = body["detail"].as_str().unwrap_or_default().to_owned();
        Ok(match kind {
            "validation" => FollowUpSent::Invalid(
                body["errors"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|e| {
                                FieldError::new(
                                    e["field"].as_str().unwrap_or_default(),
                                    e["message"].as_str().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "follow-up-refused" => FollowUpSent::Refused(detail),
            "attachment-too-large" | "body-too-large" => FollowUpSent::TooLarge,
            "not-found" => FollowUpSent::Unknown,
            other => {
                return Err(Error::Router(format!("POST …/messages: {status} {other}")));
            }
        })
    }

    /// The application's status, history, mailbox and documents; `None` if unknown.
    /// `GET /api/v1/changes`: the changes of the portal's applications after `after`.
    pub async fn changes(&self, after: i64, limit: u32) -> Result<Changes, Error> {
        let (after, limit) = (after.to_string(), limit.to_string());
        let (status, body) = self
            .get_json("/api/v1/changes", &[("after", &after), ("limit", &limit)])
            .await?;
        if status != 200 {
            return Err(Error::Router(format!("GET /api/v1/changes: {status}")));
        }
        Self::parse("the change feed", body)
    }

    pub async fn application(&self, id: &str) -> Result<Option<Value>, Error> {
        let (status, body) = self
            .get_json(&format!("/api/v1/applications/{}", encode(id)), &[])
            .await?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            other => Err(Error::Router(format!(
                "GET /api/v1/applications/…: {other}"
            ))),
        }
    }

    pub async fn document(&self, id: &str, document: &str) -> Result<Option<Document>, Error> {
        let response = self
            .0
            .request(
                Method::GET,
                &format!(
                    "/api/v1/applications/{}/documents/{}",
                    encode(id),
                    encode(document)
                ),
            )
            .send()
            .await
            .map_err(|e| Error::Router(format!("GET document: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            other => return Err(Error::Router(format!("GET document: {other}"))),
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("content-type").unwrap_or_default();
        let filename =
            header("content-disposition").and_then(|d| kopplung_web::disposition::filename_of(&d));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::Router(format!("GET document: {e}")))?
            .to_vec();
        Ok(Some(Document {
            media_type,
            filename,
            bytes,
        }))
    }
}

/// Percent-encodes a path segment (ids are UUIDs, but never trust that).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
