//! The Mängelanzeige mapping renders submitted values verbatim, hostile ones included.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;
use std::sync::Arc;

use kopplung_transformers::mapping::{
    Antrag, Behoerde, Mapping, MappingEnv, MessageContext, Nachricht, load_all,
};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::json;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

fn mapping_env() -> MappingEnv {
    let regions = [("146120000000".to_owned(), "Dresden, Stadt".to_owned())];
    MappingEnv::load(&root(), Arc::new(regions.into_iter().collect())).unwrap()
}

fn mapping() -> Mapping {
    Mapping::load(&root().join("maengelanzeige"), &mapping_env()).unwrap()
}

fn behoerde(name: &str) -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: "psw:14612000".into(),
        name: name.into(),
    }
}

fn context(data: serde_json::Value, mapping: &Mapping) -> MessageContext {
    let data = mapping.form.validate(&data).unwrap();
    MessageContext {
        nachricht: Nachricht {
            uuid: "0b3d9c59-2f3c-4a8e-9a51-6f1f7f0b8f11".into(),
            typ: mapping.info.message.message_type.clone(),
            typ_list_uri: mapping.info.message.list_uri.clone(),
            typ_list_version: mapping.info.message.list_version.clone(),
            standard: mapping.info.message.standard.clone(),
            version: mapping.info.message.version.clone(),
            erstellungszeitpunkt: "2026-11-30T10:00:00Z".into(),
            produkt: "kopplung".into(),
            produkthersteller: "kopplung".into(),
            produktversion: "0.1.0".into(),
        },
        leser: behoerde("Landeshauptstadt Dresden"),
        autor: behoerde("kopplung"),
        antrag: Antrag {
            id: "6d1c3a0e-0000-4000-8000-000000000001".into(),
            antragsnummer: "K7QX-2M4P".into(),
            eingangszeitpunkt: "2026-11-30T09:59:59Z".into(),
            leistung_schluessel: mapping.info.key.clone(),
            leistung_name: mapping.info.name.clone(),
            gebiet_ars: "146120000000".into(),
            gebiet_name: "Dresden, Stadt".into(),
        },
        labels: mapping.labels(&data),
        data,
        anlagen: vec![],
        gebuehr: None,
    }
}

/// Text content of the first element called `name`.
fn text_of(xml: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut out = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.name().as_ref() == name => inside = true,
            Event::End(e) if inside && e.name().as_ref() == name => return Some(out),
            Event::Text(t) if inside => {
                out.push_str(&t.xml_content(quick_xml::XmlVersion::Explicit1_0))
            }
            Event::GeneralRef(r) if inside => out.push_str(match &*r {
                "amp" => "&",
                "lt" => "<",
                "gt" => ">",
                "quot" => "\"",
                "apos" => "'",
                other => panic!("unexpected reference {other}"),
            }),
            Event::Eof => return None,
            _ => {}
        }
    }
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
