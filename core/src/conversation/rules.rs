//! When the citizen may send which follow-up message: the rules, apart from storing.

use time::Date;

use super::FollowUpKind;
use crate::Status;
use crate::follow_up::still_counts;
use crate::store::{ApplicationRecord, MailboxEntry};

/// Why a follow-up message is not possible now. Each says in German what the citizen
/// can do instead (the portal shows it as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "Die Behörde hat Ihren Antrag oder Ihre Meldung noch nicht erhalten. Bitte warten Sie, bis die Übermittlung bestätigt ist, und senden Sie Ihre Nachricht dann."
    )]
    NotYetDelivered,
    #[error(
        "Die Behörde hat diesen Vorgang bereits abgeschlossen; eine Antwort oder Unterlagen kann sie nicht mehr berücksichtigen. Gegen einen Bescheid können Sie Widerspruch einlegen, solange die Frist läuft."
    )]
    Final,
    #[error(
        "Zu diesem Vorgang gibt es keine Rückfrage mit dieser Kennung. Bitte antworten Sie über das Formular unter der Rückfrage in Ihrem Postfach."
    )]
    NoSuchQuery,
    #[error(
        "Zu diesem Vorgang gibt es keinen Bescheid mit Rechtsbehelfsbelehrung, gegen den Sie online Widerspruch einlegen können. Wenden Sie sich bitte an die Behörde."
    )]
    NoAppeal,
    #[error(
        "Die Widerspruchsfrist ist am {0} abgelaufen. Ein Widerspruch über das Portal ist nicht mehr möglich; wenden Sie sich bitte an die Behörde."
    )]
    DeadlinePassed(String),
    #[error(
        "Sie haben gegen diesen Bescheid bereits Widerspruch eingelegt. Weitere Unterlagen dazu reichen Sie bitte direkt bei der Behörde ein."
    )]
    AlreadyObjected,
    #[error("Diese Leistung wird nicht mehr angeboten; bitte wenden Sie sich an die Behörde.")]
    ServiceWithdrawn,
    #[error(
        "Zu diesem Vorgang gibt es keinen Bescheid mit dieser Kennung, der eine Gebühr festsetzt. Bitte melden Sie nur Zahlungen zu festgesetzten Gebühren."
    )]
    NoFee,
    #[error("Diese Zahlung wurde bereits gemeldet; die Behörde hat sie erhalten.")]
    PaymentReported,
    #[error(
        "Zu diesem Antrag wurden bereits {0} Nachrichten gesendet; mehr sind über das Portal nicht möglich. Bitte wenden Sie sich direkt an die Behörde."
    )]
    TooMany(usize),
}

/// The citizen's messages (answers, documents, objections) one application may have.
pub const MAX_FOLLOW_UPS: usize = 50;

/// Whether `kind` may be sent for `application` now, with `mailbox` as the citizen
/// has it and `today` (Berlin): the event the message refers to, or why not.
pub fn may_follow(
    kind: FollowUpKind,
    refers_to: Option<&str>,
    application: &ApplicationRecord,
    mailbox: &[MailboxEntry],
    today: Date,
) -> Result<Option<String>, Refusal> {
    let status = application.status;
    let written = application
        .follow_ups
        .iter()
        .filter(|f| f.kind != FollowUpKind::Zahlung)
        .count();
    // A bound on what one application can make the hub store and deliver.
    if kind != FollowUpKind::Zahlung && written >= MAX_FOLLOW_UPS {
        return Err(Refusal::TooMany(written));
    }
    match kind {
        FollowUpKind::Antwort | FollowUpKind::Nachreichung => {
            if status.is_final() {
                return Err(Refusal::Final);
            }
            // Before delivery the follow-up could overtake the application itself.
            if !matches!(
                status,
                Status::Delivered | Status::Received | Status::InProgress | Status::Query
            ) {
                return Err(Refusal::NotYetDelivered);
            }
            if kind == FollowUpKind::Nachreichung {
                return Ok(None);
            }
            let query = mailbox
                .iter()
                .find(|m| {
                    m.kind == Status::Query.as_str() && Some(m.event_id.as_str()) == refers_to
                })
                .ok_or(Refusal::NoSuchQuery)?;
            Ok(Some(query.event_id.clone()))
        }
        FollowUpKind::Widerspruch => {
            let decision = mailbox
                .iter()
                .rev()
                .filter(|m| m.kind == Status::Decided.as_str() && m.appeal.is_some())
                .find(|m| refers_to.is_none_or(|id| id == m.event_id))
                .ok_or(Refusal::NoAppeal)?;
            let Some(appeal) = &decision.appeal else {
                return Err(Refusal::NoAppeal);
            };
            // A deadline on a weekend or holiday runs to the next working day.
            let last = kopplung_forms::deadline::period_end(appeal.deadline);
            if today > last {
                return Err(Refusal::DeadlinePassed(german_day(last)));
            }
            if application
                .follow_ups
                .iter()
                .any(|f| f.kind == FollowUpKind::Widerspruch && still_counts(f.status))
            {
                return Err(Refusal::AlreadyObjected);
            }
            Ok(Some(decision.event_id.clone()))
        }
        // Sent by the portal after a payment: the fee at submission (no event), or one a
        // decision set (its event id); each is reported once.
        FollowUpKind::Zahlung => {
            if let Some(id) = refers_to {
                mailbox
                    .iter()
                    .find(|m| {
                        m.kind == Status::Decided.as_str() && m.event_id == id && m.fee.is_some()
                    })
                    .ok_or(Refusal::NoFee)?;
            }
            if application.follow_ups.iter().any(|f| {
                f.kind == FollowUpKind::Zahlung
                    && f.refers_to.as_deref() == refers_to
                    && still_counts(f.status)
            }) {
                return Err(Refusal::PaymentReported);
            }
            Ok(refers_to.map(str::to_owned))
        }
    }
}

fn german_day(day: Date) -> String {
    format!(
        "{:02}.{:02}.{}",
        day.day(),
        u8::from(day.month()),
        day.year()
    )
}

#[cfg(test)]
mod tests;
