//! The clerk inbox: procedures without an interface (`transport = "manual"`, maturity
//! level 0). Their applications wait at the hub; a clerk of the authority signs in at
//! `/inbox`, reads each application as a document (German labels, attachments, the
//! XÖV message) and takes it over, which is the delivery.
//!
//! Server-rendered HTML (Handlebars, escaped by default), no JavaScript, a strict CSP.
//! Sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie, kept in
//! memory for 8 hours (a restart signs everyone out); every POST carries the session's
//! CSRF token (the login form a token of its own, double-submitted in a cookie).
//! A clerk sees only the procedures that name them; everything else answers 404.
//! Headers, cookies, sessions and the login limit are shared with the admin console
//! (`crate::web`).

mod render;
mod session;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Error;
use crate::config::{Config, DeliveryConfig};
use crate::context::Hub;
use crate::store::{ApplicationRecord, AttachmentContent, PickupAck};
use kopplung_web::limiter::wait_in_minutes;
use kopplung_web::{ClientAddr, LoginLimiter};

use crate::web::{
    self, CsrfForm, Session, Sessions, cookie, german_time, iso, plain_error, same_token, see_other,
};
use render::Block;

pub use session::{MIN_PASSWORD_CHARS, hash_password};

/// The session cookie (path `/inbox`).
const SESSION_COOKIE: &str = "kopplung_inbox";
/// The login form's own CSRF token, double-submitted.
const LOGIN_COOKIE: &str = "kopplung_inbox_login";
/// Applications listed per procedure.
const LIST_LIMIT: u32 = 200;
/// Password checks at once: each takes 19 MiB and a core for a moment.
const VERIFY_SLOTS: usize = 4;
/// The inbox's forms are small.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Where the inbox's cookies apply.
const COOKIE_PATH: &str = "/inbox";

/// A clerk as configured, with the PHC string of their password.
#[derive(Debug, Clone)]
struct Clerk {
    name: String,
    phc: String,
}

/// A manual procedure and who may read it.
#[derive(Debug, Clone)]
struct ManualProcedure {
    id: String,
    authority: String,
    clerks: Vec<String>,
}

/// The inbox's configuration and in-memory state (sessions, login limits).
pub struct Inbox {
    clerks: BTreeMap<String, Clerk>,
    procedures: Vec<ManualProcedure>,
    /// Checked for unknown clerk ids, so that timing does not tell which ids exist
    /// (`None` without clerks: then no login can succeed anyway).
    decoy_phc: Option<String>,
    secure_cookies: bool,
    sessions: Sessions,
    verify_slots: Semaphore,
    templates: Handlebars<'static>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("clerks", &self.clerks.keys().collect::<Vec<_>>())
            .field("procedures", &self.procedures.len())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// Reads the clerks (hashing the passwords of `password_file` clerks) and the manual
    /// procedures of the configuration.
    pub fn load(config: &Config) -> Result<Self, Error> {
        let invalid = |file: PathBuf, message: String| Error::Config { file, message };
        let mut clerks = BTreeMap::new();
        for clerk in &config.file.clerks {
            let phc = match (&clerk.password_argon2, &clerk.password_file) {
                (Some(phc), _) => {
                    session::check_phc(phc).map_err(|problem| {
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
        let procedures = config
            .routing
            .procedures
            .iter()
            .filter_map(|procedure| match &procedure.delivery {
                DeliveryConfig::Manual(manual) => Some(ManualProcedure {
                    id: procedure.id.clone(),
                    authority: config
                        .authority(&procedure.authority)
                        .map_or_else(|| procedure.authority.clone(), |a| a.name.clone()),
                    clerks: manual.clerks.clone(),
                }),
                _ => None,
            })
            .collect();
        let decoy = if clerks.is_empty() {
            None
        } else {
            let password = web::random_hex(16)
                .map_err(|e| invalid(config.source.clone(), format!("random numbers: {e}")))?;
            Some(hash_password(&password).map_err(|e| invalid(config.source.clone(), e))?)
        };
        let secure_cookies = config
            .file
            .server
            .public_url
            .as_deref()
            .is_some_and(web::secure_cookies);
        Ok(Self {
            clerks,
            procedures,
            decoy_phc: decoy,
            secure_cookies,
            sessions: Sessions::default(),
            verify_slots: Semaphore::new(VERIFY_SLOTS),
            templates: templates()?,
        })
    }

    /// The manual procedures `clerk` serves.
    fn procedures_of<'a>(&'a self, clerk: &'a str) -> impl Iterator<Item = &'a ManualProcedure> {
        self.procedures
            .iter()
            .filter(move |p| p.clerks.iter().any(|c| c == clerk))
    }

    fn procedure_for(&self, clerk: &str, procedure: &str) -> Option<&ManualProcedure> {
        self.procedures
            .iter()
            .find(|p| p.id == procedure && p.clerks.iter().any(|c| c == clerk))
    }

    fn clerk_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.clerks.get(id).map_or(id, |c| c.name.as_str())
    }

    /// The session the request's cookie names, with its token.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let session = self.sessions.get(&token)?;
        // A clerk removed from the configuration keeps no access (after a restart the
        // sessions are gone anyway).
        self.clerks
            .contains_key(&session.user)
            .then_some((token, session))
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        web::set_cookie(name, value, COOKIE_PATH, max_age, self.secure_cookies)
    }

    /// A page in the layout.
    fn page(
        &self,
        status: StatusCode,
        title: &str,
        session: Option<&Session>,
        template: &str,
        data: &impl Serialize,
    ) -> Response {
        let layout = |content| Layout {
            title,
            clerk: session.map(|s| self.clerk_name(&s.user)),
            csrf: session.map(|s| s.csrf.as_str()),
            content,
        };
        match web::render_in_layout(&self.templates, template, data, layout) {
            Ok(html) => web::html_response(status, html),
            Err(e) => {
                tracing::error!(template, error = %e, "inbox page could not be rendered");
                plain_error()
            }
        }
    }

    fn error_page(
        &self,
        status: StatusCode,
        session: Option<&Session>,
        heading: &str,
        message: &str,
    ) -> Response {
        let (link_href, link_text) = if session.is_some() {
            ("/inbox", "Zum Posteingang")
        } else {
            ("/inbox/login", "Zur Anmeldung")
        };
        self.page(
            status,
            heading,
            session,
            "error",
            &ErrorPage {
                heading,
                message,
                link_href,
                link_text,
            },
        )
    }

    fn not_found(&self, session: Option<&Session>) -> Response {
        self.error_page(
            StatusCode::NOT_FOUND,
            session,
            "Nicht gefunden",
            "Diese Seite gibt es nicht, oder sie ist Ihnen nicht zugänglich.",
        )
    }

    fn unavailable(&self, session: Option<&Session>) -> Response {
        self.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            session,
            "Vorübergehend nicht verfügbar",
            "Die Anträge können gerade nicht gelesen werden. Bitte versuchen Sie es in einigen Minuten erneut.",
        )
    }

    fn forbidden(&self, session: Option<&Session>) -> Response {
        let message = if session.is_some() {
            "Die Anfrage konnte nicht überprüft werden: Das Sicherheitsmerkmal des Formulars fehlt oder ist abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es erneut."
        } else {
            "Sie sind nicht angemeldet, oder Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."
        };
        self.error_page(StatusCode::FORBIDDEN, session, "Nicht erlaubt", message)
    }

    /// The login form with a fresh form token (also set as a cookie).
    fn login_page(&self, status: StatusCode, error: Option<&str>) -> Response {
        let Ok(token) = web::random_hex(32) else {
            return plain_error();
        };
        let mut response = self.page(
            status,
            "Anmeldung",
            None,
            "login",
            &LoginPage {
                csrf: &token,
                error,
            },
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, self.cookie(LOGIN_COOKIE, &token, 3600));
        response
    }
}

#[derive(Serialize)]
struct Layout<'a> {
    title: &'a str,
    clerk: Option<&'a str>,
    csrf: Option<&'a str>,
    content: String,
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
    link_href: &'a str,
    link_text: &'a str,
}

#[derive(Serialize)]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct InboxPage {
    procedures: Vec<ProcedureView>,
}

#[derive(Serialize)]
struct ProcedureView {
    id: String,
    authority: String,
    count_text: String,
    applications: Vec<WaitingView>,
    truncated: bool,
    shown: u32,
}

#[derive(Serialize)]
struct WaitingView {
    href: String,
    receipt: String,
    service: String,
    municipality: String,
    since: String,
    since_iso: String,
}

#[derive(Serialize)]
struct DocumentPage {
    service: String,
    receipt: String,
    municipality: String,
    region: String,
    received: String,
    received_iso: String,
    procedure: String,
    authority: String,
    taken: Option<TakenView>,
    take_href: String,
    csrf: String,
    form: FormView,
    attachments: Vec<AttachmentView>,
    attachments_caption: String,
    xml_href: String,
    xml_size: String,
    message_type: String,
}

#[derive(Serialize)]
struct TakenView {
    by: String,
    at: String,
}

#[derive(Serialize)]
struct FormView {
    blocks: Vec<Block>,
}

#[derive(Serialize)]
struct AttachmentView {
    href: String,
    filename: String,
    media_type: String,
    size: String,
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

fn templates() -> Result<Handlebars<'static>, Error> {
    web::templates(
        "router/src/inbox/templates",
        &[
            ("layout", include_str!("templates/layout.hbs")),
            ("login", include_str!("templates/login.hbs")),
            ("inbox", include_str!("templates/inbox.hbs")),
            ("document", include_str!("templates/document.hbs")),
            ("error", include_str!("templates/error.hbs")),
            ("fields", include_str!("templates/fields.hbs")),
        ],
        &["fields"],
    )
}

#[derive(Clone)]
struct Shared {
    hub: Arc<Hub>,
    inbox: Arc<Inbox>,
    logins: LoginLimiter,
}

/// The inbox's routes under `/inbox`, with its security headers. Merge it into the
/// API router; `logins` is the hub's one login limiter (clerks count per clerk id).
pub fn router(hub: Arc<Hub>, inbox: Arc<Inbox>, logins: LoginLimiter) -> Router {
    routes()
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(Shared { hub, inbox, logins })
}

fn routes() -> Router<Shared> {
    let inbox = Router::new()
        .route("/", get(list))
        .route("/inbox.css", get(web::stylesheet))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/{procedure}/{message}", get(document))
        .route("/{procedure}/{message}/take", post(take))
        .route("/{procedure}/{message}/xml", get(xml))
        .route("/{procedure}/{message}/attachments/{n}", get(attachment))
        // Unknown inbox paths: a German 404 (or the login), not the API's problem JSON.
        .fallback(unknown_page);
    Router::new().nest("/inbox", inbox)
}

async fn unknown_page(State(s): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    match s.inbox.session(&headers) {
        Some((_, session)) => s.inbox.not_found(Some(&session)),
        None if method == Method::GET || method == Method::HEAD => see_other("/inbox/login"),
        None => s.inbox.forbidden(None),
    }
}

async fn login_form(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if s.inbox.session(&headers).is_some() {
        return see_other("/inbox");
    }
    s.inbox.login_page(StatusCode::OK, None)
}

async fn login(
    State(s): State<Shared>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let inbox = &s.inbox;
    let form = match web::checked_login_form(&headers, LOGIN_COOKIE, form, |f| &f.csrf) {
        Ok(form) => form,
        Err((status, message)) => return inbox.login_page(status, Some(message)),
    };
    let address = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let submitted: String = form.clerk.trim().chars().take(100).collect();
    let attempt = match s.logins.begin(
        Some(&format!("clerk:{submitted}")),
        address,
        tokio::time::Instant::now(),
    ) {
        Ok(attempt) => attempt,
        Err(refused) => {
            let message = format!(
                "Zu viele fehlgeschlagene Anmeldeversuche {}. Die Anmeldung ist vorübergehend gesperrt. Bitte versuchen Sie es in {} erneut.",
                if refused.by_address {
                    "von diesem Rechner aus"
                } else {
                    "für diese Kennung"
                },
                wait_in_minutes(refused.wait)
            );
            let mut response = inbox.login_page(StatusCode::TOO_MANY_REQUESTS, Some(&message));
            web::retry_after(&mut response, refused.wait);
            return response;
        }
    };
    let clerk = inbox.clerks.get(&submitted);
    let phc = clerk
        .map(|c| c.phc.clone())
        .or_else(|| inbox.decoy_phc.clone());
    let password = form.password;
    let verified = match (phc, inbox.verify_slots.acquire().await) {
        (Some(phc), Ok(_permit)) => {
            tokio::task::spawn_blocking(move || session::verify_password(&password, &phc))
                .await
                .unwrap_or(false)
        }
        _ => false,
    };
    if !(verified && clerk.is_some()) {
        // The submitted id is logged only if it is a clerk's (it might be a password
        // typed into the wrong field).
        let clerk = clerk.map(|_| submitted.as_str());
        match attempt.failed() {
            Some(wait) => tracing::warn!(
                clerk,
                wait_secs = wait.as_secs(),
                "clerk inbox: logins wait after repeated failures"
            ),
            None => tracing::info!(clerk, "clerk inbox: login failed"),
        }
        return inbox.login_page(
            StatusCode::UNAUTHORIZED,
            Some("Kennung oder Passwort ist falsch."),
        );
    }
    attempt.succeeded();
    let Ok((token, _)) = inbox.sessions.create(&submitted) else {
        return plain_error();
    };
    tracing::info!(clerk = %submitted, "clerk inbox: signed in");
    let mut response = see_other("/inbox");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        inbox.cookie(SESSION_COOKIE, &token, web::SESSION_TTL.as_secs()),
    );
    headers.append(header::SET_COOKIE, inbox.cookie(LOGIN_COOKIE, "", 0));
    response
}

/// The session and a checked CSRF token of a POST, or the 403 to answer.
fn posted_session(
    inbox: &Inbox,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<(String, Session), Box<Response>> {
    let Some((token, session)) = inbox.session(headers) else {
        return Err(Box::new(inbox.forbidden(None)));
    };
    match form {
        Ok(Form(form)) if same_token(&form.csrf, &session.csrf) => Ok((token, session)),
        _ => {
            tracing::warn!(clerk = %session.user, "clerk inbox: POST without a valid CSRF token refused");
            Err(Box::new(inbox.forbidden(Some(&session))))
        }
    }
}

async fn logout(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (token, session) = match posted_session(&s.inbox, &headers, form) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    s.inbox.sessions.remove(&token);
    tracing::info!(clerk = %session.user, "clerk inbox: signed out");
    let mut response = see_other("/inbox/login");
    response
        .headers_mut()
        .append(header::SET_COOKIE, s.inbox.cookie(SESSION_COOKIE, "", 0));
    response
}

async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let inbox = &s.inbox;
    let Some((_, session)) = inbox.session(&headers) else {
        return see_other("/inbox/login");
    };
    let mappings = s.hub.catalog.current();
    let mut procedures = Vec::new();
    for procedure in inbox.procedures_of(&session.user) {
        let waiting = match s.hub.store.pickups(&procedure.id, LIST_LIMIT).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::error!(error = %e, "clerk inbox: listing failed");
                return inbox.unavailable(Some(&session));
            }
        };
        let mut applications = Vec::new();
        for pickup in &waiting {
            let region = &pickup.region;
            applications.push(WaitingView {
                href: format!("/inbox/{}/{}", procedure.id, pickup.message_id),
                receipt: pickup.receipt.clone(),
                service: mappings
                    .get(&pickup.service)
                    .map_or_else(|| pickup.service.clone(), |m| m.info.name.clone()),
                municipality: s.hub.regions.name(region).unwrap_or(region).to_owned(),
                since: german_time(pickup.available_since),
                since_iso: iso(pickup.available_since),
            });
        }
        let count_text = match applications.len() {
            1 => "1 wartender Antrag".to_owned(),
            n => format!("{n} wartende Anträge"),
        };
        procedures.push(ProcedureView {
            id: procedure.id.clone(),
            authority: procedure.authority.clone(),
            count_text,
            truncated: applications.len() >= LIST_LIMIT as usize,
            shown: LIST_LIMIT,
            applications,
        });
    }
    inbox.page(
        StatusCode::OK,
        "Posteingang",
        Some(&session),
        "inbox",
        &InboxPage { procedures },
    )
}

/// The message a clerk asks for: their procedure and a message waiting for it (or
/// taken over already). Anything else is a 404, whether it exists or not.
struct Found {
    session: Session,
    procedure: ManualProcedure,
    pickup: crate::store::Pickup,
    xml: Vec<u8>,
    input: crate::store::PrepareInput,
}

async fn find(
    s: &Shared,
    session: Session,
    procedure: &str,
    message: &str,
) -> Result<Found, Response> {
    let inbox = &s.inbox;
    let Some(procedure) = inbox.procedure_for(&session.user, procedure).cloned() else {
        return Err(inbox.not_found(Some(&session)));
    };
    let Ok(message_id) = Uuid::parse_str(message) else {
        return Err(inbox.not_found(Some(&session)));
    };
    let (pickup, xml) = match s.hub.store.pickup(&procedure.id, message_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(inbox.not_found(Some(&session))),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading a message failed");
            return Err(inbox.unavailable(Some(&session)));
        }
    };
    let input = match s.hub.store.prepare_input(pickup.application_id).await {
        Ok(input) => input,
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading an application failed");
            return Err(inbox.unavailable(Some(&session)));
        }
    };
    Ok(Found {
        session,
        procedure,
        pickup,
        xml,
        input,
    })
}

/// The history entry of the take-over: who and when.
fn taken_over(inbox: &Inbox, record: &ApplicationRecord, message_id: Uuid) -> Option<TakenView> {
    let prefix = format!("message {message_id} taken over by clerk ");
    record.history.iter().find_map(|entry| {
        let rest = entry.detail.strip_prefix(&prefix)?;
        let clerk = rest.strip_suffix(" (manual)").unwrap_or(rest);
        Some(TakenView {
            by: format!("{} ({clerk})", inbox.clerk_name(clerk)),
            at: german_time(entry.at),
        })
    })
}

async fn document(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
) -> Response {
    let Some((_, session)) = s.inbox.session(&headers) else {
        return see_other("/inbox/login");
    };
    let found = match find(&s, session, &procedure, &message).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let inbox = &s.inbox;
    let record = match s.hub.store.application(found.pickup.application_id).await {
        Ok(record) => record,
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading an application failed");
            return inbox.unavailable(Some(&found.session));
        }
    };
    let taken = record
        .as_ref()
        .and_then(|r| taken_over(inbox, r, found.pickup.message_id));
    let mappings = s.hub.catalog.current();
    let mapping = mappings.get(&found.input.service_key);
    let blocks = match mapping {
        Some(mapping) => render::form_blocks(&mapping.form.fields, &found.input.payload),
        None => render::raw_blocks(&found.input.payload, 3),
    };
    let base = format!("/inbox/{}/{}", found.procedure.id, found.pickup.message_id);
    let region = found.input.region.clone();
    let page = DocumentPage {
        service: mapping.map_or_else(|| found.input.service_key.clone(), |m| m.info.name.clone()),
        receipt: found.input.receipt.clone(),
        municipality: s.hub.regions.name(&region).unwrap_or(&region).to_owned(),
        region,
        received: german_time(found.input.created_at),
        received_iso: iso(found.input.created_at),
        procedure: found.procedure.id.clone(),
        authority: found.procedure.authority.clone(),
        taken,
        take_href: format!("{base}/take"),
        csrf: found.session.csrf.clone(),
        form: FormView { blocks },
        attachments: found
            .input
            .attachments
            .iter()
            .enumerate()
            .map(|(index, a)| AttachmentView {
                href: format!("{base}/attachments/{}", index + 1),
                filename: a.filename.clone(),
                media_type: a.media_type.clone(),
                size: render::human_size(a.size),
            })
            .collect(),
        attachments_caption: match found.input.attachments.len() {
            1 => "1 Anlage".to_owned(),
            n => format!("{n} Anlagen"),
        },
        xml_href: format!("{base}/xml"),
        xml_size: render::human_size(found.xml.len() as u64),
        message_type: found.pickup.message_type.clone(),
    };
    let title = format!("Antrag {}", page.receipt);
    inbox.page(
        StatusCode::OK,
        &title,
        Some(&found.session),
        "document",
        &page,
    )
}

async fn take(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let inbox = &s.inbox;
    let (_, session) = match posted_session(inbox, &headers, form) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(procedure) = inbox.procedure_for(&session.user, &procedure) else {
        return inbox.not_found(Some(&session));
    };
    let Ok(message_id) = Uuid::parse_str(&message) else {
        return inbox.not_found(Some(&session));
    };
    let detail = format!(
        "message {message_id} taken over by clerk {} (manual)",
        session.user
    );
    match s
        .hub
        .store
        .acknowledge_pickup(&procedure.id, message_id, &detail)
        .await
    {
        Ok(PickupAck::Acknowledged) => {
            tracing::info!(
                procedure = %procedure.id,
                %message_id,
                clerk = %session.user,
                "taken over in the clerk inbox"
            );
        }
        Ok(PickupAck::AlreadyAcknowledged) => {}
        Ok(PickupAck::Unknown) => return inbox.not_found(Some(&session)),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: taking over failed");
            return inbox.unavailable(Some(&session));
        }
    }
    see_other(&format!("/inbox/{}/{message_id}", procedure.id))
}

async fn attachment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((procedure, message, n)): Path<(String, String, String)>,
) -> Response {
    let Some((_, session)) = s.inbox.session(&headers) else {
        return see_other("/inbox/login");
    };
    let found = match find(&s, session, &procedure, &message).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chosen = n
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|index| Some((index, found.input.attachments.get(index)?)));
    let Some((index, attachment)) = chosen else {
        return s.inbox.not_found(Some(&found.session));
    };
    let body = match &attachment.content {
        AttachmentContent::Inline(content) => Body::from(content.clone()),
        // An upload is streamed from its chunks, never loaded whole.
        AttachmentContent::Upload(_) => crate::api::plain_body(
            s.hub.store.clone(),
            found.procedure.id.clone(),
            found.pickup.message_id,
            u32::try_from(index).unwrap_or(u32::MAX),
            attachment.size,
        ),
    };
    download(
        render::served_media_type(&attachment.media_type),
        &render::content_disposition(&attachment.filename),
        body,
    )
}

async fn xml(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
) -> Response {
    let Some((_, session)) = s.inbox.session(&headers) else {
        return see_other("/inbox/login");
    };
    let found = match find(&s, session, &procedure, &message).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let filename = format!("{}-{}.xml", found.input.receipt, found.pickup.message_type);
    download(
        render::served_media_type("application/xml"),
        &render::content_disposition(&filename),
        Body::from(found.xml),
    )
}

fn download(media_type: &'static str, disposition: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_routes_do_not_conflict_and_the_templates_compile() {
        let _ = routes();
        let templates = templates().expect("templates");
        let html = templates
            .render(
                "fields",
                &json!({"blocks": [
                    {"leaves": [{"label": "Beschreibung", "value": "<script>alert(1)</script>"}], "group": null},
                    {"leaves": null, "group": {"label": "Ort", "level": 3, "blocks": [
                        {"leaves": [{"label": "Straße", "value": "A & B"}], "group": null}
                    ]}}
                ]}),
            )
            .expect("render");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("<h3>Ort</h3>"), "{html}");
        assert!(html.contains("A &amp; B"), "{html}");
    }

    #[test]
    fn cookies_are_http_only_strict_and_limited_to_the_inbox() {
        let inbox = |secure_cookies| Inbox {
            clerks: BTreeMap::new(),
            procedures: Vec::new(),
            decoy_phc: None,
            secure_cookies,
            sessions: Sessions::default(),
            verify_slots: Semaphore::new(1),
            templates: Handlebars::new(),
        };
        assert_eq!(
            inbox(true).cookie(SESSION_COOKIE, "abc", 28800),
            "kopplung_inbox=abc; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert_eq!(
            inbox(false).cookie(SESSION_COOKIE, "", 0),
            "kopplung_inbox=; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}
