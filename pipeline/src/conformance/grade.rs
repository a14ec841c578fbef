//! Grading a receiver's answers: from the transport's outcome where the answer carries
//! the verdict (HTTP push), or from what came back later on the procedure's answer
//! channels (AMQP reply queue, file drop, the pull acknowledgement, the events API).

use kopplung_adapters::Outcome;
use kopplung_transformers::receipt::{Receipt, ReceiptEvent};

use super::{Case, Expect, Verdict};
use crate::keyring::Keyring;

/// What a receiver answered, read from the transport's outcome.
fn answered(
    keyring: &Keyring,
    procedure: &str,
    outcome: &Outcome,
) -> Result<Option<Receipt>, String> {
    match outcome {
        Outcome::Delivered => Ok(None),
        Outcome::DeliveredWithReceipt(body) => keyring
            .verify_receipt(procedure, body)
            .map(Some)
            .map_err(|e| format!("acknowledged, but its receipt is refused: {e}")),
        Outcome::Permanent { reason } => Err(format!("refused: {reason}")),
        Outcome::Retry { reason, .. } | Outcome::Unavailable { reason, .. } => {
            Err(format!("asked to try again: {reason}"))
        }
        Outcome::AwaitingPickup => Err("left it for pickup".into()),
    }
}

/// Grades the answer to `case`; `first` is the receipt the `valid` case got (for the
/// redelivery). Returns the verdict and the receipt, if one came and verified.
pub fn grade(
    keyring: &Keyring,
    procedure: &str,
    case: &Case,
    outcome: &Outcome,
    first: Option<&Receipt>,
) -> (Verdict, Option<Receipt>) {
    let delivered = matches!(
        outcome,
        Outcome::Delivered | Outcome::DeliveredWithReceipt(_)
    );
    let answer = answered(keyring, procedure, outcome);
    let (passed, got) = match (case.expect, &answer) {
        (Expect::Refuse, _) if delivered => (
            false,
            "acknowledged it: a receiver must refuse what does not open and verify".to_owned(),
        ),
        (Expect::Refuse, Err(reason)) => (
            matches!(outcome, Outcome::Permanent { .. }) || case.name == "oversized",
            reason.clone(),
        ),
        (_, Err(reason)) => (false, reason.clone()),
        (Expect::Accept | Expect::AcceptAgain, Ok(None)) => {
            (true, "acknowledged (no receipt in the answer)".to_owned())
        }
        (Expect::Accept | Expect::AcceptAgain, Ok(Some(receipt))) => {
            let mut faults = Vec::new();
            if receipt.event != ReceiptEvent::Accept {
                faults.push(format!("the receipt is `{}`", receipt.event.uri_name()));
            }
            if receipt.message_id != case.message.message_id {
                faults.push("the receipt names another message".to_owned());
            }
            if case.expect == Expect::AcceptAgain
                && first.is_some_and(|first| first.receipt_id != receipt.receipt_id)
            {
                faults.push("a new receipt id for the same message".to_owned());
            }
            (
                faults.is_empty(),
                if faults.is_empty() {
                    "acknowledged with a signed accept".to_owned()
                } else {
                    format!("acknowledged, but {}", faults.join("; "))
                },
            )
        }
        (Expect::Reject, Ok(Some(receipt))) if receipt.event == ReceiptEvent::Reject => {
            (!receipt.problems.is_empty(), signed_reject(receipt))
        }
        (Expect::Reject, Ok(Some(receipt))) => (
            false,
            format!(
                "acknowledged with a signed `{}`: the problem went unnoticed",
                receipt.event.uri_name()
            ),
        ),
        (Expect::Reject, Ok(None)) => (
            false,
            "acknowledged without a receipt: the problem went unnoticed".to_owned(),
        ),
        (Expect::Refuse, Ok(_)) => (false, "acknowledged it".to_owned()),
    };
    (
        Verdict {
            case: case.name,
            passed,
            expected: case.expect.as_str(),
            got,
        },
        answer.ok().flatten(),
    )
}

/// "a signed reject (the problems it names)".
fn signed_reject(receipt: &Receipt) -> String {
    let kinds: Vec<&str> = receipt.problems.iter().map(|p| p.kind.as_str()).collect();
    format!("a signed reject ({})", kinds.join(", "))
}

/// What came back for one message id over an asynchronous transport.
#[derive(Debug, Default, Clone)]
pub struct Answers {
    /// The verified events about the message, in the order they came (receipts, and
    /// perhaps already an event that follows a receipt).
    pub events: Vec<Receipt>,
    /// How often the receiver acknowledged the message, where the transport shows it
    /// (pull); `None` where the hub cannot see it (an AMQP ack, a file taken away).
    pub acknowledged: Option<u32>,
}

impl Answers {
    /// The receipts among the events: accept or reject (events after them do not count).
    fn receipts(&self) -> impl Iterator<Item = &Receipt> {
        self.events
            .iter()
            .filter(|e| matches!(e.event, ReceiptEvent::Accept | ReceiptEvent::Reject))
    }
}

/// Grades what came back for `case` within `waited` seconds over a transport whose
/// answers come later (AMQP, pull, file drop): a genuine message needs its signed receipt
/// on one of the answer channels, a forged one must get none (and, over pull, no
/// acknowledgement). `answers` are those of the case's message id (the `valid` and
/// `redelivered` cases share one).
pub fn grade_later(case: &Case, answers: &Answers, waited: u64) -> Verdict {
    let receipts: Vec<&Receipt> = answers.receipts().collect();
    let ids: std::collections::BTreeSet<&str> =
        receipts.iter().map(|r| r.receipt_id.as_str()).collect();
    let events = |event: ReceiptEvent| receipts.iter().filter(move |r| r.event == event);
    let acknowledged = answers.acknowledged.unwrap_or(0);
    let (passed, got) = match case.expect {
        Expect::Refuse => match receipts.first() {
            Some(receipt) => (
                false,
                format!(
                    "answered with a signed `{}`: a receiver must refuse what does not open and verify",
                    receipt.event.uri_name()
                ),
            ),
            None if acknowledged > 0 => (
                false,
                "acknowledged it: a receiver must leave what does not open and verify".to_owned(),
            ),
            None => (true, format!("no answer within {waited} s")),
        },
        _ if receipts.is_empty() => (false, format!("no signed receipt within {waited} s")),
        Expect::Accept | Expect::AcceptAgain if ids.len() > 1 => (
            false,
            format!(
                "{} receipts with different ids for the same message",
                ids.len()
            ),
        ),
        Expect::Accept | Expect::AcceptAgain => match events(ReceiptEvent::Reject).next() {
            Some(_) => (false, "answered with a signed reject".to_owned()),
            None if answers.acknowledged == Some(0) => {
                (false, "a signed receipt, but never acknowledged".to_owned())
            }
            None if case.expect == Expect::AcceptAgain && answers.acknowledged == Some(1) => (
                false,
                "not acknowledged the second time it was listed".to_owned(),
            ),
            None => (true, "a signed accept".to_owned()),
        },
        Expect::Reject => match events(ReceiptEvent::Reject).next() {
            Some(receipt) if !receipt.problems.is_empty() => (true, signed_reject(receipt)),
            Some(_) => (false, "a signed reject naming no problem".to_owned()),
            None => (
                false,
                "answered with a signed accept: the problem went unnoticed".to_owned(),
            ),
        },
    };
    Verdict {
        case: case.name,
        passed,
        expected: case.expect.as_str_later(),
        got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_adapters::OutboundMessage;
    use kopplung_transformers::receipt::ReceiptProblem;

    fn case(expect: Expect) -> Case {
        Case {
            name: "case",
            what: "a case",
            expect,
            message: OutboundMessage {
                message_id: "m".into(),
                correlation_id: "a".into(),
                message_type: "t".into(),
                content_type: "application/pkcs7-mime".into(),
                headers: Vec::new(),
                body: Default::default(),
            },
        }
    }

    fn receipt(id: &str, event: ReceiptEvent) -> Receipt {
        Receipt {
            receipt_id: id.into(),
            procedure: "p".into(),
            message_id: "m".into(),
            application_id: "a".into(),
            event,
            problems: (event == ReceiptEvent::Reject)
                .then(|| ReceiptProblem {
                    kind: "urn:kopplung:problem:schema".into(),
                    title: "schema".into(),
                    detail: None,
                })
                .into_iter()
                .collect(),
            message: None,
            document: None,
            appeal: None,
            fee: None,
            issued_at: "2026-12-05T10:00:00Z".into(),
        }
    }

    fn answers(events: Vec<Receipt>, acknowledged: Option<u32>) -> Answers {
        Answers {
            events,
            acknowledged,
        }
    }

    #[test]
    fn a_forged_message_must_draw_no_receipt_and_no_acknowledgement() {
        let refuse = case(Expect::Refuse);
        assert!(grade_later(&refuse, &answers(vec![], None), 3).passed);
        assert!(grade_later(&refuse, &answers(vec![], Some(0)), 3).passed);
        let acked = grade_later(&refuse, &answers(vec![], Some(1)), 3);
        assert!(!acked.passed && acked.got.starts_with("acknowledged it"));
        let signed = grade_later(
            &refuse,
            &answers(vec![receipt("r", ReceiptEvent::Reject)], None),
            3,
        );
        assert!(!signed.passed && signed.got.contains("signed `reject`"));
    }

    #[test]
    fn a_genuine_message_needs_one_receipt_id_and_its_acknowledgements() {
        let accept = vec![receipt("r", ReceiptEvent::Accept)];
        assert!(grade_later(&case(Expect::Accept), &answers(accept.clone(), None), 1).passed);
        assert!(!grade_later(&case(Expect::Accept), &answers(vec![], None), 1).passed);
        let never = grade_later(&case(Expect::Accept), &answers(accept.clone(), Some(0)), 1);
        assert!(!never.passed && never.got.contains("never acknowledged"));
        let again = case(Expect::AcceptAgain);
        assert!(grade_later(&again, &answers(accept.clone(), Some(2)), 1).passed);
        assert!(!grade_later(&again, &answers(accept.clone(), Some(1)), 1).passed);
        let twice = vec![
            receipt("r", ReceiptEvent::Accept),
            receipt("s", ReceiptEvent::Accept),
        ];
        let renewed = grade_later(&again, &answers(twice, None), 1);
        assert!(!renewed.passed && renewed.got.contains("different ids"));
        // A decision that already followed the receipt does not count as a receipt.
        let decided = vec![
            receipt("r", ReceiptEvent::Accept),
            receipt("d", ReceiptEvent::Decision),
        ];
        assert!(grade_later(&again, &answers(decided, None), 1).passed);
    }

    #[test]
    fn a_genuine_but_wrong_message_needs_a_reject() {
        let reject = case(Expect::Reject);
        assert!(
            grade_later(
                &reject,
                &answers(vec![receipt("r", ReceiptEvent::Reject)], None),
                1
            )
            .passed
        );
        let accepted = grade_later(
            &reject,
            &answers(vec![receipt("r", ReceiptEvent::Accept)], None),
            1,
        );
        assert!(!accepted.passed && accepted.got.contains("went unnoticed"));
    }
}
