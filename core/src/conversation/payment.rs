//! A payment record (Zahlungsmeldung): the client reports that the citizen paid a fee —
//! the service's fee at submission, or one a decision set — so that the authority's
//! accounting (HKR) can book it. The record travels to the accounting procedure the
//! application's procedure names (`accounting` in the routing table), or to that
//! procedure itself.

use kopplung_forms::FieldError;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::events::fee_of;

/// The payment as the client reports it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PaymentIn {
    /// Euros with two decimals, `"108.00"`.
    amount: String,
    /// Verwendungszweck.
    purpose: String,
    /// The payment provider's reference.
    reference: String,
    /// When it was paid (RFC 3339).
    paid_at: String,
}

/// Which procedure books a procedure's payments.
pub trait Accounting: Send + Sync {
    /// The accounting (HKR) procedure of `procedure`, if it names one.
    fn accounting_of(&self, procedure: &str) -> Option<String>;
}

/// The payment as the message carries it (`zahlung` of the stored follow-up), or its
/// field errors, in German.
pub(super) fn checked(payment: Option<PaymentIn>, errors: &mut Vec<FieldError>) -> Option<Value> {
    let Some(payment) = payment else {
        errors.push(FieldError::new(
            "payment",
            "Eine Zahlungsmeldung braucht die Zahlung (amount, purpose, reference, paid_at).",
        ));
        return None;
    };
    let before = errors.len();
    // The Verwendungszweck goes into the XML: datatype C, as every text there.
    let purpose = match kopplung_forms::text::normalise(&payment.purpose) {
        Ok(purpose) => purpose,
        Err(problem) => {
            errors.push(FieldError::new("payment.purpose", problem));
            payment.purpose.clone()
        }
    };
    let fee = fee_of(&payment.amount, &purpose);
    if let Err(problem) = &fee {
        errors.push(FieldError::new("payment", problem.reason()));
    }
    let reference = payment.reference.trim();
    if reference.is_empty()
        || reference.len() > 255
        || !reference.bytes().all(|b| b.is_ascii_graphic())
    {
        errors.push(FieldError::new(
            "payment.reference",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    let paid_at = OffsetDateTime::parse(&payment.paid_at, &Rfc3339);
    if paid_at.is_err() {
        errors.push(FieldError::new(
            "payment.paid_at",
            "must be a time in RFC 3339, e.g. 2026-12-06T10:15:00Z",
        ));
    }
    let (Ok(fee), Ok(paid_at)) = (fee, paid_at) else {
        return None;
    };
    if errors.len() > before {
        return None;
    }
    Some(json!({
        "betrag": format!("{}.{:02}", fee.cents / 100, fee.cents % 100),
        "verwendungszweck": fee.purpose,
        "referenz": reference,
        "zeitpunkt": paid_at.format(&Rfc3339).unwrap_or_default(),
    }))
}
