//! Verifying a procedure's signed receipts and events with the keys in force: CMS
//! SignedData or a Security Event Token (the hub's own form or FIT-Connect's), signed
//! with the procedure's receipt certificate.

use kopplung_transformers::receipt::{self, Receipt};
use openssl::x509::X509;

use super::Keyring;
use crate::Envelope;

/// Why a receipt was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("no procedure {0}")]
    UnknownProcedure(String),
    #[error("procedure {0} has no receipt certificate configured")]
    NoCertificate(String),
    #[error("{0}")]
    Refused(String),
    /// The signature verified, but the signed content is no receipt.
    #[error("{0}")]
    Malformed(String),
}

impl Keyring {
    /// Verifies a procedure's signed receipt in its profile: CMS SignedData (`cms`) or a
    /// Security Event Token (`jose`), signed with the procedure's receipt certificate,
    /// which chains to the trust anchors and is valid now. The receipt must name the
    /// procedure it came from.
    pub fn verify_receipt(&self, procedure: &str, body: &[u8]) -> Result<Receipt, ReceiptError> {
        let keys = self.keys();
        let recipient = keys
            .recipients
            .get(procedure)
            .ok_or_else(|| ReceiptError::UnknownProcedure(procedure.to_owned()))?;
        if recipient.receipt_certificates.is_empty() {
            return Err(ReceiptError::NoCertificate(procedure.to_owned()));
        }
        // During the procedure's rotation either of its signing certificates will do;
        // the reason given is the current one's.
        // A procedure the hub seals nothing for (a FIT-Connect subscriber) signs its
        // events as FIT-Connect does, as Security Event Tokens; a compact JWS is text.
        let jose = match recipient.envelope {
            Some(envelope) => envelope == Envelope::Jose,
            None => std::str::from_utf8(body).is_ok_and(|text| text.trim().split('.').count() == 3),
        };
        let verify = |certificate: &X509| match jose {
            false => receipt::verify_cms(body, certificate, &keys.anchors),
            true => std::str::from_utf8(body)
                .map_err(|_| {
                    kopplung_transformers::Error::ReceiptRefused("not a compact JWS".into())
                })
                .and_then(|token| receipt::verify_set(token.trim(), certificate, &keys.anchors)),
        };
        let mut refused = None;
        let mut verified = None;
        for certificate in &recipient.receipt_certificates {
            match verify(certificate) {
                Ok(receipt) => {
                    verified = Some(receipt);
                    break;
                }
                // The signature verified with this certificate: the content is at fault.
                Err(kopplung_transformers::Error::ReceiptMalformed(reason)) => {
                    return Err(ReceiptError::Malformed(reason));
                }
                Err(e) => {
                    refused.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let receipt = verified.ok_or_else(|| ReceiptError::Refused(refused.unwrap_or_default()))?;
        // FIT-Connect's events (they name no message) are issued by the destination,
        // whose id the FIT-Connect edge compared before; the hub's own name the procedure.
        let fit_connect = receipt.message_id.is_empty();
        if receipt.procedure != procedure && !fit_connect {
            return Err(ReceiptError::Refused(format!(
                "the receipt names procedure {}, not {procedure}",
                receipt.procedure
            )));
        }
        Ok(receipt)
    }
}

/// The keyring verifies the events the core's events service takes.
impl kopplung_core::events::EventVerifier for Keyring {
    fn verify(
        &self,
        procedure: &str,
        signed: &[u8],
    ) -> Result<kopplung_core::events::VerifiedEvent, kopplung_core::events::Unverified> {
        use kopplung_core::events::{EventKind, SignedDocument, Unverified, VerifiedEvent};
        use kopplung_transformers::receipt::ReceiptEvent;
        let receipt = self
            .verify_receipt(procedure, signed)
            .map_err(|e| match e {
                ReceiptError::UnknownProcedure(_) => Unverified::UnknownProcedure,
                e @ ReceiptError::NoCertificate(_) => Unverified::NoCertificate(e.to_string()),
                ReceiptError::Refused(reason) => Unverified::Refused(reason),
                ReceiptError::Malformed(reason) => Unverified::Malformed(reason),
            })?;
        // Whatever the profile and the time of issue: the same event sent again (or over
        // another channel) is recognised as a duplicate.
        let content_sha256 = receipt.content_sha256();
        Ok(VerifiedEvent {
            receipt_id: receipt.receipt_id,
            message_id: receipt.message_id,
            application_id: receipt.application_id,
            kind: match receipt.event {
                ReceiptEvent::Accept => EventKind::Accept,
                ReceiptEvent::Reject => EventKind::Reject,
                ReceiptEvent::InProgress => EventKind::InProgress,
                ReceiptEvent::Query => EventKind::Query,
                ReceiptEvent::Decision => EventKind::Decision,
            },
            message: receipt.message,
            document: receipt.document.map(|d| SignedDocument {
                filename: d.filename,
                media_type: d.media_type,
                content_base64: d.content_base64,
            }),
            appeal: receipt.appeal.map(|a| kopplung_core::events::SignedAppeal {
                text: a.text,
                deadline: a.deadline,
            }),
            fee: receipt.fee.map(|f| kopplung_core::events::SignedFee {
                amount: f.amount,
                purpose: f.purpose,
            }),
            problem_types: receipt.problems.into_iter().map(|p| p.kind).collect(),
            issued_at: receipt.issued_at,
            content_sha256,
        })
    }
}
