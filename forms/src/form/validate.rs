//! Validation of submitted data against a resolved form definition.

use serde_json::{Map, Value};

use super::{Field, FieldError, FieldKind, Problem, Repeat, check::join, rules};
use crate::text;

/// What every field's check may look at: the whole form, the whole submission, and the
/// German day of submission (`None` where the data is checked again later).
pub(super) struct Scope<'a> {
    pub form: &'a [Field],
    pub root: &'a Value,
    pub today: Option<&'a str>,
}

pub(super) fn validate_group(
    scope: &Scope<'_>,
    fields: &[Field],
    data: &Value,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Value {
    let empty = Map::new();
    let object = match data {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => {
            let at = if prefix.is_empty() { "data" } else { prefix };
            errors.push(FieldError::new(at, "muss ein Objekt sein"));
            return Value::Null;
        }
    };
    for key in object.keys() {
        if !fields.iter().any(|f| &f.name == key) {
            errors.push(FieldError::new(join(prefix, key), "unbekanntes Feld"));
        }
    }
    let mut out = Map::new();
    for field in fields {
        let path = join(prefix, &field.name);
        let value = object.get(&field.name).unwrap_or(&Value::Null);
        // A field whose condition does not hold does not apply: its value is ignored.
        let applies = field
            .when
            .as_ref()
            .is_none_or(|c| c.holds(scope.form, scope.root));
        let value = if applies {
            validate_field(scope, field, value, &path, errors)
        } else {
            Value::Null
        };
        out.insert(field.name.clone(), value);
    }
    Value::Object(out)
}

/// A repeatable group: a list of entries, each checked as a group of its own whose
/// `when` and `after` look at the same entry. Returned as the list of normalised entries.
fn validate_entries(
    scope: &Scope<'_>,
    field: &Field,
    repeat: &Repeat,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Value {
    let entries = match value {
        Value::Null => &[][..],
        Value::Array(entries) => entries.as_slice(),
        _ => {
            errors.push(FieldError::new(path, "muss eine Liste sein"));
            return Value::Null;
        }
    };
    let least = repeat.least(field);
    if entries.is_empty() && least > 0 {
        errors.push(FieldError::of(path, "Pflichtfeld", Problem::Required));
    } else if entries.len() < least {
        errors.push(FieldError::of(
            path,
            format!("braucht mindestens {least} Einträge"),
            Problem::TooFew(least),
        ));
    } else if entries.len() > repeat.max {
        errors.push(FieldError::of(
            path,
            format!("darf höchstens {} Einträge haben", repeat.max),
            Problem::TooMany(repeat.max),
        ));
    }
    let normalised = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let inner = Scope {
                form: &field.fields,
                root: entry,
                today: scope.today,
            };
            validate_group(
                &inner,
                &field.fields,
                entry,
                &format!("{path}.{index}"),
                errors,
            )
        })
        .collect();
    Value::Array(normalised)
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Object(map) => map.values().all(is_blank),
        _ => false,
    }
}

fn validate_field(
    scope: &Scope<'_>,
    field: &Field,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Value {
    if let Some(repeat) = &field.repeat {
        return validate_entries(scope, field, repeat, value, path, errors);
    }
    if is_blank(value) {
        if field.required {
            let problem = if field.kind == FieldKind::Enum {
                Problem::NotChosen
            } else {
                Problem::Required
            };
            errors.push(FieldError::of(path, "Pflichtfeld", problem));
        }
        return Value::Null;
    }
    match field.kind {
        FieldKind::Group => validate_group(scope, &field.fields, value, path, errors),
        FieldKind::Date => match value.as_str().map(parse_date) {
            Some(Some(date)) => {
                let problems =
                    rules::date_errors(field, &date, scope.form, scope.root, scope.today);
                if problems.is_empty() {
                    Value::String(date)
                } else {
                    errors.extend(problems.into_iter().map(|p| FieldError::new(path, p)));
                    Value::Null
                }
            }
            _ => {
                errors.push(FieldError::of(
                    path,
                    "kein gültiges Datum (TT.MM.JJJJ)",
                    Problem::NotADate,
                ));
                Value::Null
            }
        },
        FieldKind::Text | FieldKind::Email => {
            let Value::String(raw) = value else {
                errors.push(FieldError::new(path, "muss ein Text sein"));
                return Value::Null;
            };
            let text = match text::normalise_or_refused(raw) {
                Ok(text) => rules::normalised(field, text),
                Err(refused) => {
                    let message = text::normalise(raw).err().unwrap_or_default();
                    errors.push(FieldError::of(path, message, Problem::Character(refused)));
                    return Value::Null;
                }
            };
            let length = text.chars().count();
            if let Some(min) = field.min_length
                && length < min
            {
                errors.push(FieldError::of(
                    path,
                    format!("mindestens {min} Zeichen (jetzt {length})"),
                    Problem::TooShort { min, length },
                ));
            }
            if let Some(max) = field.max_length
                && length > max
            {
                errors.push(FieldError::of(
                    path,
                    format!("höchstens {max} Zeichen (jetzt {length})"),
                    Problem::TooLong { max, length },
                ));
            }
            if let Some(pattern) = &field.compiled_pattern
                && !pattern.is_match(&text)
            {
                errors.push(match field.pattern_message.as_deref() {
                    Some(message) => FieldError::new(path, message),
                    None => {
                        FieldError::of(path, "hat nicht das erwartete Format", Problem::Malformed)
                    }
                });
            }
            if let Some(problem) = field.format.and_then(|f| rules::format_error(f, &text)) {
                errors.push(FieldError::new(path, problem));
            }
            if field.kind == FieldKind::Email && !looks_like_email(&text) {
                errors.push(FieldError::of(
                    path,
                    "keine gültige E-Mail-Adresse",
                    Problem::NotAnEmail,
                ));
            }
            Value::String(text)
        }
        FieldKind::Number => {
            // JSON numbers, and plain decimal text as HTML forms send it (German comma too).
            // Validating normalised data again gives the same result.
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(text) => parse_decimal(text),
                _ => None,
            };
            let Some(number) = number.filter(|n| n.is_finite()) else {
                errors.push(FieldError::of(
                    path,
                    "muss eine Zahl sein",
                    Problem::NotANumber,
                ));
                return Value::Null;
            };
            if let Some(min) = field.min
                && number < min
            {
                errors.push(FieldError::of(
                    path,
                    format!("muss mindestens {min} sein"),
                    Problem::BelowMinimum(min.to_string()),
                ));
            }
            if let Some(max) = field.max
                && number > max
            {
                errors.push(FieldError::of(
                    path,
                    format!("darf höchstens {max} sein"),
                    Problem::AboveMaximum(max.to_string()),
                ));
            }
            if field.integer {
                if number.fract() != 0.0 || number.abs() > 9.0e15 {
                    errors.push(FieldError::of(
                        path,
                        "muss eine ganze Zahl sein",
                        Problem::NotWhole,
                    ));
                    return Value::Null;
                }
                return Value::from(number as i64);
            }
            // As plain decimal text (never `1e-7`), the form XML Schema's decimal accepts.
            Value::String(format!("{number}"))
        }
        FieldKind::Boolean => match value {
            Value::Bool(false) if field.must_be_true => {
                errors.push(FieldError::of(
                    path,
                    "muss bestätigt werden",
                    Problem::MustConfirm,
                ));
                Value::Null
            }
            Value::Bool(_) => value.clone(),
            _ => {
                errors.push(FieldError::new(path, "muss ja oder nein (true/false) sein"));
                Value::Null
            }
        },
        FieldKind::Enum => {
            let code = value.as_str().unwrap_or_default();
            match field.values.iter().find(|v| v.code == code) {
                Some(_) => Value::String(code.to_owned()),
                None => {
                    let allowed: Vec<&str> = field.values.iter().map(|v| v.code.as_str()).collect();
                    errors.push(FieldError::of(
                        path,
                        format!("unzulässiger Wert; erlaubt: {}", allowed.join(", ")),
                        Problem::NotOffered,
                    ));
                    Value::Null
                }
            }
        }
    }
}

/// `-12.5`, `12,5`, `0.0000001`: digits with at most one decimal separator.
fn parse_decimal(text: &str) -> Option<f64> {
    let text = text.trim().replace(',', ".");
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    if plain { text.parse().ok() } else { None }
}

/// A date as `TT.MM.JJJJ` (German) or `JJJJ-MM-TT` (ISO 8601), returned as ISO 8601.
pub fn parse_date(text: &str) -> Option<String> {
    let text = text.trim();
    let (day, month, year) = if let Some((y, rest)) = text.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        (d, m, y)
    } else {
        let mut parts = text.split('.');
        let d = parts.next()?;
        let m = parts.next()?;
        let y = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        (d, m, y)
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(day) && all_digits(month) && year.len() == 4 && all_digits(year)) {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Deliberately modest: one `@`, a non-empty local part, a dotted domain, no spaces.
fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        // Characters that only quoted local parts may carry, and markup: never in an
        // address a clerk writes to.
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
}
