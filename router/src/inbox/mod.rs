//! The clerk inbox: procedures without an interface (`transport = "manual"`, maturity
//! level 0). Their applications wait at the hub; a clerk of the authority signs in at
//! `/inbox`, reads each application as a document (German labels, attachments, the
//! XÖV message) and takes it over, which is the delivery (`pages`). Then the clerk
//! works on it as a procedure would: confirms its receipt, marks it in progress, asks
//! the citizen, decides with the decision as a PDF (`work`), and finds it again among
//! "Meine Fälle" (`cases`).
//!
//! Server-rendered HTML (Handlebars, escaped by default), no JavaScript, a strict CSP.
//! Sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie, kept in
//! memory for 8 hours (a restart signs everyone out); every POST carries the session's
//! CSRF token (the login form a token of its own, double-submitted in a cookie).
//! A clerk sees only the procedures that name them; everything else answers 404.
//! Headers, cookies, sessions, the login and the error pages are the web shell's
//! (`kopplung_web::shell::signin`), as in the admin console.

mod cases;
mod follow_ups;
mod form;
mod identification;
mod pages;
mod render;
mod work;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::Router;
use kopplung_web::shell::password::{
    MIN_PASSWORD_CHARS, check_phc, hash_password, verify_password,
};
use kopplung_web::shell::signin::{
    self, Frame, Layout, Shell, ShellSpec, SignInForm, SignInUi, Verdict,
};
use kopplung_web::shell::{random_hex, secure_url, wait_in_minutes};
use kopplung_web::{LoginLimiter, Refused};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::Error;
use crate::config::{Config, DeliveryConfig};
use crate::context::Hub;

/// Where the inbox lives, its cookies and its messages.
static SPEC: ShellSpec = ShellSpec {
    name: "clerk inbox",
    base: "/inbox",
    stylesheet: "/inbox.css",
    session_cookie: "kopplung_inbox",
    login_cookie: "kopplung_inbox_login",
    home_link: "Zum Posteingang",
    not_found: "Diese Seite gibt es nicht, oder sie ist Ihnen nicht zugänglich.",
    unavailable: "Die Anträge können gerade nicht gelesen werden. Bitte versuchen Sie es in einigen Minuten erneut.",
    wrong_credentials: "Kennung oder Passwort ist falsch.",
    folder: "router/src/inbox/templates",
    templates: kopplung_web::templates!["layout", "login", "inbox", "document", "fields", "cases"],
    partials: &["fields"],
};

/// Password checks at once: each takes 19 MiB and a core for a moment.
const VERIFY_SLOTS: usize = 4;

/// A clerk as configured, with the PHC string of their password.
#[derive(Debug, Clone)]
struct Clerk {
    name: String,
    phc: String,
}

/// The manual procedures of `config`, with their authorities' names.
fn manual_procedures(config: &Config) -> Vec<ManualProcedure> {
    config
        .routing
        .procedures
        .iter()
        .filter_map(|procedure| match &procedure.delivery {
            DeliveryConfig::Manual(manual) => Some(ManualProcedure {
                id: procedure.id.to_string(),
                authority: config
                    .authority(&procedure.authority)
                    .map_or_else(|| procedure.authority.clone(), |a| a.name.clone()),
                clerks: manual.clerks.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// A manual procedure and who may read it.
#[derive(Debug, Clone)]
struct ManualProcedure {
    id: String,
    authority: String,
    clerks: Vec<String>,
}

/// The inbox's configuration and in-memory state (sessions, templates).
pub struct Inbox {
    clerks: BTreeMap<String, Clerk>,
    /// Replaced when the routing table is reloaded.
    procedures: RwLock<Arc<Vec<ManualProcedure>>>,
    /// Checked for unknown clerk ids, so that timing does not tell which ids exist
    /// (`None` without clerks: then no login can succeed anyway).
    decoy_phc: Option<String>,
    verify_slots: Semaphore,
    shell: Shell,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("clerks", &self.clerks.keys().collect::<Vec<_>>())
            .field("procedures", &self.procedures().len())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// Reads the clerks (hashing the passwords of `password_file` clerks) and the manual
    /// procedures of the configuration; the clerks' logins count in `logins`, the hub's
    /// one login limiter.
    pub fn load(config: &Config, logins: LoginLimiter) -> Result<Self, Error> {
        let invalid = |file: PathBuf, message: String| Error::Config { file, message };
        let mut clerks = BTreeMap::new();
        for clerk in &config.file.clerks {
            let phc = match (&clerk.password_argon2, &clerk.password_file) {
                (Some(phc), _) => {
                    check_phc(phc).map_err(|problem| {
                        invalid(
                            config.source.clone(),
                            format!("clerk `{}`: password_argon2: {problem}", clerk.id),
                        )
                    })?;
                    phc.clone()
                }
                (None, Some(file)) => {
                    let path = config.data_dir.join(file);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        invalid(
                            path.clone(),
                            format!("password of clerk `{}`: {e}", clerk.id),
                        )
                    })?;
                    let password = text.trim();
                    if password.chars().count() < MIN_PASSWORD_CHARS {
                        return Err(invalid(
                            path,
                            format!(
                                "the password of clerk `{}` is shorter than {MIN_PASSWORD_CHARS} characters",
                                clerk.id
                            ),
                        ));
                    }
                    hash_password(password).map_err(|e| {
                        invalid(path, format!("hashing the password of `{}`: {e}", clerk.id))
                    })?
                }
                (None, None) => {
                    return Err(invalid(
                        config.source.clone(),
                        format!("clerk `{}` has no password", clerk.id),
                    ));
                }
            };
            clerks.insert(
                clerk.id.clone(),
                Clerk {
                    name: clerk.name.clone(),
                    phc,
                },
            );
        }
        let procedures = RwLock::new(Arc::new(manual_procedures(config)));
        let decoy = if clerks.is_empty() {
            None
        } else {
            let password = random_hex(16)
                .map_err(|e| invalid(config.source.clone(), format!("random numbers: {e}")))?;
            let decoy = hash_password(&password)
                .map_err(|e| invalid(config.source.clone(), e.to_string()))?;
            Some(decoy)
        };
        // Cookies are `Secure` when the hub is reached over https.
        let public_url = config.file.server.public_url.as_deref();
        let shell = Shell::new(&SPEC, public_url.is_some_and(secure_url), logins)
            .map_err(|e| invalid(SPEC.folder.into(), e.to_string()))?;
        Ok(Self {
            clerks,
            procedures,
            decoy_phc: decoy,
            verify_slots: Semaphore::new(VERIFY_SLOTS),
            shell,
        })
    }

    /// Puts the manual procedures of a reloaded configuration in force (its clerks
    /// stay those the hub started with).
    pub fn replace_procedures(&self, config: &Config) {
        *self.procedures.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(manual_procedures(config));
    }

    fn procedures(&self) -> Arc<Vec<ManualProcedure>> {
        self.procedures
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The manual procedures `clerk` serves.
    fn procedures_of(&self, clerk: &str) -> Vec<ManualProcedure> {
        self.procedures()
            .iter()
            .filter(|p| p.clerks.iter().any(|c| c == clerk))
            .cloned()
            .collect()
    }

    fn procedure_for(&self, clerk: &str, procedure: &str) -> Option<ManualProcedure> {
        self.procedures()
            .iter()
            .find(|p| p.id == procedure && p.clerks.iter().any(|c| c == clerk))
            .cloned()
    }

    fn clerk_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.clerks.get(id).map_or(id, |c| c.name.as_str())
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    clerk: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

impl LoginForm {
    /// The clerk id as submitted, trimmed and bounded.
    fn clerk(&self) -> String {
        self.clerk.trim().chars().take(100).collect()
    }
}

impl SignInForm for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Clerks count per clerk id, besides the cap per address.
    fn account(&self, _: &str, _: IpAddr) -> String {
        format!("clerk:{}", self.clerk())
    }

    fn refused(refused: &Refused) -> String {
        format!(
            "Zu viele fehlgeschlagene Anmeldeversuche {}. Die Anmeldung ist vorübergehend gesperrt. Bitte versuchen Sie es in {} erneut.",
            if refused.by_address {
                "von diesem Rechner aus"
            } else {
                "für diese Kennung"
            },
            wait_in_minutes(refused.wait)
        )
    }
}

/// The inbox's lists, in its navigation.
const NAV: [(&str, &str); 2] = [("/inbox", "Neue Anträge"), ("/inbox/faelle", "Meine Fälle")];

/// What the inbox's handlers share.
#[derive(Clone)]
struct Shared {
    hub: Arc<Hub>,
    inbox: Arc<Inbox>,
}

/// The inbox's routes under `/inbox`, with its security headers. Merge it into the
/// API router; its shell counts logins in the hub's one login limiter (clerks per
/// clerk id).
pub fn router(hub: Arc<Hub>, inbox: Arc<Inbox>) -> Router {
    let shared = Shared { hub, inbox };
    signin::serve(routes(), shared)
}

fn routes() -> Router<Shared> {
    signin::routes(&SPEC, pages::routes())
}

impl SignInUi for Shared {
    type LoginForm = LoginForm;

    fn shell(&self) -> &Shell {
        &self.inbox.shell
    }

    /// A clerk removed from the configuration keeps no access (after a restart the
    /// sessions are gone anyway).
    fn admits(&self, user: &str) -> bool {
        self.inbox.clerks.contains_key(user)
    }

    fn layout<'a>(&'a self, frame: Frame<'a>) -> impl Serialize + 'a {
        // The two lists are the pages of these titles.
        let current = match frame.title {
            "Posteingang" => Some(NAV[0].0),
            "Meine Fälle" => Some(NAV[1].0),
            _ => None,
        };
        let clerk = frame.session.map(|s| self.inbox.clerk_name(&s.user));
        Layout::new(frame, clerk, &NAV, current)
    }

    /// The password is checked against the clerk's hash, or against the decoy for an
    /// unknown id: the time taken does not tell which ids exist.
    async fn authenticate(&self, form: LoginForm) -> Verdict {
        let submitted = form.clerk();
        let inbox = &self.inbox;
        let clerk = inbox.clerks.get(&submitted);
        let phc = clerk
            .map(|c| c.phc.clone())
            .or_else(|| inbox.decoy_phc.clone());
        let password = form.password;
        let verified = match (phc, inbox.verify_slots.acquire().await) {
            (Some(phc), Ok(_permit)) => {
                tokio::task::spawn_blocking(move || verify_password(&password, &phc))
                    .await
                    .unwrap_or(false)
            }
            _ => false,
        };
        match clerk {
            Some(_) if verified => Verdict::User(submitted),
            // The submitted id is logged only if it is a clerk's (it might be a password
            // typed into the wrong field).
            Some(_) => Verdict::Wrong {
                known: Some(submitted),
            },
            None => Verdict::Wrong { known: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_routes_do_not_conflict_and_the_templates_compile() {
        let _ = routes();
        let blocks = json!({"blocks": [
            {"leaves": [{"label": "Beschreibung", "value": "<script>alert(1)</script>"}], "group": null},
            {"leaves": null, "group": {"label": "Ort", "level": 3, "blocks": [
                {"leaves": [{"label": "Straße", "value": "A & B"}], "group": null}
            ]}}
        ]});
        let html = Shell::new(&SPEC, false, LoginLimiter::default())
            .expect("templates")
            .templates()
            .render("fields", &blocks)
            .expect("render");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("<h3>Ort</h3>"), "{html}");
        assert!(html.contains("A &amp; B"), "{html}");
    }

    fn document_data(work: serde_json::Value) -> serde_json::Value {
        json!({
            "service": "Bewohnerparkausweis", "receipt": "K7QX-2M4P", "municipality": "Chemnitz",
            "region": "145110000000", "received": "1. Dezember 2026", "received_iso": "2026-12-01",
            "procedure": "p", "authority": "Bürgerbüro",
            "taken": {"by": "Anna Beispiel (anna)", "at": "1. Dezember 2026"},
            "identification": null, "take_href": "/t", "csrf": "c", "form": {"blocks": []},
            "attachments": [], "attachments_caption": "0 Anlagen", "xml_href": "/x",
            "xml_size": "1 KB", "message_type": "m",
            "fee": {"text": "30,70 € (Gebühr)", "paid": "PAY-1"},
            "work": work,
            "error": null,
        })
    }

    fn work(sent: serde_json::Value, done: serde_json::Value) -> serde_json::Value {
        json!({
            "status": "In Bearbeitung", "is_final": false,
            "history": [{"at": "a", "at_iso": "i", "what": "Übernommen", "by": "Anna"}],
            "messages": [{"at": "a", "at_iso": "i", "kind": "Rückfrage", "text": "Warum?",
                          "document": {"href": "/d", "filename": "b.pdf", "size": "1 KB"},
                          "appeal": {"text": "Widerspruch bis dann.", "deadline": "6. Januar 2027"},
                          "fee": "30,70 € (Gebühr)"}],
            "accept": false, "in_progress": false, "query": true, "decision": true,
            "action_href": "/inbox/p/m/bearbeitung", "token": "t", "csrf": "c",
            "error": sent["error"], "query_text": sent["text"], "query_invalid": sent["action"] == "query",
            "decision_text": "Entschieden.", "decision_invalid": false,
            "invalid_field": sent["field"].as_str().unwrap_or_default(),
            "invalid_label": if sent["field"] == "rueckfrage" { "Ihre Frage" } else { "" },
            "appeal_text": "Widerspruch binnen eines Monats.", "appeal_deadline": "2027-01-06",
            "fee_amount": "", "fee_purpose": "", "today": "2026-12-06",
            "done": done, "max_chars": 4000,
        })
    }

    #[test]
    fn the_work_section_renders_with_and_without_a_refused_form() {
        let shell = Shell::new(&SPEC, false, LoginLimiter::default()).expect("shell");
        let render =
            |data: serde_json::Value| shell.templates().render("document", &data).expect("render");
        let fresh = render(document_data(work(
            json!({"action": "", "text": "", "error": ""}),
            json!(null),
        )));
        assert!(fresh.contains("Rückfrage senden"), "{fresh}");
        assert!(fresh.contains(">Entschieden.</textarea>"), "{fresh}");
        assert!(fresh.contains("Zahlungsreferenz PAY-1"), "{fresh}");
        // A fee paid at submission is not set again by the decision.
        assert!(
            fresh.contains("Die Gebühr der Leistung (30,70 € (Gebühr)) ist bereits bei der Antragstellung online bezahlt worden"),
            "{fresh}"
        );
        assert!(fresh.contains("value=\"2027-01-06\""), "{fresh}");
        assert!(
            fresh.contains("(Frist bis 6. Januar 2027): Widerspruch bis dann."),
            "{fresh}"
        );
        assert!(!fresh.contains("aria-invalid"), "{fresh}");
        let sent = json!({"action": "query", "text": "<b>Frage</b>", "error": "Bitte kürzen.",
                          "field": "rueckfrage"});
        let refused = render(document_data(work(sent, json!("Erledigt."))));
        assert!(refused.contains("Bitte kürzen."), "{refused}");
        assert!(
            refused.contains("&lt;b&gt;Frage&lt;/b&gt;</textarea>"),
            "{refused}"
        );
        assert!(refused.contains("aria-invalid=\"true\""), "{refused}");
        // Only the field to fix is marked, and the error links to it.
        assert_eq!(refused.matches("aria-invalid").count(), 1, "{refused}");
        assert!(
            refused.contains("<a href=\"#rueckfrage\">Zum Feld „Ihre Frage“</a>"),
            "{refused}"
        );
        assert!(refused.contains("Erledigt."), "{refused}");
        let mut before_take = document_data(json!(null));
        before_take["taken"] = json!(null);
        let before_take = render(before_take);
        assert!(!before_take.contains("Bearbeitung"), "{before_take}");
        let cases = json!({"states": [{"value": "offen", "label": "Alle offenen", "selected": true}],
            "services": [], "nummer": "", "caption": "0 Fälle", "cases": [], "truncated": false, "limit": 300});
        let html = shell.templates().render("cases", &cases).expect("cases");
        assert!(html.contains("Keine Anträge"), "{html}");
    }

    #[test]
    fn cookies_are_http_only_strict_and_limited_to_the_inbox() {
        let inbox = |secure_cookies| {
            Shell::new(&SPEC, secure_cookies, LoginLimiter::default()).expect("shell")
        };
        assert_eq!(
            inbox(true).cookie(SPEC.session_cookie, "abc", 28800),
            "kopplung_inbox=abc; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert_eq!(
            inbox(false).cookie(SPEC.session_cookie, "", 0),
            "kopplung_inbox=; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}
