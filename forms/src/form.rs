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
    /// For a number: only whole numbers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub integer: bool,
    /// A regular expression the whole text must match (`text` fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip)]
    compiled_pattern: Option<regex::Regex>,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<EnumValue>,
    /// Members of a `group` field.
    #[serde(rename = "fields", default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// A reusable group (from `mappings/groups.toml`) whose fields this group takes.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// The field applies only when another field has a value; otherwise it is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// For a boolean: only `true` is accepted (a declaration the citizen must confirm).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_be_true: bool,
    /// `false` for fields that deliberately do not travel in the message (consent boxes).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub transmit: bool,
    /// Filled by the front end, not by the citizen: `payment` for the payment reference
    /// a portal adds after the fee was paid. Front ends do not render such a field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_by: Option<String>,
    /// The step of a multi-page form the field is shown on (1 = first); front ends
    /// may ignore it and show everything at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// When a conditional field applies: the field at `field` (a dotted path from the form's
/// root) equals one of `equals` (for an enum or text) or is `true` (for a boolean).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equals: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_true: Option<bool>,
}

impl Condition {
    /// Whether the condition holds for the submitted data. The field it looks at must
    /// itself apply: a chain of conditions never demands a field the citizen did not see.
    pub fn holds(&self, fields: &[Field], root: &Value) -> bool {
        let referenced_applies = find_field(fields, &self.field)
            .and_then(|f| f.when.as_ref())
            .is_none_or(|c| c.holds(fields, root));
        if !referenced_applies {
            return false;
        }
        let mut value = root;
        for part in self.field.split('.') {
            value = value.get(part).unwrap_or(&Value::Null);
        }
        match (value, self.is_true) {
            (Value::Bool(b), Some(expected)) => *b == expected,
            (Value::String(s), None) => self.equals.iter().any(|e| e == s),
            _ => false,
        }
    }
}

/// Reusable field groups, shared by all services (`mappings/groups.toml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedGroups {
    #[serde(rename = "group", default)]
    pub groups: Vec<SharedGroup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedGroup {
    pub name: String,
    #[serde(rename = "fields")]
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
    /// A calendar date: accepts `TT.MM.JJJJ` and `JJJJ-MM-TT`, stored as `JJJJ-MM-TT`.
    Date,
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
    /// Replaces `use = "…"` by the shared group's fields, then checks the definition, so
    /// that a broken form is refused when the mapping loads.
    pub fn resolve(&mut self, shared: &SharedGroups) -> Result<(), String> {
        resolve_uses(&mut self.fields, shared, "")?;
        compile_patterns(&mut self.fields, "")?;
        check_fields(&self.fields, "")?;
        check_conditions(&self.fields, &self.fields, "")
    }

    /// Checks a definition whose shared groups are already resolved (as
    /// `GET /api/v1/services` serves it) and compiles its patterns, so that a front end
    /// can validate with it.
    pub fn compile(&mut self) -> Result<(), String> {
        compile_patterns(&mut self.fields, "")?;
        check_fields(&self.fields, "")?;
        check_conditions(&self.fields, &self.fields, "")
    }

    /// Dotted paths of every field (groups and leaves) with whether it travels.
    pub fn paths(&self) -> Vec<(String, &Field)> {
        let mut out = Vec::new();
        collect_paths(&self.fields, "", &mut out);
        out
    }

    /// Validates `data` and returns it normalised: strings in NFC, every declared field present
    /// (`null` where an optional one was left out). All problems are reported at once.
    pub fn validate(&self, data: &Value) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let normalised = validate_group(&self.fields, &self.fields, data, data, "", &mut errors);
        if errors.is_empty() {
            Ok(normalised)
        } else {
            Err(errors)
        }
    }
}

fn collect_paths<'a>(fields: &'a [Field], prefix: &str, out: &mut Vec<(String, &'a Field)>) {
    for field in fields {
        let path = join(prefix, &field.name);
        out.push((path.clone(), field));
        collect_paths(&field.fields, &path, out);
    }
}

fn resolve_uses(fields: &mut [Field], shared: &SharedGroups, prefix: &str) -> Result<(), String> {
    for field in fields.iter_mut() {
        let path = join(prefix, &field.name);
        if let Some(name) = &field.uses {
            if field.kind != FieldKind::Group || !field.fields.is_empty() {
                return Err(format!(
                    "field `{path}`: `use` needs type = \"group\" and no own fields"
                ));
            }
            let group = shared
                .groups
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| format!("field `{path}`: unknown shared group `{name}`"))?;
            field.fields = group.fields.clone();
        }
        resolve_uses(&mut field.fields, shared, &path)?;
    }
    Ok(())
}

fn find_field<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = fields.iter().find(|f| f.name == head)?;
    match rest {
        Some(rest) => find_field(&field.fields, rest),
        None => Some(field),
    }
}

fn check_conditions(root: &[Field], fields: &[Field], prefix: &str) -> Result<(), String> {
    for field in fields {
        let path = join(prefix, &field.name);
        // Follow the chain of conditions: it must end, not come back.
        let mut seen = vec![path.clone()];
        let mut next = field.when.as_ref().map(|c| c.field.clone());
        while let Some(target) = next {
            if seen.contains(&target) {
                return Err(format!(
                    "field `{path}`: conditions form a cycle through `{target}`"
                ));
            }
            next = find_field(root, &target)
                .and_then(|f| f.when.as_ref())
                .map(|c| c.field.clone());
            seen.push(target);
        }
        if let Some(condition) = &field.when {
            let Some(target) = find_field(root, &condition.field) else {
                return Err(format!(
                    "field `{path}`: `when` refers to unknown field `{}`",
                    condition.field
                ));
            };
            let fits = match target.kind {
                FieldKind::Boolean => condition.is_true.is_some() && condition.equals.is_empty(),
                FieldKind::Enum => {
                    condition.is_true.is_none()
                        && !condition.equals.is_empty()
                        && condition
                            .equals
                            .iter()
                            .all(|e| target.values.iter().any(|v| &v.code == e))
                }
                FieldKind::Text => condition.is_true.is_none() && !condition.equals.is_empty(),
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "field `{path}`: `when` on `{}` needs `is_true` for a boolean or `equals` with its values for an enum or text",
                    condition.field
                ));
            }
        }
        check_conditions(root, &field.fields, &path)?;
    }
    Ok(())
}

fn compile_patterns(fields: &mut [Field], prefix: &str) -> Result<(), String> {
    for field in fields.iter_mut() {
        let path = join(prefix, &field.name);
        if let Some(pattern) = &field.pattern {
            if field.kind != FieldKind::Text {
                return Err(format!("field `{path}`: `pattern` is for text fields"));
            }
            let anchored = format!("^(?:{pattern})$");
            field.compiled_pattern = Some(
                regex::Regex::new(&anchored)
                    .map_err(|e| format!("field `{path}`: pattern: {e}"))?,
            );
        }
        compile_patterns(&mut field.fields, &path)?;
    }
    Ok(())
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
    form: &[Field],
    fields: &[Field],
    root: &Value,
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
        let applies = field.when.as_ref().is_none_or(|c| c.holds(form, root));
        let value = if applies {
            validate_field(form, field, root, value, &path, errors)
        } else {
            Value::Null
        };
        out.insert(field.name.clone(), value);
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

fn validate_field(
    form: &[Field],
    field: &Field,
    root: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Value {
    if is_blank(value) {
        if field.required {
            errors.push(FieldError::new(path, "Pflichtfeld"));
        }
        return Value::Null;
    }
    match field.kind {
        FieldKind::Group => validate_group(form, &field.fields, root, value, path, errors),
        FieldKind::Date => match value.as_str().map(parse_date) {
            Some(Some(date)) => Value::String(date),
            _ => {
                errors.push(FieldError::new(path, "kein gültiges Datum (TT.MM.JJJJ)"));
                Value::Null
            }
        },
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
            if let Some(pattern) = &field.compiled_pattern
                && !pattern.is_match(&text)
            {
                errors.push(FieldError::new(path, "hat nicht das erwartete Format"));
            }
            if field.kind == FieldKind::Email && !looks_like_email(&text) {
                errors.push(FieldError::new(path, "keine gültige E-Mail-Adresse"));
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
            if field.integer {
                if number.fract() != 0.0 || number.abs() > 9.0e15 {
                    errors.push(FieldError::new(path, "muss eine ganze Zahl sein"));
                    return Value::Null;
                }
                return Value::from(number as i64);
            }
            // As plain decimal text (never `1e-7`), the form XML Schema's decimal accepts.
            Value::String(format!("{number}"))
        }
        FieldKind::Boolean => match value {
            Value::Bool(false) if field.must_be_true => {
                errors.push(FieldError::new(path, "muss bestätigt werden"));
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
        let out = form()
            .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": 1e-7}}))
            .unwrap();
        assert_eq!(out["ort"]["lat"], "0.0000001");
        // Normalised data validates again to itself; German decimal commas are read.
        assert_eq!(form().validate(&out).unwrap(), out);
        let out = form()
            .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": "51,05"}}))
            .unwrap();
        assert_eq!(out["ort"]["lat"], "51.05");
        assert!(form()
            .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": "5e1"}}))
            .is_err());
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
        let mut broken: FormDefinition =
            toml::from_str("[[field]]\nname='x'\nlabel='X'\ntype='enum'\n").unwrap();
        assert!(broken.resolve(&SharedGroups::default()).is_err());
    }

    #[test]
    fn dates_are_accepted_in_german_and_iso_and_stored_as_iso() {
        assert_eq!(parse_date("24.12.1990").as_deref(), Some("1990-12-24"));
        assert_eq!(parse_date("1.2.2026").as_deref(), Some("2026-02-01"));
        assert_eq!(parse_date("2026-02-01").as_deref(), Some("2026-02-01"));
        for bad in [
            "31.02.2026",
            "2026-13-01",
            "1.2.26",
            "heute",
            "1.2.2026.",
            "+2026-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn conditional_fields_apply_only_when_their_condition_holds() {
        let mut form: FormDefinition = toml::from_str(
            r#"
            [[field]]
            name = "art"
            label = "Art"
            type = "enum"
            required = true
            values = [{ code = "neu", label = "Neu" }, { code = "umzug", label = "Umzug" }]

            [[field]]
            name = "bisher"
            label = "Bisherige Anschrift"
            type = "group"
            use = "anschrift"
            required = true
            when = { field = "art", equals = ["umzug"] }
            "#,
        )
        .unwrap();
        let shared: SharedGroups = toml::from_str(
            r#"
            [[group]]
            name = "anschrift"
            [[group.fields]]
            name = "strasse"
            label = "Straße"
            type = "text"
            required = true
            "#,
        )
        .unwrap();
        form.resolve(&shared).unwrap();
        // Not applicable: ignored, even if sent.
        let out = form
            .validate(&json!({"art": "neu", "bisher": {"strasse": "Alt"}}))
            .unwrap();
        assert_eq!(out["bisher"], Value::Null);
        // Applicable: required.
        let errors = form.validate(&json!({"art": "umzug"})).unwrap_err();
        assert_eq!(errors[0].field, "bisher");
        let out = form
            .validate(&json!({"art": "umzug", "bisher": {"strasse": "Alt"}}))
            .unwrap();
        assert_eq!(out["bisher"]["strasse"], "Alt");
    }

    #[test]
    fn conditions_and_uses_are_checked_when_loading() {
        let mut unknown: FormDefinition =
            toml::from_str("[[field]]\nname='x'\nlabel='X'\ntype='group'\nuse='nope'\n").unwrap();
        assert!(
            unknown
                .resolve(&SharedGroups::default())
                .unwrap_err()
                .contains("nope")
        );
        let mut dangling: FormDefinition = toml::from_str(
            "[[field]]\nname='x'\nlabel='X'\ntype='text'\nwhen={ field='y', equals=['a'] }\n",
        )
        .unwrap();
        assert!(
            dangling
                .resolve(&SharedGroups::default())
                .unwrap_err()
                .contains("unknown field `y`")
        );
    }
}
