//! What the integration tests of the mappings share: the workspace's mappings and a
//! message context with fixed ids and times.

use std::path::Path;
use std::sync::Arc;

use kopplung_transformers::mapping::{
    Antrag, Behoerde, Mapping, MappingEnv, MessageContext, Nachricht,
};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

pub fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

/// The workspace's mappings with one municipality, Dresden.
pub fn mapping_env() -> MappingEnv {
    let regions = [("146120000000".to_owned(), "Dresden, Stadt".to_owned())];
    MappingEnv::load(&root(), Arc::new(regions.into_iter().collect())).unwrap()
}

pub fn behoerde(name: &str) -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: "psw:14612000".into(),
        name: name.into(),
    }
}

/// The context of a Mängelanzeige to Dresden with `data` as it is (not validated).
pub fn context(data: Value, mapping: &Mapping) -> MessageContext {
    MessageContext {
        nachricht: Nachricht::new(
            &mapping.info.message,
            "0b3d9c59-2f3c-4a8e-9a51-6f1f7f0b8f11".into(),
            "2026-11-30T10:00:00Z".into(),
            "0.1.0".into(),
        ),
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

/// The text of the first element called `name`, as an XML parser reads it.
pub fn text_of(xml: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut out = String::new();
    loop {
        match reader.read_event().ok()? {
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
                _ => return None,
            }),
            Event::Eof => return None,
            _ => {}
        }
    }
}
