//! The conformance kit: a battery of messages a procedure's receiver must handle as
//! `docs/vendors.md` says — take what is genuine (with its signed receipt), refuse what
//! is forged or broken, reject with a signed receipt what is genuine but wrong — sent
//! through the procedure's own transport, each answer graded: at once where the
//! transport's answer carries the receiver's verdict (HTTP push), else from the signed
//! answers that come back on the procedure's answer channels (`grade.rs`).

use bytes::Bytes;
use kopplung_adapters::OutboundMessage;
use kopplung_transformers::fixtures::fixture_context;
use kopplung_transformers::jose::JoseSealer;
use kopplung_transformers::mapping::{Mapping, Nachricht};
use kopplung_transformers::pki::{self, PkiLayout, Role, Validity};
use kopplung_transformers::seal::Sealer;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use uuid::Uuid;

use crate::Envelope;
use crate::keyring::Keyring;

mod grade;
pub use grade::{Answers, grade, grade_later};

/// Why no battery could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("procedure {0} is not configured")]
    UnknownProcedure(String),
    #[error("procedure {0} is read in the clerk inbox: nothing to test")]
    Manual(String),
    #[error("procedure {procedure}: {reason}")]
    NoCertificate { procedure: String, reason: String },
    #[error("{0}")]
    Fixture(String),
    #[error(transparent)]
    Transformers(#[from] kopplung_transformers::Error),
}

/// What a receiver must do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Take it (2xx), with a signed `accept` receipt if it answers with one.
    Accept,
    /// The same message again: take it, with the same receipt id as the first time.
    AcceptAgain,
    /// Refuse it (a 4xx): it is forged, broken or not for this receiver.
    Refuse,
    /// Take it and answer with a signed `reject` receipt naming the problem.
    Reject,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "ack with a signed accept",
            Self::AcceptAgain => "ack, the same receipt id",
            Self::Refuse => "refuse (4xx)",
            Self::Reject => "ack with a signed reject",
        }
    }

    /// The same, for a transport whose answers come later.
    pub fn as_str_later(self) -> &'static str {
        match self {
            Self::Accept => "a signed accept",
            Self::AcceptAgain => "no new receipt id (the same receipt, or none again)",
            Self::Refuse => "no receipt and no acknowledgement",
            Self::Reject => "a signed reject",
        }
    }
}

/// One message of the battery.
pub struct Case {
    pub name: &'static str,
    /// What the case is, for the report.
    pub what: &'static str,
    pub expect: Expect,
    pub message: OutboundMessage,
}

/// The grade of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub case: &'static str,
    pub passed: bool,
    pub expected: &'static str,
    /// What the receiver did, in words.
    pub got: String,
}

/// What the battery is made from: the keys in force, the procedure, one of its services'
/// mappings with an example input, and (for the expired-signer case) the demo CA.
pub struct Setup<'a> {
    pub keyring: &'a Keyring,
    pub procedure: &'a str,
    pub mapping: &'a Mapping,
    pub fixture_input: &'a std::path::Path,
    /// The PKI folder whose `ca.key` may issue an expired signer; `None`: that case is
    /// left out (production CAs are not at hand).
    pub demo_ca: Option<PkiLayout>,
}

/// The messages of the battery, each with fresh ids (a receiver may keep them all).
pub fn battery(setup: &Setup<'_>) -> Result<Vec<Case>, ConformanceError> {
    let keys = setup.keyring.keys();
    let recipient = keys
        .recipients
        .get(setup.procedure)
        .ok_or_else(|| ConformanceError::UnknownProcedure(setup.procedure.to_owned()))?;
    let envelope = recipient
        .envelope
        .ok_or_else(|| ConformanceError::Manual(setup.procedure.to_owned()))?;
    let certificate = keys
        .recipient_certificate(recipient, setup.keyring.clock())
        .map_err(|reason| ConformanceError::NoCertificate {
            procedure: setup.procedure.to_owned(),
            reason,
        })?
        .clone();
    let hub = &keys.signer(setup.keyring.clock()).sealer;
    let seal = |xml: &str, signer: &Sealer| -> Result<Vec<u8>, ConformanceError> {
        Ok(match envelope {
            Envelope::Cms => {
                signer.seal_at(xml.as_bytes(), &certificate, setup.keyring.clock().now())?
            }
            Envelope::Jose => JoseSealer::new(
                signer.certificate().clone(),
                signer.key().clone(),
                Vec::new(),
            )?
            .seal(xml.as_bytes(), &certificate)?
            .into_bytes(),
        })
    };
    let message_type = setup.mapping.info.message.message_type.clone();
    let message = |xml: &Ids, body: Vec<u8>, message_type: &str| OutboundMessage {
        message_id: xml.message.to_string(),
        correlation_id: xml.application.to_string(),
        message_type: message_type.to_owned(),
        content_type: envelope.content_type().into(),
        headers: vec![
            ("application_id".into(), xml.application.to_string()),
            ("service".into(), setup.mapping.info.key.clone()),
            ("procedure".into(), setup.procedure.to_owned()),
        ],
        body: Bytes::from(body),
    };
    let render = |ids: &Ids| -> Result<String, ConformanceError> {
        let mut context = fixture_context(setup.mapping, setup.fixture_input)
            .map_err(|e| ConformanceError::Fixture(e.to_string()))?;
        context.nachricht = Nachricht::new(
            &setup.mapping.info.message,
            ids.message.to_string(),
            context.nachricht.erstellungszeitpunkt.clone(),
            "konformitaet".into(),
        );
        context.antrag.id = ids.application.to_string();
        context.leser = recipient.leser.clone();
        // No claim checks: the battery's messages have nothing stored at the hub.
        context.anlagen.retain(|anlage| anlage.abruf.is_none());
        Ok(setup.mapping.render(&context)?)
    };

    let mut cases = Vec::new();
    let valid = Ids::new();
    let valid_xml = render(&valid)?;
    let sealed = seal(&valid_xml, hub)?;
    cases.push(Case {
        name: "valid",
        what: "a genuine message",
        expect: Expect::Accept,
        message: message(&valid, sealed.clone(), &message_type),
    });
    cases.push(Case {
        name: "redelivered",
        what: "the same message again (same message id, same bytes)",
        expect: Expect::AcceptAgain,
        message: message(&valid, sealed, &message_type),
    });

    let ids = Ids::new();
    let mut tampered = seal(&render(&ids)?, hub)?;
    flip_in_ciphertext(&mut tampered, envelope);
    cases.push(Case {
        name: "tampered-ciphertext",
        what: "one byte of the ciphertext changed",
        expect: Expect::Refuse,
        message: message(&ids, tampered, &message_type),
    });

    let ids = Ids::new();
    let (stranger, key) = pki::self_signed("kopplung Hub", Role::Signer, Validity::days(30))?;
    cases.push(Case {
        name: "wrong-signer",
        what: "signed by a key no trusted CA vouches for",
        expect: Expect::Refuse,
        message: message(
            &ids,
            seal(&render(&ids)?, &sealer(stranger, key)?)?,
            &message_type,
        ),
    });

    if let Some(layout) = &setup.demo_ca {
        let ids = Ids::new();
        let (expired, key) = pki::issue_key_from_demo_ca(
            layout,
            "kopplung Hub",
            Role::Signer,
            Validity::relative(-30, -1),
        )?;
        cases.push(Case {
            name: "expired-signer",
            what: "signed with a certificate of the trusted CA that expired yesterday",
            expect: Expect::Refuse,
            message: message(
                &ids,
                seal(&render(&ids)?, &sealer(expired, key)?)?,
                &message_type,
            ),
        });
    }

    let ids = Ids::new();
    let invalid = with_unknown_element(&render(&ids)?);
    cases.push(Case {
        name: "schema-invalid",
        what: "genuine, but the XML does not validate against its schema",
        expect: Expect::Reject,
        message: message(&ids, seal(&invalid, hub)?, &message_type),
    });

    let ids = Ids::new();
    cases.push(Case {
        name: "unknown-message-type",
        what: "genuine, of a message type the receiver does not know",
        expect: Expect::Reject,
        message: message(
            &ids,
            seal(&render(&ids)?, hub)?,
            "konformitaet.unbekannt.0101",
        ),
    });

    let ids = Ids::new();
    cases.push(Case {
        name: "oversized",
        what: "a body of 20 MiB, larger than any message of the hub",
        expect: Expect::Refuse,
        message: message(&ids, vec![b'A'; 20 << 20], &message_type),
    });
    Ok(cases)
}

/// A message id and application id of their own for each case.
struct Ids {
    message: Uuid,
    application: Uuid,
}

impl Ids {
    fn new() -> Self {
        Self {
            message: Uuid::new_v4(),
            application: Uuid::new_v4(),
        }
    }
}

fn sealer(certificate: X509, key: PKey<Private>) -> Result<Sealer, ConformanceError> {
    Ok(Sealer::new(certificate, key)?)
}

/// Changes one byte well inside the ciphertext: near the end of a CMS structure (before
/// the 16-byte tag), in the middle of a JWE's ciphertext part.
fn flip_in_ciphertext(sealed: &mut [u8], envelope: Envelope) {
    let at = match envelope {
        Envelope::Cms => sealed.len().saturating_sub(64),
        Envelope::Jose => {
            let dots: Vec<usize> = sealed
                .iter()
                .enumerate()
                .filter_map(|(i, b)| (*b == b'.').then_some(i))
                .collect();
            match dots.as_slice() {
                [_, _, third, fourth] => third + (fourth - third) / 2,
                _ => sealed.len() / 2,
            }
        }
    };
    if let Some(byte) = sealed.get_mut(at) {
        // Stays a base64url letter in a JWE.
        *byte = if *byte == b'A' { b'B' } else { b'A' };
    }
}

/// The XML with an element its schema does not allow, right inside the root.
fn with_unknown_element(xml: &str) -> String {
    let root = xml
        .match_indices('<')
        .map(|(i, _)| i)
        .find(|&i| !xml[i..].starts_with("<?") && !xml[i..].starts_with("<!"));
    match root.and_then(|start| xml[start..].find('>').map(|end| start + end + 1)) {
        Some(inside) => format!(
            "{}<konformitaetspruefung>unerwartet</konformitaetspruefung>{}",
            &xml[..inside],
            &xml[inside..]
        ),
        None => xml.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_element_goes_inside_the_root() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- c --><a:root xmlns:a=\"x\"><b/></a:root>";
        assert_eq!(
            with_unknown_element(xml),
            "<?xml version=\"1.0\"?>\n<!-- c --><a:root xmlns:a=\"x\"><konformitaetspruefung>unerwartet</konformitaetspruefung><b/></a:root>"
        );
    }

    #[test]
    fn a_flipped_byte_lands_in_the_jwe_ciphertext() {
        let mut jwe = b"aGVhZA.a2V5.aXY.Y2lwaGVydGV4dA.dGFn".to_vec();
        flip_in_ciphertext(&mut jwe, Envelope::Jose);
        let parts: Vec<&[u8]> = jwe.split(|b| *b == b'.').collect();
        assert_ne!(parts[3], b"Y2lwaGVydGV4dA");
        assert_eq!((parts[0], parts[4]), (&b"aGVhZA"[..], &b"dGFn"[..]));
    }
}
