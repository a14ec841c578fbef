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

#[test]
fn every_service_renders_the_applicants_identification_into_its_schema() {
    use kopplung_transformers::authentifizierung::{Authentifizierung, BY_CLIENT};
    use kopplung_transformers::fixtures::fixture_context;
    let identified = Authentifizierung {
        vertrauensniveau: "hoch".into(),
        identifizierungsmittel: "online-ausweis".into(),
        aussteller: "https://idp.example/realms/buerger?x=<1>&y=2".into(),
        pseudonym: "a\"b'c<d>&e".into(),
        zeitpunkt: "2026-11-30T09:58:00.123+01:00".into(),
        bestaetigt_durch: "identitaetsanbieter".into(),
        nachweis_sha256: Some("0f".repeat(32)),
        nachweis: Some("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_".into()),
    };
    for (key, mapping) in load_all(&root(), &mapping_env()).unwrap() {
        let mut context = fixture_context(
            &mapping,
            &mapping.folder.join("fixtures/minimal.input.json"),
        )
        .unwrap();
        // Absent: an anonymous submission, no block at all.
        assert!(context.authentifizierung.is_none());
        let xml = mapping.render(&context).unwrap();
        assert!(!xml.contains("authentifizierung"), "{key}");

        context.authentifizierung = Some(identified.clone());
        let xml = mapping.render(&context).unwrap();
        // Special characters arrive as text, as with every other value.
        assert_eq!(text_of(&xml, "pseudonym").unwrap(), "a\"b'c<d>&e", "{key}");
        assert_eq!(
            text_of(&xml, "aussteller").unwrap(),
            identified.aussteller,
            "{key}"
        );
        assert_eq!(
            text_of(&xml, "bestaetigtDurch").unwrap(),
            "identitaetsanbieter"
        );
        assert!(xml.contains("<code>hoch</code>") && xml.contains("<code>online-ausweis</code>"));

        // A client's own assertion without proof; and what the schema refuses.
        context.authentifizierung = Some(Authentifizierung {
            bestaetigt_durch: BY_CLIENT.into(),
            nachweis_sha256: None,
            nachweis: None,
            ..identified.clone()
        });
        let xml = mapping.render(&context).unwrap();
        assert!(!xml.contains("<nachweis"), "{key}");
        for broken in [
            Authentifizierung {
                vertrauensniveau: "mittel".into(),
                ..identified.clone()
            },
            Authentifizierung {
                bestaetigt_durch: "portal".into(),
                ..identified.clone()
            },
            Authentifizierung {
                nachweis: Some("kein JWS".into()),
                ..identified.clone()
            },
        ] {
            context.authentifizierung = Some(broken);
            let err = mapping.render(&context).unwrap_err().to_string();
            assert!(err.contains("does not match schema"), "{key}: {err}");
        }
    }
}

#[test]
fn lint_names_a_template_that_drops_the_identification() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("maengelanzeige");
    let folder = dir.path().join("m");
    std::fs::create_dir_all(folder.join("fixtures")).unwrap();
    for file in ["service.toml", "form.toml", "nachricht.xsd"] {
        std::fs::copy(src.join(file), folder.join(file)).unwrap();
    }
    let template = std::fs::read_to_string(src.join("nachricht.xml.hbs")).unwrap();
    let start = template.find("{{#if authentifizierung}}").unwrap();
    let end = template
        .find("    </authentifizierung>\n{{/if}}\n")
        .unwrap()
        + "    </authentifizierung>\n{{/if}}\n".len();
    let without = format!("{}{}", &template[..start], &template[end..]);
    std::fs::write(folder.join("nachricht.xml.hbs"), &without).unwrap();
    // The schema is found next to the shared ones.
    std::fs::create_dir_all(dir.path().join("xoev")).unwrap();
    for entry in std::fs::read_dir(root().join("xoev")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path().join("xoev").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let mapping = Mapping::load(&folder, &mapping_env()).unwrap();
    let findings = mapping.lint();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .to_string()
            .contains("never renders `authentifizierung`"),
        "{}",
        findings[0]
    );
    assert!(mapping_of_repository_has_no_findings());
}

fn mapping_of_repository_has_no_findings() -> bool {
    load_all(&root(), &mapping_env())
        .unwrap()
        .values()
        .all(|m| m.lint().is_empty())
}
