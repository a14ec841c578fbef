//! From a form definition to the templates' view of the fields (labels bound to inputs,
//! help and errors linked with `aria-describedby`), from posted inputs back to data,
//! and the validator's messages in plain German.

use std::collections::BTreeMap;

use kopplung_forms::FieldError;
use kopplung_forms::form::{Condition, Field, FieldKind, FormDefinition, Repeat, find_field};
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
    if path.is_empty() {
        return data;
    }
    let mut value = data;
    for part in path.split('.') {
        value = match (value, part.parse::<usize>()) {
            (Value::Array(entries), Ok(index)) => entries.get(index),
            _ => value.get(part),
        }
        .unwrap_or(&Value::Null);
    }
    value
}

/// Sets the value at `path`, creating objects (and, for a number after a list, entries)
/// on the way; `null` removes a member.
pub fn set(data: &mut Value, path: &str, new: Value) {
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = data;
    for part in parts {
        current = match (current, part.parse::<usize>()) {
            (Value::Array(entries), Ok(index)) => {
                while entries.len() <= index {
                    entries.push(Value::Object(Map::new()));
                }
                &mut entries[index]
            }
            (Value::Object(object), _) => object
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new())),
            _ => return,
        };
        if current.is_null() {
            *current = Value::Object(Map::new());
        }
    }
    if let Some(object) = current.as_object_mut() {
        if new.is_null() {
            object.remove(last);
        } else {
            object.insert(last.to_owned(), new);
        }
    }
}

/// How many entries of the repeatable group `field` at `path` the page shows: those in
/// the draft, at least the group's minimum (and one, so that there is something to fill).
pub fn entry_count(field: &Field, path: &str, data: &Value) -> usize {
    let stored = get(data, path).as_array().map_or(0, Vec::len);
    let least = field.repeat.as_ref().map_or(1, |r| r.least(field).max(1));
    stored.max(least)
}

/// Takes the posted inputs of `fields` (dotted names) into `data`.
pub fn take_inputs(fields: &[&Field], prefix: &str, pairs: &[(String, String)], data: &mut Value) {
    for field in fields {
        let path = join(prefix, &field.name);
        match field.kind {
            FieldKind::Group => {
                let children: Vec<&Field> = field.fields.iter().filter(|f| visible(f)).collect();
                if field.repeat.is_some() {
                    let count = entry_count(field, &path, data);
                    if !get(data, &path).is_array() {
                        set(data, &path, Value::Array(Vec::new()));
                    }
                    for index in 0..count {
                        take_inputs(&children, &format!("{path}.{index}"), pairs, data);
                    }
                } else {
                    take_inputs(&children, &path, pairs, data);
                }
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
                // Inputs are kept as typed but for the field's own normalisation (a
                // plate as on the sign); the validator does the rest on submission.
                let text: String = field.written(text.chars().take(10_000).collect());
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
        if !visible(field) || field.when.is_some() || field.repeat.is_some() {
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

/// The validator's message about `field`, as a sentence for citizens. A field of a
/// repeatable group names its entry ("„Name“ (Hund 2)").
pub fn message(form: &FormDefinition, error: &FieldError) -> String {
    if let Some(slot) = error.field.strip_prefix("attachments.") {
        let label = form
            .attachments
            .slot(slot)
            .map_or(slot, |s| s.label.as_str());
        return if error.message == "Pflichtfeld" {
            format!("Bitte laden Sie „{label}“ bei den Unterlagen hoch.")
        } else {
            format!(
                "Die Unterlage „{label}“ wird nach Ihren Angaben nicht gebraucht. Bitte entfernen Sie sie bei den Unterlagen."
            )
        };
    }
    let label = label_of(&form.fields, &error.field).unwrap_or_else(|| error.field.clone());
    // A declaration's label is a sentence: its full stop would stand before the quote's.
    let label = label.strip_suffix('.').unwrap_or(&label).to_owned();
    let subject = match entry_of(&form.fields, &error.field) {
        Some(entry) => format!("„{label}“ ({entry})"),
        None => format!("„{label}“"),
    };
    if let Some(problem) = &error.problem {
        return problem.sentence(&subject);
    }
    match error.message.as_str() {
        "Pflichtfeld" => format!("Bitte geben Sie {subject} an."),
        "muss bestätigt werden" => format!("Bitte bestätigen Sie {subject}."),
        // The rules' own messages are whole sentences already.
        sentence if sentence.starts_with(char::is_uppercase) => format!("{subject}: {sentence}"),
        other => format!("{subject} {other}."),
    }
}

/// The problem of a file in an attachment slot the data does not ask for.
pub const NOT_NEEDED: &str = "wird nicht gebraucht";

/// "Hund 2" for a path inside the second entry of a repeatable group.
fn entry_of(fields: &[Field], path: &str) -> Option<String> {
    let (head, rest) = path.split_once('.')?;
    let field = fields.iter().find(|f| f.name == head)?;
    match &field.repeat {
        Some(repeat) => {
            let index: usize = rest.split('.').next()?.parse().ok()?;
            Some(format!("{} {}", repeat.item, index + 1))
        }
        None => entry_of(&field.fields, rest),
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
    let position = |bare: &str| order.iter().position(|p| p == bare).unwrap_or(usize::MAX);
    // Entries of a repeatable group in their order, each entry's fields in form order.
    let key = |path: &str| {
        let top = path.split('.').next().unwrap_or_default();
        let entries: Vec<usize> = path.split('.').filter_map(|p| p.parse().ok()).collect();
        let bare: Vec<&str> = path
            .split('.')
            .filter(|p| p.parse::<usize>().is_err())
            .collect();
        (position(top), entries, position(&bare.join(".")))
    };
    let mut list: Vec<(&String, &String)> = map.iter().collect();
    list.sort_by_key(|(path, _)| key(path));
    list
}

/// The template's view of `fields`: one object per field, groups with `children`,
/// repeatable groups with their `entries`.
pub fn views(
    form: &FormDefinition,
    fields: &[&Field],
    prefix: &str,
    data: &Value,
    errors: &BTreeMap<String, String>,
) -> Vec<Value> {
    let scope = Scope {
        fields: &form.fields,
        prefix: "",
    };
    views_in(&scope, fields, prefix, data, errors)
}

/// What a field's condition refers to: the form, or one entry of a repeatable group.
struct Scope<'a> {
    fields: &'a [Field],
    /// Where that entry's data lies (`hunde.1`), empty for the form.
    prefix: &'a str,
}

fn views_in(
    scope: &Scope<'_>,
    fields: &[&Field],
    prefix: &str,
    data: &Value,
    errors: &BTreeMap<String, String>,
) -> Vec<Value> {
    fields
        .iter()
        .map(|field| view(scope, field, prefix, data, errors))
        .collect()
}

fn condition_view(scope: &Scope<'_>, condition: &Condition) -> Value {
    let target =
        label_of(scope.fields, &condition.field).unwrap_or_else(|| condition.field.clone());
    let text = if condition.is_true.is_some() {
        format!("Nur auszufüllen, wenn „{target}“ angekreuzt ist.")
    } else {
        let labels: Vec<String> = condition
            .equals
            .iter()
            .map(|code| {
                enum_label(scope.fields, &condition.field, code).unwrap_or_else(|| code.clone())
            })
            .collect();
        format!(
            "Nur auszufüllen, wenn bei „{target}“ „{}“ gewählt ist.",
            labels.join("“ oder „")
        )
    };
    let values = if condition.is_true.is_some() {
        "true".to_owned()
    } else {
        condition.equals.join("|")
    };
    json!({"text": text, "field": join(scope.prefix, &condition.field), "values": values})
}

/// The entries of a repeatable group, each with its heading and fields, and the buttons
/// that add and remove entries (plain submit buttons: they work without JavaScript).
fn entries_view(
    field: &Field,
    repeat: &Repeat,
    path: &str,
    data: &Value,
    errors: &BTreeMap<String, String>,
) -> Value {
    let children: Vec<&Field> = field.fields.iter().filter(|f| visible(f)).collect();
    let count = entry_count(field, path, data);
    let removable = count > repeat.least(field);
    let entries: Vec<Value> = (0..count)
        .map(|index| {
            let prefix = format!("{path}.{index}");
            let scope = Scope {
                fields: &field.fields,
                prefix: &prefix,
            };
            let heading = format!("{} {}", repeat.item, index + 1);
            json!({
                "id": field_id(&prefix),
                "heading": heading,
                "children": views_in(&scope, &children, &prefix, data, errors),
                "remove": removable.then(|| json!({
                    "value": format!("entfernen:{prefix}"),
                    "label": format!("{heading} entfernen"),
                })),
            })
        })
        .collect();
    let add = (count < repeat.max).then(|| {
        json!({"value": format!("hinzufuegen:{path}"), "label": format!("{} hinzufügen", repeat.item)})
    });
    json!({"entries": entries, "add": add, "max": repeat.max})
}

fn view(
    scope: &Scope<'_>,
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
    let condition = field.when.as_ref().map(|c| condition_view(scope, c));
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
    let repeat = field
        .repeat
        .as_ref()
        .map(|repeat| entries_view(field, repeat, &path, data, errors));
    let children = if repeat.is_some() {
        Vec::new()
    } else {
        views_in(scope, &children, &path, data, errors)
    };
    let long_text = field.kind == FieldKind::Text && field.max_length.is_none_or(|max| max > 200);
    json!({
        "id": id,
        "name": path,
        "label": field.label,
        "help": field.help,
        "help_id": help_id,
        // The consent to the privacy notice links it (docs/mappings.md).
        "privacy": path == "datenschutz" && field.kind == FieldKind::Boolean,
        "error": error,
        "error_id": error_id,
        "describedby": if described.is_empty() { None } else { Some(described.join(" ")) },
        "required": field.required,
        // "(optional)" unless the label says so itself.
        "show_optional": !field.required
            && field.repeat.as_ref().is_none_or(|r| r.least(field) == 0)
            && !field.label.contains("freiwillig"),
        "autocomplete": crate::account::autocomplete(&path),
        "value": text,
        "checked": value.as_bool().unwrap_or(false),
        "maxlength": field.max_length,
        "is_group": field.kind == FieldKind::Group,
        "repeat": repeat,
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
        "children": children,
    })
}

fn enum_label(fields: &[Field], path: &str, code: &str) -> Option<String> {
    find_field(fields, path)?
        .values
        .iter()
        .find(|v| v.code == code)
        .map(|v| v.label.clone())
}

/// The review's rows: what the citizen entered, in words, for the fields that apply.
/// On a form of several steps, each step's rows come under the step's title, so that a
/// field after a group is not read as part of it.
pub fn summary(form: &FormDefinition, data: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    let scope = Scope {
        fields: &form.fields,
        prefix: "",
    };
    let all = steps(form);
    if all.len() < 2 {
        summary_rows(form, &scope, &form.fields, "", data, 0, &mut rows);
        return rows;
    }
    for (index, step) in all.iter().enumerate() {
        let title = form
            .step_title(*step)
            .map_or_else(|| format!("Angaben {}", index + 1), str::to_owned);
        let before = rows.len();
        rows.push(json!({"heading": title, "depth": 0, "step_heading": true}));
        for field in step_fields(form, *step) {
            summary_rows(
                form,
                &scope,
                std::slice::from_ref(field),
                "",
                data,
                1,
                &mut rows,
            );
        }
        if rows.len() == before + 1 {
            rows.pop();
        }
    }
    rows
}

fn summary_rows(
    form: &FormDefinition,
    scope: &Scope<'_>,
    fields: &[Field],
    prefix: &str,
    data: &Value,
    depth: usize,
    rows: &mut Vec<Value>,
) {
    for field in fields.iter().filter(|f| visible(f)) {
        if let Some(condition) = &field.when
            && !condition.holds(scope.fields, get(data, scope.prefix))
        {
            continue;
        }
        let path = join(prefix, &field.name);
        let value = get(data, &path);
        let step = step_of(form, &path);
        if let (Some(repeat), Value::Array(entries)) = (&field.repeat, value) {
            if !entries.is_empty() {
                rows.push(json!({"heading": field.label, "depth": depth}));
            }
            for index in 0..entries.len() {
                let entry = format!("{path}.{index}");
                let inner = Scope {
                    fields: &field.fields,
                    prefix: &entry,
                };
                let heading = format!("{} {}", repeat.item, index + 1);
                rows.push(json!({"heading": heading, "depth": depth + 1}));
                summary_rows(form, &inner, &field.fields, &entry, data, depth + 2, rows);
            }
            continue;
        }
        if field.kind == FieldKind::Group {
            if value.as_object().is_some_and(|o| !o.is_empty()) {
                rows.push(json!({"heading": field.label, "depth": depth}));
                summary_rows(form, scope, &field.fields, &path, data, depth + 1, rows);
            }
            continue;
        }
        let shown = match (field.kind, value) {
            (FieldKind::Boolean, Value::Bool(true)) => "Ja".to_owned(),
            (FieldKind::Boolean, _) => "Nein".to_owned(),
            (FieldKind::Enum, Value::String(code)) => field
                .values
                .iter()
                .find(|v| &v.code == code)
                .map_or_else(|| code.clone(), |v| v.label.clone()),
            (_, Value::String(s)) => s.clone(),
            // A decimal comma, as German readers write it (51,05089).
            (_, Value::Number(n)) => n.to_string().replace('.', ","),
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
        let shown: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                let text = r["heading"].as_str().or(r["label"].as_str());
                (
                    text.unwrap_or_default(),
                    r["value"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        // Each step under its title (the second step's group is empty: no heading).
        assert_eq!(
            shown,
            [
                ("Angaben 1", ""),
                ("Art", "Erste"),
                ("Angaben 2", ""),
                ("Einverstanden", "Ja")
            ]
        );
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
