//! Opening a message like a vendor: decrypt, verify the hub's signature, validate the
//! XML against its schema, fetch attachments by claim check, and write the receipt.

use kopplung_transformers::receipt::{Receipt, ReceiptEvent, ReceiptProblem};
use kopplung_transformers::{jose, schema, seal};

use crate::setup::{KeyPair, Procedure, Shared};

/// Why a message was not answered (yet).
pub(crate) enum Outcome {
    TryLater(String),
    Refused(String),
}

/// A receipt id that is the same each time for the same message and event, so a
/// repeated attempt is recognised by the hub as the same receipt.
pub(crate) fn receipt_id(procedure: &str, message_id: &str, event: ReceiptEvent) -> String {
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
pub(crate) struct Accepted {
    pub receipt: Receipt,
    pub receipt_number: String,
    pub service: String,
    pub authority: String,
    /// The fee (or tax) the decision sets, if the service has one (the demo's dog tax).
    pub fee: Option<kopplung_transformers::receipt::DecisionFee>,
    /// The citizen answered the procedure's question: decide now, do not ask again.
    pub answered: bool,
    /// What kind of matter it is, and so which letter closes it.
    pub matter: Matter,
}

/// What the citizen sent, as the reference procedure closes it: only an application
/// is decided by a Bescheid that can be objected to; a report is answered, a
/// registration confirmed — nothing is decided there that an objection could undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matter {
    Application,
    /// The demo's Mängelanzeige (local key 99999001000000): a closing letter.
    Report,
    /// A Wohnsitzanmeldung: the Meldebestätigung (§ 24 Abs. 2 BMG).
    Residence,
    /// A Gewerbeanmeldung: the Empfangsbescheinigung (§ 15 Abs. 1 GewO).
    Trade,
    /// An Urkundenbestellung: a Bescheid on the order.
    Order,
}

impl Matter {
    pub(crate) fn of(service_key: &str) -> Self {
        match service_key {
            "99999001000000" => Matter::Report,
            "99115005000000" => Matter::Residence,
            "99050012104000" => Matter::Trade,
            "99014002000000" => Matter::Order,
            _ => Matter::Application,
        }
    }

    /// Whether the closing letter decides something that can be objected to.
    pub(crate) fn decided(self) -> bool {
        matches!(self, Matter::Application | Matter::Order)
    }
}

/// What opening a message produced: the receipt to send, and what the decision needs
/// if the message was accepted.
pub(crate) struct Handled {
    pub receipt: Receipt,
    pub accepted: Option<Accepted>,
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

/// GETs `url` from the hub with the procedure's token.
pub(crate) async fn fetch(
    shared: &Shared,
    url: &str,
    token: &str,
) -> Result<axum::body::Bytes, reqwest::Error> {
    shared
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await
}

/// Opens a message like a vendor: [`handle`], then fetches each attachment by its
/// claim check, fragment by fragment, decrypts and checks its SHA-512. An attachment
/// that does not match turns the receipt into a rejection.
pub(crate) async fn open(
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
            let fragment = fetch(shared, &format!("{}/{k}", claim.adresse), token)
                .await
                .map_err(|e| Outcome::TryLater(format!("attachment download: {e}")))?;
            let keys = procedure.keys();
            let plain = first_that_opens(keys.iter(), NO_KEY, |key: &KeyPair| {
                if procedure.jose {
                    std::str::from_utf8(&fragment)
                        .map_err(|_| {
                            kopplung_transformers::Error::JoseRefused("not a compact JWE".into())
                        })
                        .and_then(|jwe| jose::unseal_attachment(jwe.trim(), &key.cert, &key.key))
                } else {
                    seal::decrypt(&fragment, &key.cert, &key.key)
                }
            });
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

/// What `open` gives for the first of `candidates` it succeeds with (several keys or
/// hub certificates during a rotation); otherwise the error of the first, or `none`.
fn first_that_opens<C, T>(
    candidates: impl IntoIterator<Item = C>,
    none: &str,
    open: impl Fn(C) -> Result<T, kopplung_transformers::Error>,
) -> Result<T, kopplung_transformers::Error> {
    let mut first_error = None;
    for candidate in candidates {
        match open(candidate) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| kopplung_transformers::Error::Certificate(none.into())))
}

/// The namespace of the hub's follow-up messages (`xoev/kopplung-folgenachricht.xsd`).
const FOLLOW_UP_NAMESPACE: &str = "urn:kopplung:folgenachricht:1.0";

/// Why nothing opened when the procedure holds no key.
const NO_KEY: &str = "the procedure has no decryption key";

/// Opens one message like a vendor and writes the receipt (accept or reject): with each
/// of its keys and each hub certificate it trusts (two of either during a rotation).
fn handle(
    procedure: &Procedure,
    shared: &Shared,
    body: &[u8],
    message_type: &str,
) -> Result<Handled, Outcome> {
    let trust = shared.trust();
    let text = if procedure.jose {
        Some(std::str::from_utf8(body).map_err(|_| Outcome::Refused("not a compact JWE".into()))?)
    } else {
        None
    };
    let keys = procedure.keys();
    let xml = first_that_opens(keys.iter(), NO_KEY, |key: &KeyPair| {
        first_that_opens(
            &trust.hub_certs,
            "no hub certificate is trusted",
            |hub| match text {
                Some(text) => jose::unseal(text.trim(), &key.cert, &key.key, hub, &trust.anchors),
                None => seal::unseal(body, &key.cert, &key.key, hub, &trust.anchors),
            },
        )
    })
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
        appeal: None,
        fee: None,
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
    // A follow-up message of the citizen (answer, later documents, objection) is
    // receipted like the application; it is no new case to decide.
    if xml.contains(FOLLOW_UP_NAMESPACE) {
        tracing::info!(procedure = %procedure.id, %message_type, "follow-up message received");
        return Ok(Handled {
            claims: claims_in(&xml),
            accepted: answer_to_query(procedure, shared, &xml, &receipt),
            receipt,
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
            fee: demo_fee(&text("leistung", "code"), &xml),
            matter: Matter::of(&text("leistung", "code")),
            receipt: receipt.clone(),
            answered: false,
        }),
        claims: claims_in(&xml),
        receipt,
    })
}

/// The citizen's answer to the question of a procedure that asks first: what the
/// decision on the application needs (its own message, named in `bezug`).
fn answer_to_query(
    procedure: &Procedure,
    shared: &Shared,
    xml: &str,
    receipt: &Receipt,
) -> Option<Accepted> {
    if !shared.ask_first.contains(&procedure.id) || !xml.contains(":antwort.0201") {
        return None;
    }
    let bezug = between(xml, "<bezug>", "</bezug>")?;
    let field = |name: &str| between(bezug, &format!("<{name}>"), &format!("</{name}>"));
    let leser = between(xml, "<leser>", "</leser>")?;
    let name_in = |part: &str| {
        between(part, "<name>", "</name>")
            .unwrap_or_default()
            .replace("&amp;", "&")
    };
    let leistung = between(bezug, "<leistung", "</leistung>")?;
    let application_id = field("antragsID")?;
    tracing::info!(procedure = %procedure.id, "answer to the question received");
    Some(Accepted {
        receipt_number: field("antragsnummer")?.to_owned(),
        service: name_in(leistung),
        authority: name_in(leser),
        fee: shared.outbox.remembered_fee(application_id),
        matter: Matter::of(between(leistung, "<code>", "</code>").unwrap_or_default()),
        receipt: Receipt {
            message_id: field("nachrichtenUUID")?.to_owned(),
            application_id: field("antragsID")?.to_owned(),
            ..receipt.clone()
        },
        answered: true,
    })
}

/// The Hundesteuer of the demo (local key 99999003000000): the decision sets the tax,
/// 108 € a year per dog as in Dresden's Hundesteuersatzung, for the citizen to pay in
/// the portal. Other services' decisions set none.
fn demo_fee(service_key: &str, xml: &str) -> Option<kopplung_transformers::receipt::DecisionFee> {
    if service_key != "99999003000000" {
        return None;
    }
    let dogs = xml.matches("<hund>").count().max(1);
    Some(kopplung_transformers::receipt::DecisionFee {
        amount: format!("{}.00", 108 * dogs),
        purpose: format!(
            "Hundesteuer für {dogs} {}",
            if dogs == 1 { "Hund" } else { "Hunde" }
        ),
    })
}
