//! `kopplung mapping test|lint|render` as an engineer uses them: passing on the
//! repository's mappings, failing with file, line and column on broken ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kopplung_tests::{copy_dir, kopplung_bin, workspace};

/// A copy of the repository's mappings and configuration to break things in.
fn sandbox() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&workspace().join("mappings"), &dir.path().join("mappings"));
    copy_dir(&workspace().join("config"), &dir.path().join("config"));
    let config = dir.path().join("config/kopplung.toml");
    (dir, config)
}

fn mapping(config: &Path, args: &[&str]) -> Output {
    Command::new(kopplung_bin())
        .arg("mapping")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run kopplung mapping")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `broken` into `file`, then runs `kopplung mapping <args>`, which must fail: its
/// output, and its stderr as text.
fn broken(config: &Path, file: &Path, broken: &str, args: &[&str]) -> (Output, String) {
    std::fs::write(file, broken).unwrap();
    mapping_fails(config, args)
}

/// `kopplung mapping <args>`, which must fail: its output, and its stderr as text.
fn mapping_fails(config: &Path, args: &[&str]) -> (Output, String) {
    let output = mapping(config, args);
    let err = stderr(&output);
    assert!(!output.status.success(), "it passed: {err}");
    (output, err)
}

#[test]
fn the_repository_mappings_pass_test_and_lint() {
    let config = workspace().join("config/kopplung.toml");
    let test = mapping(&config, &["test"]);
    assert!(test.status.success(), "{}", stderr(&test));
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // The hub's follow-up template has fixtures of its own, one per kind.
    for kind in ["antwort", "nachreichung", "widerspruch", "zahlung"] {
        kopplung_tests::assert_has(&stdout, format!("ok   Folgenachricht / {kind}"));
    }
    let lint = mapping(&config, &["lint"]);
    assert!(lint.status.success(), "{}", stderr(&lint));
}

/// The follow-up fixtures run with the service they are rendered for: a changed
/// expected file fails with file and line, an unknown kind names the input file, and a
/// test of another service leaves them out.
#[test]
fn a_broken_follow_up_fixture_fails_with_file_and_line() {
    let (dir, config) = sandbox();
    let fixtures = dir.path().join("mappings/folgenachricht/fixtures");
    let expected = fixtures.join("widerspruch.expected.xml");
    let text = std::fs::read_to_string(&expected).unwrap();
    let line = text.lines().position(|l| l.contains("<text>")).unwrap() + 1;
    let (_, err) = broken(
        &config,
        &expected,
        &text.replace("Blindenhund", "Wachhund"),
        &["test", "hundesteuer"],
    );
    kopplung_tests::assert_has(&err, format!("widerspruch.expected.xml:{line}:"));
    let other = mapping(&config, &["test", "maengelanzeige"]);
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(
        !String::from_utf8_lossy(&other.stdout).contains("Folgenachricht"),
        "only the selected service's follow-ups"
    );
    let input = fixtures.join("zahlung.input.json");
    let text = std::fs::read_to_string(&input).unwrap();
    let (_, err) = broken(
        &config,
        &input,
        &text.replace("\"kind\": \"zahlung\"", "\"kind\": \"mahnung\""),
        &["test"],
    );
    kopplung_tests::assert_has(&err, "zahlung.input.json: kind `mahnung` is none of");
}

#[test]
fn a_broken_fixture_fails_with_file_line_and_a_diff() {
    let (dir, config) = sandbox();
    let expected = dir
        .path()
        .join("mappings/maengelanzeige/fixtures/minimal.expected.xml");
    let text = std::fs::read_to_string(&expected).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("<strasse>Markt</strasse>"))
        .unwrap()
        + 1;
    let (output, err) = broken(
        &config,
        &expected,
        &text.replace("<strasse>Markt</strasse>", "<strasse>Marktplatz</strasse>"),
        &["test", "maengelanzeige"],
    );
    kopplung_tests::assert_has(&err, format!("minimal.expected.xml:{line}:"));
    let removed = err
        .lines()
        .any(|l| l.starts_with('-') && l.contains("\"Marktplatz\""));
    let added = err
        .lines()
        .any(|l| l.starts_with('+') && l.contains("\"Markt\""));
    assert!(removed && added, "a readable diff: {err}");
    // The other fixtures still pass and are reported.
    let fixtures = std::fs::read_dir(workspace().join("mappings/maengelanzeige/fixtures"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".input.json"))
        })
        .count();
    let summary = format!("{} passed, 1 failed", fixtures - 1);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&summary),
        "{summary}"
    );
}

/// The diff's hunks and lines point at the expected file's lines (and the rendered
/// output's, as `mapping render` prints it), not at the canonical form's.
#[test]
fn the_diff_points_at_the_lines_of_the_expected_file_and_the_render() {
    let (dir, config) = sandbox();
    let fixtures = dir.path().join("mappings/maengelanzeige/fixtures");
    let expected = fixtures.join("minimal.expected.xml");
    let text = std::fs::read_to_string(&expected).unwrap();
    // Moved down by blank lines and a comment, which the comparison ignores: the file's
    // line is no longer the canonical form's (nor the render's).
    let text = text.replacen("\n", "\n\n\n<!-- geprüft -->\n", 1);
    let line_of =
        |xml: &str, needle: &str| xml.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let line = line_of(&text, "<strasse>Markt</strasse>");
    let output = mapping(
        &config,
        &[
            "render",
            "maengelanzeige",
            "--input",
            fixtures.join("minimal.input.json").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let rendered = line_of(
        &String::from_utf8_lossy(&output.stdout),
        "<strasse>Markt</strasse>",
    );
    assert_ne!(line, rendered, "the test needs the two to differ");

    let (_, err) = broken(
        &config,
        &expected,
        &text.replace("<strasse>Markt</strasse>", "<strasse>Marktplatz</strasse>"),
        &["test", "maengelanzeige"],
    );
    let hunk = format!("/minimal.expected.xml:{line} (rendered line {rendered}) @@");
    assert!(
        err.lines()
            .any(|l| l.starts_with("@@ ") && l.ends_with(&hunk)),
        "{hunk} in {err}"
    );
    let removed = err.lines().find(|l| l.contains("\"Marktplatz\"")).unwrap();
    assert!(
        removed.starts_with('-') && removed.contains(&format!(" {line} ")),
        "{removed}"
    );
    let added = err.lines().find(|l| l.contains("\"Markt\"")).unwrap();
    assert!(
        added.starts_with('+') && added.contains(&format!(" {rendered} | ")),
        "{added}"
    );
}

#[test]
fn a_broken_template_fails_with_file_and_line() {
    let (dir, config) = sandbox();
    let template = dir.path().join("mappings/maengelanzeige/nachricht.xml.hbs");
    let text = std::fs::read_to_string(&template).unwrap();
    let line = text.lines().position(|l| l.contains("<strasse>")).unwrap() + 1;

    // A field the form does not define: lint names the place, test fails on render.
    let (_, err) = broken(
        &config,
        &template,
        &text.replace("{{data.ort.strasse}}", "{{data.ort.plz}}"),
        &["lint", "maengelanzeige"],
    );
    assert!(
        err.contains(&format!("nachricht.xml.hbs:{line}:")) && err.contains("data.ort.plz"),
        "{err}"
    );
    assert!(err.contains("field `ort.strasse` is never used"), "{err}");
    let (_, err) = mapping_fails(&config, &["test", "maengelanzeige"]);
    // Told for engineers: the template's place and the path, not handlebars' internals.
    assert!(
        err.contains(&format!("nachricht.xml.hbs:{line}:"))
            && err.contains("data.ort.plz is not set in the application's data"),
        "{err}"
    );
    assert!(!err.contains("strict mode"), "{err}");

    // `mapping test` on the template with `from` replaced by `to`: what it said.
    let test_with = |from: &str, to: &str| {
        let template_text = text.replace(from, to);
        broken(
            &config,
            &template,
            &template_text,
            &["test", "maengelanzeige"],
        )
        .1
    };
    // A template that does not parse.
    let err = test_with("{{/if}}", "");
    assert!(err.contains("nachricht.xml.hbs"), "{err}");

    // An element the schema does not allow: the XSD check names line and column.
    let err = test_with("<beschreibung>", "<hinweis/><beschreibung>");
    assert!(
        err.contains("nachricht.xsd") && err.contains("hinweis") && err.contains("line "),
        "{err}"
    );
}

#[test]
fn render_prints_the_message_of_an_input() {
    let config = workspace().join("config/kopplung.toml");
    let input = workspace().join("mappings/maengelanzeige/fixtures/minimal.input.json");
    let output = mapping(
        &config,
        &[
            "render",
            "maengelanzeige",
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let xml = String::from_utf8_lossy(&output.stdout);
    assert!(
        xml.contains(
            "<gebiet listURI=\"urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs\""
        )
    );
    assert!(xml.contains("<name>Borna, Stadt</name>"));
}
