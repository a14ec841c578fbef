//! Logs on standard error: text or JSON lines, never message contents.

use crate::LogFormat;

/// Levels no `RUST_LOG` can lift, because the crate logs message contents there:
/// handlebars dumps the render context (the form data) at debug and trace; lapin logs a
/// returned message with its whole (sealed) body at warn.
const CONTENT_LOGGING_CRATES: [&str; 2] = ["handlebars=warn", "lapin=error"];

pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for directive in CONTENT_LOGGING_CRATES {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
