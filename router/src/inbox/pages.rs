//! The inbox's pages: the applications waiting per procedure, one application as a
//! document, its take-over, its attachments and its XÖV message as downloads.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use kopplung_web::shell::{
    CsrfForm, Session, SignInUi, counted, extract, german_time, iso, see_other,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::render::{self, Block};
use super::{Inbox, ManualProcedure, Shared, cases, follow_ups, form, work};
use crate::catalog::service_name;
use crate::store::{ApplicationRecord, AttachmentContent, PickupAck};

/// Applications listed per procedure.
const LIST_LIMIT: u32 = 200;

/// The inbox's pages below `/inbox`.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(list))
        .route("/{procedure}/{message}", get(document))
        .route("/{procedure}/{message}/take", post(take))
        .route("/{procedure}/{message}/xml", get(xml))
        .route("/{procedure}/{message}/attachments/{n}", get(attachment))
        .route(
            "/{procedure}/{message}/bearbeitung",
            post(work::act).layer(DefaultBodyLimit::max(form::MAX_DOCUMENT_BYTES + 256 * 1024)),
        )
        .route("/{procedure}/{message}/dokumente/{id}", get(work::document))
        .route("/faelle", get(cases::list))
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
    /// How the applicant was identified; none: anonymously.
    identification: Option<super::identification::IdentificationView>,
    take_href: String,
    csrf: String,
    form: FormView,
    attachments: Vec<AttachmentView>,
    attachments_caption: String,
    xml_href: String,
    xml_size: String,
    message_type: String,
    fee: Option<work::FeeView>,
    /// Once taken over: the clerk's work on it.
    work: Option<work::WorkView>,
    /// A refused form's error when there is no work section to show it in.
    error: Option<String>,
    /// Set when this is a follow-up message of the citizen, not an application.
    follow_up: Option<follow_ups::FollowUpView>,
    /// An application's follow-up messages.
    follow_ups: Vec<follow_ups::ListedView>,
    /// One of them is not taken over yet: the decision form says so.
    unread: bool,
}

#[derive(Serialize)]
pub(super) struct TakenView {
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

async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let inbox = &s.inbox;
    let Some(session) = s.signed_in(&headers).map(|signed| signed.session) else {
        return see_other("/inbox/login");
    };
    let mappings = s.hub.catalog.current();
    let mut procedures = Vec::new();
    for procedure in inbox.procedures_of(&session.user) {
        let waiting = match s.hub.store.pickups(&procedure.id, LIST_LIMIT).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::error!(error = %e, "clerk inbox: listing failed");
                return s.unavailable(Some(&session));
            }
        };
        let mut applications = Vec::new();
        for pickup in &waiting {
            let region = &pickup.region;
            applications.push(WaitingView {
                href: format!("/inbox/{}/{}", procedure.id, pickup.message_id),
                receipt: pickup.receipt.clone(),
                service: follow_ups::listed_name(
                    service_name(&mappings, &pickup.service),
                    &pickup.message_type,
                ),
                municipality: s.hub.regions.name_or_ars(region),
                since: german_time(pickup.available_since),
                since_iso: iso(pickup.available_since),
            });
        }
        let count_text = counted(
            applications.len(),
            "wartender Antrag oder wartende Nachricht",
            "wartende Anträge und Nachrichten",
        );
        procedures.push(ProcedureView {
            id: procedure.id.clone(),
            authority: procedure.authority.clone(),
            count_text,
            truncated: applications.len() >= LIST_LIMIT as usize,
            shown: LIST_LIMIT,
            applications,
        });
    }
    let page = InboxPage { procedures };
    s.page(
        StatusCode::OK,
        "Posteingang",
        Some(&session),
        "inbox",
        &page,
    )
}

/// The message a clerk asks for: their procedure and a message waiting for it (or
/// taken over already). Anything else is a 404, whether it exists or not.
pub(super) struct Found {
    pub(super) session: Session,
    pub(super) procedure: ManualProcedure,
    pub(super) pickup: crate::store::Pickup,
    xml: Vec<u8>,
    input: crate::store::PrepareInput,
}

/// `/{procedure}/{message}`
#[derive(Deserialize)]
struct MessagePath {
    procedure: String,
    message: String,
}

/// The message of a request's path for its signed-in clerk; else the answer: the login
/// without a session, a 404 or a 503.
impl FromRequestParts<Shared> for Found {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Response> {
        let Path(path) = extract::<Path<MessagePath>, _>(parts, s).await?;
        find(s, &parts.headers, &path.procedure, &path.message).await
    }
}

async fn find(
    s: &Shared,
    headers: &HeaderMap,
    procedure: &str,
    message: &str,
) -> Result<Found, Response> {
    let Some(session) = s.signed_in(headers).map(|signed| signed.session) else {
        return Err(see_other("/inbox/login"));
    };
    let Some(procedure) = s.inbox.procedure_for(&session.user, procedure) else {
        return Err(s.not_found(Some(&session)));
    };
    let Ok(message_id) = Uuid::parse_str(message) else {
        return Err(s.not_found(Some(&session)));
    };
    let (pickup, xml) = match s.hub.store.pickup(&procedure.id, message_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(s.not_found(Some(&session))),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading a message failed");
            return Err(s.unavailable(Some(&session)));
        }
    };
    let input = match s.hub.store.prepare_input(pickup.application_id).await {
        Ok(input) => input,
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading an application failed");
            return Err(s.unavailable(Some(&session)));
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
pub(super) fn taken_over(
    inbox: &Inbox,
    record: &ApplicationRecord,
    message_id: Uuid,
) -> Option<TakenView> {
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

async fn document(State(s): State<Shared>, RawQuery(query): RawQuery, found: Found) -> Response {
    let done = work::done_notice(query.as_deref());
    document_page(&s, &found, None, done, StatusCode::OK).await
}

/// The application as a document; once taken over with the clerk's work on it (`sent`:
/// a form refused, shown again with its error; `done`: the notice of an action).
pub(super) async fn document_page(
    s: &Shared,
    found: &Found,
    sent: Option<work::Sent>,
    done: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let application_id = found.pickup.application_id;
    let (record, mailbox) = match (
        s.hub.store.application(application_id).await,
        s.hub.store.mailbox(application_id).await,
    ) {
        (Ok(record), Ok(mailbox)) => (record, mailbox),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "clerk inbox: reading an application failed");
            return s.unavailable(Some(&found.session));
        }
    };
    let taken = record
        .as_ref()
        .and_then(|r| taken_over(&s.inbox, r, found.pickup.message_id));
    let mappings = s.hub.catalog.current();
    let mapping = mappings.get(&found.input.service_key);
    let follow_up = follow_ups::of(&found.input, &found.procedure.id);
    let blocks = match (&follow_up, mapping) {
        (Some((_, text)), _) => text.clone(),
        (None, Some(mapping)) => render::form_blocks(&mapping.form.fields, &found.input.payload),
        (None, None) => render::raw_blocks(&found.input.payload, 3),
    };
    let base = format!("/inbox/{}/{}", found.procedure.id, found.pickup.message_id);
    let error = match (&taken, &sent) {
        (None, Some(sent)) if !sent.error.is_empty() => Some(sent.error.clone()),
        _ => None,
    };
    // A follow-up is worked on in its application: no work section of its own.
    let work = match (&taken, &record) {
        (Some(_), Some(record)) if follow_up.is_none() => Some(work::view(
            s,
            &base,
            &found.session.csrf,
            &found.procedure.authority,
            record,
            mailbox,
            sent,
            done,
        )),
        _ => None,
    };
    let region = found.input.region.clone();
    let page = DocumentPage {
        service: mapping.map_or_else(|| found.input.service_key.clone(), |m| m.info.name.clone()),
        receipt: found.input.receipt.clone(),
        municipality: s.hub.regions.name_or_ars(&region),
        region,
        received: german_time(found.input.created_at),
        received_iso: iso(found.input.created_at),
        procedure: found.procedure.id.clone(),
        authority: found.procedure.authority.clone(),
        taken,
        identification: super::identification::view(found.input.authentication.as_ref()),
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
                media_type: render::media_type_name(&a.media_type),
                size: render::human_size(a.size),
            })
            .collect(),
        attachments_caption: counted(found.input.attachments.len(), "Anlage", "Anlagen"),
        xml_href: format!("{base}/xml"),
        xml_size: render::human_size(found.xml.len() as u64),
        message_type: found.pickup.message_type.clone(),
        fee: work::fee(mapping, &found.input.payload).filter(|_| follow_up.is_none()),
        unread: record.as_ref().is_some_and(|r| {
            r.follow_ups
                .iter()
                .any(|f| f.procedure == found.procedure.id && f.delivered_at.is_none())
        }),
        follow_ups: record
            .as_ref()
            .map(|r| follow_ups::listed(r, &found.procedure.id))
            .unwrap_or_default(),
        follow_up: follow_up.map(|(view, _)| view),
        work,
        error,
    };
    let title = match &page.follow_up {
        Some(view) => format!("Nachricht zum Antrag {}", view.receipt()),
        None => format!("Antrag {}", page.receipt),
    };
    s.page(status, &title, Some(&found.session), "document", &page)
}

async fn take(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match s.posted(&headers, form) {
        Ok(signed) => signed.session,
        Err(response) => return *response,
    };
    let Some(procedure) = s.inbox.procedure_for(&session.user, &procedure) else {
        return s.not_found(Some(&session));
    };
    let Ok(message_id) = Uuid::parse_str(&message) else {
        return s.not_found(Some(&session));
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
        Ok(PickupAck::Unknown) => return s.not_found(Some(&session)),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: taking over failed");
            return s.unavailable(Some(&session));
        }
    }
    see_other(&format!("/inbox/{}/{message_id}", procedure.id))
}

/// `…/attachments/{n}`, counted from 1.
#[derive(Deserialize)]
struct AttachmentPath {
    n: String,
}

async fn attachment(
    State(s): State<Shared>,
    found: Found,
    Path(AttachmentPath { n }): Path<AttachmentPath>,
) -> Response {
    let chosen = n
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|index| Some((index, found.input.attachments.get(index)?)));
    let Some((index, attachment)) = chosen else {
        return s.not_found(Some(&found.session));
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

async fn xml(found: Found) -> Response {
    let filename = format!("{}-{}.xml", found.input.receipt, found.pickup.message_type);
    download(
        render::served_media_type("application/xml"),
        &render::content_disposition(&filename),
        Body::from(found.xml),
    )
}

pub(super) fn download(media_type: &'static str, disposition: &str, body: Body) -> Response {
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
