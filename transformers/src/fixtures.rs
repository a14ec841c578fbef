//! Fixtures: a mapping's tests. `fixtures/<name>.input.json` holds a submission
//! (`region`, `data`, `attachments`, optionally the applicant's `authentifizierung`);
//! `fixtures/<name>.expected.xml` the message it must produce. Everything that varies
//! per message (ids, times, reader) takes the fixed values below, so the expected XML is
//! stable.

use std::path::{Path, PathBuf};

use base64::Engine;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::mapping::{
    Anlage, Antrag, Authentifizierung, Behoerde, Mapping, MessageContext, Nachricht,
};
use kopplung_forms::FieldError;

mod follow_up;
pub use follow_up::{
    FOLLOW_UP_FOLDER, FOLLOW_UP_MESSAGE_ID, follow_up_fixtures, follow_up_service,
    render_follow_up, run_follow_up,
};

/// The fixed values of a fixture's message.
pub const MESSAGE_ID: &str = "00000000-0000-4000-8000-000000000000";
pub const APPLICATION_ID: &str = "00000000-0000-4000-8000-000000000001";
pub const RECEIPT: &str = "TEST-0001";
pub const CREATED: &str = "2026-01-01T12:00:00Z";
pub const RECEIVED: &str = "2026-01-01T11:59:00Z";

/// The German day a fixture is submitted on (that of [`CREATED`]), for limits such as
/// `max_date = "today"`.
fn fixture_day() -> time::Date {
    time::macros::date!(2026 - 01 - 01)
}

/// A submission as a fixture states it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureInput {
    pub region: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub attachments: Vec<FixtureAttachment>,
    /// How the applicant was identified, as the template context has it; absent:
    /// anonymous.
    #[serde(default)]
    pub authentifizierung: Option<Authentifizierung>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureAttachment {
    pub filename: String,
    pub media_type: String,
    pub content_base64: String,
    /// Renders the attachment as fetched by claim check (`adresse`, `teile`, `format`).
    #[serde(default)]
    pub abruf: Option<crate::mapping::Abruf>,
    /// The form's attachment slot it fills.
    #[serde(default)]
    pub slot: Option<String>,
}

/// Why a fixture failed. Every variant names the file; line and column where known.
#[derive(Debug)]
pub enum FixtureFailure {
    /// The input file is not a valid fixture.
    Input { file: PathBuf, message: String },
    /// The input does not pass the form's validation.
    Validation {
        file: PathBuf,
        errors: Vec<FieldError>,
    },
    /// Rendering, well-formedness or the schema failed.
    Render { file: PathBuf, error: Error },
    /// The expected file is missing or not XML.
    Expected { file: PathBuf, message: String },
    /// The message differs from the expected XML.
    Mismatch {
        file: PathBuf,
        line: usize,
        column: usize,
        diff: String,
    },
}

impl std::fmt::Display for FixtureFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input { file, message } | Self::Expected { file, message } => {
                write!(f, "{}: {message}", file.display())
            }
            Self::Validation { file, errors } => {
                write!(f, "{}: the input does not pass the form:", file.display())?;
                for e in errors {
                    write!(f, "\n  field {}: {}", e.field, e.message)?;
                }
                Ok(())
            }
            Self::Render { file, error } => write!(f, "{}: {error}", file.display()),
            Self::Mismatch {
                file,
                line,
                column,
                diff,
            } => write!(
                f,
                "{}:{line}:{column}: the message differs from the expected XML\n{diff}",
                file.display()
            ),
        }
    }
}

/// Whether `mapping test --bless` may accept the render in place of the expected XML:
/// only when the expected file is missing, unreadable or differs — never when the input
/// fails the form, or the render fails or breaks the schema.
pub fn blessable(failure: &FixtureFailure) -> bool {
    matches!(
        failure,
        FixtureFailure::Expected { .. } | FixtureFailure::Mismatch { .. }
    )
}

/// One fixture: its name and files.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub input: PathBuf,
    pub expected: PathBuf,
}

/// The fixtures of a mapping, by name.
pub fn fixtures_of(mapping: &Mapping) -> Result<Vec<Fixture>, Error> {
    fixtures_in(&mapping.folder.join("fixtures"))
}

/// The fixtures in `dir` (`<name>.input.json` with `<name>.expected.xml`), by name.
fn fixtures_in(dir: &Path) -> Result<Vec<Fixture>, Error> {
    let dir = dir.to_owned();
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let mut fixtures = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?
            .path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".input.json"))
        else {
            continue;
        };
        fixtures.push(Fixture {
            name: name.to_owned(),
            expected: dir.join(format!("{name}.expected.xml")),
            input: path,
        });
    }
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(fixtures)
}

/// Renders a fixture's input with the fixed values (`kopplung mapping render`).
pub fn render_input(mapping: &Mapping, input_file: &Path) -> Result<String, FixtureFailure> {
    let context = fixture_context(mapping, input_file)?;
    mapping
        .render(&context)
        .map_err(|error| FixtureFailure::Render {
            file: input_file.to_owned(),
            error,
        })
}

/// The message context of a fixture's input: its data validated, its attachments
/// hashed, and the fixed ids and times of every fixture (what [`render_input`] renders;
/// also for benchmarks and tests that need a real context).
pub fn fixture_context(
    mapping: &Mapping,
    input_file: &Path,
) -> Result<MessageContext, FixtureFailure> {
    let input: FixtureInput = read_input(input_file)?;
    let data = mapping
        .form
        .validate_submitted(&input.data, fixture_day())
        .map_err(|errors| FixtureFailure::Validation {
            file: input_file.to_owned(),
            errors,
        })?;
    let anlagen = input
        .attachments
        .iter()
        .map(|attachment| anlage(mapping, input_file, attachment))
        .collect::<Result<Vec<_>, _>>()?;
    // The slots as intake checks them: known, and every required one that applies given.
    let given: Vec<Option<&str>> = input
        .attachments
        .iter()
        .map(|a| a.slot.as_deref())
        .collect();
    let mut slot_errors = mapping
        .form
        .attachments
        .missing(&mapping.form.fields, &data, &given);
    for slot in given.iter().flatten() {
        if mapping.form.attachments.slot(slot).is_none() {
            slot_errors.push(kopplung_forms::FieldError::new(
                format!("attachments.{slot}"),
                "unbekannte Anlagenart",
            ));
        }
    }
    if !slot_errors.is_empty() {
        return Err(FixtureFailure::Validation {
            file: input_file.to_owned(),
            errors: slot_errors,
        });
    }
    let info = &mapping.info;
    let context = MessageContext {
        nachricht: Nachricht::new(
            &info.message,
            MESSAGE_ID.into(),
            CREATED.into(),
            "fixture".into(),
        ),
        leser: reader(),
        autor: author(),
        antrag: antrag(mapping, &input.region),
        labels: mapping.labels(&data),
        gebuehr: info.fee.as_ref().map(|fee| fee.due(&data)),
        data,
        anlagen,
        authentifizierung: input.authentifizierung,
    };
    Ok(context)
}

/// A fixture's input file, parsed; a problem names the file, line and column.
fn read_input<T: serde::de::DeserializeOwned>(input_file: &Path) -> Result<T, FixtureFailure> {
    let text = std::fs::read_to_string(input_file).map_err(|e| FixtureFailure::Input {
        file: input_file.to_owned(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| FixtureFailure::Input {
        file: input_file.to_owned(),
        message: format!("line {}, column {}: {e}", e.line(), e.column()),
    })
}

/// An attachment of a fixture as the message carries it: hashed, inline or fetched
/// by claim check, in its slot.
fn anlage(
    mapping: &Mapping,
    input_file: &Path,
    attachment: &FixtureAttachment,
) -> Result<Anlage, FixtureFailure> {
    let content = base64::engine::general_purpose::STANDARD
        .decode(&attachment.content_base64)
        .map_err(|e| FixtureFailure::Input {
            file: input_file.to_owned(),
            message: format!("attachment {}: {e}", attachment.filename),
        })?;
    Ok(Anlage {
        dateiname: attachment.filename.clone(),
        media_type: attachment.media_type.clone(),
        groesse: content.len() as u64,
        sha512: hex::encode(openssl::sha::sha512(&content)),
        // Fetched by claim check: the message carries the link, not the content.
        inhalt_base64: match attachment.abruf {
            Some(_) => String::new(),
            None => attachment.content_base64.clone(),
        },
        abruf: attachment.abruf.clone(),
        art: crate::mapping::AnlageArt::of(&mapping.form, attachment.slot.as_deref()),
    })
}

/// The placeholder authority that reads every fixture's message.
fn reader() -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: "dvdv:test:leser".into(),
        name: "Testbehörde".into(),
    }
}

fn author() -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: "kopplung:test".into(),
        name: "kopplung".into(),
    }
}

/// The fixtures' application of `mapping`'s service in `region`.
fn antrag(mapping: &Mapping, region: &str) -> Antrag {
    Antrag {
        id: APPLICATION_ID.into(),
        antragsnummer: RECEIPT.into(),
        eingangszeitpunkt: RECEIVED.into(),
        leistung_schluessel: mapping.info.key.clone(),
        leistung_name: mapping.info.name.clone(),
        gebiet_ars: region.to_owned(),
        gebiet_name: mapping.region_name(region).unwrap_or_default(),
    }
}

/// Renders a fixture and compares it canonically with its expected XML.
pub fn run(mapping: &Mapping, fixture: &Fixture) -> Result<(), FixtureFailure> {
    let actual = render_input(mapping, &fixture.input)?;
    compare(fixture, &actual)
}

/// Compares a rendered message canonically with the fixture's expected XML (the
/// workbench also compares a render that breaks the schema, to show its difference).
pub fn compare(fixture: &Fixture, actual: &str) -> Result<(), FixtureFailure> {
    let expected_text =
        std::fs::read_to_string(&fixture.expected).map_err(|e| FixtureFailure::Expected {
            file: fixture.expected.clone(),
            message: e.to_string(),
        })?;
    let expected = canonical(&expected_text).map_err(|message| FixtureFailure::Expected {
        file: fixture.expected.clone(),
        message,
    })?;
    let actual = canonical(actual).map_err(|message| FixtureFailure::Render {
        file: fixture.input.clone(),
        error: Error::NotWellFormed {
            position: 0,
            message,
        },
    })?;
    let expected_lines: Vec<&str> = expected.iter().map(|l| l.text.as_str()).collect();
    let actual_lines: Vec<&str> = actual.iter().map(|l| l.text.as_str()).collect();
    if expected_lines == actual_lines {
        return Ok(());
    }
    let first = expected_lines
        .iter()
        .zip(&actual_lines)
        .position(|(e, a)| e != a)
        .unwrap_or(expected_lines.len().min(actual_lines.len()));
    let (line, column) = expected
        .get(first)
        .or_else(|| expected.last())
        .map(|l| (l.line, l.column))
        .unwrap_or((1, 1));
    let diff =
        crate::fixture_diff::located(&fixture.expected, &located(&expected), &located(&actual));
    Err(FixtureFailure::Mismatch {
        file: fixture.expected.clone(),
        line,
        column,
        diff,
    })
}

/// Canonical lines as the diff takes them: text and source line.
fn located(lines: &[CanonicalLine]) -> Vec<(&str, usize)> {
    lines.iter().map(|l| (l.text.as_str(), l.line)).collect()
}

/// A line of the canonical form and where it comes from in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalLine {
    pub text: String,
    pub line: usize,
    pub column: usize,
}

/// A canonical form of an XML document for comparison: one line per tag or text,
/// attributes sorted, references resolved, text trimmed, whitespace-only text, comments
/// and processing instructions dropped.
pub fn canonical(xml: &str) -> Result<Vec<CanonicalLine>, String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut text = String::new();
    let mut text_at = 0usize;
    let position = |offset: usize| {
        let before = &xml[..offset.min(xml.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    };
    let flush = |text: &mut String, at: usize, depth: usize, out: &mut Vec<CanonicalLine>| {
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            let (line, column) = position(at);
            out.push(CanonicalLine {
                text: format!("{}{trimmed:?}", "  ".repeat(depth)),
                line,
                column,
            });
        }
        text.clear();
    };
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(0);
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                flush(&mut text, text_at, depth, &mut out);
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    let value = attribute
                        .normalized_value(XmlVersion::Explicit1_0)
                        .map_err(|e| e.to_string())?;
                    attributes.push(format!("{}={value:?}", attribute.key.as_ref()));
                }
                attributes.sort();
                let name = start.name().as_ref().to_owned();
                let (line, column) = position(before);
                out.push(CanonicalLine {
                    text: format!(
                        "{}<{name}{}{}>",
                        "  ".repeat(depth),
                        if attributes.is_empty() { "" } else { " " },
                        attributes.join(" ")
                    ),
                    line,
                    column,
                });
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                } else {
                    out.push(CanonicalLine {
                        text: format!("{}</{name}>", "  ".repeat(depth)),
                        line,
                        column,
                    });
                }
            }
            Event::End(ref end) => {
                flush(&mut text, text_at, depth, &mut out);
                depth = depth.saturating_sub(1);
                let (line, column) = position(before);
                out.push(CanonicalLine {
                    text: format!("{}</{}>", "  ".repeat(depth), end.name().as_ref()),
                    line,
                    column,
                });
            }
            Event::Text(t) => {
                if text.is_empty() {
                    text_at = before;
                }
                text.push_str(&t.xml_content(XmlVersion::Explicit1_0));
            }
            Event::CData(c) => {
                if text.is_empty() {
                    text_at = before;
                }
                text.push_str(&c.xml_content(XmlVersion::Explicit1_0));
            }
            Event::GeneralRef(r) => {
                if text.is_empty() {
                    text_at = before;
                }
                let resolved = match &*r {
                    "amp" => "&".to_owned(),
                    "lt" => "<".to_owned(),
                    "gt" => ">".to_owned(),
                    "quot" => "\"".to_owned(),
                    "apos" => "'".to_owned(),
                    other => match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(format!("undefined reference &{other};")),
                    },
                };
                text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    fn texts(xml: &str) -> Vec<String> {
        canonical(xml)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn attribute_order_and_insignificant_whitespace_do_not_matter() {
        assert_eq!(
            texts("<?xml version=\"1.0\"?>\n<a y=\"2\" x=\"1\">\n  <b>  T &amp; U </b><c/>\n</a>"),
            texts("<a x='1' y='2'><b>T &#38; U</b><c></c></a>")
        );
    }

    #[test]
    fn text_and_names_do_matter_and_lines_are_known() {
        assert_ne!(texts("<a><b>x</b></a>"), texts("<a><b>y</b></a>"));
        assert_ne!(texts("<a><b/></a>"), texts("<a><c/></a>"));
        let lines = canonical("<a>\n  <b>x</b>\n</a>").unwrap();
        assert_eq!((lines[1].line, lines[1].column), (2, 3));
    }
}
