//! The built-in rules a text or date field may name beyond length and pattern: a format
//! with its own check (IBAN with check digits, BIC), normalisation before any check
//! (spaces, case), limits of a date and a date after another field's. Each refusal is a
//! German sentence that says how to fix it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Field, FieldKind, check::find_field};

/// A text format with a check of its own (`format = "iban"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    /// An IBAN: spaces removed and upper case, the country's format and check digits.
    Iban,
    /// A BIC: 8 or 11 letters and digits (bank, country, place, branch).
    Bic,
}

/// A normalisation applied to a text before it is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Every space removed (`DE02 1203 …` → `DE021203…`).
    RemoveSpaces,
    Upper,
    Lower,
    /// A German licence plate in its written form: `dd ab 1234`, `DD AB1234` and
    /// `dd-ab-1234` become `DD-AB 1234`; what cannot be split clearly stays as typed.
    Kennzeichen,
}

/// `text` as the field's normalisations (and its format's) make it.
pub(super) fn normalised(field: &Field, text: String) -> String {
    let mut steps = field.normalise.clone();
    if field.format.is_some() {
        steps.extend([Normalise::RemoveSpaces, Normalise::Upper]);
    }
    apply(&steps, text)
}

impl Field {
    /// `text` as the field's own `normalise` steps write it (a licence plate as on the
    /// sign), for a front end to show what will be sent; a format's steps (an IBAN
    /// without its spaces) are left to the check, so the input stays readable.
    pub fn written(&self, text: String) -> String {
        apply(&self.normalise, text)
    }
}

fn apply(steps: &[Normalise], text: String) -> String {
    steps.iter().fold(text, |text, step| match step {
        Normalise::RemoveSpaces => text.chars().filter(|c| !c.is_whitespace()).collect(),
        Normalise::Upper => text.to_uppercase(),
        Normalise::Lower => text.to_lowercase(),
        Normalise::Kennzeichen => kennzeichen(&text).unwrap_or(text),
    })
}

/// `DD-AB 1234` from a plate typed with other separators or in small letters, where its
/// three parts are clear: the district code (1–3 letters), the letters (1–2) and the
/// number (1–4 digits, maybe `E` or `H` after it).
fn kennzeichen(text: &str) -> Option<String> {
    let upper = text.trim().to_uppercase();
    let parts: Vec<&str> = upper
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty())
        .collect();
    let letters = |p: &str, max: usize| {
        (1..=max).contains(&p.chars().count()) && p.chars().all(|c| c.is_alphabetic())
    };
    let (district, rest) = match parts.as_slice() {
        [district, letters_part, number] => (*district, format!("{letters_part}{number}")),
        [district, rest] => (*district, (*rest).to_owned()),
        _ => return None,
    };
    let split = rest.find(|c: char| c.is_ascii_digit())?;
    let (middle, number) = rest.split_at(split);
    let digits = number.trim_end_matches(['E', 'H']);
    let suffix_ok = number.len() - digits.len() <= 1;
    (letters(district, 3)
        && letters(middle, 2)
        && (1..=4).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && suffix_ok)
        .then(|| format!("{district}-{middle} {number}"))
}

/// Why `text` does not have the field's format, if it does not.
pub(super) fn format_error(format: TextFormat, text: &str) -> Option<&'static str> {
    match format {
        TextFormat::Iban => text.parse::<iban::Iban>().err().map(|_| {
            "Die IBAN ist nicht gültig. Bitte prüfen Sie sie Zeichen für Zeichen, zum Beispiel anhand Ihrer Bankkarte (eine deutsche IBAN hat DE und 20 Ziffern)."
        }),
        TextFormat::Bic => (!is_bic(text)).then_some(
            "Der BIC ist nicht gültig. Ein BIC hat 8 oder 11 Zeichen, zum Beispiel COBADEFFXXX.",
        ),
    }
}

fn is_bic(text: &str) -> bool {
    let bytes = text.as_bytes();
    (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..].iter().all(u8::is_ascii_alphanumeric)
}

/// `min_date`/`max_date` relative to the day of submission.
pub(super) const TODAY: &str = "today";

/// A date field's limits: `min_date` and `max_date` (ISO dates, or `today`: the German
/// calendar day of submission, checked only where `today` is given — at submission, not
/// again when the message is prepared days later) and `after` (another date field, which
/// must be earlier). `date` is an ISO date; the other field's raw value is parsed as the
/// citizen typed it.
pub(super) fn date_errors(
    field: &Field,
    date: &str,
    form: &[Field],
    root: &Value,
    today: Option<&str>,
) -> Vec<String> {
    let mut errors = Vec::new();
    // ISO dates compare as text.
    match field.min_date.as_deref() {
        Some(TODAY) if today.is_some_and(|today| date < today) => {
            errors.push(
                "Das Datum darf nicht in der Vergangenheit liegen. Bitte geben Sie ein Datum ab heute an."
                    .into(),
            );
        }
        Some(TODAY) => {}
        Some(min) if date < min => {
            errors.push(format!(
                "Das Datum darf nicht vor dem {0} liegen. Bitte geben Sie den {0} oder ein späteres Datum an.",
                german(min)
            ));
        }
        _ => {}
    }
    match field.max_date.as_deref() {
        Some(TODAY) if today.is_some_and(|today| date > today) => {
            errors.push(
                "Das Datum darf nicht in der Zukunft liegen. Bitte geben Sie ein Datum bis heute an."
                    .into(),
            );
        }
        Some(TODAY) => {}
        Some(max) if date > max => {
            errors.push(format!(
                "Das Datum darf nicht nach dem {0} liegen. Bitte geben Sie den {0} oder ein früheres Datum an.",
                german(max)
            ));
        }
        _ => {}
    }
    if let Some(other) = &field.after {
        let mut value = root;
        for part in other.split('.') {
            value = value.get(part).unwrap_or(&Value::Null);
        }
        if let Some(earlier) = value.as_str().and_then(super::parse_date)
            && date <= earlier.as_str()
        {
            let label = find_field(form, other).map_or(other.as_str(), |f| f.label.as_str());
            errors.push(format!(
                "Das Datum muss nach dem Datum bei „{label}“ ({}) liegen.",
                german(&earlier)
            ));
        }
    }
    errors
}

/// `JJJJ-MM-TT` as `TT.MM.JJJJ`.
fn german(iso: &str) -> String {
    let mut parts = iso.split('-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => format!("{d}.{m}.{y}"),
        _ => iso.to_owned(),
    }
}

/// Load-time checks of the rules of one field at `path`.
pub(super) fn check(root: &[Field], field: &Field, path: &str) -> Result<(), String> {
    let text_only =
        field.format.is_some() || !field.normalise.is_empty() || field.pattern_message.is_some();
    if text_only && field.kind != FieldKind::Text {
        return Err(format!(
            "field `{path}`: `format`, `normalise` and `pattern_message` are for text fields"
        ));
    }
    if field.pattern_message.is_some() && field.pattern.is_none() {
        return Err(format!(
            "field `{path}`: `pattern_message` needs a `pattern`"
        ));
    }
    let dated = field.min_date.is_some() || field.max_date.is_some() || field.after.is_some();
    if dated && field.kind != FieldKind::Date {
        return Err(format!(
            "field `{path}`: `min_date`, `max_date` and `after` are for date fields"
        ));
    }
    for (key, value) in [("min_date", &field.min_date), ("max_date", &field.max_date)] {
        if let Some(value) = value
            && value != TODAY
            && super::parse_date(value).as_deref() != Some(value.as_str())
        {
            return Err(format!(
                "field `{path}`: {key}: `{value}` is neither `today` nor a date as JJJJ-MM-TT"
            ));
        }
    }
    if let Some(other) = &field.after
        && find_field(root, other).is_none_or(|f| f.kind != FieldKind::Date)
    {
        return Err(format!(
            "field `{path}`: after: `{other}` is no date field of the form"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod kennzeichen_tests {
    use super::kennzeichen;

    #[test]
    fn a_plate_typed_loosely_is_written_as_on_the_sign() {
        for (typed, written) in [
            ("dd ab 1234", "DD-AB 1234"),
            ("DD-AB 1234", "DD-AB 1234"),
            ("dd-ab-1234", "DD-AB 1234"),
            ("l sh2206e", "L-SH 2206E"),
            ("  b x 1 ", "B-X 1"),
            ("zi-ö 12", "ZI-Ö 12"),
        ] {
            assert_eq!(kennzeichen(typed).as_deref(), Some(written), "{typed}");
        }
        for unclear in [
            "DDAB1234",
            "dd ab",
            "1234 dd ab",
            "dd abc 1234",
            "dd ab 12345",
        ] {
            assert_eq!(kennzeichen(unclear), None, "{unclear}");
        }
    }
}
