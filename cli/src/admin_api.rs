//! What the commands that talk to a running hub's admin API share (`kopplung deadletters`,
//! `kopplung awaiting-receipt`): the call with the admin token and its error, and the
//! printing of listings and id lists.
//!
//! Standard output carries only the data (a line per entry, ids, or JSON); counts and
//! confirmations go to standard error, so that a shell loop over the output never takes
//! a summary for an id.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

/// Where the hub is and the admin token to call it with (`--hub`, `--token-file`).
#[derive(Args)]
pub struct Access {
    /// The hub's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    hub: String,
    /// The file with the admin token.
    #[arg(long, default_value = "demo-data/admin-token", global = true)]
    token_file: std::path::PathBuf,
}

/// The options of a `list` subcommand (dead letters, overdue messages).
#[derive(Args)]
pub struct ListArgs {
    /// Only the entries of this procedure.
    #[arg(long)]
    pub procedure: Option<String>,
    /// The admin API's JSON and nothing else.
    #[arg(long, conflicts_with = "ids")]
    pub json: bool,
    /// Only the application ids, one a line (for a shell loop).
    #[arg(long)]
    pub ids: bool,
}

/// The options of sending one application again, or all of a procedure's (`resend`,
/// `replay`).
#[derive(Args)]
pub struct SendAgainArgs {
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub application_id: Option<String>,
    /// The procedure whose entries `--all` sends again.
    #[arg(long, requires = "all")]
    pub procedure: Option<String>,
    /// Send every entry of `--procedure` again; prints the ids sent.
    #[arg(long, requires = "procedure")]
    pub all: bool,
    /// The admin API's JSON answer and nothing else.
    #[arg(long)]
    pub json: bool,
}

/// Sends the request `build` makes (given the client and the hub's base URL without a
/// trailing slash) with the admin token of `token_file`; the JSON answer, or an error with
/// the problem's detail when the hub refuses.
pub async fn call(
    access: &Access,
    build: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let (hub, token_file) = (access.hub.as_str(), access.token_file.as_path());
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the admin token {}", token_file.display()))?;
    let hub = hub.trim_end_matches('/');
    let response = build(&reqwest::Client::new(), hub)
        .bearer_auth(token.trim())
        .send()
        .await
        .with_context(|| format!("reaching the hub at {hub}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "the hub answered {status}: {}",
            body["detail"]
                .as_str()
                .or(body["title"].as_str())
                .unwrap_or("")
        );
    }
    Ok(body)
}

/// The entries of `body[key]` (none when it is not an array).
pub fn entries(body: &Value, key: &str) -> Vec<Value> {
    body[key].as_array().cloned().unwrap_or_default()
}

/// A line per entry: its application id alone with `ids_only`, else `line(id, entry)`.
pub fn print_listing(entries: &[Value], ids_only: bool, line: impl Fn(&str, &Value) -> String) {
    for entry in entries {
        let id = entry["application_id"].as_str().unwrap_or_default();
        if ids_only {
            println!("{id}");
        } else {
            println!("{}", line(id, entry));
        }
    }
}

/// The answer to sending one application again, or all of a procedure's (`resend`,
/// `replay`): with `json` the hub's answer; else the ids sent (the answer's `key`
/// field for a procedure), and on standard error what became of them.
pub fn print_sent(body: &Value, args: &SendAgainArgs, (key, what): (&str, &str)) {
    if args.json {
        println!("{body:#}");
        return;
    }
    let Some(procedure) = &args.procedure else {
        println!("{}", args.application_id.as_deref().unwrap_or_default());
        eprintln!("{key}: it goes out again with its message id");
        return;
    };
    let ids = entries(body, key);
    for id in &ids {
        println!("{}", id.as_str().unwrap_or_default());
    }
    eprintln!(
        "{key} {} {what} of {procedure}: they go out again with their message ids",
        ids.len()
    );
}

/// A string field of a JSON entry, empty when absent.
pub fn text<'a>(entry: &'a Value, field: &str) -> &'a str {
    entry[field].as_str().unwrap_or_default()
}
