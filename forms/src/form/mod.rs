//! Form definitions and the validation of submitted form data against them.
//!
//! The same definition drives the intake check in the router and, later, the portal's
//! rendering of the form, so it carries German labels next to the technical rules.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use check::{check_conditions, check_fields, collect_paths, compile_patterns, resolve_uses};
use validate::{Scope, validate_group};

mod check;
mod json_schema;
mod problem;
mod rules;
mod slots;
#[cfg(test)]
mod tests;
mod validate;

pub use problem::{Problem, is_symbol};
pub use rules::{Normalise, TextFormat};
pub use slots::AttachmentSlot;

pub use check::{find_field, in_repeat};
pub use validate::parse_date;

/// The fields of one service's online form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    #[serde(rename = "field", default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub attachments: AttachmentRules,
    /// Titles of the steps of a multi-page form (`[[step]] number = 2, title = "…"`);
    /// a step without one is "Angaben N".
    #[serde(rename = "step", default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepTitle>,
}

/// The title a front end shows for step `number` of a form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTitle {
    pub number: u32,
    pub title: String,
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
    /// The German sentence shown when the text does not match `pattern`, saying what to
    /// type (instead of the general "hat nicht das erwartete Format").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_message: Option<String>,
    /// A format with its own check (`iban`, `bic`); its value is stored normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    /// Normalisations before the checks (`remove_spaces`, `upper`, `lower`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub normalise: Vec<Normalise>,
    /// A date field's earliest and latest allowed date (`JJJJ-MM-TT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_date: Option<String>,
    /// A date field that must lie after the date of the field at this path (e.g. a
    /// dog's date of purchase after its birth date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<EnumValue>,
    /// Members of a `group` field.
    #[serde(rename = "fields", default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// A group the citizen fills in once per entry (two dogs, three children): its data
    /// is a list of objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
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

/// How often a repeatable group may be filled in (`repeat = { min = 1, max = 3, item =
/// "Hund" }`). Inside it, `when` and `after` name fields of the same entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// The fewest entries; a `required` group needs at least one.
    #[serde(default)]
    pub min: usize,
    pub max: usize,
    /// What one entry is called, for headings and buttons ("Hund 2", "Hund hinzufügen").
    pub item: String,
}

impl Repeat {
    /// The fewest entries `field` (whose `repeat` this is) accepts.
    pub fn least(&self, field: &Field) -> usize {
        self.min.max(usize::from(field.required))
    }
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
    /// Whether the condition holds for the submitted data (`fields` and `root`: the form
    /// and its data, or one entry of a repeatable group and its data). The field it looks
    /// at must itself apply: a chain of conditions never demands a field the citizen did
    /// not see.
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
    /// Named kinds of attachment, each perhaps required, perhaps only under a condition.
    #[serde(rename = "slot", default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<AttachmentSlot>,
}

/// A problem with one field, addressed by its dotted path (`ort.strasse`).
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    /// The short text the API answers (for integrators).
    pub message: String,
    /// What it is, for a citizen's sentence (`Problem::sentence`); `None` where the
    /// message is a whole sentence already or came from elsewhere.
    #[serde(skip)]
    pub problem: Option<Problem>,
}

/// Two errors are the same when they say the same of the same field.
impl PartialEq for FieldError {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.message == other.message
    }
}

impl Eq for FieldError {}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            problem: None,
        }
    }

    /// An error whose citizen's sentence `problem` words.
    pub fn of(field: impl Into<String>, message: impl Into<String>, problem: Problem) -> Self {
        Self {
            problem: Some(problem),
            ..Self::new(field, message)
        }
    }
}

impl FormDefinition {
    /// Replaces `use = "…"` by the shared group's fields, then checks the definition, so
    /// that a broken form is refused when the mapping loads.
    pub fn resolve(&mut self, shared: &SharedGroups) -> Result<(), String> {
        resolve_uses(&mut self.fields, shared, "")?;
        self.compile()
    }

    /// Checks a definition whose shared groups are already resolved (as
    /// `GET /api/v1/services` serves it) and compiles its patterns, so that a front end
    /// can validate with it.
    pub fn compile(&mut self) -> Result<(), String> {
        compile_patterns(&mut self.fields, "")?;
        check_fields(&self.fields, "")?;
        check_conditions(&self.fields, &self.fields, "")?;
        self.attachments.check(&self.fields)?;
        self.check_steps()
    }

    /// Each title names a step some field is on, once, with text.
    fn check_steps(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for step in &self.steps {
            let used = self
                .fields
                .iter()
                .any(|f| f.step.unwrap_or(1) == step.number);
            if !used || step.title.trim().is_empty() || !seen.insert(step.number) {
                return Err(format!(
                    "step {}: a title needs text, once per step, and a field on that step",
                    step.number
                ));
            }
        }
        Ok(())
    }

    /// The title of step `number` (1 = first), if the form gives one.
    pub fn step_title(&self, number: u32) -> Option<&str> {
        self.steps
            .iter()
            .find(|s| s.number == number)
            .map(|s| s.title.as_str())
    }

    /// Dotted paths of every field (groups and leaves) with whether it travels.
    pub fn paths(&self) -> Vec<(String, &Field)> {
        let mut out = Vec::new();
        collect_paths(&self.fields, "", &mut out);
        out
    }

    /// Validates `data` and returns it normalised: strings in NFC, every declared field present
    /// (`null` where an optional one was left out). All problems are reported at once.
    /// Limits relative to the day of submission (`max_date = "today"`) are not checked:
    /// this is the check of stored data (the message prepared later); a submission goes
    /// through [`Self::validate_submitted`].
    pub fn validate(&self, data: &Value) -> Result<Value, Vec<FieldError>> {
        self.validate_on(data, None)
    }

    /// [`Self::validate`] for data submitted on the German calendar day `today`, which
    /// also checks the limits relative to it.
    pub fn validate_submitted(
        &self,
        data: &Value,
        today: time::Date,
    ) -> Result<Value, Vec<FieldError>> {
        let today = format!(
            "{:04}-{:02}-{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        );
        self.validate_on(data, Some(&today))
    }

    fn validate_on(&self, data: &Value, today: Option<&str>) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let scope = Scope {
            form: &self.fields,
            root: data,
            today,
        };
        let normalised = validate_group(&scope, &self.fields, data, "", &mut errors);
        if errors.is_empty() {
            Ok(normalised)
        } else {
            Err(errors)
        }
    }
}
