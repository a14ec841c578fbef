//! Answering the hub: signed receipts and, later, the decision (Bescheid), on the reply
//! queue, as a file in the incoming folder, or over the hub's HTTP API.

use std::sync::Arc;
use std::time::Duration;

use kopplung_adapters::registry::Transport;
use kopplung_transformers::receipt::{self, Receipt, ReceiptEvent};
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Confirmation};

use crate::bescheid;
use crate::open::{Accepted, Matter, Outcome, receipt_id};
use crate::outbox::{Pending, backoff, now_rfc3339};
use crate::setup::{Procedure, Shared};

/// The decision follows after the configured delay, independent of the message. It is
/// written to the outbox before this returns (so before the message is acknowledged),
/// and sent from there until a hub takes it: a decision is never dropped. `Err` if it
/// cannot be stored; then the message must stay unacknowledged.
pub(crate) fn later_decide(
    procedure: &Arc<Procedure>,
    shared: &Arc<Shared>,
    channel: Option<lapin::Channel>,
    accepted: Option<Accepted>,
) -> Result<(), Outcome> {
    let (Some(accepted), Some(delay), Some(writer)) =
        (accepted, shared.decision_delay, &shared.bescheid)
    else {
        return Ok(());
    };
    let delay = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX);
    let asks = shared.ask_first.contains(&procedure.id) && !accepted.answered;
    let event = if asks {
        // What the decision needs after the answer: the fee, computed from this message.
        let application = &accepted.receipt.application_id;
        shared
            .outbox
            .remember_fee(application, accepted.fee.as_ref())
            .map_err(|e| Outcome::TryLater(format!("question: {e}")))?;
        Ok(question(procedure, accepted))
    } else {
        decision(procedure, writer, accepted)
    };
    let event = event.map_err(|e| {
        tracing::error!(procedure = %procedure.id, error = %e, "decision not written");
        Outcome::TryLater(format!("decision: {e}"))
    })?;
    let pending = Pending {
        event,
        due_unix: time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_add(delay),
    };
    shared.outbox.put(&pending).map_err(|e| {
        tracing::error!(procedure = %procedure.id, error = %e, "decision not stored in the outbox");
        Outcome::TryLater(format!("outbox: {e}"))
    })?;
    deliver(procedure.clone(), shared.clone(), channel, pending);
    Ok(())
}

/// The question (Rückfrage) of a procedure that asks before it decides.
fn question(procedure: &Procedure, accepted: Accepted) -> Receipt {
    let number = &accepted.receipt_number;
    Receipt {
        receipt_id: receipt_id(
            &procedure.id,
            &accepted.receipt.message_id,
            ReceiptEvent::Query,
        ),
        event: ReceiptEvent::Query,
        problems: Vec::new(),
        message: Some(format!(
            "Rückfrage zu {} {number}: {} Antworten Sie bitte über das Portal.",
            Letter::of(&accepted).yours_dative,
            if accepted.matter == Matter::Report {
                "Bitte ergänzen Sie Ihre Angaben, zum Beispiel mit einem Foto oder einer genaueren Beschreibung der Stelle."
            } else {
                "Bitte ergänzen Sie Ihre Angaben oder reichen Sie die fehlenden Unterlagen nach, zum Beispiel als Foto oder PDF."
            }
        )),
        issued_at: now_rfc3339(),
        ..accepted.receipt
    }
}

/// The decision (Bescheid) with a generated PDF/A; for a report the closing letter
/// (Abschlussmitteilung) instead: a report is answered, not decided, so it carries no
/// Rechtsbehelfsbelehrung.
fn decision(
    procedure: &Procedure,
    writer: &bescheid::Writer,
    accepted: Accepted,
) -> Result<Receipt, String> {
    use base64::Engine;
    let number = &accepted.receipt_number;
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    let letter = Letter::of(&accepted);
    let mut lines = vec![
        accepted.authority.clone(),
        String::new(),
        format!(
            "{}: {}, Vorgangsnummer {number}",
            letter.yours, accepted.service
        ),
        format!(
            "Datum: {:02}.{:02}.{}",
            today.day(),
            u8::from(today.month()),
            today.year()
        ),
        String::new(),
        letter.outcome.to_owned(),
        "Dieses Schreiben ist ein Beispiel aus dem Demonstrationsportal und hat keine Rechtswirkung.".to_owned(),
    ];
    if let Some(fee) = &accepted.fee {
        lines.push(format!(
            "Wir setzen {} € fest ({}). Bitte zahlen Sie den Betrag innerhalb eines Monats nach Bekanntgabe dieses Bescheids; Sie können ihn im Serviceportal online bezahlen.",
            fee.amount.replace('.', ","),
            fee.purpose
        ));
    }
    if accepted.matter.decided() {
        lines.extend([
            String::new(),
            "Rechtsbehelfsbelehrung".to_owned(),
            appeal_text(&accepted.authority),
        ]);
    }
    let document = writer.pdf(letter.title, &lines, now)?;
    Ok(Receipt {
        receipt_id: receipt_id(
            &procedure.id,
            &accepted.receipt.message_id,
            ReceiptEvent::Decision,
        ),
        event: ReceiptEvent::Decision,
        problems: Vec::new(),
        message: Some(format!(
            "{} zu {} {number}: {}",
            letter.title, letter.yours_dative, letter.outcome
        )),
        document: Some(receipt::EventDocument {
            filename: format!("{}-{number}.pdf", letter.file),
            media_type: "application/pdf".into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(&document),
        }),
        fee: accepted.fee.clone(),
        appeal: accepted.matter.decided().then(|| receipt::Appeal {
            text: appeal_text(&accepted.authority),
            deadline: kopplung_forms::deadline::appeal_deadline(today).to_string(),
        }),
        issued_at: now_rfc3339(),
        ..accepted.receipt
    })
}

/// The words of the demo's final letter: a decision on an application, the closing
/// letter of a report, or the confirmation of a registration.
struct Letter {
    title: &'static str,
    file: &'static str,
    yours: &'static str,
    yours_dative: &'static str,
    outcome: &'static str,
}

impl Letter {
    fn of(accepted: &Accepted) -> Self {
        match accepted.matter {
            Matter::Report => Letter {
                title: "Abschlussmitteilung",
                file: "abschlussmitteilung",
                yours: "Ihre Meldung",
                yours_dative: "Ihrer Meldung",
                outcome: "Vielen Dank für Ihre Meldung. Wir haben die Stelle geprüft und die Beseitigung des Mangels veranlasst. Ihre Meldung ist damit erledigt.",
            },
            Matter::Residence => Letter {
                title: "Meldebestätigung",
                file: "meldebestaetigung",
                yours: "Ihre Anmeldung",
                yours_dative: "Ihrer Anmeldung",
                outcome: "Sie sind mit Ihrer neuen Wohnung im Melderegister angemeldet. Diese Meldebestätigung (§ 24 Abs. 2 Bundesmeldegesetz) weist Ihre Anmeldung nach; bewahren Sie sie bitte auf.",
            },
            Matter::Trade => Letter {
                title: "Empfangsbescheinigung",
                file: "empfangsbescheinigung",
                yours: "Ihre Anmeldung",
                yours_dative: "Ihrer Anmeldung",
                outcome: "Wir bestätigen den Empfang Ihrer Gewerbeanzeige (§ 15 Abs. 1 Gewerbeordnung). Ihr Gewerbe ist damit angemeldet; bewahren Sie diese Bescheinigung bitte auf.",
            },
            Matter::Order => Letter {
                title: "Bescheid",
                file: "bescheid",
                yours: "Ihre Bestellung",
                yours_dative: "Ihrer Bestellung",
                outcome: "Ihre Bestellung wird ausgeführt: Die bestellten Urkunden werden Ihnen in den nächsten Tagen per Post zugesandt.",
            },
            Matter::Application => Letter {
                title: "Bescheid",
                file: "bescheid",
                yours: "Ihr Antrag",
                yours_dative: "Ihrem Antrag",
                outcome: "Ihrem Antrag wird stattgegeben.",
            },
        }
    }
}

/// The demo decision's Rechtsbehelfsbelehrung.
fn appeal_text(authority: &str) -> String {
    format!(
        "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden. Der Widerspruch ist schriftlich, zur Niederschrift oder elektronisch über das Serviceportal bei der Behörde einzulegen, die diesen Bescheid erlassen hat: {authority}."
    )
}

/// An event signed in the procedure's profile, with its content type.
pub(crate) fn sign(
    procedure: &Procedure,
    event: &Receipt,
) -> Result<(Vec<u8>, &'static str), Outcome> {
    let signer = procedure.signer();
    let (signed, content_type) = if procedure.jose {
        (
            receipt::sign_set(event, &signer.cert, &signer.key).map(String::into_bytes),
            "application/secevent+jwt",
        )
    } else {
        (
            receipt::sign_cms(event, &signer.cert, &signer.key),
            "application/pkcs7-mime",
        )
    };
    let signed = signed.map_err(|e| Outcome::TryLater(e.to_string()))?;
    Ok((signed, content_type))
}

/// Signs an event and sends it: on the reply queue if the procedure has one (and a
/// channel is at hand), into the incoming folder of a `file` procedure, else by HTTP to
/// the first of the hub's instances that takes it.
/// Every failed attempt is logged once, at warn, with where it went, `attempt` and why.
pub(crate) async fn send(
    procedure: &Procedure,
    shared: &Shared,
    channel: Option<&lapin::Channel>,
    event: &Receipt,
    attempt: u32,
) -> Result<(), Outcome> {
    let (signed, content_type) = sign(procedure, event)?;
    if let (Some(queue), Some(channel)) = (procedure.delivery.reply_queue(), channel) {
        let published = async {
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
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        };
        return match published.await {
            Ok(()) => {
                tracing::info!(procedure = %procedure.id, message_id = %event.message_id, application_id = %event.application_id, event = ?event.event, %queue, "event sent on the reply queue");
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(procedure = %procedure.id, event = ?event.event, %queue, attempt, %reason, "event not taken by the reply queue");
                Err(Outcome::TryLater(format!("reply queue: {reason}")))
            }
        };
    }
    if let Some(folders) = &procedure.folders {
        return match crate::outbox::leave_answer(&folders.incoming, event, &signed, content_type) {
            Ok(file) => {
                tracing::info!(procedure = %procedure.id, message_id = %event.message_id, application_id = %event.application_id, event = ?event.event, file = %file.display(), "event left in the incoming folder");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(procedure = %procedure.id, event = ?event.event, attempt, error = %e, "event not written to the incoming folder");
                Err(Outcome::TryLater(format!("incoming folder: {e}")))
            }
        };
    }
    let mut last = String::from("no hub URL configured");
    for hub in &shared.hubs {
        match post(procedure, shared, hub, &signed, content_type).await {
            Ok(()) => {
                tracing::info!(procedure = %procedure.id, message_id = %event.message_id, application_id = %event.application_id, event = ?event.event, %hub, "event sent");
                return Ok(());
            }
            Err(Outcome::TryLater(reason)) => {
                tracing::warn!(procedure = %procedure.id, event = ?event.event, %hub, attempt, %reason, "event not taken by this hub instance");
                last = reason;
            }
            // The hub understood the event and will never take it: another instance of
            // the same hub would not either.
            Err(refused) => return Err(refused),
        }
    }
    Err(Outcome::TryLater(last))
}

/// POSTs a signed event to one hub instance.
async fn post(
    procedure: &Procedure,
    shared: &Shared,
    hub: &str,
    signed: &[u8],
    content_type: &str,
) -> Result<(), Outcome> {
    let url = format!("{hub}/api/v1/procedures/{}/events", procedure.id);
    let mut request = shared
        .http
        .post(&url)
        .header("content-type", content_type)
        // A hub that hangs must not hold the answer: the next instance is tried.
        .timeout(EVENT_TIMEOUT);
    // With its API token an event may carry a document (up to 16 MiB); without it the
    // hub reads at most 64 KiB.
    if let Some(token) = &procedure.api_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .body(signed.to_vec())
        .send()
        .await
        .map_err(|e| Outcome::TryLater(format!("not reachable: {}", error_chain(&e))))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status == reqwest::StatusCode::CONFLICT {
        // The hub has this receipt id already, or the application is final: taken. Only
        // a decision before its receipt is recorded is out of order: that comes later.
        let problem = response.text().await.unwrap_or_default();
        return if problem.contains("urn:kopplung:problem:event-out-of-order") {
            Err(Outcome::TryLater(format!(
                "hub answered {status}: not yet in order"
            )))
        } else {
            Ok(())
        };
    }
    if status.is_server_error()
        || status == reqwest::StatusCode::FORBIDDEN
        || status == reqwest::StatusCode::NOT_FOUND
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        // Perhaps a certificate being rotated, an older hub or a busy one: again later.
        Err(Outcome::TryLater(format!("hub answered {status}")))
    } else {
        Err(Outcome::Refused(format!("hub refused the event: {status}")))
    }
}

/// How long one instance may take to answer an event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A reqwest error with its causes ("error sending request" alone says little); the URL
/// carries no personal data.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sends a stored answer when it is due and again, with growing pauses, until a hub
/// takes it or refuses it for good. The answer is already in the outbox; nothing here
/// drops it. Each failed attempt is logged by [`send`], one line per hub.
pub(crate) fn deliver(
    procedure: Arc<Procedure>,
    shared: Arc<Shared>,
    channel: Option<lapin::Channel>,
    pending: Pending,
) {
    let receipt_id = pending.event.receipt_id.clone();
    if !shared.outbox.claim(&receipt_id) {
        return;
    }
    tokio::spawn(async move {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let wait = u64::try_from(pending.due_unix.saturating_sub(now)).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let event = pending.event;
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            // A reply queue's channel dies with its connection; then over HTTP.
            let channel = channel.as_ref().filter(|c| c.status().connected());
            // Signed now: the hub refuses events older than its `event_max_age_secs`,
            // and an answer may wait longer than that for a hub. The receipt id stays,
            // so a hub that has it already knows it again.
            let event = Receipt {
                issued_at: now_rfc3339(),
                ..event.clone()
            };
            match send(&procedure, &shared, channel, &event, attempt).await {
                Ok(()) => {
                    if let Err(e) = shared.outbox.done(&receipt_id) {
                        // Sent; the file would only send it once more after a restart.
                        tracing::warn!(procedure = %procedure.id, %receipt_id, error = %e, "sent, but its outbox file stays");
                    }
                    break;
                }
                Err(Outcome::Refused(reason)) => {
                    match shared.outbox.set_aside(&receipt_id) {
                        Ok(file) => {
                            tracing::error!(procedure = %procedure.id, %receipt_id, event = ?event.event, %reason, file = %file.display(), "answer refused for good by the hub; kept aside")
                        }
                        Err(e) => {
                            tracing::error!(procedure = %procedure.id, %receipt_id, event = ?event.event, %reason, error = %e, "answer refused for good by the hub; it stays pending")
                        }
                    }
                    break;
                }
                Err(Outcome::TryLater(_)) => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        shared.outbox.release(&receipt_id);
    });
}
