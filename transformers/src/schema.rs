//! XSD validation of rendered messages with libxml2.
//!
//! libxml2's schema objects may not cross threads, so each thread keeps its own compiled
//! schemas, keyed by file and modification time: a changed XSD is compiled afresh.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use libxml::parser::Parser;
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use serde::Serialize;

use crate::Error;

/// One schema violation, with its place in the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub line: Option<i32>,
    pub column: Option<i32>,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) if column > 0 => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), _) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

type Key = (PathBuf, Option<SystemTime>);

thread_local! {
    static SCHEMAS: RefCell<HashMap<Key, SchemaValidationContext>> = RefCell::new(HashMap::new());
}

fn violations(errors: Vec<libxml::error::StructuredError>) -> Vec<Violation> {
    errors
        .into_iter()
        .map(|e| Violation {
            line: e.line,
            column: e.col,
            message: redact(e.message.as_deref().unwrap_or("schema error").trim()),
        })
        .collect()
}

/// libxml2 quotes the offending value (`The value 'Jörg …' is not accepted`, `'2.5' is
/// not a valid value of …`): that is personal data and must not reach logs or the
/// history. Kept: the element (and attribute) and what kind of rule failed.
fn redact(message: &str) -> String {
    // "Element 'x': " or "Element 'x', attribute 'y': " — names from the schema, not data.
    let prefix_end = message.find("': ").map(|i| i + 3).unwrap_or(0);
    let (prefix, rest) = message.split_at(prefix_end);
    if !rest.contains('\'') {
        return message.to_owned();
    }
    let facet = rest
        .strip_prefix("[facet '")
        .and_then(|r| r.split_once('\''))
        .map(|(facet, _)| facet);
    if let Some(facet) = facet {
        return format!("{prefix}[facet '{facet}'] the value (withheld) does not satisfy it.");
    }
    if let Some(at) = rest.rfind("is not a valid value of the ") {
        return format!("{prefix}the value (withheld) {}", &rest[at..]);
    }
    if rest.starts_with("This element is not expected")
        || rest.starts_with("Missing child element")
        || rest.starts_with("No matching global")
    {
        return message.to_owned();
    }
    format!("{prefix}the content does not match the schema (details withheld).")
}

/// Validates `xml` against the schema in `xsd` (imports resolved relative to it).
pub fn validate(xsd: &Path, xml: &str) -> Result<(), Error> {
    let modified = std::fs::metadata(xsd).and_then(|m| m.modified()).ok();
    let key = (xsd.to_owned(), modified);
    let document = Parser::default()
        .parse_string(xml)
        .map_err(|e| Error::NotWellFormed {
            position: 0,
            message: format!("{e:?}"),
        })?;
    SCHEMAS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(&key) {
            // Drop older versions of the same file.
            cache.retain(|(path, _), _| path != xsd);
            let compiled = compile(xsd)?;
            cache.insert(key.clone(), compiled);
        }
        let Some(context) = cache.get_mut(&key) else {
            return Err(Error::Schema {
                file: xsd.to_owned(),
                violations: vec![],
            });
        };
        context
            .validate_document(&document)
            .map_err(|errors| Error::Invalid {
                schema: xsd.to_owned(),
                violations: violations(errors),
            })
    })
}

/// Compiles a schema; problems name the schema file.
pub fn compile(xsd: &Path) -> Result<SchemaValidationContext, Error> {
    if !xsd.is_file() {
        return Err(Error::Io {
            path: xsd.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "schema not found"),
        });
    }
    let mut parser = SchemaParserContext::from_file(&xsd.to_string_lossy());
    SchemaValidationContext::from_parser(&mut parser).map_err(|errors| Error::Schema {
        file: xsd.to_owned(),
        violations: violations(errors),
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn values_are_withheld_from_schema_messages() {
        let m = "Element 'name': [facet 'pattern'] The value 'Jörg ' is not' is not accepted by the pattern 'x*'.";
        assert_eq!(
            redact(m),
            "Element 'name': [facet 'pattern'] the value (withheld) does not satisfy it."
        );
        let m = "Element 'geburtsdatum': '09.05.1990' is not a valid value of the atomic type 'xs:date'.";
        assert_eq!(
            redact(m),
            "Element 'geburtsdatum': the value (withheld) is not a valid value of the atomic type 'xs:date'."
        );
        let m = "Element 'x', attribute 'y': 'O'Neill' is not valid.";
        let r = redact(m);
        assert!(
            !r.contains("Neill") && r.starts_with("Element 'x', attribute 'y': "),
            "{r}"
        );
        for kept in [
            "Element 'x': Missing child element(s). Expected is ( y ).",
            "Element 'hinweis': This element is not expected. Expected is ( beschreibung ).",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }
}
