//! A form as JSON Schema (2020-12), for clients that check their data before they send
//! it (FIT-Connect's `submissionSchema`). The form's own validation stays the judge:
//! conditions (`when`), dates relative to other fields and German normalisations are
//! not expressible here and are checked at intake.

use serde_json::{Map, Value, json};

use super::{Field, FieldKind, FormDefinition};

impl FormDefinition {
    /// The schema of the form's data (the object of its fields).
    pub fn data_schema(&self) -> Value {
        object(&self.fields)
    }
}

fn object(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        if field.filled_by.is_some() {
            continue;
        }
        properties.insert(field.name.clone(), schema_of(field));
        let least = field.repeat.as_ref().map_or(0, |r| r.least(field));
        if (field.required || least > 0) && field.when.is_none() {
            required.push(Value::String(field.name.clone()));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn schema_of(field: &Field) -> Value {
    let mut schema = match field.kind {
        FieldKind::Group => object(&field.fields),
        FieldKind::Text | FieldKind::Email => {
            let mut text = json!({"type": "string"});
            if field.kind == FieldKind::Email {
                text["format"] = json!("email");
            }
            if let Some(min) = field.min_length {
                text["minLength"] = json!(min);
            }
            if let Some(max) = field.max_length {
                text["maxLength"] = json!(max);
            }
            text
        }
        FieldKind::Number => {
            let mut number = json!({"type": if field.integer { "integer" } else { "number" }});
            if let Some(min) = field.min {
                number["minimum"] = json!(min);
            }
            if let Some(max) = field.max {
                number["maximum"] = json!(max);
            }
            number
        }
        FieldKind::Enum => json!({
            "type": "string",
            "enum": field.values.iter().map(|v| v.code.clone()).collect::<Vec<_>>(),
        }),
        FieldKind::Boolean if field.must_be_true => json!({"const": true}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        // `TT.MM.JJJJ` is accepted too; `JJJJ-MM-TT` is what the schema promises.
        FieldKind::Date => json!({"type": "string", "format": "date"}),
    };
    schema["title"] = json!(field.label);
    if let Some(help) = &field.help {
        schema["description"] = json!(help);
    }
    match &field.repeat {
        Some(repeat) => json!({
            "type": "array",
            "title": field.label,
            "items": schema,
            "minItems": repeat.least(field),
            "maxItems": repeat.max,
        }),
        None => schema,
    }
}
