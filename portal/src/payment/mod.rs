//! Fees: the payment step against a payment provider following the XBezahldienste flow
//! (create a payment transaction → the citizen pays on the provider's page → the portal
//! asks the provider for the status → the payment reference is kept and goes into the
//! message). The provider is called over HTTP like a real one; `provider` is the
//! simulated one the portal serves itself under `/xbezahldienste`.

pub mod decision;
mod discard;
pub mod provider;
pub mod record;
pub mod refund;

pub use discard::discard;

use std::time::Duration;

use axum::extract::Path;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::Error;
use crate::forms::{drafts, service_of};
use crate::peer::Peer;
use crate::web::{Page, Posted, Visit};
use kopplung_web::shell::see_other;

/// The provider, called with the bearer secret the portal and it share.
pub struct PaymentClient(Peer);

/// The provider's answer about one transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub payment_transaction_id: String,
    /// `INITIAL`, `PAYED`, `CANCELED`, `FAILED`, `REFUNDED`.
    pub status: String,
    /// The amount in cents the provider holds for the transaction.
    #[serde(default)]
    pub gross_amount: Option<u64>,
    pub payment_information: PaymentInformation,
    /// Set once the whole amount went back (`REFUNDED`).
    #[serde(default)]
    pub refund_reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInformation {
    pub transaction_url: String,
    #[serde(default)]
    pub payment_reference: Option<String>,
}

impl Transaction {
    /// Paid in full: `PAYED`, with a payment reference, for exactly `amount` (`"5.00"`).
    pub fn paid(&self, amount: &str) -> bool {
        self.status == "PAYED"
            && self.payment_information.payment_reference.is_some()
            && self.gross_amount.is_some()
            && self.gross_amount == cents(amount)
    }
}

/// What became of the transaction started earlier for a fee.
pub enum Earlier {
    /// Paid in full: the return page records it.
    Paid,
    /// Still open at the provider: its page is used again, so that a second tab or a
    /// second click pays the same transaction, never a second one.
    Open(String),
    /// None, or cancelled, failed or for another amount: a new one may start.
    Gone,
}

/// Asks the provider about `stored`, the transaction started earlier for `amount`.
pub async fn earlier(
    state: &crate::Shared,
    stored: Option<&str>,
    amount: &str,
) -> Result<Earlier, Error> {
    let Some(id) = stored else {
        return Ok(Earlier::Gone);
    };
    let transaction = state.payments.status(id).await?;
    Ok(if transaction.paid(amount) {
        Earlier::Paid
    } else if transaction.status == "INITIAL" && transaction.gross_amount == cents(amount) {
        Earlier::Open(transaction.payment_information.transaction_url)
    } else {
        Earlier::Gone
    })
}

/// `"30.70"` → 3070 cents.
pub fn cents(amount: &str) -> Option<u64> {
    let (euros, cents) = amount.split_once('.').unwrap_or((amount, "0"));
    let cents = format!("{cents:0<2}");
    if cents.len() != 2 {
        return None;
    }
    Some(euros.parse::<u64>().ok()? * 100 + cents.parse::<u64>().ok()?)
}

impl PaymentClient {
    pub fn new(base: &str, secret: &str) -> Result<Self, Error> {
        Peer::new(base, secret, Duration::from_secs(20))
            .map(Self)
            .map_err(|e| Error::Payment(e.to_string()))
    }

    pub async fn create(
        &self,
        request_id: &str,
        amount: &str,
        purpose: &str,
        redirect_url: &str,
    ) -> Result<Transaction, Error> {
        let gross = cents(amount).ok_or_else(|| Error::Payment(format!("bad amount {amount}")))?;
        let response = self
            .0
            .request(Method::POST, "/api/v1/paymenttransaction")
            .json(&json!({
                "requestId": request_id,
                "requestTimestamp": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "currency": "EUR",
                "grossAmount": gross,
                "purpose": purpose,
                "description": purpose,
                "redirectUrl": redirect_url,
            }))
            .send()
            .await
            .map_err(|e| Error::Payment(e.to_string()))?;
        if response.status().as_u16() != 201 {
            return Err(Error::Payment(format!("create: {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| Error::Payment(e.to_string()))
    }

    pub async fn status(&self, id: &str) -> Result<Transaction, Error> {
        self.lookup(id)
            .await?
            .ok_or_else(|| Error::Payment("status: no such transaction".into()))
    }

    /// The transaction as the provider holds it, `None` where it knows none.
    pub async fn lookup(&self, id: &str) -> Result<Option<Transaction>, Error> {
        self.call(Method::GET, id, "").await
    }

    /// Cancels an open transaction; the answer is its state afterwards (still `PAYED`
    /// where it was paid meanwhile: then it must be refunded).
    pub async fn cancel(&self, id: &str) -> Result<Option<Transaction>, Error> {
        self.call(Method::POST, id, "/cancel").await
    }

    /// Refunds a paid transaction in full; the answer is its state afterwards
    /// (`REFUNDED` with `refundReference`).
    pub async fn refund(&self, id: &str) -> Result<Option<Transaction>, Error> {
        self.call(Method::POST, id, "/refund").await
    }

    /// One call about transaction `id`. The provider's answer carries the state; a step
    /// that does not apply (409) answers the unchanged one, which the caller reads.
    async fn call(
        &self,
        method: Method,
        id: &str,
        action: &str,
    ) -> Result<Option<Transaction>, Error> {
        let path = format!(
            "/api/v1/paymenttransaction/{}{action}",
            crate::router_client::encode(id)
        );
        let response = self
            .0
            .request(method, &path)
            .send()
            .await
            .map_err(|e| Error::Payment(e.to_string()))?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 | 409 => response
                .json()
                .await
                .map(Some)
                .map_err(|e| Error::Payment(e.to_string())),
            other => Err(Error::Payment(format!("transaction{action}: {other}"))),
        }
    }
}

/// `POST /entwurf/{id}/bezahlen`: opens a payment transaction and sends the citizen to
/// the provider's page.
pub async fn pay(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(_): Posted,
) -> Page {
    let draft = drafts::load_owned(&state, &visitor, &id).await?;
    if draft.submitted() {
        return Ok(see_other(&format!("/antraege/{}", draft.id)));
    }
    let service = service_of(&state, &draft.service).await?;
    // What these entries owe (three certificates: three times the fee).
    let Some(fee) = service.fee.as_ref().map(|f| f.due(&draft.data)) else {
        return Ok(see_other(&format!("/entwurf/{}/pruefen", draft.id)));
    };
    if draft.payment_reference.is_some() {
        return Ok(see_other(&format!("/entwurf/{}/pruefen", draft.id)));
    }
    if service
        .form()?
        .validate_submitted(&draft.data, crate::today())
        .is_err()
    {
        return Ok(see_other(&format!("/entwurf/{}/pruefen", draft.id)));
    }
    match earlier(&state, draft.payment_transaction.as_deref(), &fee.betrag).await? {
        Earlier::Paid => return Ok(see_other(&format!("/entwurf/{}/zahlung", draft.id))),
        Earlier::Open(page) => return Ok(see_other(&page)),
        Earlier::Gone => {}
    }
    let transaction = state
        .payments
        .create(
            &draft.id,
            &fee.betrag,
            &format!("{}: {}", service.name, fee.beschreibung),
            &format!("{}/entwurf/{}/zahlung", state.config.public_url, draft.id),
        )
        .await?;
    drafts::set_payment(&state, &draft.id, &transaction.payment_transaction_id, None).await?;
    tracing::info!(draft = %draft.id, transaction = %transaction.payment_transaction_id, "payment started");
    Ok(see_other(&transaction.payment_information.transaction_url))
}

/// `GET /entwurf/{id}/zahlung`: back from the provider; the portal asks it for the status.
pub async fn returned(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let draft = drafts::load_owned(&state, &visitor, &id).await?;
    if draft.submitted() {
        return Ok(see_other(&format!("/antraege/{}", draft.id)));
    }
    let Some(transaction) = &draft.payment_transaction else {
        return Ok(see_other(&format!("/entwurf/{}/pruefen", draft.id)));
    };
    let service = service_of(&state, &draft.service).await?;
    let Some(fee) = service.fee.as_ref().map(|f| f.due(&draft.data)) else {
        return Ok(see_other(&format!("/entwurf/{}/pruefen", draft.id)));
    };
    let status = state.payments.status(transaction).await?;
    if status.paid(&fee.betrag) {
        drafts::set_payment(
            &state,
            &draft.id,
            transaction,
            status.payment_information.payment_reference.as_deref(),
        )
        .await?;
        tracing::info!(draft = %draft.id, "payment confirmed by the provider");
        Ok(see_other(&format!("/entwurf/{}/pruefen?bezahlt", draft.id)))
    } else {
        let outcome = match status.status.as_str() {
            "CANCELED" => "abgebrochen",
            "FAILED" => "fehlgeschlagen",
            _ => "offen",
        };
        Ok(see_other(&format!(
            "/entwurf/{}/pruefen?zahlung={outcome}",
            draft.id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::cents;

    #[test]
    fn amounts_in_cents() {
        assert_eq!(cents("30.70"), Some(3070));
        assert_eq!(cents("5.00"), Some(500));
        assert_eq!(cents("12"), Some(1200));
        assert_eq!(cents("1.5"), Some(150));
        assert_eq!(cents("1.234"), None);
        assert_eq!(cents("abc"), None);
    }
}
