//! Edits of a routing table for a test's hub: how a procedure is delivered, and its
//! further settings.

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
