//! What the clerk sees: form data as German labels and values, sizes and safe download
//! headers (times: `kopplung_web::shell::german_time`). Pure functions, so they are tested
//! without a hub.

use kopplung_transformers::form::{Field, FieldKind};
use serde::Serialize;
use serde_json::Value;

/// A run of fields shown as one list, or a group shown as a sub-section.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Block {
    pub leaves: Option<Vec<Leaf>>,
    pub group: Option<Group>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Leaf {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub label: String,
    /// The heading level (3 for the form's own groups, at most 6).
    pub level: u8,
    pub blocks: Vec<Block>,
}

/// The form's fields in their order with the submitted values; fields absent from the
/// data (or `null`) are left out, and so are groups with nothing in them.
pub fn form_blocks(fields: &[Field], data: &Value) -> Vec<Block> {
    blocks_of(fields, data, 3)
}

fn blocks_of(fields: &[Field], data: &Value, level: u8) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for field in fields {
        let value = match data.get(&field.name) {
            None | Some(Value::Null) => continue,
            Some(value) => value,
        };
        if field.kind == FieldKind::Group {
            let inner = blocks_of(&field.fields, value, (level + 1).min(6));
            push_group(&mut blocks, &field.label, level, inner);
            continue;
        }
        push_leaf(&mut blocks, &field.label, display_value(field, value));
    }
    blocks
}

/// A group as its own block, unless nothing in it was filled.
fn push_group(blocks: &mut Vec<Block>, label: &str, level: u8, inner: Vec<Block>) {
    if !inner.is_empty() {
        blocks.push(Block {
            leaves: None,
            group: Some(Group {
                label: label.to_owned(),
                level,
                blocks: inner,
            }),
        });
    }
}

/// A field joins the list of fields just before it, or starts a new list after a group.
fn push_leaf(blocks: &mut Vec<Block>, label: &str, value: String) {
    let leaf = Leaf {
        label: label.to_owned(),
        value,
    };
    match blocks.last_mut() {
        Some(Block {
            leaves: Some(leaves),
            ..
        }) => leaves.push(leaf),
        _ => blocks.push(Block {
            leaves: Some(vec![leaf]),
            group: None,
        }),
    }
}

/// Without a form definition (the mapping is gone): the data's own keys as labels.
pub fn raw_blocks(data: &Value, level: u8) -> Vec<Block> {
    let Value::Object(map) = data else {
        return Vec::new();
    };
    let mut blocks: Vec<Block> = Vec::new();
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Object(_) => {
                let inner = raw_blocks(value, (level + 1).min(6));
                push_group(&mut blocks, key, level, inner);
            }
            _ => push_leaf(&mut blocks, key, plain_value(value)),
        }
    }
    blocks
}

/// One value as a clerk reads it: enum codes as their labels, booleans as Ja/Nein,
/// dates as TT.MM.JJJJ, numbers with a decimal comma.
pub fn display_value(field: &Field, value: &Value) -> String {
    match (field.kind, value) {
        (FieldKind::Enum, Value::String(code)) => field
            .values
            .iter()
            .find(|v| &v.code == code)
            .map(|v| v.label.clone())
            .unwrap_or_else(|| code.clone()),
        (FieldKind::Date, Value::String(date)) => german_date(date),
        // Validated decimals are stored as plain decimal text.
        (FieldKind::Number, Value::String(number)) => number.replace('.', ","),
        _ => plain_value(value),
    }
}

fn plain_value(value: &Value) -> String {
    match value {
        Value::Bool(true) => "Ja".into(),
        Value::Bool(false) => "Nein".into(),
        Value::Number(n) => n.to_string().replace('.', ","),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(plain_value).collect::<Vec<_>>().join(", "),
        Value::Object(_) => value.to_string(),
    }
}

/// `2025-03-14` → `14.03.2025`; anything else as it is.
pub fn german_date(iso: &str) -> String {
    let parts: Vec<&str> = iso.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => format!("{d}.{m}.{y}"),
        _ => iso.to_owned(),
    }
}

/// `1536` → `1,5 KB`.
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    let decimal = |value: f64, unit: &str| format!("{value:.1} {unit}").replace('.', ",");
    if bytes < KIB {
        format!("{bytes} Byte")
    } else if bytes < MIB {
        decimal(bytes as f64 / KIB as f64, "KB")
    } else {
        decimal(bytes as f64 / MIB as f64, "MB")
    }
}

/// A media type as a clerk names the file: `application/pdf` → `PDF-Dokument`.
pub fn media_type_name(media_type: &str) -> String {
    let name = match media_type {
        "application/pdf" => "PDF-Dokument",
        "image/jpeg" => "JPEG-Bild",
        "image/png" => "PNG-Bild",
        "image/tiff" => "TIFF-Bild",
        "image/svg+xml" => "SVG-Grafik",
        "application/xml" | "text/xml" => "XML-Datei",
        "text/plain" => "Textdatei",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "Word-Dokument"
        }
        "application/vnd.oasis.opendocument.text" => "OpenDocument-Text",
        _ => return format!("Datei ({media_type})"),
    };
    name.to_owned()
}

/// The media types served as themselves; everything else is a download of bytes, so
/// that no browser ever runs a submitted file (HTML, SVG, …) in the hub's origin.
pub fn served_media_type(declared: &str) -> &'static str {
    match declared {
        "application/pdf" => "application/pdf",
        "image/jpeg" => "image/jpeg",
        "image/png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The `Content-Disposition` of a download (RFC 6266), as every front end sends it.
pub use kopplung_web::disposition::attachment as content_disposition;

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_transformers::form::FormDefinition;
    use serde_json::json;

    fn form() -> FormDefinition {
        toml::from_str(
            r#"
[[field]]
name = "kategorie"
label = "Art des Mangels"
type = "enum"
values = [{ code = "muell", label = "Müll" }]

[[field]]
name = "dringend"
label = "Dringend"
type = "boolean"

[[field]]
name = "seit"
label = "Seit"
type = "date"

[[field]]
name = "ort"
label = "Ort"
type = "group"

  [[field.fields]]
  name = "strasse"
  label = "Straße"
  type = "text"

  [[field.fields]]
  name = "lat"
  label = "Breite"
  type = "number"

[[field]]
name = "leer"
label = "Leere Gruppe"
type = "group"

  [[field.fields]]
  name = "x"
  label = "X"
  type = "text"

[[field]]
name = "bemerkung"
label = "Bemerkung"
type = "text"
"#,
        )
        .expect("form")
    }

    #[test]
    fn values_read_as_german_with_groups_as_sections() {
        let data = json!({
            "kategorie": "muell",
            "dringend": false,
            "seit": "2025-03-14",
            "ort": {"strasse": "Hauptstraße", "lat": "51.07"},
            "leer": {"x": null},
            "bemerkung": null
        });
        let blocks = form_blocks(&form().fields, &data);
        assert_eq!(blocks.len(), 2, "{blocks:#?}");
        let leaves = blocks[0].leaves.as_ref().expect("leaves");
        let shown: Vec<(&str, &str)> = leaves
            .iter()
            .map(|l| (l.label.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("Art des Mangels", "Müll"),
                ("Dringend", "Nein"),
                ("Seit", "14.03.2025")
            ]
        );
        let group = blocks[1].group.as_ref().expect("group");
        assert_eq!((group.label.as_str(), group.level), ("Ort", 3));
        let inner = group.blocks[0].leaves.as_ref().expect("inner leaves");
        assert_eq!(inner[1].value, "51,07");
    }

    #[test]
    fn downloads_never_carry_active_types_or_unsafe_names() {
        assert_eq!(served_media_type("image/png"), "image/png");
        assert_eq!(served_media_type("text/html"), "application/octet-stream");
        assert_eq!(
            served_media_type("image/svg+xml"),
            "application/octet-stream"
        );
        let header = content_disposition("../Bild \"1\";\r\nx.svg");
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert!(
            header.starts_with("attachment; filename=\"Bild _1__x.svg\""),
            "{header}"
        );
        let header = content_disposition("Straße.pdf");
        assert!(header.contains("filename=\"Stra_e.pdf\""), "{header}");
        assert!(
            header.contains("filename*=UTF-8''Stra%C3%9Fe.pdf"),
            "{header}"
        );
        assert!(content_disposition("...").contains("filename=\"anlage\""));
    }

    #[test]
    fn sizes_read_as_german() {
        assert_eq!(human_size(512), "512 Byte");
        assert_eq!(human_size(1536), "1,5 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5,0 MB");
    }
}
