//! Adding and removing entries of a repeatable group (a second dog): the step's buttons
//! `aktion=hinzufuegen:<group>` and `aktion=entfernen:<group>.<n>` post the whole step, so
//! that what was typed is kept and the page works without JavaScript.

use kopplung_forms::form::{FormDefinition, find_field};
use serde_json::{Map, Value};

use super::render;

/// What a step's button asks for besides "Weiter" and "Zwischenspeichern".
#[derive(Debug, PartialEq, Eq)]
pub enum EntryAction<'a> {
    Add { group: &'a str },
    Remove { group: &'a str, index: usize },
}

impl<'a> EntryAction<'a> {
    pub fn parse(action: &'a str) -> Option<Self> {
        if let Some(group) = action.strip_prefix("hinzufuegen:") {
            return Some(Self::Add { group });
        }
        let entry = action.strip_prefix("entfernen:")?;
        let (group, index) = entry.rsplit_once('.')?;
        Some(Self::Remove {
            group,
            index: index.parse().ok()?,
        })
    }

    /// Applies the action to the draft's data within the group's limits. Returns the
    /// anchor of the page to show next (the new entry, or the group), or `None` when the
    /// action names no repeatable group of the form.
    pub fn apply(&self, form: &FormDefinition, data: &mut Value) -> Option<String> {
        let group = match self {
            Self::Add { group } | Self::Remove { group, .. } => *group,
        };
        // A group's own path, never one inside an entry.
        if group.split('.').any(|part| part.parse::<usize>().is_ok()) {
            return None;
        }
        let field = find_field(&form.fields, group)?;
        let repeat = field.repeat.as_ref()?;
        let count = render::entry_count(field, group, data);
        let mut entries = render::get(data, group)
            .as_array()
            .cloned()
            .unwrap_or_default();
        // The page showed `count` entries, even those not stored yet.
        entries.resize_with(count, || Value::Object(Map::new()));
        let anchor = match self {
            Self::Add { .. } if entries.len() < repeat.max => {
                entries.push(Value::Object(Map::new()));
                format!("{group}.{}", entries.len() - 1)
            }
            Self::Remove { index, .. }
                if *index < entries.len() && entries.len() > repeat.least(field) =>
            {
                entries.remove(*index);
                group.to_owned()
            }
            _ => group.to_owned(),
        };
        render::set(data, group, Value::Array(entries));
        Some(render::field_id(&anchor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> FormDefinition {
        let mut form: FormDefinition = serde_json::from_value(json!({
            "field": [{"name": "hunde", "label": "Hunde", "type": "group",
                       "repeat": {"min": 1, "max": 2, "item": "Hund"},
                       "fields": [{"name": "name", "label": "Name", "type": "text"}]}],
        }))
        .unwrap();
        form.compile().unwrap();
        form
    }

    #[test]
    fn entries_are_added_and_removed_within_the_limits() {
        let form = form();
        let mut data = json!({"hunde": [{"name": "Bello"}]});
        let add = EntryAction::parse("hinzufuegen:hunde").unwrap();
        assert_eq!(add.apply(&form, &mut data).unwrap(), "f-hunde-1");
        assert_eq!(data["hunde"], json!([{"name": "Bello"}, {}]));
        // At the maximum nothing more is added.
        add.apply(&form, &mut data).unwrap();
        assert_eq!(data["hunde"].as_array().unwrap().len(), 2);
        let remove = EntryAction::parse("entfernen:hunde.0").unwrap();
        assert_eq!(remove.apply(&form, &mut data).unwrap(), "f-hunde");
        assert_eq!(data["hunde"], json!([{}]));
        // The minimum stays.
        remove.apply(&form, &mut data).unwrap();
        assert_eq!(data["hunde"], json!([{}]));
        assert_eq!(EntryAction::parse("entfernen:hunde.x"), None);
        assert!(
            EntryAction::parse("hinzufuegen:name")
                .unwrap()
                .apply(&form, &mut data)
                .is_none()
        );
    }
}
