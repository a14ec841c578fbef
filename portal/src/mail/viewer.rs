//! The development mail viewer (`/entwicklung/post`): with `[mail] transport = "drop"`
//! and `viewer = true` (the demo), the mails the portal would have sent are listed and
//! shown here, with their links clickable — so that a demo user can confirm the account
//! they registered. It shows every mail to anyone who opens it: never in production,
//! and every page says so.

use axum::extract::Path;
use mail_parser::MessageParser;
use serde_json::{Value, json};

use crate::web::{Failure, Page, Visit};
use kopplung_web::shell::german_time_unix;

/// The drop's file names: `<nanoseconds>-<uuid>.eml`, nothing else.
fn valid_name(name: &str) -> bool {
    name.strip_suffix(".eml").is_some_and(|stem| {
        !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })
}

fn summary(name: &str, bytes: &[u8]) -> Value {
    let parsed = MessageParser::default().parse(bytes);
    let (to, subject, at) = match &parsed {
        Some(m) => (
            m.to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_owned(),
            m.subject().unwrap_or_default().to_owned(),
            m.date()
                .map(|d| german_time_unix(d.to_timestamp()))
                .unwrap_or_default(),
        ),
        None => (String::new(), "(nicht lesbar)".into(), String::new()),
    };
    json!({ "name": name, "href": format!("/entwicklung/post/{name}"), "to": to, "subject": subject, "at": at })
}

/// `GET /entwicklung/post`: the dropped mails, newest first.
pub async fn list(Visit { state, visitor }: Visit) -> Page {
    let Some(dir) = state.mailer.viewer_dir() else {
        return Err(Failure::not_found());
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(crate::Error::Io)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| valid_name(name))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.truncate(200);
    let mails: Vec<Value> = names
        .iter()
        .filter_map(|name| Some(summary(name, &std::fs::read(dir.join(name)).ok()?)))
        .collect();
    state.templates.ok(
        &visitor,
        "mail_viewer",
        "Entwicklungs-Postfach",
        &json!({ "mails": mails }),
    )
}

/// `GET /entwicklung/post/{name}`: one mail, its links clickable.
pub async fn show(Visit { state, visitor }: Visit, Path(name): Path<String>) -> Page {
    let Some(dir) = state.mailer.viewer_dir() else {
        return Err(Failure::not_found());
    };
    if !valid_name(&name) {
        return Err(Failure::not_found());
    }
    let bytes = std::fs::read(dir.join(&name)).map_err(|_| Failure::not_found())?;
    let Some(message) = MessageParser::default().parse(&bytes) else {
        return Err(Failure::not_found());
    };
    let own = format!("{}/", state.config.public_url);
    let lines: Vec<Value> = message
        .body_text(0)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let trimmed = line.trim();
            if trimmed.starts_with(&own) && !trimmed.contains(char::is_whitespace) {
                json!({ "href": trimmed, "text": trimmed })
            } else {
                json!({ "text": line })
            }
        })
        .collect();
    let mut view = summary(&name, &bytes);
    view["from"] = json!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
    );
    view["lines"] = json!(lines);
    state.templates.ok(
        &visitor,
        "mail_message",
        "Entwicklungs-Postfach: E-Mail",
        &view,
    )
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_the_drop_s_own_names() {
        assert!(valid_name(
            "1767225600000000000-0196f0a4-7a3b-7c2d-9e8f-0123456789ab.eml"
        ));
        for bad in [
            "../x.eml",
            "x.eml/..",
            ".eml",
            "a b.eml",
            "1-2.txt",
            "..%2f.eml",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
