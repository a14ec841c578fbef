//! The workbench's pages: the services, a service's editor with its results, the
//! results alone for the script (`teil=ergebnis`), and apply. Handlers parse, call
//! `draft` and render; what is checked and how it is put in force is `draft`'s.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kopplung_web::shell::signin::SignInUi;
use kopplung_web::shell::{Session, asset, csrf_matches, form_value, html};
use serde::Serialize;

use super::draft::{self, Edit, Preview, ServiceFiles};
use super::journal::{Outcome, Record};
use super::{ROLE, Workbench};

/// The workbench's script: the debounced preview and the announcements.
const SCRIPT: &str = include_str!("workbench.js");

pub(super) fn routes() -> Router<Workbench> {
    Router::new()
        .route("/", get(services))
        .route("/workbench.js", get(script))
        .route("/services/{key}", get(service))
        .route("/services/{key}/preview", post(preview))
        .route("/services/{key}/apply", post(apply))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[derive(Serialize)]
struct ServicesPage {
    count: usize,
    services: Vec<ServiceRow>,
}

#[derive(Serialize)]
struct ServiceRow {
    key: String,
    name: String,
    folder: String,
}

async fn services(State(wb): State<Workbench>, headers: HeaderMap) -> Response {
    let Some(session) = wb.engineer(&headers) else {
        return kopplung_web::shell::see_other("/workbench/login");
    };
    let services = wb
        .reloader
        .hub
        .catalog
        .current()
        .values()
        .map(|m| ServiceRow {
            key: m.info.key.clone(),
            name: m.info.name.clone(),
            folder: ServiceFiles::of(&wb.mappings_root, m).folder,
        })
        .collect::<Vec<_>>();
    wb.page(
        StatusCode::OK,
        "Leistungen",
        Some(&session),
        "services",
        &ServicesPage {
            count: services.len(),
            services,
        },
    )
}

/// The service's page: its files, the results, and what an apply came to.
#[derive(Serialize)]
struct ServicePage {
    csrf: String,
    key: String,
    name: String,
    folder: String,
    template_name: String,
    schema_name: String,
    form: String,
    template: String,
    schema: String,
    results: Results,
    applied: Option<Applied>,
}

/// The results pane (also alone, for the script).
#[derive(Serialize)]
struct Results {
    #[serde(flatten)]
    preview: Preview,
    passes: bool,
    problem_count: usize,
}

/// What an apply came to.
#[derive(Serialize)]
struct Applied {
    ok: bool,
    message: String,
    reasons: Vec<String>,
}

/// The mapping in force of `key` and its files, or the 404.
fn files_of(wb: &Workbench, key: &str) -> Option<(ServiceFiles, String)> {
    let mappings = wb.reloader.hub.catalog.current();
    let mapping = mappings.get(key)?;
    Some((
        ServiceFiles::of(&wb.mappings_root, mapping),
        mapping.info.name.clone(),
    ))
}

async fn service(
    State(wb): State<Workbench>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = wb.engineer(&headers) else {
        return kopplung_web::shell::see_other("/workbench/login");
    };
    let Some((files, name)) = files_of(&wb, &key) else {
        return wb.not_found(Some(&session));
    };
    let edit = match files.read() {
        Ok(edit) => edit,
        Err(e) => {
            tracing::error!(error = %e, "workbench: reading a mapping failed");
            return wb.unavailable(Some(&session));
        }
    };
    service_page(&wb, &session, &key, &name, &files, edit, None).await
}

/// The edited files of a POST, line breaks as in the files (browsers send CRLF).
fn edit_of(pairs: &[(String, String)]) -> Edit {
    let text = |name: &str| {
        form_value(pairs, name)
            .unwrap_or_default()
            .replace("\r\n", "\n")
    };
    Edit {
        form: text("form"),
        template: text("template"),
        schema: text("schema"),
        expected: Vec::new(),
    }
}

/// A posted form's fields, in order.
type Pairs = Vec<(String, String)>;

/// The engineer of a POST with the session's CSRF token, or the 403 to answer.
fn posted(
    wb: &Workbench,
    headers: &HeaderMap,
    form: &Result<Form<Pairs>, FormRejection>,
) -> Result<(Session, Pairs), Box<Response>> {
    let session = wb.engineer(headers);
    match (session, form) {
        (Some(session), Ok(Form(pairs))) if csrf_matches(pairs, &session.csrf) => {
            Ok((session, pairs.clone()))
        }
        (session, _) => {
            tracing::warn!("workbench: POST without a session or a valid CSRF token refused");
            Err(Box::new(wb.forbidden(session.as_ref())))
        }
    }
}

/// A service's edit as posted by its signed-in engineer. As an extractor: else the
/// answer, 403 without a session or CSRF token, 404 for an unknown service.
struct Posted {
    session: Session,
    /// The service's key, from the path.
    key: String,
    pairs: Pairs,
    files: ServiceFiles,
    /// The service's name.
    name: String,
    edit: Edit,
}

impl FromRequest<Workbench> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, wb: &Workbench) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let key = Path::<String>::from_request_parts(&mut parts, wb)
            .await
            .map_err(IntoResponse::into_response)?
            .0;
        let headers = parts.headers.clone();
        let form = Form::<Pairs>::from_request(Request::from_parts(parts, body), wb).await;
        let (session, pairs) = posted(wb, &headers, &form).map_err(|answer| *answer)?;
        let Some((files, name)) = files_of(wb, &key) else {
            return Err(wb.not_found(Some(&session)));
        };
        let edit = edit_of(&pairs);
        Ok(Self {
            session,
            key,
            pairs,
            files,
            name,
            edit,
        })
    }
}

impl Posted {
    /// The service's page with this edit in the editor and its results.
    async fn page(self, wb: &Workbench, applied: Option<Applied>) -> Response {
        service_page(
            wb,
            &self.session,
            &self.key,
            &self.name,
            &self.files,
            self.edit,
            applied,
        )
        .await
    }
}

async fn preview(State(wb): State<Workbench>, posted: Posted) -> Response {
    // The script asks for the results pane only.
    if form_value(&posted.pairs, "teil") == Some("ergebnis") {
        let Some(results) = results_of(&wb, &posted.files, &posted.edit).await else {
            return wb.unavailable(Some(&posted.session));
        };
        return match wb.shell.templates().render("results", &results) {
            Ok(fragment) => html(StatusCode::OK, fragment),
            Err(e) => {
                tracing::error!(error = %e, "workbench: rendering the results failed");
                wb.shell.internal_error()
            }
        };
    }
    posted.page(&wb, None).await
}

async fn apply(State(wb): State<Workbench>, posted: Posted) -> Response {
    let before = match posted.files.read() {
        Ok(before) => before,
        Err(e) => {
            tracing::error!(error = %e, "workbench: reading a mapping failed");
            return wb.unavailable(Some(&posted.session));
        }
    };
    // "Geänderte Ausgaben übernehmen": the reviewed renders become the fixtures' expected XML.
    let bless = form_value(&posted.pairs, "bless") == Some("ja");
    let outcome = match draft::apply(&posted.files, &posted.edit, &wb.reloader, bless).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, service = %posted.key, "workbench: apply failed");
            return wb.unavailable(Some(&posted.session));
        }
    };
    let reasons = outcome
        .as_ref()
        .err()
        .map(|r| r.reasons())
        .unwrap_or_default();
    let blessed = outcome
        .as_ref()
        .map(|in_force| in_force.blessed.clone())
        .unwrap_or_default();
    let record = Record {
        role: ROLE,
        service: &posted.key,
        folder: &posted.files.folder,
        names: ["form.toml", &posted.files.template, &posted.files.schema],
        before: &before,
        after: &posted.edit,
        outcome: if outcome.is_ok() {
            Outcome::Applied
        } else {
            Outcome::Refused
        },
        reasons: reasons.len(),
        blessed: &blessed,
    };
    if let Err(e) = wb.journal.append(&record, wb.reloader.hub.clock.now()) {
        tracing::error!(error = %e, "workbench: recording an apply failed");
    }
    // No file content, no fixture data: the service, the outcome and how many reasons.
    tracing::info!(
        role = ROLE,
        service = %posted.key,
        folder = %posted.files.folder,
        applied = outcome.is_ok(),
        reasons = reasons.len(),
        "workbench: mapping apply"
    );
    let applied = match outcome {
        Ok(draft::InForce { services, blessed }) => Applied {
            ok: true,
            message: format!(
                "Die Abbildung ist in Kraft ({services} Leistungen geladen). Der nächste Antrag wird mit ihr erzeugt.{}",
                if blessed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " Als erwartete Ausgabe übernommen: {}.",
                        blessed.join(", ")
                    )
                }
            ),
            reasons: Vec::new(),
        },
        Err(refusal) => Applied {
            ok: false,
            message: match refusal {
                draft::Refusal::Checks(_) => "Die Prüfungen sind fehlgeschlagen. Es wurde nichts geschrieben; die geltende Abbildung bleibt in Kraft.".into(),
                draft::Refusal::Reload(_) => "Das Neuladen der Abbildungen wurde abgelehnt. Die Dateien wurden wiederhergestellt; die geltende Abbildung bleibt in Kraft.".into(),
                draft::Refusal::Write(_) => "Die Dateien konnten nicht geschrieben werden (Schreibrechte des Ordners der Abbildungen?). Was schon geschrieben war, wurde wiederhergestellt; die geltende Abbildung bleibt in Kraft.".into(),
            },
            reasons,
        },
    };
    posted.page(&wb, Some(applied)).await
}

/// The results of `edit`, checked off the async threads; `None` if that failed.
async fn results_of(wb: &Workbench, files: &ServiceFiles, edit: &Edit) -> Option<Results> {
    let (files, edit) = (files.clone(), edit.clone());
    let regions = wb.reloader.hub.regions.names();
    let portal = wb.portal.clone();
    let checked = tokio::task::spawn_blocking(move || {
        draft::preview(&files, &edit, regions, portal.as_deref())
    })
    .await;
    match checked {
        Ok(Ok(preview)) => Some(Results {
            passes: preview.passes(),
            problem_count: preview.problems.len(),
            preview,
        }),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "workbench: preview failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "workbench: preview stopped");
            None
        }
    }
}

async fn service_page(
    wb: &Workbench,
    session: &Session,
    key: &str,
    name: &str,
    files: &ServiceFiles,
    edit: Edit,
    applied: Option<Applied>,
) -> Response {
    let Some(results) = results_of(wb, files, &edit).await else {
        return wb.unavailable(Some(session));
    };
    let status = match &applied {
        Some(a) if !a.ok => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let page = ServicePage {
        csrf: session.csrf.clone(),
        key: key.to_owned(),
        name: name.to_owned(),
        folder: files.folder.clone(),
        template_name: files.template.clone(),
        schema_name: files.schema.clone(),
        form: edit.form,
        template: edit.template,
        schema: edit.schema,
        results,
        applied,
    };
    wb.page(status, name, Some(session), "service", &page)
}
