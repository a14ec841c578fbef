//! What the confirmation of receipt says, gathered from the portal's copy of the
//! application, the service's form and the hub's answer about who is responsible.

use serde_json::Value;

use super::pdf::Confirmation;
use crate::Shared;
use crate::forms::drafts::Draft;
use crate::forms::render;
use crate::web::{Failure, euro};
use kopplung_web::shell::german_time_unix;

/// The applicant's name as the form gave it: the first group that uses the shared
/// group `person`, else a contact name.
fn applicant(form: &kopplung_forms::FormDefinition, data: &Value) -> Option<String> {
    let person = form
        .fields
        .iter()
        .find(|f| f.uses.as_deref() == Some("person"))
        .map(|f| &data[f.name.as_str()]);
    let name = |group: &Value, keys: &[&str]| {
        let parts: Vec<&str> = keys.iter().filter_map(|k| group[*k].as_str()).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    };
    person
        .and_then(|p| name(p, &["vornamen", "familienname"]))
        .or_else(|| name(&data["kontakt"], &["name"]))
}

pub async fn of(state: &Shared, draft: &Draft) -> Result<Confirmation, Failure> {
    let service = crate::forms::service_of(state, &draft.service).await?;
    let form = service.form()?;
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut prefix = String::new();
    for row in render::summary(&form, &draft.data) {
        if let Some(heading) = row["heading"].as_str() {
            if row["step_heading"] == true {
                sections.push((heading.to_owned(), Vec::new()));
                prefix.clear();
            } else {
                // A group inside a step: its label before each of its rows.
                prefix = format!("{heading}: ");
            }
            continue;
        }
        let (Some(label), Some(value)) = (row["label"].as_str(), row["value"].as_str()) else {
            continue;
        };
        if sections.is_empty() {
            sections.push(("Angaben".to_owned(), Vec::new()));
        }
        if let Some((_, rows)) = sections.last_mut() {
            rows.push((format!("{prefix}{label}"), value.to_owned()));
        }
    }
    let attachments = crate::forms::drafts::attachments(state, &draft.id).await?;
    if !attachments.is_empty() {
        sections.push((
            "Anlagen".to_owned(),
            attachments
                .iter()
                .enumerate()
                .map(|(n, a)| (format!("Anlage {}", n + 1), a.filename.clone()))
                .collect(),
        ));
    }
    let authority = match state
        .router
        .responsibility(&draft.service, &draft.region)
        .await
    {
        Ok(found) => found.and_then(|r| r.authority).map(|a| {
            let mut lines: Vec<String> = a.contact.address.iter().cloned().collect();
            lines.extend(a.contact.phone.iter().map(|p| format!("Telefon {p}")));
            (a.name, lines)
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the confirmation names no authority: the hub did not answer");
            None
        }
    };
    Ok(Confirmation {
        receipt: draft.receipt.clone().unwrap_or_default(),
        service: draft.service_name.clone(),
        municipality: draft.region_name.clone(),
        authority,
        applicant: applicant(&form, &draft.data),
        wording: service.wording,
        submitted: draft.submitted_at.map(german_time_unix).unwrap_or_default(),
        sections,
        fee: service
            .fee
            .as_ref()
            .map(|f| f.due(&draft.data))
            .map(|f| (euro(&f.betrag), draft.payment_reference.clone())),
    })
}
