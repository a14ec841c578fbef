//! Attachment slots: named kinds of attachment a form asks for (`[[attachments.slot]]`),
//! each with its own media types and size, required perhaps only when a field says so
//! ("the Wesenstest, only for a dangerous dog").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::{condition_fits, find_field, in_repeat};
use super::{AttachmentRules, Condition, Field, FieldError};

/// One kind of attachment of a form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSlot {
    /// ASCII letters, digits and `_`; what an attachment names as its `slot`.
    pub name: String,
    /// German, shown to citizens ("Bescheinigung des Wesenstests").
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Whether at least one attachment of this slot is needed (when it applies).
    #[serde(default)]
    pub required: bool,
    /// The slot applies only when this condition holds; a field inside a repeatable group
    /// (`hunde.gefaehrlich`) holds if it holds for any entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Media types of this slot; empty: the form's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_types: Vec<String>,
    /// Largest file of this slot; unset: the form's `max_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
}

impl AttachmentSlot {
    /// Whether the slot applies to `data` (the form's validated data).
    pub fn applies(&self, fields: &[Field], data: &Value) -> bool {
        self.when
            .as_ref()
            .is_none_or(|condition| holds_anywhere(condition, fields, data))
    }

    /// The media types an attachment of this slot may have.
    pub fn media_types<'a>(&'a self, rules: &'a AttachmentRules) -> &'a [String] {
        if self.media_types.is_empty() {
            &rules.media_types
        } else {
            &self.media_types
        }
    }

    pub fn max_bytes(&self, rules: &AttachmentRules) -> usize {
        self.max_bytes.unwrap_or(rules.max_bytes)
    }
}

impl AttachmentRules {
    pub fn slot(&self, name: &str) -> Option<&AttachmentSlot> {
        self.slots.iter().find(|slot| slot.name == name)
    }

    /// The required slots that apply to `data` and have no attachment among `given`
    /// (the slot names of the attachments), as errors at `attachments.<slot>`.
    pub fn missing(
        &self,
        fields: &[Field],
        data: &Value,
        given: &[Option<&str>],
    ) -> Vec<FieldError> {
        self.slots
            .iter()
            .filter(|slot| slot.required && slot.applies(fields, data))
            .filter(|slot| !given.contains(&Some(slot.name.as_str())))
            .map(|slot| FieldError::new(format!("attachments.{}", slot.name), "Pflichtfeld"))
            .collect()
    }

    /// Load-time checks: names, conditions, limits.
    pub(super) fn check(&self, fields: &[Field]) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for slot in &self.slots {
            let at = format!("[[attachments.slot]] `{}`", slot.name);
            if slot.name.is_empty()
                || !slot
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                || !seen.insert(slot.name.as_str())
            {
                return Err(format!(
                    "{at}: names use only ASCII letters, digits and `_`, once each"
                ));
            }
            if slot.label.trim().is_empty() {
                return Err(format!("{at}: needs a label"));
            }
            if self.max_count == 0 {
                return Err(format!("{at}: `max_count` of [attachments] is 0"));
            }
            if let Some(condition) = &slot.when {
                let target = find_field(fields, &condition.field).ok_or_else(|| {
                    format!("{at}: `when` refers to unknown field `{}`", condition.field)
                })?;
                if !condition_fits(target, condition) {
                    return Err(format!(
                        "{at}: `when` on `{}` needs `is_true` for a boolean or `equals` for an enum or text",
                        condition.field
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A condition from the form's root that may look into a repeatable group: then it
/// holds if it holds for one of the group's entries.
fn holds_anywhere(condition: &Condition, fields: &[Field], data: &Value) -> bool {
    if !in_repeat(fields, &condition.field) {
        return condition.holds(fields, data);
    }
    // The part up to the repeatable group, and the rest inside one entry.
    let parts: Vec<&str> = condition.field.split('.').collect();
    for split in 1..parts.len() {
        let group_path = parts[..split].join(".");
        let Some(group) = find_field(fields, &group_path).filter(|f| f.repeat.is_some()) else {
            continue;
        };
        let inner = Condition {
            field: parts[split..].join("."),
            ..condition.clone()
        };
        let mut entries = data;
        for part in &parts[..split] {
            entries = entries.get(part).unwrap_or(&Value::Null);
        }
        return entries.as_array().is_some_and(|entries| {
            entries
                .iter()
                .any(|entry| inner.holds(&group.fields, entry))
        });
    }
    false
}
