//! Form definitions and the validation of submitted form data against them.
//!
//! The same definition drives the intake check in the router and, later, the portal's
//! rendering of the form, so it carries German labels next to the technical rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::text;

/// The fields of one service's online form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    #[serde(rename = "field", default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub attachments: AttachmentRules,
}

/// One field, or a group of fields (an address, a contact).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    /// German label shown to citizens.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<EnumValue>,
    /// Members of a `group` field.
    #[serde(rename = "fields", default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Email,
    Number,
    Enum,
    Boolean,
    Group,
}

/// An enumeration value: the code that travels in the message and its German label.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumValue {
    pub code: String,
    pub label: String,
}

/// What a service accepts as attachments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRules {
    pub max_count: usize,
    pub max_bytes: usize,
    #[serde(default)]
    pub media_types: Vec<String>,
}

/// A problem with one field, addressed by its dotted path (`ort.strasse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl FormDefinition {
    /// Checks the definition itself, so that a broken form is refused when the mapping loads.
    pub fn check(&self) -> Result<(), String> {
        check_fields(&self.fields, "")
    }

    /// Validates `data` and returns it normalised: strings in NFC, every declared field present
    /// (`null` where an optional one was left out). All problems are reported at once.
    pub fn validate(&self, data: &Value) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let normalised = validate_group(&self.fields, data, "", &mut errors);
        if errors.is_empty() {
            Ok(normalised)
        } else {
            Err(errors)
        }
    }
}

fn check_fields(fields: &[Field], prefix: &str) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for field in fields {
        let path = join(prefix, &field.name);
        if field.name.is_empty()
            || !field
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "field `{path}`: names use only ASCII letters, digits and `_`"
            ));
        }
        if !seen.insert(field.name.as_str()) {
            return Err(format!("field `{path}` is defined twice"));
        }
        match field.kind {
            FieldKind::Enum if field.values.is_empty() => {
                return Err(format!("field `{path}`: an enum needs `values`"));
            }
            FieldKind::Group if field.fields.is_empty() => {
                return Err(format!("field `{path}`: a group needs `fields`"));
            }
            FieldKind::Group => check_fields(&field.fields, &path)?,
            _ => {}
        }
        if let (Some(min), Some(max)) = (field.min_length, field.max_length)
            && min > max
        {
            return Err(format!("field `{path}`: min_length is above max_length"));
        }
    }
    Ok(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn validate_group(
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
        out.insert(
            field.name.clone(),
            validate_field(field, value, &path, errors),
        );
    }
    Value::Object(out)
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Object(map) => map.values().all(is_blank),
        _ => false,
    }
}

fn validate_field(field: &Field, value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Value {
    if is_blank(value) {
        if field.required {
            errors.push(FieldError::new(path, "Pflichtfeld"));
        }
        return Value::Null;
    }
    match field.kind {
        FieldKind::Group => validate_group(&field.fields, value, path, errors),
        FieldKind::Text | FieldKind::Email => {
            let Value::String(raw) = value else {
                errors.push(FieldError::new(path, "muss ein Text sein"));
                return Value::Null;
            };
            let text = match text::normalise(raw) {
                Ok(text) => text,
                Err(message) => {
                    errors.push(FieldError::new(path, message));
                    return Value::Null;
                }
            };
            let length = text.chars().count();
            if let Some(min) = field.min_length
                && length < min
            {
                errors.push(FieldError::new(
                    path,
                    format!("mindestens {min} Zeichen (jetzt {length})"),
                ));
            }
            if let Some(max) = field.max_length
                && length > max
            {
                errors.push(FieldError::new(
                    path,
                    format!("höchstens {max} Zeichen (jetzt {length})"),
                ));
            }
            if field.kind == FieldKind::Email && !looks_like_email(&text) {
                errors.push(FieldError::new(path, "keine gültige E-Mail-Adresse"));
            }
            Value::String(text)
        }
        FieldKind::Number => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                _ => None,
            };
            let Some(number) = number.filter(|n| n.is_finite()) else {
                errors.push(FieldError::new(path, "muss eine Zahl sein"));
                return Value::Null;
            };
            if let Some(min) = field.min
                && number < min
            {
                errors.push(FieldError::new(path, format!("muss mindestens {min} sein")));
            }
            if let Some(max) = field.max
                && number > max
            {
                errors.push(FieldError::new(path, format!("darf höchstens {max} sein")));
            }
            value.clone()
        }
        FieldKind::Boolean => match value {
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
                    errors.push(FieldError::new(
                        path,
                        format!("unzulässiger Wert; erlaubt: {}", allowed.join(", ")),
                    ));
                    Value::Null
                }
            }
        }
    }
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
        && !text.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> FormDefinition {
        toml::from_str(
            r#"
            [[field]]
            name = "kategorie"
            label = "Kategorie"
            type = "enum"
            required = true
            values = [{ code = "muell", label = "Müll" }]

            [[field]]
            name = "beschreibung"
            label = "Beschreibung"
            type = "text"
            required = true
            min_length = 10
            max_length = 20

            [[field]]
            name = "ort"
            label = "Ort"
            type = "group"
            required = true
              [[field.fields]]
              name = "strasse"
              label = "Straße"
              type = "text"
              required = true
              [[field.fields]]
              name = "lat"
              label = "Breite"
              type = "number"
              min = -90
              max = 90

            [[field]]
            name = "kontakt"
            label = "Kontakt"
            type = "group"
              [[field.fields]]
              name = "email"
              label = "E-Mail"
              type = "email"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn valid_data_is_normalised_with_every_declared_field() {
        let out = form()
            .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe\u{301} am Eck", "ort": {"strasse": "Hauptstraße"}}))
            .unwrap();
        assert_eq!(out["beschreibung"], "Café am Eck");
        assert_eq!(out["ort"]["lat"], Value::Null);
        assert_eq!(out["kontakt"], Value::Null);
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let errors = form()
            .validate(&json!({"kategorie": "x", "beschreibung": "kurz", "ort": {"lat": 100}, "extra": 1, "kontakt": {"email": "nope"}}))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "extra",
                "kategorie",
                "beschreibung",
                "ort.strasse",
                "ort.lat",
                "kontakt.email"
            ]
        );
    }

    #[test]
    fn wrong_types_are_field_errors_not_panics() {
        let errors = form()
            .validate(&json!({"kategorie": 3, "beschreibung": ["x"], "ort": "Markt"}))
            .unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(form().validate(&json!("text")).is_err());
    }

    #[test]
    fn a_definition_with_an_empty_enum_is_refused() {
        let broken: FormDefinition =
            toml::from_str("[[field]]\nname='x'\nlabel='X'\ntype='enum'\n").unwrap();
        assert!(broken.check().is_err());
    }
}
