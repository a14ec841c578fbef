//! Receipts and events from specialist procedures: a procedure confirms receipt of a
//! message (accept) or rejects it with RFC 7807 problems, reports that it is working on
//! it, asks the citizen a question (Rückfrage), or sends the decision (Bescheid) with its
//! document — each signed with the procedure's own signing certificate.
//!
//! - `cms` profile: CMS SignedData (content embedded) over the receipt as JSON.
//! - `jose` profile: a Security Event Token (RFC 8417) as compact JWS, like FIT-Connect's
//!   events: `jti`, `iss`, `iat`, `sub` = `message:<message id>`, `txn` =
//!   `application:<application id>`, and one event `urn:kopplung:events:<kind>` (kinds:
//!   `accept`, `reject`, `in-progress`, `query`, `decision`) whose value carries
//!   `problems`, `message` and `document` as the JSON form does.
//!
//! The hub verifies a receipt against the certificate configured for the procedure,
//! chained to its trust anchors; anything else is refused.

use josekit::jws::{self, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{Id, PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::seal::TrustAnchors;

pub const ACCEPT_EVENT: &str = "urn:kopplung:events:accept";
pub const REJECT_EVENT: &str = "urn:kopplung:events:reject";
const EVENT_PREFIX: &str = "urn:kopplung:events:";
/// FIT-Connect's events of a subscriber: the submission is accepted, or rejected with
/// problems.
pub const FIT_ACCEPT_EVENT: &str = "https://schema.fitko.de/fit-connect/events/accept-submission";
pub const FIT_REJECT_EVENT: &str = "https://schema.fitko.de/fit-connect/events/reject-submission";

/// A document that comes with an event (the decision as PDF).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDocument {
    pub filename: String,
    pub media_type: String,
    pub content_base64: String,
}

/// The appeal information of a decision: the Rechtsbehelfsbelehrung and the last day
/// on which a Widerspruch may be filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appeal {
    /// German text: which remedy, where and how, within which time.
    pub text: String,
    /// The last day to file, `YYYY-MM-DD` (the authority's calendar).
    pub deadline: String,
}

/// A fee the decision sets, for the citizen to pay in the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionFee {
    /// Euros with two decimals, e.g. `"30.70"`.
    pub amount: String,
    /// What it is for, as the citizen's payment names it (Verwendungszweck).
    pub purpose: String,
}

/// What a procedure says about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Unique per receipt: a repeated receipt is recognised by it.
    pub receipt_id: String,
    /// The procedure's id in the hub's configuration.
    pub procedure: String,
    /// The `nachrichtenUUID` the receipt is about.
    pub message_id: String,
    pub application_id: String,
    pub event: ReceiptEvent,
    /// Why a message was rejected (RFC 7807 problem details).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ReceiptProblem>,
    /// Text for the citizen: the question of a query, the summary of a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The decision document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<EventDocument>,
    /// A decision's appeal information (Rechtsbehelfsbelehrung and deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeal: Option<Appeal>,
    /// A fee the decision sets (Gebühr), paid by the citizen in the portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<DecisionFee>,
    /// RFC 3339.
    pub issued_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptEvent {
    /// Eingangsbestätigung: the message arrived and is formally in order.
    Accept,
    /// The message is refused (with problems).
    Reject,
    /// The authority works on the application.
    InProgress,
    /// A question to the citizen (Rückfrage), in `message`.
    Query,
    /// The decision (Bescheid): `message` and `document`.
    Decision,
}

impl ReceiptEvent {
    /// The name in the event URI `urn:kopplung:events:<name>`.
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::InProgress => "in-progress",
            Self::Query => "query",
            Self::Decision => "decision",
        }
    }

    fn from_uri_name(name: &str) -> Option<Self> {
        Some(match name {
            "accept" => Self::Accept,
            "reject" => Self::Reject,
            "in-progress" => Self::InProgress,
            "query" => Self::Query,
            "decision" => Self::Decision,
            _ => return None,
        })
    }
}

impl Receipt {
    /// SHA-256 (hex) of what the receipt says, without `issued_at`: a procedure that
    /// rebuilds and signs the same receipt again for a retry (with a new time) sends the
    /// same receipt, recognised as such; anything else under the same id is another one.
    pub fn content_sha256(&self) -> String {
        let mut content = self.clone();
        content.issued_at = String::new();
        hex::encode(openssl::sha::sha256(
            &serde_json::to_vec(&content).unwrap_or_default(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn refused(reason: impl Into<String>) -> Error {
    Error::ReceiptRefused(reason.into())
}

/// The signature verified, but what it signs is no receipt.
fn malformed(reason: impl Into<String>) -> Error {
    Error::ReceiptMalformed(reason.into())
}

/// Signs a receipt as CMS SignedData (what a procedure does in the `cms` profile).
pub fn sign_cms(receipt: &Receipt, cert: &X509, key: &PKey<Private>) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(receipt).map_err(|e| refused(e.to_string()))?;
    let crypto = |source| Error::Crypto {
        context: "signing a receipt".into(),
        source,
    };
    CmsContentInfo::sign(Some(cert), Some(key), None, Some(&json), CMSOptions::BINARY)
        .and_then(|cms| cms.to_der())
        .map_err(crypto)
}

/// Verifies a CMS-signed receipt: signed by `signer` (and no one else), which chains to
/// `anchors` and is valid now.
pub fn verify_cms(der: &[u8], signer: &X509, anchors: &TrustAnchors) -> Result<Receipt, Error> {
    anchors.check(signer)?;
    let mut cms = CmsContentInfo::from_der(der).map_err(|_| refused("not a CMS structure"))?;
    let mut signers = Stack::new().map_err(|e| Error::Crypto {
        context: "signer list".into(),
        source: e,
    })?;
    signers.push(signer.clone()).map_err(|e| Error::Crypto {
        context: "signer list".into(),
        source: e,
    })?;
    let mut content = Vec::new();
    cms.verify(
        Some(&signers),
        Some(anchors.store()),
        None,
        Some(&mut content),
        CMSOptions::BINARY | CMSOptions::NOINTERN,
    )
    .map_err(|_| refused("the signature does not verify with the procedure's certificate"))?;
    serde_json::from_slice(&content).map_err(|e| malformed(format!("not a receipt: {e}")))
}

fn algorithm_of(key: Id, bits: u32) -> Result<&'static str, Error> {
    match key {
        Id::EC => Ok("ES256"),
        Id::RSA if bits >= 3072 => Ok("PS512"),
        _ => Err(refused(
            "receipts are signed with EC P-256 (ES256) or RSA >= 3072 bits (PS512)",
        )),
    }
}

/// Signs a receipt as a Security Event Token (what a procedure does in the `jose` profile).
pub fn sign_set(receipt: &Receipt, cert: &X509, key: &PKey<Private>) -> Result<String, Error> {
    let der = key.private_key_to_pkcs8().map_err(|e| Error::Crypto {
        context: "encoding the procedure's key".into(),
        source: e,
    })?;
    let mut header = JwsHeader::new();
    header.set_token_type("secevent+jwt");
    let leaf = cert.to_der().map_err(|e| Error::Crypto {
        context: "encoding certificate".into(),
        source: e,
    })?;
    header.set_x509_certificate_chain(&vec![leaf]);
    let payload = set_payload(receipt)?;
    let jose_error = |e: josekit::JoseError| refused(e.to_string());
    match algorithm_of(key.id(), key.bits())? {
        "ES256" => {
            let signer = jws::ES256.signer_from_der(&der).map_err(jose_error)?;
            jwt::encode_with_signer(&payload, &header, &signer).map_err(jose_error)
        }
        _ => {
            let signer = jws::PS512.signer_from_der(&der).map_err(jose_error)?;
            jwt::encode_with_signer(&payload, &header, &signer).map_err(jose_error)
        }
    }
}

/// The claims of the Security Event Token that [`sign_set`] signs for `receipt` (for
/// the message catalogue's examples).
pub fn set_claims(receipt: &Receipt) -> Result<Map<String, Value>, Error> {
    Ok(set_payload(receipt)?.claims_set().clone())
}

fn set_payload(receipt: &Receipt) -> Result<JwtPayload, Error> {
    let mut payload = JwtPayload::new();
    payload.set_jwt_id(&receipt.receipt_id);
    payload.set_issuer(&receipt.procedure);
    payload.set_subject(format!("message:{}", receipt.message_id));
    let issued = time::OffsetDateTime::parse(
        &receipt.issued_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| refused("issued_at is not RFC 3339"))?;
    // Whole seconds, as RFC 7519 NumericDate is usually read.
    let issued = issued.replace_nanosecond(0).unwrap_or(issued);
    payload.set_issued_at(&std::time::SystemTime::from(issued));
    payload
        .set_claim(
            "txn",
            Some(json!(format!("application:{}", receipt.application_id))),
        )
        .map_err(|e| refused(e.to_string()))?;
    let mut body = Map::new();
    if !receipt.problems.is_empty() {
        body.insert("problems".into(), json!(receipt.problems));
    }
    if let Some(message) = &receipt.message {
        body.insert("message".into(), json!(message));
    }
    if let Some(document) = &receipt.document {
        body.insert("document".into(), json!(document));
    }
    if let Some(appeal) = &receipt.appeal {
        body.insert("appeal".into(), json!(appeal));
    }
    if let Some(fee) = &receipt.fee {
        body.insert("fee".into(), json!(fee));
    }
    let mut event = Map::new();
    event.insert(
        format!("{EVENT_PREFIX}{}", receipt.event.uri_name()),
        Value::Object(body),
    );
    let event = Value::Object(event);
    payload
        .set_claim("events", Some(event))
        .map_err(|e| refused(e.to_string()))?;
    Ok(payload)
}

/// Verifies a Security Event Token: signed with the key of `signer` (ES256 or PS512 as
/// the key demands), which chains to `anchors`; the events claim holds exactly one
/// known event.
pub fn verify_set(token: &str, signer: &X509, anchors: &TrustAnchors) -> Result<Receipt, Error> {
    anchors.check(signer)?;
    let public = signer
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(|e| Error::Crypto {
            context: "reading the procedure's key".into(),
            source: e,
        })?;
    let key = signer.public_key().map_err(|e| Error::Crypto {
        context: "reading the procedure's key".into(),
        source: e,
    })?;
    let unverifiable = |_| {
        refused(
            "the token does not verify with the procedure's certificate (signed PS512 with an RSA key, ES256 with an EC P-256 key)",
        )
    };
    let (payload, header) = match algorithm_of(key.id(), key.bits())? {
        "ES256" => {
            let verifier = jws::ES256
                .verifier_from_der(&public)
                .map_err(unverifiable)?;
            jwt::decode_with_verifier(token, &verifier).map_err(unverifiable)?
        }
        _ => {
            let verifier = jws::PS512
                .verifier_from_der(&public)
                .map_err(unverifiable)?;
            jwt::decode_with_verifier(token, &verifier).map_err(unverifiable)?
        }
    };
    if header.token_type() != Some("secevent+jwt") {
        return Err(malformed("typ is not secevent+jwt"));
    }
    let text = |name: &str| -> Result<String, Error> {
        payload
            .claim(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("claim {name} is missing")))
    };
    // The hub's own form names the message and the application; FIT-Connect's the
    // submission (the application) and its case, which the edge that took the event
    // checked against the case it was posted to. Its message is the application's own.
    let (sub, txn) = (text("sub")?, text("txn")?);
    let (message_id, application_id) = match (
        sub.strip_prefix("message:"),
        txn.strip_prefix("application:"),
        sub.strip_prefix("submission:"),
        txn.strip_prefix("case:"),
    ) {
        (Some(message), Some(application), _, _) => (message.to_owned(), application.to_owned()),
        (_, _, Some(submission), Some(_)) => (String::new(), submission.to_owned()),
        _ => {
            return Err(malformed(
                "sub and txn must be message:<id> and application:<id>, or FIT-Connect's submission:<id> and case:<id>",
            ));
        }
    };
    let events: &Map<String, Value> = payload
        .claim("events")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("claim events is missing"))?;
    let mut entries = events.iter();
    let (Some((uri, body)), None) = (entries.next(), entries.next()) else {
        return Err(malformed("events must hold exactly one event"));
    };
    let event = uri
        .strip_prefix(EVENT_PREFIX)
        .and_then(ReceiptEvent::from_uri_name)
        .or(match uri.as_str() {
            FIT_ACCEPT_EVENT => Some(ReceiptEvent::Accept),
            FIT_REJECT_EVENT => Some(ReceiptEvent::Reject),
            _ => None,
        })
        .ok_or_else(|| malformed(format!("unknown event {uri}")))?;
    let problems = serde_json::from_value(body.get("problems").cloned().unwrap_or(json!([])))
        .map_err(|e| malformed(format!("problems: {e}")))?;
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let document = match body.get("document") {
        Some(document) => Some(
            serde_json::from_value(document.clone())
                .map_err(|e| malformed(format!("document: {e}")))?,
        ),
        None => None,
    };
    let appeal = match body.get("appeal") {
        Some(appeal) => Some(
            serde_json::from_value(appeal.clone())
                .map_err(|e| malformed(format!("appeal: {e}")))?,
        ),
        None => None,
    };
    let fee = match body.get("fee") {
        Some(fee) => {
            Some(serde_json::from_value(fee.clone()).map_err(|e| malformed(format!("fee: {e}")))?)
        }
        None => None,
    };
    // Read `iat` ourselves: a value far off (milliseconds instead of seconds) must be
    // refused, not overflow.
    let issued_at = payload
        .claim("iat")
        .and_then(|iat| {
            iat.as_i64()
                .or_else(|| iat.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        })
        .filter(|iat| (0..=32_503_680_000).contains(iat))
        .and_then(|iat| time::OffsetDateTime::from_unix_timestamp(iat).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| malformed("claim iat is missing or not seconds since 1970"))?;
    Ok(Receipt {
        receipt_id: text("jti")?,
        procedure: text("iss")?,
        message_id,
        application_id,
        event,
        problems,
        message,
        document,
        appeal,
        fee,
        issued_at,
    })
}
