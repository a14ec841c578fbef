//! Answering the hub: signed receipts and, later, the decision (Bescheid), on the reply
//! queue or over the hub's HTTP API.

use std::sync::Arc;
use std::time::Duration;

use kopplung_adapters::registry::Transport;
use kopplung_transformers::receipt::{self, Receipt, ReceiptEvent};
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Confirmation};

use crate::bescheid;
use crate::open::{Accepted, Outcome, receipt_id};
use crate::setup::{Procedure, Shared};

/// The decision follows after the configured delay, independent of the message.
pub(crate) fn later_decide(
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
pub(crate) fn sign(
    procedure: &Procedure,
    event: &Receipt,
) -> Result<(Vec<u8>, &'static str), Outcome> {
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
pub(crate) async fn send(
    procedure: &Procedure,
    shared: &Shared,
    channel: Option<&lapin::Channel>,
    event: &Receipt,
) -> Result<(), Outcome> {
    let (signed, content_type) = sign(procedure, event)?;
    if let (Some(queue), Some(channel)) = (procedure.delivery.reply_queue(), channel) {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
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
