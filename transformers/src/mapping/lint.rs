//! `mapping lint`: the paths a template reads against the fields its form defines.

use std::path::PathBuf;

use kopplung_forms::form::FieldKind;

use super::{Mapping, references};

impl Mapping {
    /// References to form fields that do not exist, form fields the template never uses
    /// (unless marked `transmit = false`), and a template that never renders the
    /// applicant's `authentifizierung`.
    pub fn lint(&self) -> Vec<LintFinding> {
        let mut references = Vec::new();
        let mut label_uses = Vec::new();
        references::collect(&self.template, &mut references, &mut label_uses);
        let used: Vec<(String, usize, usize)> = references
            .into_iter()
            .map(|r| (r.path, r.line, r.column))
            .collect();
        let fields = self.form.paths();
        let mut findings = Vec::new();
        for use_ in label_uses {
            if let Some(message) = references::label_problem(&self.form, &use_.field) {
                findings.push(LintFinding {
                    file: self.template_path.clone(),
                    line: use_.line,
                    column: use_.column,
                    message,
                });
            }
        }
        for (path, line, column) in &used {
            let (root, rest) = path.split_once('.').unwrap_or((path.as_str(), ""));
            if (root == "data" || root == "labels")
                && !rest.is_empty()
                && !fields.iter().any(|(p, _)| p == rest)
            {
                findings.push(LintFinding {
                    file: self.template_path.clone(),
                    line: *line,
                    column: *column,
                    message: format!("`{path}` refers to a field the form does not define"),
                });
            }
        }
        // Without it the procedure cannot tell an identified applicant from an anonymous one.
        if !used
            .iter()
            .any(|(p, _, _)| p.split('.').next() == Some("authentifizierung"))
        {
            findings.push(LintFinding {
                file: self.template_path.clone(),
                line: 0,
                column: 0,
                message: "the template never renders `authentifizierung` (the applicant's identification in kb:AntragType, see docs/mappings.md)".into(),
            });
        }
        for (path, field) in &fields {
            let leaf = field.kind != FieldKind::Group;
            let referenced = used.iter().any(|(p, _, _)| {
                p.strip_prefix("data.")
                    .or_else(|| p.strip_prefix("labels."))
                    .is_some_and(|p| p == path || p.starts_with(&format!("{path}.")))
            });
            if leaf && field.transmit && !referenced {
                findings.push(LintFinding {
                    file: self.folder.join("form.toml"),
                    line: 0,
                    column: 0,
                    message: format!(
                        "field `{path}` is never used by {} (mark it `transmit = false` if that is intended)",
                        self.info.message.template
                    ),
                });
            }
        }
        findings
    }
}

/// A finding of `mapping lint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    pub file: PathBuf,
    /// 0 when the finding concerns the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}
