//! The DIN 91379 schema the mappings validate against is generated from the character
//! table the intake checks (`src/text.rs`); this test fails when the two drift apart,
//! e.g. after the table changed or the generator stopped reading part of it.

use std::path::Path;
use std::process::Command;

#[test]
fn generated_schema_matches_the_character_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(root.join("scripts/derive-din91379-xsd.py"))
        .arg("--check")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
