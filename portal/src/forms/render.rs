//! From a form definition to the templates' view of the fields (labels bound to inputs,
//! help and errors linked with `aria-describedby`), from posted inputs back to data,
//! and the validator's messages in plain German.

use std::collections::BTreeMap;

use kopplung_forms::FieldError;
use kopplung_forms::form::{Field, FieldKind, FormDefinition, find_field};
use serde_json::{Map, Value, json};

/// Fields a citizen fills in (not those the portal fills, like the payment reference).
pub fn visible(field: &Field) -> bool {
    field.filled_by.is_none()
}

/// The steps of the form: the distinct `step` numbers of its visible fields (1 if unset).
pub fn steps(form: &FormDefinition) -> Vec<u32> {
    let mut steps: Vec<u32> = form
        .fields
        .iter()
        .filter(|f| visible(f))
        .map(|f| f.step.unwrap_or(1))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    if steps.is_empty() {
        steps.push(1);
    }
    steps
}

pub fn step_fields(form: &FormDefinition, step: u32) -> Vec<&Field> {
    form.fields
        .iter()
        .filter(|f| visible(f) && f.step.unwrap_or(1) == step)
        .collect()
}

/// The step a top-level field is on.
pub fn step_of(form: &FormDefinition, path: &str) -> u32 {
    let top = path.split('.').next().unwrap_or_default();
    form.fields
        .iter()
        .find(|f| f.name == top)
        .and_then(|f| f.step)
        .unwrap_or(1)
}

pub fn field_id(path: &str) -> String {
    format!("f-{}", path.replace('.', "-"))
}

pub fn get<'a>(data: &'a Value, path: &str) -> &'a Value {
    let mut value = data;
    for part in path.split('.') {
        value = value.get(part).unwrap_or(&Value::Null);
    }
    value
}

pub fn set(data: &mut Value, path: &str, new: Value) {
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = data;
    for part in parts {
        let Some(object) = current.as_object_mut() else {
            return;
        };
        let entry = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = entry;
    }
    if let Some(object) = current.as_object_mut() {
        if new.is_null() {
            object.remove(last);
        } else {
            object.insert(last.to_owned(), new);
        }
    }
}

/// Takes the posted inputs of `fields` (dotted names) into `data`.
pub fn take_inputs(fields: &[&Field], prefix: &str, pairs: &[(String, String)], data: &mut Value) {
    for field in fields {
        let path = join(prefix, &field.name);
        match field.kind {
            FieldKind::Group => {
                let children: Vec<&Field> = field.fields.iter().filter(|f| visible(f)).collect();
                take_inputs(&children, &path, pairs, data);
            }
            FieldKind::Boolean => {
                let checked = pairs.iter().any(|(k, v)| k == &path && v == "true");
                set(data, &path, Value::Bool(checked));
            }
            _ => {
                let text = pairs
                    .iter()
                    .find(|(k, _)| k == &path)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default();
                // Inputs are kept as typed; the validator normalises them on submission.
                let text: String = text.chars().take(10_000).collect();
                set(
                    data,
                    &path,
                    if text.is_empty() {
                        Value::Null
                    } else {
                        Value::String(text)
                    },
                );
            }
        }
    }
}

/// Copies master data into the form's groups that use a shared group of that name.
pub fn prefill(form: &FormDefinition, master: &Value) -> Value {
    let mut data = json!({});
    for field in &form.fields {
        let Some(group) = field.uses.as_deref() else {
            continue;
        };
        if !visible(field) || field.when.is_some() {
            continue;
        }
        for child in &field.fields {
            if let Some(value) = master[group][&child.name].as_str() {
                set(
                    &mut data,
                    &format!("{}.{}", field.name, child.name),
                    json!(value),
                );
            }
        }
    }
    data
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The validator's message about `field`, as a sentence for citizens.
pub fn message(form: &FormDefinition, error: &FieldError) -> String {
    let label = label_of(&form.fields, &error.field).unwrap_or_else(|| error.field.clone());
    match error.message.as_str() {
        "Pflichtfeld" => format!("Bitte geben Sie „{label}“ an."),
        "muss bestätigt werden" => format!("Bitte bestätigen Sie „{label}“."),
        other => format!("„{label}“ {other}."),
    }
}

fn label_of(fields: &[Field], path: &str) -> Option<String> {
    find_field(fields, path).map(|field| field.label.clone())
}

/// Errors by field path, as sentences.
pub fn error_map(form: &FormDefinition, errors: &[FieldError]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for error in errors {
        map.entry(error.field.clone())
            .or_insert_with(|| message(form, error));
    }
    map
}

/// The errors in the order their fields appear in the form (for the error summary).
pub fn in_form_order<'a>(
    form: &FormDefinition,
    map: &'a BTreeMap<String, String>,
) -> Vec<(&'a String, &'a String)> {
    let order: Vec<String> = form.paths().into_iter().map(|(path, _)| path).collect();
    let mut list: Vec<(&String, &String)> = map.iter().collect();
    list.sort_by_key(|(path, _)| order.iter().position(|p| p == *path).unwrap_or(usize::MAX));
    list
}

/// The template's view of `fields`: one object per field, groups with `children`.
pub fn views(
    form: &FormDefinition,
    fields: &[&Field],
    prefix: &str,
    data: &Value,
    errors: &BTreeMap<String, String>,
) -> Vec<Value> {
    fields
        .iter()
        .map(|field| view(form, field, prefix, data, errors))
        .collect()
}

fn view(
    form: &FormDefinition,
    field: &Field,
    prefix: &str,
    data: &Value,
    errors: &BTreeMap<String, String>,
) -> Value {
    let path = join(prefix, &field.name);
    let id = field_id(&path);
    let value = get(data, &path);
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let error = errors.get(&path);
    let help_id = field.help.as_ref().map(|_| format!("{id}-hint"));
    let error_id = error.map(|_| format!("{id}-error"));
    let described: Vec<String> = help_id.iter().chain(error_id.iter()).cloned().collect();
    let condition = field.when.as_ref().map(|c| {
        let target = label_of(&form.fields, &c.field).unwrap_or_else(|| c.field.clone());
        let text = if c.is_true.is_some() {
            format!("Nur auszufüllen, wenn „{target}“ angekreuzt ist.")
        } else {
            let labels: Vec<String> = c
                .equals
                .iter()
                .map(|code| {
                    enum_label(&form.fields, &c.field, code).unwrap_or_else(|| code.clone())
                })
                .collect();
            format!(
                "Nur auszufüllen, wenn bei „{target}“ „{}“ gewählt ist.",
                labels.join("“ oder „")
            )
        };
        json!({
            "text": text,
            "field": c.field,
            "values": if c.is_true.is_some() { "true".to_owned() } else { c.equals.join("|") },
        })
    });
    let options: Vec<Value> = field
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "id": if i == 0 { id.clone() } else { format!("{id}-{i}") },
                "code": v.code,
                "label": v.label,
                "selected": text == v.code,
            })
        })
        .collect();
    let children: Vec<&Field> = field.fields.iter().filter(|f| visible(f)).collect();
    let long_text = field.kind == FieldKind::Text && field.max_length.is_none_or(|max| max > 200);
    json!({
        "id": id,
        "name": path,
        "label": field.label,
        "help": field.help,
        "help_id": help_id,
        "error": error,
        "error_id": error_id,
        "describedby": if described.is_empty() { None } else { Some(described.join(" ")) },
        "required": field.required,
        // "(optional)" unless the label says so itself.
        "show_optional": !field.required && !field.label.contains("freiwillig"),
        "autocomplete": crate::account::autocomplete(&path),
        "value": text,
        "checked": value.as_bool().unwrap_or(false),
        "maxlength": field.max_length,
        "is_group": field.kind == FieldKind::Group,
        "is_textarea": long_text,
        "is_text": field.kind == FieldKind::Text && !long_text,
        "is_email": field.kind == FieldKind::Email,
        "is_date": field.kind == FieldKind::Date,
        "is_number": field.kind == FieldKind::Number,
        "is_boolean": field.kind == FieldKind::Boolean,
        "is_radio": field.kind == FieldKind::Enum && field.values.len() <= 6,
        "is_select": field.kind == FieldKind::Enum && field.values.len() > 6,
        "options": options,
        "condition": condition,
        "children": views(form, &children, &path, data, errors),
    })
}

fn enum_label(fields: &[Field], path: &str, code: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let field = fields.iter().find(|f| f.name == head)?;
    match rest {
        Some(rest) => enum_label(&field.fields, rest, code),
        None => field
            .values
            .iter()
            .find(|v| v.code == code)
            .map(|v| v.label.clone()),
    }
}

/// The review's rows: what the citizen entered, in words, for the fields that apply.
pub fn summary(form: &FormDefinition, data: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    summary_rows(form, &form.fields, "", data, 0, &mut rows);
    rows
}

fn summary_rows(
    form: &FormDefinition,
    fields: &[Field],
    prefix: &str,
    data: &Value,
    depth: usize,
    rows: &mut Vec<Value>,
) {
    for field in fields.iter().filter(|f| visible(f)) {
        if let Some(condition) = &field.when
            && !condition.holds(&form.fields, data)
        {
            continue;
        }
        let path = join(prefix, &field.name);
        let value = get(data, &path);
        let step = step_of(form, &path);
        if field.kind == FieldKind::Group {
            if value.as_object().is_some_and(|o| !o.is_empty()) {
                rows.push(json!({"heading": field.label, "depth": depth}));
                summary_rows(form, &field.fields, &path, data, depth + 1, rows);
            }
            continue;
        }
        let shown = match (field.kind, value) {
            (FieldKind::Boolean, Value::Bool(true)) => "Ja".to_owned(),
            (FieldKind::Boolean, _) => "Nein".to_owned(),
            (FieldKind::Enum, Value::String(code)) => {
                enum_label(&form.fields, &path, code).unwrap_or_else(|| code.clone())
            }
            (_, Value::String(s)) => s.clone(),
            (_, Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        rows.push(json!({
            "label": field.label,
            "value": shown,
            "step": step,
            "anchor": field_id(&path),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormDefinition {
        let mut form: FormDefinition = serde_json::from_value(json!({
            "field": [
                {"name": "art", "label": "Art", "type": "enum", "required": true,
                 "values": [{"code": "a", "label": "Erste"}, {"code": "b", "label": "Zweite"}]},
                {"name": "grund", "label": "Grund", "type": "text", "required": true,
                 "when": {"field": "art", "equals": ["b"]}},
                {"name": "person", "label": "Person", "type": "group", "use": "person", "step": 2,
                 "fields": [{"name": "familienname", "label": "Familienname", "type": "text", "required": true}]},
                {"name": "ok", "label": "Einverstanden", "type": "boolean", "step": 2},
                {"name": "zahlung", "label": "Zahlung", "type": "group", "filled_by": "payment",
                 "fields": [{"name": "referenz", "label": "Referenz", "type": "text"}]},
            ],
        }))
        .expect("form");
        form.compile().expect("valid");
        form
    }

    #[test]
    fn steps_leave_out_what_the_portal_fills() {
        let form = form();
        assert_eq!(steps(&form), vec![1, 2]);
        let second: Vec<&str> = step_fields(&form, 2)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(second, ["person", "ok"]);
        assert_eq!(step_of(&form, "person.familienname"), 2);
    }

    #[test]
    fn inputs_become_nested_data_and_unchecked_boxes_false() {
        let form = form();
        let mut data = json!({"art": "a", "zahlung": {"referenz": "X"}});
        let pairs = vec![
            ("person.familienname".to_owned(), "  Weber ".to_owned()),
            ("zahlung.referenz".to_owned(), "GESCHENKT".to_owned()),
        ];
        take_inputs(&step_fields(&form, 2), "", &pairs, &mut data);
        assert_eq!(
            data,
            json!({"art": "a", "person": {"familienname": "Weber"}, "ok": false, "zahlung": {"referenz": "X"}})
        );
        // An emptied input is removed again.
        let pairs = vec![("person.familienname".to_owned(), String::new())];
        take_inputs(&step_fields(&form, 2), "", &pairs, &mut data);
        assert_eq!(data["person"], json!({}));
    }

    #[test]
    fn master_data_prefill_groups_that_use_a_shared_group() {
        let data = prefill(
            &form(),
            &json!({"person": {"familienname": "Weber", "vornamen": "Erik"}}),
        );
        assert_eq!(data, json!({"person": {"familienname": "Weber"}}));
    }

    #[test]
    fn messages_and_the_summary_speak_german_and_skip_what_does_not_apply() {
        let form = form();
        let errors = form.validate(&json!({"art": "b"})).expect_err("invalid");
        let map = error_map(&form, &errors);
        assert_eq!(map["grund"], "Bitte geben Sie „Grund“ an.");
        let rows = summary(
            &form,
            &json!({"art": "a", "grund": "vergessen", "ok": true}),
        );
        let labels: Vec<&str> = rows.iter().filter_map(|r| r["label"].as_str()).collect();
        assert_eq!(labels, ["Art", "Einverstanden"]);
        assert_eq!(rows[0]["value"], "Erste");
        assert_eq!(rows[1]["value"], "Ja");
    }

    #[test]
    fn condition_hints_are_whole_sentences_and_steps_have_their_titles() {
        let mut form: FormDefinition = serde_json::from_value(json!({
            "field": [
                {"name": "art", "label": "Art", "type": "enum",
                 "values": [{"code": "a", "label": "Erste"}, {"code": "b", "label": "Zweite"}]},
                {"name": "grund", "label": "Grund", "type": "text",
                 "when": {"field": "art", "equals": ["a", "b"]}},
                {"name": "gefaehrlich", "label": "Der Hund gilt als gefährlich", "type": "boolean", "step": 2},
                {"name": "nachweis", "label": "Nachweis", "type": "text", "step": 2,
                 "when": {"field": "gefaehrlich", "is_true": true}},
            ],
            "step": [{"number": 2, "title": "Angaben zum Hund"}],
        }))
        .expect("form");
        form.compile().expect("valid");
        let fields: Vec<&Field> = form.fields.iter().collect();
        let views = views(&form, &fields, "", &json!({}), &BTreeMap::new());
        assert_eq!(
            views[1]["condition"]["text"],
            "Nur auszufüllen, wenn bei „Art“ „Erste“ oder „Zweite“ gewählt ist."
        );
        assert_eq!(
            views[3]["condition"]["text"],
            "Nur auszufüllen, wenn „Der Hund gilt als gefährlich“ angekreuzt ist."
        );
        assert_eq!(form.step_title(2), Some("Angaben zum Hund"));
        assert_eq!(form.step_title(1), None);
        // A title for a step no field is on is refused when the form loads.
        form.steps.push(kopplung_forms::form::StepTitle {
            number: 3,
            title: "Leer".into(),
        });
        assert!(form.compile().unwrap_err().contains("step 3"));
    }
}
