//! The clerk inbox as the tests use it: clerks' password hashes, a procedure turned
//! into a manual one, and the hidden fields of the inbox's forms.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::{deliver_over, kopplung_bin};

/// The argon2id PHC string of a password, from `kopplung clerk hash-password`.
pub fn hash(password: &str) -> String {
    let mut child = Command::new(kopplung_bin())
        .args(["clerk", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kopplung clerk hash-password");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write password");
    let output = child.wait_with_output().expect("hash-password output");
    assert!(
        output.status.success(),
        "hash-password: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let phc = String::from_utf8(output.stdout).expect("utf-8");
    let phc = phc.trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    phc
}

/// Turns `procedure` into a manual one read by `clerks`: no envelope, no certificates.
pub fn manual(routing: &str, procedure: &str, clerks: &[&str]) -> String {
    let start = routing
        .find(&format!("id = \"{procedure}\"\n"))
        .expect("procedure");
    let delivery = start
        + routing[start..]
            .find("[procedure.delivery]\n")
            .expect("delivery");
    let head: String = routing[start..delivery]
        .lines()
        .filter(|line| {
            !line.starts_with("envelope =")
                && !line.starts_with("certificate =")
                && !line.starts_with("receipt_certificate =")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let routing = format!("{}{head}{}", &routing[..start], &routing[delivery..]);
    let clerks = clerks
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    deliver_over(
        &routing,
        procedure,
        &format!("transport = \"manual\"\nclerks = [{clerks}]"),
    )
}

/// The value of the first hidden field `name` of a page.
pub fn hidden(text: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    let rest = &text[at + marker.len()..];
    rest[..rest.find('"').expect("end")].to_owned()
}

/// The hidden `token` of the form whose `action` field is `action`.
pub fn token_of(text: &str, action: &str) -> String {
    let form = text
        .find(&format!("name=\"action\" value=\"{action}\""))
        .unwrap_or_else(|| panic!("no {action} form in {text}"));
    let start = text[..form].rfind("<form").expect("form start");
    hidden(&text[start..], "token")
}

/// The href of the inbox's first link that is followed by `text` (a receipt number), as
/// soon as the waiting list shows it (within 30 s).
pub async fn inbox_link(clerk: &mut Browser, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = clerk.get("/inbox").await.text();
        if let Some(at) = page.find(text) {
            let href = page[..at].rfind("href=\"").expect("link");
            let rest = &page[href + 6..];
            return rest[..rest.find('"').expect("end")].to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "„{text}“ not in the inbox: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
