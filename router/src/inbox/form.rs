//! The clerk's work forms as sent (multipart: the fields and the decision's PDF) and
//! what they ask for: a `ClerkAction`, or the German message that says how to fix the
//! form. Pure functions but the reading, so they are tested without a hub.

use axum::extract::Multipart;
use kopplung_core::events::{
    AppealProblem, ClerkAction, ClerkText, FeeProblem, MAX_APPEAL_CHARS, MAX_PURPOSE_CHARS,
    TextProblem, appeal_of, fee_of,
};
use kopplung_core::intake::{content_matches, valid_filename};
use kopplung_core::store::{Appeal, DecisionFee, EventDocument};
use time::{Date, Month};

/// The largest decision document a clerk may upload (a procedure's event may carry 16 MiB).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 15 * 1024 * 1024;
/// The largest text field of the form (a question, a note); the text itself is
/// limited to [`ClerkText::MAX_CHARS`].
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A day as the date field sends it (`2027-01-06`) or as typed (`6.1.2027`).
fn parse_day(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some((d, rest)) = text.split_once('.') {
        let (m, y) = rest.split_once('.')?;
        let (d, m, y): (u8, u8, i32) = (d.parse().ok()?, m.parse().ok()?, y.parse().ok()?);
        let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()?;
        return Some(date.to_string());
    }
    Some(text.to_owned())
}

/// What a form of the work section sent.
#[derive(Default)]
pub(super) struct Posted {
    pub(super) csrf: String,
    pub(super) token: String,
    pub(super) action: String,
    pub(super) text: String,
    pub(super) appeal_text: String,
    pub(super) appeal_deadline: String,
    pub(super) fee_amount: String,
    pub(super) fee_purpose: String,
    pub(super) document: Option<(String, Vec<u8>)>,
}

/// Reads the multipart form; `None` if it is malformed or too large.
pub(super) async fn read_form(mut multipart: Multipart) -> Option<Posted> {
    let mut posted = Posted::default();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "document" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.ok()?;
            if bytes.len() > MAX_DOCUMENT_BYTES {
                return None;
            }
            // A form sent without choosing a file has an empty part.
            if !(filename.is_empty() && bytes.is_empty()) {
                posted.document = Some((filename, bytes.to_vec()));
            }
            continue;
        }
        let bytes = field.bytes().await.ok()?;
        if bytes.len() > MAX_FIELD_BYTES {
            return None;
        }
        let value = String::from_utf8(bytes.to_vec()).ok()?;
        match name.as_str() {
            "csrf" => posted.csrf = value,
            "token" => posted.token = value,
            "action" => posted.action = value,
            "text" => posted.text = value,
            "appeal_text" => posted.appeal_text = value,
            "appeal_deadline" => posted.appeal_deadline = value,
            "fee_amount" => posted.fee_amount = value,
            "fee_purpose" => posted.fee_purpose = value,
            _ => {}
        }
    }
    Some(posted)
}

/// Why a text was refused, in German.
/// `what` as inside a sentence ("die Rückfrage"); the sentence may start with it.
fn text_error(problem: TextProblem, what: &str) -> String {
    let mut chars = what.chars();
    let start: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    match problem {
        TextProblem::Empty => format!("Bitte geben Sie {what} ein."),
        TextProblem::TooLong { max, chars } => format!(
            "{start} ist mit {chars} Zeichen zu lang; erlaubt sind höchstens {max}. Bitte kürzen Sie den Text."
        ),
        TextProblem::ControlCharacter => format!(
            "{start} enthält ein unsichtbares Steuerzeichen. Bitte tippen Sie den Text neu, statt ihn einzufügen."
        ),
    }
}

/// The decision's appeal information (none if the clerk emptied the text), or the
/// German error to show.
fn appeal(posted: &Posted, today: Date) -> Result<Option<Appeal>, FormError> {
    if posted.appeal_text.trim().is_empty() {
        return Ok(None);
    }
    if posted.appeal_deadline.trim().is_empty() {
        return Err(FormError::at(
            "frist",
            "Bitte geben Sie die Widerspruchsfrist an: den letzten Tag, an dem Widerspruch eingelegt werden kann.",
        ));
    }
    let Some(deadline) = parse_day(&posted.appeal_deadline) else {
        return Err(FormError::at(
            "frist",
            "Die Widerspruchsfrist ist kein gültiges Datum. Bitte geben Sie es als TT.MM.JJJJ an, z. B. 06.01.2027.",
        ));
    };
    appeal_of(&posted.appeal_text, &deadline, today)
        .map(Some)
        .map_err(|problem| match problem {
            AppealProblem::BeforeDecision => FormError::at("frist", "Die Widerspruchsfrist liegt in der Vergangenheit. Bitte geben Sie einen Tag ab heute an."),
            AppealProblem::NoDate => FormError::at("frist", "Die Widerspruchsfrist ist kein gültiges Datum. Bitte geben Sie es als TT.MM.JJJJ an, z. B. 06.01.2027."),
            AppealProblem::ControlCharacter => FormError::at("belehrung", "Die Rechtsbehelfsbelehrung enthält ein unsichtbares Steuerzeichen. Bitte tippen Sie den Text neu, statt ihn einzufügen."),
            AppealProblem::Empty | AppealProblem::TooLong => FormError::at("belehrung", format!(
                "Die Rechtsbehelfsbelehrung ist mit {} Zeichen zu lang; erlaubt sind höchstens {MAX_APPEAL_CHARS}. Bitte kürzen Sie den Text.",
                posted.appeal_text.trim().chars().count()
            )),
        })
}

/// A fee the decision sets (none if the amount is left empty), or the German error.
fn decision_fee(posted: &Posted) -> Result<Option<DecisionFee>, FormError> {
    let typed = posted.fee_amount.trim().trim_end_matches('€').trim();
    if typed.is_empty() {
        return Ok(None);
    }
    // `30,70`, `30.70`, `30`, `1.250,00` as clerks type amounts.
    let plain = typed.replace(' ', "");
    let normalised = match plain.rsplit_once(',') {
        Some((euros, cents)) => format!("{}.{cents}", euros.replace('.', "")),
        None if plain.contains('.') => plain,
        None => format!("{plain}.00"),
    };
    let normalised = match normalised.split_once('.') {
        Some((euros, cents)) if cents.len() == 1 => format!("{euros}.{cents}0"),
        _ => normalised,
    };
    fee_of(&normalised, &posted.fee_purpose)
        .map(Some)
        .map_err(|problem| match problem {
            FeeProblem::NoAmount => FormError::at("gebuehr", "Die Gebühr ist kein Betrag. Bitte geben Sie ihn in Euro mit Komma an, z. B. 30,70."),
            FeeProblem::Zero => FormError::at("gebuehr", "Die Gebühr ist 0 €. Lassen Sie das Feld leer, wenn der Bescheid keine Gebühr festsetzt."),
            FeeProblem::TooHigh => FormError::at("gebuehr", "Die Gebühr ist höher als 100.000 €; so hohe Beträge können nicht online bezahlt werden."),
            FeeProblem::NoPurpose => FormError::at("zweck", "Bitte geben Sie den Verwendungszweck der Gebühr an, z. B. „Gebühr Bewohnerparkausweis“."),
            FeeProblem::PurposeTooLong => FormError::at("zweck", format!("Der Verwendungszweck ist zu lang; erlaubt sind höchstens {MAX_PURPOSE_CHARS} Zeichen.")),
            FeeProblem::PurposeNotPlain => FormError::at("zweck", "Der Verwendungszweck muss in eine Zeile passen und darf keine Steuerzeichen enthalten."),
        })
}

/// Why the clerk's form was refused, in German, and the id of the field to fix (empty:
/// none), which the page marks and links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FormError {
    pub field: &'static str,
    pub message: String,
}

impl FormError {
    pub(super) fn at(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The label of a field of the case page's forms, by its id (empty: none).
pub(super) fn label_of(field: &str) -> &'static str {
    match field {
        "rueckfrage" => "Ihre Frage an die antragstellende Person",
        "bescheid-text" => "Mitteilung zum Bescheid",
        "bescheid-datei" => "Bescheid als PDF-Datei",
        "belehrung" => "Rechtsbehelfsbelehrung",
        "gebuehr" => "Gebühr in Euro",
        "zweck" => "Verwendungszweck der Gebühr",
        "frist" => "Widerspruchsfrist: letzter Tag",
        _ => "",
    }
}

/// The action the form asks for, or the German error to show.
pub(super) fn action_of(posted: &Posted, today: Date) -> Result<ClerkAction, FormError> {
    match posted.action.as_str() {
        "accept" => Ok(ClerkAction::Accept),
        "in_progress" => Ok(ClerkAction::InProgress),
        "query" => ClerkText::new(&posted.text)
            .map(ClerkAction::Query)
            .map_err(|p| FormError::at("rueckfrage", text_error(p, "die Rückfrage"))),
        "decision" => {
            let message = ClerkText::new(&posted.text).map_err(|p| {
                FormError::at(
                    "bescheid-text",
                    text_error(p, "die Mitteilung zum Bescheid"),
                )
            })?;
            let Some((filename, content)) = &posted.document else {
                return Err(FormError::at(
                    "bescheid-datei",
                    "Bitte wählen Sie den Bescheid als PDF-Datei aus.",
                ));
            };
            let filename = filename.rsplit(['/', '\\']).next().unwrap_or_default();
            if !valid_filename(filename) {
                return Err(FormError::at(
                    "bescheid-datei",
                    "Der Dateiname des Bescheids ist ungültig (leer, zu lang oder mit Sonderzeichen). Bitte benennen Sie die Datei um, z. B. in „bescheid.pdf“.",
                ));
            }
            if !content_matches("application/pdf", content) {
                return Err(FormError::at(
                    "bescheid-datei",
                    "Die gewählte Datei ist kein PDF-Dokument. Bitte laden Sie den Bescheid als PDF hoch.",
                ));
            }
            Ok(ClerkAction::Decision {
                appeal: appeal(posted, today)?,
                fee: decision_fee(posted)?,
                message,
                document: EventDocument {
                    filename: filename.to_owned(),
                    media_type: "application/pdf".to_owned(),
                    content: content.clone(),
                },
            })
        }
        _ => Err(FormError::at(
            "",
            "Unbekannte Aktion. Bitte laden Sie die Seite neu.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_web::shell::german_day;

    fn posted(action: &str, text: &str, document: Option<(&str, &[u8])>) -> Posted {
        Posted {
            action: action.into(),
            text: text.into(),
            document: document.map(|(f, c)| (f.to_owned(), c.to_vec())),
            ..Posted::default()
        }
    }

    fn day() -> Date {
        time::macros::date!(2026 - 12 - 06)
    }

    fn action_of_(posted: &Posted) -> Result<ClerkAction, String> {
        action_of(posted, day()).map_err(|e| e.message)
    }

    #[test]
    fn the_form_becomes_an_action_or_a_german_error() {
        assert!(matches!(
            action_of(&posted("accept", "", None), day()),
            Ok(ClerkAction::Accept)
        ));
        assert_eq!(
            action_of_(&posted("query", "  ", None)).unwrap_err(),
            "Bitte geben Sie die Rückfrage ein."
        );
        let pdf = Some(("C:\\Ablage\\bescheid.pdf", &b"%PDF-1.7\n"[..]));
        match action_of_(&posted("decision", "Genehmigt.", pdf)) {
            Ok(ClerkAction::Decision { document, .. }) => {
                assert_eq!(document.filename, "bescheid.pdf");
            }
            other => panic!("{other:?}"),
        }
        let error = action_of_(&posted("decision", "Genehmigt.", None)).unwrap_err();
        assert!(error.contains("PDF-Datei"), "{error}");
        let not_pdf = Some(("bescheid.pdf", &b"PK\x03\x04"[..]));
        let error = action_of_(&posted("decision", "Genehmigt.", not_pdf)).unwrap_err();
        assert!(error.contains("kein PDF-Dokument"), "{error}");
        assert!(action_of_(&posted("delete", "", None)).is_err());
    }

    #[test]
    fn a_decision_carries_its_appeal_information_with_a_deadline_from_today() {
        let mut form = posted("decision", "Genehmigt.", Some(("b.pdf", &b"%PDF-1.7"[..])));
        form.appeal_text = "Widerspruch binnen eines Monats.".into();
        form.appeal_deadline = "6.1.2027".into();
        match action_of_(&form) {
            Ok(ClerkAction::Decision {
                appeal: Some(appeal),
                ..
            }) => {
                assert_eq!(appeal.deadline, time::macros::date!(2027 - 01 - 06));
            }
            other => panic!("{other:?}"),
        }
        form.appeal_deadline = "2026-12-05".into();
        assert!(action_of_(&form).unwrap_err().contains("Vergangenheit"));
        form.appeal_deadline = "31.02.2027".into();
        assert!(
            action_of_(&form)
                .unwrap_err()
                .contains("kein gültiges Datum")
        );
        form.appeal_deadline = String::new();
        assert!(
            action_of_(&form)
                .unwrap_err()
                .contains("Widerspruchsfrist an")
        );
        form.appeal_text = " ".into();
        assert!(matches!(
            action_of_(&form),
            Ok(ClerkAction::Decision { appeal: None, .. })
        ));
        assert_eq!(
            german_day(time::macros::date!(2027 - 03 - 01)),
            "1. März 2027"
        );
    }

    #[test]
    fn a_decisions_fee_is_typed_as_clerks_type_amounts() {
        let mut form = posted("decision", "Genehmigt.", Some(("b.pdf", &b"%PDF-1.7"[..])));
        form.fee_purpose = "Gebühr Bewohnerparkausweis".into();
        for (typed, cents) in [
            ("30,70", 3070),
            ("30.70", 3070),
            ("30", 3000),
            ("1.250,00 €", 125_000),
            ("7,5", 750),
        ] {
            form.fee_amount = typed.into();
            match action_of_(&form) {
                Ok(ClerkAction::Decision { fee: Some(fee), .. }) => {
                    assert_eq!(fee.cents, cents, "{typed}")
                }
                other => panic!("{typed}: {other:?}"),
            }
        }
        form.fee_amount = "dreißig".into();
        assert!(action_of_(&form).unwrap_err().contains("kein Betrag"));
        form.fee_amount = "30,70".into();
        form.fee_purpose = String::new();
        assert!(action_of_(&form).unwrap_err().contains("Verwendungszweck"));
        form.fee_amount = String::new();
        assert!(matches!(
            action_of_(&form),
            Ok(ClerkAction::Decision { fee: None, .. })
        ));
    }

    /// A refused form names the one field to fix, which the page marks and links to.
    #[test]
    fn each_refusal_names_the_field_to_fix() {
        let pdf = Some(("b.pdf", &b"%PDF-1.7"[..]));
        let decision = || posted("decision", "Genehmigt.", pdf);
        let with = |edit: fn(&mut Posted)| {
            let mut form = decision();
            form.appeal_text = "Widerspruch binnen eines Monats.".into();
            form.appeal_deadline = "6.1.2027".into();
            edit(&mut form);
            form
        };
        let cases: [(Posted, &str); 7] = [
            (posted("query", " ", None), "rueckfrage"),
            (posted("decision", " ", pdf), "bescheid-text"),
            (posted("decision", "Genehmigt.", None), "bescheid-datei"),
            (with(|f| f.appeal_deadline = "2020-01-01".into()), "frist"),
            (with(|f| f.appeal_text = "Frist\u{7}".into()), "belehrung"),
            (with(|f| f.fee_amount = "dreißig".into()), "gebuehr"),
            (with(|f| f.fee_amount = "30,70".into()), "zweck"),
        ];
        for (form, field) in cases {
            let error = action_of(&form, day()).unwrap_err();
            assert_eq!(error.field, field, "{}", error.message);
            assert!(!label_of(field).is_empty());
        }
        assert_eq!(
            action_of(&posted("delete", "", None), day())
                .unwrap_err()
                .field,
            ""
        );
    }
}
