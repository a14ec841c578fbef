//! The Mängelanzeige mapping renders submitted values verbatim, hostile ones included.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;

use common::{mapping_env, root, text_of};
use kopplung_transformers::mapping::{Mapping, MessageContext, load_all};
use serde_json::json;

fn mapping() -> Mapping {
    Mapping::load(&root().join("maengelanzeige"), &mapping_env()).unwrap()
}

fn context(data: serde_json::Value, mapping: &Mapping) -> MessageContext {
    common::context(mapping.form.validate(&data).unwrap(), mapping)
}

#[test]
fn hostile_values_arrive_verbatim_as_text() {
    let mapping = mapping();
    let hostile = "</beschreibung><x>&amp; ]]> {{x}} \"'<![CDATA[ Grüße";
    let xml = mapping
        .render(&context(
            json!({
                "kategorie": "strassenschaden",
                "beschreibung": hostile,
                "ort": {"strasse": "Königsbrücker Straße", "hausnummer": "5<6", "lat": 51.05, "lon": 13.74},
                "kontakt": {"name": "Jürgen O'Neill", "email": "j@example.org"}
            }),
            &mapping,
        ))
        .unwrap();
    assert_eq!(text_of(&xml, "beschreibung").unwrap(), hostile);
    assert_eq!(text_of(&xml, "strasse").unwrap(), "Königsbrücker Straße");
    assert_eq!(text_of(&xml, "hausnummer").unwrap(), "5<6");
    assert_eq!(text_of(&xml, "name").unwrap(), "Landeshauptstadt Dresden");
    assert_eq!(text_of(&xml, "breite").unwrap(), "51.05");
    assert!(xml.contains("<name>Straßenschaden</name>"));
    assert!(xml.contains("<email>j@example.org</email>"));
    assert!(!xml.contains("<x>"));
}

#[test]
fn optional_parts_are_left_out_when_empty() {
    let mapping = mapping();
    let xml = mapping
        .render(&context(
            json!({"kategorie": "muell", "beschreibung": "Sperrmüll am Straßenrand", "ort": {"strasse": "Markt"}}),
            &mapping,
        ))
        .unwrap();
    assert!(!xml.contains("<kontakt>"));
    assert!(!xml.contains("<hausnummer>"));
    assert!(!xml.contains("<geokoordinate>"));
}

#[test]
fn a_template_with_raw_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/maengelanzeige");
    let folder = dir.path().join("m");
    std::fs::create_dir(&folder).unwrap();
    for file in ["service.toml", "form.toml"] {
        std::fs::copy(src.join(file), folder.join(file)).unwrap();
    }
    std::fs::write(
        folder.join("nachricht.xml.hbs"),
        "<a>\n{{{data.beschreibung}}}</a>",
    )
    .unwrap();
    let err = Mapping::load(&folder, &mapping_env())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nachricht.xml.hbs") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn all_mappings_of_the_repository_load() {
    let all = load_all(&root(), &mapping_env()).unwrap();
    assert!(all.len() >= 6, "six services");
    assert!(all.contains_key("99999001000000"));
}
