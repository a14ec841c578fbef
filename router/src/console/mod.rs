//! The admin console: the admin API as German, server-rendered pages at `/console`, for
//! operators (role `operator`: read, retry, replay) and auditors (role `auditor`: read
//! only). Search applications (`search`), inspect one (state, delivery, history, audit
//! trail), view its transformed XML — each view recorded in the history and audit trail
//! before it is shown —, ask for the next attempt now, replay dead letters
//! (`application`), and see the status of mappings, certificates and procedures and
//! the dead letters (`status`); the messages delivered without a receipt past their
//! procedure's deadline, resent one by one or all of a procedure at once (`awaiting`).
//!
//! One signs in with the role's admin token (`[admin] token_file`,
//! `auditor_token_file`). Sessions, cookies, CSRF tokens, the login, the error pages and
//! the security headers are the web shell's (`kopplung_web::shell::signin`), as in the
//! clerk inbox. No page shows form data, except the XML page.

mod application;
mod awaiting;
mod search;
mod status;
mod wording;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Error;
use crate::api::auth::Clients;
use crate::context::Hub;
use kopplung_web::LoginLimiter;
use kopplung_web::shell::signin::{
    self, Frame, Layout, Shell, ShellSpec, SignInUi, TokenLoginForm, Verdict,
};
use kopplung_web::shell::{CsrfForm, Session, german_time_seconds, iso, secure_url, see_other};

/// Where the console lives, its cookies and its messages.
static SPEC: ShellSpec = ShellSpec {
    name: "admin console",
    base: "/console",
    stylesheet: "/console.css",
    session_cookie: "kopplung_console",
    login_cookie: "kopplung_console_login",
    home_link: "Zur Suche",
    not_found: "Diese Seite oder diesen Antrag gibt es nicht.",
    unavailable: "Der Speicher der Plattform antwortet gerade nicht. Bitte versuchen Sie es in einigen Minuten erneut.",
    wrong_credentials: "Das Zugangstoken ist nicht gültig.",
    folder: "router/src/console/templates",
    templates: kopplung_web::templates![
        "layout",
        "login",
        "search",
        "application",
        "xml",
        "status",
        "deadletters",
        "awaiting",
    ],
    partials: &[],
};

/// What a signed-in user may do: the id of their admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Operator,
    Auditor,
}

impl Role {
    fn from_id(id: &str) -> Option<Self> {
        match id {
            "operator" => Some(Self::Operator),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Auditor => "auditor",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Operator => "Betrieb (operator)",
            Self::Auditor => "Prüfung (auditor, nur lesen)",
        }
    }
}

/// A signed-in user's session and role. As an extractor, of a page that only reads:
/// anyone not signed in is sent to the login page before the handler runs.
struct User {
    session: Session,
    role: Role,
}

impl FromRequestParts<Console> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        console
            .user(&parts.headers)
            .ok_or_else(|| see_other("/console/login"))
    }
}

/// Where a page belongs in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Applications,
    Status,
    DeadLetters,
    AwaitingReceipt,
    None,
}

/// What the console's handlers share: the hub's API state, the console's shell
/// (sessions, templates) and the hub's one login limiter.
#[derive(Clone)]
struct Console {
    hub: Arc<Hub>,
    /// The admin API's tokens: the console's logins.
    admins: Clients,
    shell: Arc<Shell>,
}

/// The console's routes under `/console`, with the web UIs' security headers. Merge it
/// into the API router; `logins` is the hub's one login limiter.
pub fn router(hub: Arc<Hub>, admins: Clients, logins: LoginLimiter) -> Result<Router, Error> {
    // Cookies are `Secure` when the hub is reached over https.
    let shell =
        Shell::new(&SPEC, secure_url(&hub.public_url), logins).map_err(|e| Error::Config {
            file: SPEC.folder.into(),
            message: e.to_string(),
        })?;
    let console = Console {
        hub,
        admins,
        shell: Arc::new(shell),
    };
    Ok(signin::serve(routes(), console))
}

fn routes() -> Router<Console> {
    let pages = search::routes()
        .merge(application::routes())
        .merge(status::routes())
        .merge(awaiting::routes());
    signin::routes(&SPEC, pages)
}

impl SignInUi for Console {
    type LoginForm = TokenLoginForm;

    fn shell(&self) -> &Shell {
        &self.shell
    }

    fn admits(&self, user: &str) -> bool {
        Role::from_id(user).is_some()
    }

    fn layout<'a>(&'a self, frame: Frame<'a>) -> impl Serialize + 'a {
        layout(frame, Area::None)
    }

    async fn authenticate(&self, form: TokenLoginForm) -> Verdict {
        let role = form.token().and_then(|t| self.admins.authenticate_token(t));
        match role.and_then(Role::from_id) {
            Some(role) => Verdict::User(role.name().to_owned()),
            None => Verdict::Wrong { known: None },
        }
    }
}

impl Console {
    /// The signed-in user of the request's cookie.
    fn user(&self, headers: &HeaderMap) -> Option<User> {
        let session = self.signed_in(headers)?.session;
        let role = Role::from_id(&session.user)?;
        Some(User { session, role })
    }

    /// The user and a checked CSRF token of a POST, or the 403 to answer.
    fn posted_user(
        &self,
        headers: &HeaderMap,
        form: Result<Form<CsrfForm>, FormRejection>,
    ) -> Result<User, Box<Response>> {
        let session = self.posted(headers, form)?.session;
        match Role::from_id(&session.user) {
            Some(role) => Ok(User { session, role }),
            None => Err(Box::new(self.forbidden(None))),
        }
    }

    /// A page of the console in the layout, `area` marked in the navigation.
    fn page_in(
        &self,
        status: StatusCode,
        area: Area,
        title: &str,
        user: &User,
        template: &str,
        data: &impl Serialize,
    ) -> Response {
        let session = Some(&user.session);
        self.shell
            .templates()
            .page(status, template, data, |content| {
                let frame = Frame {
                    title,
                    session,
                    content,
                };
                layout(frame, area)
            })
    }

    /// An error page that leads back to `back` (an application's page).
    fn error_back(
        &self,
        status: StatusCode,
        user: &User,
        heading: &str,
        message: &str,
        back: &str,
    ) -> Response {
        let link = Some((back, "Zurück zum Antrag"));
        self.error_page(status, Some(&user.session), heading, message, link)
    }
}

/// The console's areas, in its navigation.
const NAV: [(&str, &str); 4] = [
    ("/console", "Anträge"),
    ("/console/status", "Status"),
    ("/console/deadletters", "Unzustellbare Nachrichten"),
    ("/console/awaiting-receipt", "Ohne Eingangsbestätigung"),
];

fn layout(frame: Frame<'_>, area: Area) -> Layout<'_> {
    let current = match area {
        Area::Applications => Some(NAV[0].0),
        Area::Status => Some(NAV[1].0),
        Area::DeadLetters => Some(NAV[2].0),
        Area::AwaitingReceipt => Some(NAV[3].0),
        Area::None => None,
    };
    let role = frame
        .session
        .and_then(|s| Role::from_id(&s.user))
        .map(Role::label);
    Layout::new(frame, role, &NAV, current)
}

/// A time as German text and as RFC 3339 for `<time datetime>`.
#[derive(Serialize)]
struct TimeView {
    text: String,
    iso: String,
}

impl TimeView {
    fn of(t: OffsetDateTime) -> Self {
        Self {
            text: german_time_seconds(t),
            iso: iso(t),
        }
    }

    /// A stored RFC 3339 text (audit entries); shown as it is if it does not parse.
    fn parse(text: &str) -> Self {
        match OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Self::of(t),
            Err(_) => Self {
                text: text.to_owned(),
                iso: text.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_do_not_conflict_and_the_templates_compile() {
        let _ = routes();
        let xml = serde_json::json!({
            "receipt": "K7QX-2M4P", "back_href": "/console/applications/x",
            "at": "01.01.2026, 10:00 Uhr", "role": "auditor",
            "message_type": "fim.S00000001", "message_id": "m",
            "xml": "<?xml version=\"1.0\"?><a>&lt;script&gt;</a><script>alert(1)</script>"
        });
        let shell = Shell::new(&SPEC, false, LoginLimiter::default()).expect("templates");
        let html = shell.templates().render("xml", &xml).expect("render");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<a>"), "{html}");
        assert!(
            html.contains("&lt;a&gt;&amp;lt;script&amp;gt;&lt;/a&gt;"),
            "{html}"
        );
    }
}
