//! Edits of a routing table for a test's hub: how a procedure is delivered, and its
//! further settings; the test hubs set up with such an edit.

use crate::{HubSetup, shared};

/// Replaces the `[procedure.delivery]` section of `procedure` in a routing table with
/// `delivery` (TOML lines after the section header), e.g. to deliver over HTTP.
pub fn deliver_over(routing: &str, procedure: &str, delivery: &str) -> String {
    let start = routing
        .find(&format!("id = \"{procedure}\"\n"))
        .unwrap_or_else(|| panic!("no procedure {procedure}"));
    let section = start
        + routing[start..]
            .find("[procedure.delivery]\n")
            .expect("a delivery section");
    let body = section + "[procedure.delivery]\n".len();
    let end = routing[body..]
        .find("\n\n")
        .map_or(routing.len(), |i| body + i);
    format!(
        "{}{}{}",
        &routing[..body],
        delivery.trim_end(),
        &routing[end..]
    )
}

/// Adds the settings `lines` (TOML) to `procedure`'s section of a routing table.
pub fn with_procedure_settings(routing: &str, procedure: &str, lines: &str) -> String {
    let id = format!("id = \"{procedure}\"\n");
    assert!(routing.contains(&id), "no procedure {procedure}");
    routing.replacen(&id, &format!("{id}{}\n", lines.trim_end()), 1)
}

/// `procedure` switched to the file drop, its exchange folder `exchange/<procedure>` in
/// the data directory, looked into every 200 ms.
pub fn deliver_as_files(routing: &str, procedure: &str) -> String {
    deliver_over(
        routing,
        procedure,
        &format!("transport = \"file\"\ndirectory = \"exchange/{procedure}\"\npoll_ms = 200"),
    )
}

/// A `[procedure.delivery]` over plain HTTP to `url` (a test receiver on loopback), with
/// the further lines `settings` (e.g. `timeout_ms = 5000`; empty for none).
pub fn plain_http(url: &str, settings: &str) -> String {
    let delivery = format!("transport = \"http\"\nallow_plain_http = true\nurl = \"{url}\"");
    if settings.is_empty() {
        delivery
    } else {
        format!("{delivery}\n{settings}")
    }
}

impl HubSetup {
    /// The default hub with the mappings of `folder` (e.g. a [`crate::mappings_copy`]).
    pub fn with_mappings(folder: &std::path::Path) -> Self {
        Self {
            mappings: Some(folder.to_owned()),
            ..Self::default()
        }
    }

    /// The default hub, with its routing table edited by `rewrite` (which may capture
    /// values, e.g. a receiver's port).
    pub fn rewriting(rewrite: impl Fn(String) -> String + Send + Sync + 'static) -> Self {
        Self {
            rewrite_routing: Some(std::sync::Arc::new(rewrite)),
            ..Self::default()
        }
    }

    /// The default hub, with the settings `lines` (TOML) added to `procedure`.
    pub fn procedure_settings(procedure: &str, lines: &str) -> Self {
        let (procedure, lines) = (procedure.to_owned(), lines.to_owned());
        Self::rewriting(move |routing| with_procedure_settings(&routing, &procedure, &lines))
    }

    /// The default hub, with `procedure` delivered as `delivery` says (the lines of its
    /// `[procedure.delivery]` section).
    pub fn delivering(procedure: &str, delivery: String) -> Self {
        let procedure = procedure.to_owned();
        Self::rewriting(move |routing| deliver_over(&routing, &procedure, &delivery))
    }

    /// The default hub, with `procedure` switched to the file drop (see
    /// [`deliver_as_files`]; its folder: [`TestHub::exchange_dir`]).
    pub fn file_drop(procedure: &str) -> Self {
        let procedure = procedure.to_owned();
        Self::rewriting(move |routing| deliver_as_files(&routing, &procedure))
    }

    /// The default hub, with `procedure` delivered over HTTP to `url` (answers within
    /// `timeout_ms`).
    pub fn over_http(procedure: &str, url: &str, timeout_ms: u64) -> Self {
        Self::delivering(
            procedure,
            plain_http(url, &format!("timeout_ms = {timeout_ms}")),
        )
    }

    /// The default hub, with the `[procedure.retry]` lines `retry` for `procedure`.
    pub fn retrying(procedure: &str, retry: &str) -> Self {
        let (procedure, retry) = (procedure.to_owned(), retry.to_owned());
        Self::rewriting(move |routing| shared::with_retry(&routing, &procedure, &retry))
    }
}
