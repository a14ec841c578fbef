//! Conformance: every fixture's expected XML is valid against its service's schema with
//! the XÖV namespaces resolved to the real XÖV library (`../shared/reference/xoev/`),
//! not only to kopplung's own schemas of those namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

use kopplung_transformers::schema;

const REAL: &[(&str, &str)] = &[
    (
        "http://xoev.de/schemata/basisnachricht/unqualified/g2g/1_1",
        "xoev-basisnachricht-unqualified-g2g_1.1.xsd",
    ),
    ("http://xoev.de/schemata/code/1_0", "xoev-code.xsd"),
    (
        "urn:xoev-de:kosit:xoev:datentyp:din-91379_2022-08",
        "din-norm-91379-datatypes.xsd",
    ),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xoev_library() -> PathBuf {
    let dir = workspace().join("../shared/reference/xoev");
    assert!(
        dir.join(REAL[0].1).is_file(),
        "the XÖV library is missing at {}",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// Points every `xs:import` of an XÖV namespace at the real library and the import of
/// kopplung's basis schema at `basis` (if given).
fn rewire(schema: &str, library: &Path, basis: Option<&Path>) -> String {
    let mut out = String::new();
    for line in schema.split_inclusive('\n') {
        let mut line = line.to_owned();
        if line.contains("<xs:import") {
            for (namespace, file) in REAL {
                if line.contains(&format!("namespace=\"{namespace}\"")) {
                    line = replace_location(&line, &library.join(file));
                }
            }
            if let Some(basis) = basis
                && line.contains("namespace=\"urn:kopplung:basis:1.0\"")
            {
                line = replace_location(&line, basis);
            }
        }
        out.push_str(&line);
    }
    out
}

fn replace_location(line: &str, target: &Path) -> String {
    let start = line.find("schemaLocation=\"").expect("schemaLocation") + "schemaLocation=\"".len();
    let end = start + line[start..].find('"').expect("closing quote");
    format!("{}{}{}", &line[..start], target.display(), &line[end..])
}

/// The real XÖV library, the workspace's mappings, and a working folder holding
/// `kopplung-basis.xsd` rewired to that library (the folder lives as long as the
/// `TempDir`).
fn rewired_basis() -> (PathBuf, PathBuf, tempfile::TempDir, PathBuf) {
    let library = xoev_library();
    let mappings = workspace().join("mappings");
    let work = tempfile::tempdir().unwrap();
    let basis = work.path().join("kopplung-basis.xsd");
    let basis_source = std::fs::read_to_string(mappings.join("xoev/kopplung-basis.xsd")).unwrap();
    std::fs::write(&basis, rewire(&basis_source, &library, None)).unwrap();
    (library, mappings, work, basis)
}

#[test]
fn every_fixture_conforms_to_the_real_xoev_library() {
    let (library, mappings, work, basis) = rewired_basis();

    let mut checked = 0;
    let mut services: Vec<PathBuf> = std::fs::read_dir(&mappings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("service.toml").is_file())
        .collect();
    services.sort();
    assert!(services.len() >= 6, "six services at least");
    for service in services {
        let name = service.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(service.join("nachricht.xsd"))
            .unwrap_or_else(|e| panic!("{name}: nachricht.xsd: {e}"));
        let rewired = rewire(&source, &library, Some(&basis));
        assert!(
            !rewired.contains("../xoev/xoev-code.xsd"),
            "{name}: every XÖV import is rewired"
        );
        let xsd = work.path().join(format!("{name}.xsd"));
        std::fs::write(&xsd, rewired).unwrap();
        let mut fixtures: Vec<PathBuf> = std::fs::read_dir(service.join("fixtures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".expected.xml"))
            .collect();
        fixtures.sort();
        assert!(!fixtures.is_empty(), "{name} has fixtures");
        for fixture in fixtures {
            let xml = std::fs::read_to_string(&fixture).unwrap();
            if let Err(e) = schema::validate(&xsd, &xml) {
                panic!("{} does not conform: {e}", fixture.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "checked {checked} fixtures");
}

#[test]
fn the_real_library_refuses_what_din_91379_forbids() {
    // The check above can fail: a message with a character outside datatype C.
    let (library, mappings, work, basis) = rewired_basis();
    let source = std::fs::read_to_string(mappings.join("maengelanzeige/nachricht.xsd")).unwrap();
    let xsd = work.path().join("m.xsd");
    std::fs::write(&xsd, rewire(&source, &library, Some(&basis))).unwrap();
    let xml =
        std::fs::read_to_string(mappings.join("maengelanzeige/fixtures/minimal.expected.xml"))
            .unwrap();
    schema::validate(&xsd, &xml).unwrap();
    let broken = xml.replace("<strasse>Markt</strasse>", "<strasse>Markt 🕳</strasse>");
    let err = schema::validate(&xsd, &broken).unwrap_err().to_string();
    assert!(err.contains("strasse"), "{err}");
    assert!(!err.contains("🕳"), "values are withheld: {err}");
}
