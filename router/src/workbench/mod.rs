//! The workbench: German, server-rendered pages at `/workbench` for integration
//! engineers (role `engineer`). Pick a service of the mappings in force; edit its form
//! definition, template and schema side by side; see the portal's rendering of the
//! form, each fixture's rendered XML with its schema validation and its difference to
//! the expected XML, updated as one types (`workbench.js`: a debounced `fetch` of the
//! results; without JavaScript the button "Vorschau aktualisieren" gives the same page);
//! and apply the edit: checked as every start and reload checks (`draft`), written,
//! and put in force through the reloader — or refused with the reasons, the files
//! restored. Every apply is recorded (`journal`) and logged without the files' content.
//!
//! One signs in with the engineers' token (`[admin] engineer_token_file`). Sessions,
//! CSRF, the login limiter, error pages and headers are the web shell's
//! (`kopplung_web::shell::signin`), as in the admin console and the clerk inbox; the
//! CSP differs only in allowing the workbench's own script and its `fetch`.
//!
//! The hub does not depend on the portal: the portal's rendering of a form comes through
//! [`FormPreview`], implemented by the portal and handed in where the hub is started.

mod draft;
mod journal;
mod pages;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use kopplung_transformers::FormDefinition;
use kopplung_web::LoginLimiter;
use kopplung_web::shell::signin::{
    self, Frame, Layout, Shell, ShellSpec, SignInUi, TokenLoginForm, Verdict,
};
use kopplung_web::shell::{SecurityHeaders, Session, secure_url};
use serde::Serialize;

use crate::Error;
use crate::api::auth::Clients;
use crate::reload::Reloader;

pub use draft::{Edit, FixtureView, Preview, Refusal, ServiceFiles};
pub use journal::Journal;

/// How a front end renders a form definition as its citizens would see it. The hub
/// cannot import the portal (front ends depend on the hub, not the other way round);
/// the portal implements this and the binary hands it in.
pub trait FormPreview: Send + Sync {
    /// The form's fields as HTML, every step; the error as a message to show.
    fn render(&self, form: &FormDefinition) -> Result<String, String>;
}

/// The role of a workbench session: the id of its token.
const ROLE: &str = "engineer";

/// Whole mapping files travel in the workbench's forms.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The console's CSP, plus the workbench's own script and its `fetch` of the results.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static SPEC: ShellSpec = ShellSpec {
    name: "workbench",
    base: "/workbench",
    stylesheet: "/workbench.css",
    session_cookie: "kopplung_workbench",
    login_cookie: "kopplung_workbench_login",
    home_link: "Zur Übersicht der Leistungen",
    not_found: "Diese Seite oder diese Leistung gibt es nicht.",
    unavailable: "Die Werkbank kann gerade nicht antworten. Bitte versuchen Sie es in einigen Minuten erneut.",
    wrong_credentials: "Das Zugangstoken ist nicht gültig.",
    folder: "router/src/workbench/templates",
    templates: kopplung_web::templates!["layout", "login", "services", "service", "results"],
    partials: &["results"],
};

/// What the workbench's handlers share.
#[derive(Clone)]
struct Workbench {
    reloader: Arc<Reloader>,
    engineers: Clients,
    shell: Arc<Shell>,
    portal: Option<Arc<dyn FormPreview>>,
    journal: Arc<Journal>,
    mappings_root: PathBuf,
}

/// The workbench's routes under `/workbench`, with its security headers; `engineers`
/// holds the one token of role `engineer`, `logins` is the hub's one login limiter.
pub fn router(
    reloader: Arc<Reloader>,
    engineers: Clients,
    logins: LoginLimiter,
    portal: Option<Arc<dyn FormPreview>>,
) -> Result<Router, Error> {
    let hub = reloader.hub.clone();
    let shell =
        Shell::new(&SPEC, secure_url(&hub.public_url), logins).map_err(|e| Error::Config {
            file: SPEC.folder.into(),
            message: e.to_string(),
        })?;
    let config = hub.topology.now().config.clone();
    let workbench = Workbench {
        reloader,
        engineers,
        shell: Arc::new(shell),
        portal,
        journal: Arc::new(Journal::new(&config.data_dir)),
        mappings_root: config.mappings_dir.clone(),
    };
    let headers = SecurityHeaders {
        csp: CSP,
        ..signin::HEADERS
    };
    Ok(signin::serve_with(
        routes(),
        workbench,
        headers,
        MAX_FORM_BYTES,
    ))
}

fn routes() -> Router<Workbench> {
    signin::routes(&SPEC, pages::routes())
}

impl SignInUi for Workbench {
    type LoginForm = TokenLoginForm;

    fn shell(&self) -> &Shell {
        &self.shell
    }

    fn admits(&self, user: &str) -> bool {
        user == ROLE
    }

    fn layout<'a>(&'a self, frame: Frame<'a>) -> impl Serialize + 'a {
        layout(frame)
    }

    async fn authenticate(&self, form: TokenLoginForm) -> Verdict {
        match form
            .token()
            .and_then(|t| self.engineers.authenticate_token(t))
        {
            Some(role) if role == ROLE => Verdict::User(role.to_owned()),
            _ => Verdict::Wrong { known: None },
        }
    }
}

impl Workbench {
    /// The signed-in engineer's session.
    fn engineer(&self, headers: &HeaderMap) -> Option<Session> {
        let session = self.signed_in(headers)?.session;
        (session.user == ROLE).then_some(session)
    }
}

fn layout(frame: Frame<'_>) -> Layout<'_> {
    let engineer = frame.session.map(|_| "Integration (engineer)");
    Layout::new(frame, engineer, &[("/workbench", "Leistungen")], None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_do_not_conflict_and_the_templates_compile() {
        let _ = routes();
        let shell = Shell::new(&SPEC, false, LoginLimiter::default()).expect("templates");
        let results = serde_json::json!({
            "problems": ["a.hbs:1:2: <b>"],
            "fixtures": [{"name": "minimal", "xml": "<a>&</a>", "valid": false,
                "validation": "x", "matches": false, "diff": "-<a>"}],
            "form_html": "<p>Form</p>",
            "form_error": null,
            "passes": false,
            "problem_count": 1,
        });
        let html = shell
            .templates()
            .render("results", &results)
            .expect("render");
        assert!(html.contains("&lt;a&gt;&amp;&lt;/a&gt;"), "{html}");
        assert!(html.contains("a.hbs:1:2: &lt;b&gt;"), "{html}");
        // The portal's rendering is its own templates' escaped HTML.
        assert!(html.contains("<p>Form</p>"), "{html}");
    }
}
