//! The file name pattern of a `file` procedure (`file_name`): placeholders for what
//! identifies a message, literal characters that are safe on every file system.

use crate::OutboundMessage;

/// A checked `file_name` pattern, e.g. `{message_id}{ext}` (the default) or
/// `kopplung_{message_type}_{message_id}{ext}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    MessageId,
    MessageType,
    ApplicationId,
    Extension,
}

/// Characters a file name may hold: no path separators, no spaces, nothing a Windows
/// share or an old importer chokes on.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The suffix of the manifest that follows each message file.
pub(crate) const MANIFEST_SUFFIX: &str = ".manifest.json";

impl FileName {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let Some(end) = after.find('}') else {
                    return Err(format!("`{pattern}`: a `{{` without its `}}`"));
                };
                parts.push(match &after[..end] {
                    "message_id" => Part::MessageId,
                    "message_type" => Part::MessageType,
                    "application_id" => Part::ApplicationId,
                    "ext" => Part::Extension,
                    other => {
                        return Err(format!(
                            "`{pattern}`: unknown placeholder `{{{other}}}` (known: {{message_id}}, {{message_type}}, {{application_id}}, {{ext}})"
                        ));
                    }
                });
                rest = &after[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if let Some(bad) = literal.chars().find(|c| !plain(*c)) {
                    return Err(format!(
                        "`{pattern}`: `{bad}` is not allowed in a file name (letters, digits, . _ - and placeholders)"
                    ));
                }
                parts.push(Part::Literal(literal.to_owned()));
                rest = &rest[end..];
            }
        }
        if !parts.contains(&Part::MessageId) {
            return Err(format!(
                "`{pattern}` must contain {{message_id}}: a retry must write the same file, never a second one"
            ));
        }
        if matches!(parts.first(), Some(Part::Literal(first)) if first.starts_with('.')) {
            return Err(format!(
                "`{pattern}` must not start with `.`: hidden names are the hub's temporary files"
            ));
        }
        if matches!(parts.last(), Some(Part::Literal(last)) if last.ends_with(".tmp") || last.ends_with(MANIFEST_SUFFIX))
        {
            return Err(format!(
                "`{pattern}` must not end in `.tmp` or `{MANIFEST_SUFFIX}`"
            ));
        }
        Ok(Self { parts })
    }

    /// The file name of `message`; `None` if a value would make it unsafe (a message
    /// type with a slash, say) or longer than file systems allow.
    pub fn render(&self, message: &OutboundMessage) -> Option<String> {
        let mut name = String::new();
        for part in &self.parts {
            name.push_str(match part {
                Part::Literal(text) => text,
                Part::MessageId => &message.message_id,
                Part::MessageType => &message.message_type,
                Part::ApplicationId => &message.correlation_id,
                Part::Extension => extension(&message.content_type),
            });
        }
        let safe = !name.is_empty()
            && name.len() <= 200
            && !name.starts_with('.')
            && name.chars().all(plain);
        safe.then_some(name)
    }
}

/// `.p7m` for CMS (S/MIME's own extension), `.jwe` for JOSE, `.bin` otherwise.
fn extension(content_type: &str) -> &'static str {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/pkcs7-mime" => ".p7m",
        "application/jose" => ".jwe",
        _ => ".bin",
    }
}
