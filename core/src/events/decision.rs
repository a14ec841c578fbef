//! What a decision may carry besides its document: the appeal information
//! (Rechtsbehelfsbelehrung and the last day for a Widerspruch) and a fee for the
//! citizen to pay. The rules are the same for a procedure's signed event and for a
//! clerk's decision in the inbox.

use crate::store::{Appeal, DecisionFee};

/// A decision's appeal information as signed: the Rechtsbehelfsbelehrung and the last
/// day to file a Widerspruch (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAppeal {
    pub text: String,
    pub deadline: String,
}

/// A fee a decision sets, as signed: euros with two decimals and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFee {
    pub amount: String,
    pub purpose: String,
}

/// The highest fee a decision may set, in cents (a payment provider's usual limit).
pub const MAX_FEE_CENTS: u64 = 100_000 * 100;
/// The longest purpose of a fee (characters; payment providers take 140).
pub const MAX_PURPOSE_CHARS: usize = 140;

/// The longest Rechtsbehelfsbelehrung taken (characters).
pub const MAX_APPEAL_CHARS: usize = 8000;

/// Why a decision's fee was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeProblem {
    NoAmount,
    Zero,
    TooHigh,
    NoPurpose,
    PurposeTooLong,
    PurposeNotPlain,
}

impl FeeProblem {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoAmount => "amount is no sum of euros with two decimals such as 30.70",
            Self::Zero => "amount is zero",
            Self::TooHigh => "amount is above 100000.00",
            Self::NoPurpose => "purpose is empty",
            Self::PurposeTooLong => "purpose is longer than 140 characters",
            Self::PurposeNotPlain => "purpose holds a control character or a line break",
        }
    }
}

/// A decision's fee, checked: `amount` euros with exactly two decimals (`30.70`), above
/// zero and at most [`MAX_FEE_CENTS`]; a one-line `purpose` of at most
/// [`MAX_PURPOSE_CHARS`] characters.
pub fn fee_of(amount: &str, purpose: &str) -> Result<DecisionFee, FeeProblem> {
    let (euros, cents) = amount.split_once('.').ok_or(FeeProblem::NoAmount)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(euros) || euros.len() > 9 || cents.len() != 2 || !digits(cents) {
        return Err(FeeProblem::NoAmount);
    }
    let cents = euros
        .parse::<u64>()
        .ok()
        .and_then(|e| e.checked_mul(100))
        .and_then(|e| e.checked_add(cents.parse::<u64>().ok()?))
        .ok_or(FeeProblem::NoAmount)?;
    if cents == 0 {
        return Err(FeeProblem::Zero);
    }
    if cents > MAX_FEE_CENTS {
        return Err(FeeProblem::TooHigh);
    }
    let purpose = purpose.trim();
    if purpose.is_empty() {
        return Err(FeeProblem::NoPurpose);
    }
    if purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(FeeProblem::PurposeTooLong);
    }
    if purpose.chars().any(char::is_control) {
        return Err(FeeProblem::PurposeNotPlain);
    }
    Ok(DecisionFee {
        cents,
        purpose: purpose.to_owned(),
    })
}

/// Why a decision's appeal information was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealProblem {
    Empty,
    TooLong,
    ControlCharacter,
    NoDate,
    BeforeDecision,
}

impl AppealProblem {
    /// The reason, for the procedure (never the text itself).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Empty => "the text is empty",
            Self::TooLong => "the text is longer than 8000 characters",
            Self::ControlCharacter => "the text holds a control character",
            Self::NoDate => "the deadline is no date YYYY-MM-DD",
            Self::BeforeDecision => "the deadline lies before the decision",
        }
    }
}

/// A decision's appeal information, checked: a plain text of at most
/// [`MAX_APPEAL_CHARS`] characters and a deadline (`YYYY-MM-DD`) not before the day of
/// the decision.
pub fn appeal_of(
    text: &str,
    deadline: &str,
    decided_on: time::Date,
) -> Result<Appeal, AppealProblem> {
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(AppealProblem::Empty);
    }
    if text.chars().count() > MAX_APPEAL_CHARS {
        return Err(AppealProblem::TooLong);
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppealProblem::ControlCharacter);
    }
    let deadline = time::Date::parse(
        deadline,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| AppealProblem::NoDate)?;
    if deadline < decided_on {
        return Err(AppealProblem::BeforeDecision);
    }
    Ok(Appeal {
        text: text.to_owned(),
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::decision;
    use crate::events::{EventError, EventKind, VerifiedEvent, check_content, record_of};

    #[test]
    fn a_decisions_appeal_is_plain_and_its_deadline_not_before_the_decision() {
        let day = time::macros::date!(2026 - 12 - 03);
        let appeal = appeal_of(" Widerspruch\r\nbinnen eines Monats. ", "2027-01-03", day).unwrap();
        assert_eq!(appeal.text, "Widerspruch\nbinnen eines Monats.");
        assert_eq!(appeal.deadline, time::macros::date!(2027 - 01 - 03));
        assert!(appeal_of("x", "2026-12-03", day).is_ok(), "the same day");
        for (text, deadline, problem) in [
            ("", "2027-01-03", AppealProblem::Empty),
            ("x", "2026-12-02", AppealProblem::BeforeDecision),
            ("x", "03.01.2027", AppealProblem::NoDate),
            ("x\u{0}", "2027-01-03", AppealProblem::ControlCharacter),
        ] {
            assert_eq!(
                appeal_of(text, deadline, day),
                Err(problem),
                "{text} {deadline}"
            );
        }
        assert_eq!(
            appeal_of(&"a".repeat(MAX_APPEAL_CHARS + 1), "2027-01-03", day),
            Err(AppealProblem::TooLong)
        );
        // Through a verified event: refused with the reason, only on a decision.
        let mut decision = decision("b.pdf", "application/pdf", b"%PDF-1.7");
        decision.appeal = Some(SignedAppeal {
            text: "Widerspruch binnen eines Monats.".into(),
            deadline: "2026-12-02".into(),
        });
        assert!(matches!(
            record_of("p", decision.clone(), vec![]),
            Err(EventError::BadAppeal(
                "the deadline lies before the decision"
            ))
        ));
        decision.appeal.as_mut().unwrap().deadline = "2027-01-03".into();
        let record = record_of("p", decision.clone(), vec![]).unwrap();
        assert_eq!(record.appeal.unwrap().deadline.to_string(), "2027-01-03");
        let query = VerifiedEvent {
            kind: EventKind::Query,
            message: Some("Frage?".into()),
            document: None,
            ..decision
        };
        assert!(matches!(
            check_content(&query),
            Err(EventError::BadAppeal(_))
        ));
    }

    #[test]
    fn a_decisions_fee_is_euros_and_cents_with_a_one_line_purpose() {
        let fee = fee_of("30.70", " Bewohnerparkausweis ").unwrap();
        assert_eq!(
            (fee.cents, fee.purpose.as_str()),
            (3070, "Bewohnerparkausweis")
        );
        assert_eq!(fee.euros(), "30.70");
        assert_eq!(fee_of("0.05", "x").unwrap().euros(), "0.05");
        for (amount, purpose, problem) in [
            ("30,70", "x", FeeProblem::NoAmount),
            ("30.7", "x", FeeProblem::NoAmount),
            ("-1.00", "x", FeeProblem::NoAmount),
            ("1e3.00", "x", FeeProblem::NoAmount),
            ("0.00", "x", FeeProblem::Zero),
            ("100000.01", "x", FeeProblem::TooHigh),
            ("1.00", " ", FeeProblem::NoPurpose),
            ("1.00", "a\nb", FeeProblem::PurposeNotPlain),
        ] {
            assert_eq!(fee_of(amount, purpose), Err(problem), "{amount} {purpose}");
        }
        assert_eq!(
            fee_of("1.00", &"x".repeat(141)),
            Err(FeeProblem::PurposeTooLong)
        );
        let mut decision = decision("b.pdf", "application/pdf", b"%PDF-1.7");
        decision.fee = Some(SignedFee {
            amount: "12.00".into(),
            purpose: "Hundesteuer 2027".into(),
        });
        assert_eq!(
            record_of("p", decision.clone(), vec![])
                .unwrap()
                .fee
                .unwrap()
                .cents,
            1200
        );
        let query = VerifiedEvent {
            kind: EventKind::Query,
            message: Some("Frage?".into()),
            document: None,
            ..decision
        };
        assert!(matches!(check_content(&query), Err(EventError::BadFee(_))));
    }
}
