//! What operators and auditors look at, the same for the admin API (JSON) and the admin
//! console (HTML): the state of the hub (mappings, certificates, procedures with their
//! backlog) and an application's transformed message, whose every view is recorded.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::ApiState;
use crate::store::StoreError;

/// Everything `status` shows, gathered at one moment.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub mappings: Vec<MappingStatus>,
    pub certificates: Vec<CertificateStatus>,
    pub procedures: Vec<ProcedureStatus>,
}

/// A loaded mapping (a service the hub offers).
#[derive(Debug, Clone)]
pub struct MappingStatus {
    /// The LeiKa key.
    pub service: String,
    pub name: String,
    pub message_type: String,
    /// Whether any route leads to it.
    pub online: bool,
}

/// A certificate in force.
#[derive(Debug, Clone)]
pub struct CertificateStatus {
    /// `hub` or the procedure id.
    pub owner: String,
    /// The file name (or `receipt` for a procedure's receipt certificate).
    pub certificate: String,
    /// Whole days until it expires, rounded down (negative: expired; NaN: unreadable).
    pub days_left: f64,
}

/// A configured procedure, its destination and its waiting work.
#[derive(Debug, Clone)]
pub struct ProcedureStatus {
    pub procedure: String,
    pub transport: &'static str,
    pub destination: String,
    pub pending: u64,
    pub oldest_since: Option<OffsetDateTime>,
    /// Why it receives nothing now (no usable certificate), if it is blocked.
    pub blocked: Option<String>,
}

/// Reads the backlog from the store and the rest from what is in force.
pub async fn gather(state: &ApiState) -> Result<StatusReport, StoreError> {
    let backlog = state.store.backlog().await?;
    let mappings = state
        .catalog
        .current()
        .values()
        .map(|m| MappingStatus {
            service: m.info.key.clone(),
            name: m.info.name.clone(),
            message_type: m.info.message.message_type.clone(),
            online: state.routing.serves(&m.info.key),
        })
        .collect();
    let certificates = state
        .preparer
        .certificate_expiries()
        .into_iter()
        .map(|(owner, certificate, days)| CertificateStatus {
            owner,
            certificate,
            days_left: days.floor(),
        })
        .collect();
    let problems = state.preparer.problems();
    let procedures = state
        .destinations
        .iter()
        .map(|(id, destination)| {
            let waiting = backlog.iter().find(|b| &b.procedure == id);
            ProcedureStatus {
                procedure: id.clone(),
                transport: destination.transport,
                destination: destination.destination.clone(),
                pending: waiting.map_or(0, |b| b.pending),
                oldest_since: waiting.and_then(|b| b.oldest_since),
                blocked: problems
                    .iter()
                    .find(|p| p.starts_with(&format!("procedure {id}:")))
                    .cloned(),
            }
        })
        .collect();
    Ok(StatusReport {
        mappings,
        certificates,
        procedures,
    })
}

/// What became of a request to see an application's transformed message.
#[derive(Debug)]
pub enum MessageView {
    /// The XML, rendered by the mapping in force (not sealed); the view is recorded.
    Xml {
        xml: String,
        message_id: Uuid,
        message_type: String,
        receipt: String,
    },
    NotFound,
    /// Retention deleted the personal data.
    Purged,
    /// The mapping in force cannot render the stored data.
    NotRenderable(String),
    Unavailable,
    Internal,
}

/// Records that `role` looks at the transformed message of application `id`, then
/// renders it: no view without its trace in the history and audit trail.
pub async fn view_message(state: &ApiState, id: Uuid, role: &str, place: &str) -> MessageView {
    let record = match state.store.application(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return MessageView::NotFound,
        Err(e) => {
            tracing::error!(error = %e, "reading an application failed");
            return MessageView::Unavailable;
        }
    };
    let input = match state.store.prepare_input(id).await {
        Ok(input) if input.payload != serde_json::json!({}) => input,
        Ok(_) => return MessageView::Purged,
        Err(e) => {
            tracing::error!(error = %e, "reading an application failed");
            return MessageView::Unavailable;
        }
    };
    let detail = format!(
        "transformed XML of message {} viewed by {role} ({place})",
        record.delivery.message_id
    );
    match state.store.record_access(id, &detail).await {
        Ok(true) => {}
        Ok(false) => return MessageView::NotFound,
        Err(e) => {
            tracing::error!(error = %e, "recording an access failed");
            return MessageView::Unavailable;
        }
    }
    let preparer = state.preparer.clone();
    let procedure = record.delivery.procedure.clone();
    let message_id = record.delivery.message_id;
    let rendered = tokio::task::spawn_blocking(move || {
        preparer.render_message(&procedure, message_id, &input)
    })
    .await;
    match rendered {
        Ok(Ok(xml)) => {
            tracing::info!(application_id = %id, %role, %place, "transformed XML viewed");
            MessageView::Xml {
                xml,
                message_id,
                message_type: record.delivery.message_type,
                receipt: record.receipt,
            }
        }
        Ok(Err(e)) => MessageView::NotRenderable(e.to_string()),
        Err(_) => MessageView::Internal,
    }
}
