//! The online form of a service, rendered from its form definition: a draft per
//! application (Temp. Ablage), the steps, attachments, the review, and the submission
//! through the router's intake API.

pub(crate) mod attachments;
pub mod drafts;
mod entries;
mod from_id;
mod location;
mod names;
pub(crate) mod photo;
pub mod preview;
pub mod render;
mod review;
mod symbols;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use kopplung_forms::FieldError;
use kopplung_forms::form::FormDefinition;
use serde_json::{Value, json};

use crate::account::{master_data, require_account, trust_label};
use crate::router_client::Service;
use crate::web::session;
use crate::web::{Failure, Page, Posted, Visit, Visitor};
use crate::{Shared, oidc};
pub use attachments::{attachment_remove, attachments_page, attachments_upload};
use drafts::Draft;
use from_id::FromId;
use kopplung_web::shell::{form_value, german_time_unix, see_other};
pub use location::take as attachments_position;
pub use review::{review, submit};

/// The service `key` as the router offers it now; one no longer offered is a 400.
pub(crate) async fn service_of(state: &Shared, key: &str) -> Result<Service, Failure> {
    state
        .router
        .service(key)
        .await?
        .ok_or_else(|| Failure::bad_request("Diese Leistung wird nicht mehr angeboten."))
}

/// The draft if it is still a draft; a submitted one leads to its application page.
pub(crate) async fn open_draft(
    state: &Shared,
    visitor: &Visitor,
    id: &str,
) -> Result<Draft, Failure> {
    let draft = drafts::load_owned(state, visitor, id).await?;
    if draft.submitted() {
        return Err(Failure::see_other(format!("/antraege/{}", draft.id)));
    }
    Ok(draft)
}

/// The open draft `id` (see [`open_draft`]) and the service it is for (see
/// [`service_of`]).
async fn open_draft_of_service(
    state: &Shared,
    visitor: &Visitor,
    id: &str,
) -> Result<(Draft, Service), Failure> {
    let draft = open_draft(state, visitor, id).await?;
    let service = service_of(state, &draft.service).await?;
    Ok((draft, service))
}

/// `POST /antrag/{key}/neu`: starts an application for the municipality `region`.
pub async fn start(
    Visit { state, visitor }: Visit,
    Path(key): Path<String>,
    Posted(pairs): Posted,
) -> Page {
    let region = form_value(&pairs, "region").unwrap_or_default().to_owned();
    let service = service_of(&state, &key).await?;
    let finder = format!(
        "/zustaendigkeit?leistung={}&ort={}",
        crate::router_client::encode(&key),
        crate::router_client::encode(&region)
    );
    if !service.anonymous && visitor.account.is_none() {
        // Signing in at a provider can ask for the level the service needs at once.
        return Err(Failure::see_other(format!(
            "/konto/anmelden?weiter={}&niveau={}",
            crate::router_client::encode(&finder),
            trust_label(service.trust_level)
        )));
    }
    let Some(found) = state.router.responsibility(&key, &region).await? else {
        return Err(Failure::bad_request(
            "Bitte wählen Sie zuerst Ihre Gemeinde im Zuständigkeitsfinder.",
        ));
    };
    if !found.online {
        return Err(Failure::bad_request(format!(
            "„{}“ ist in {} nicht online möglich. Bitte wenden Sie sich an die zuständige Stelle; der Zuständigkeitsfinder nennt sie Ihnen mit Anschrift und Telefonnummer.",
            found.service_name,
            kopplung_forms::german::place_name(&found.region_name)
        )));
    }
    let form = service.form()?;
    // What a visitor may keep: open drafts per account; anonymous drafts per session and
    // address, and the session itself is stored only now.
    let (visitor, cookie) = match &visitor.account {
        Some(account) => {
            let open = drafts::count_open(&state, drafts::Owner::Account(&account.id)).await?;
            let limit = state.quotas.settings().drafts_per_account;
            if open >= limit {
                return Err(Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Sie haben bereits {limit} Entwürfe, die noch nicht abgesendet sind. Bitte senden Sie einen davon ab oder verwerfen Sie ihn unter „Meine Entwürfe“, bevor Sie ein neues Formular beginnen."
                    ),
                ));
            }
            (visitor.clone(), None)
        }
        None => {
            if let Some(session_id) = &visitor.session_id {
                let open = drafts::count_open(&state, drafts::Owner::Session(session_id)).await?;
                state.quotas.check_session_drafts(open)?;
            }
            state.quotas.anonymous_draft(visitor.client)?;
            session::ensure(&state, &visitor).await?
        }
    };
    let mut data = match &visitor.account {
        Some(account) => render::prefill(&form, &master_data(&state, &account.id).await?),
        None => json!({}),
    };
    if let Some(from_id) = from_id::of(&state, &visitor, &service, &form).await? {
        from_id.apply(&mut data);
    }
    let id = drafts::create(
        &state,
        &visitor,
        drafts::NewDraft {
            service: &service.key,
            service_name: &service.name,
            region: &found.region,
            // As running text says it („Chemnitz“, not „Chemnitz, Stadt“).
            region_name: kopplung_forms::german::place_name(&found.region_name),
            data: &data,
        },
    )
    .await?;
    let first = render::steps(&form).first().copied().unwrap_or(1);
    let mut response = see_other(&format!("/entwurf/{id}/schritt/{first}"));
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Navigation of the steps for the templates.
fn progress(form: &FormDefinition, current: &str) -> Vec<Value> {
    let form_steps = render::steps(form);
    let attachments = form.attachments.max_count > 0;
    let count = form_steps.len() + usize::from(attachments) + 1;
    let mut items = Vec::new();
    for (i, step) in form_steps.iter().enumerate() {
        let label = match form.step_title(*step) {
            Some(title) => title.to_owned(),
            None if form_steps.len() == 1 => "Angaben".to_owned(),
            None => format!("Angaben {}", i + 1),
        };
        items.push(json!({"label": label, "current": current == step.to_string(), "number": i + 1, "count": count}));
    }
    if attachments {
        items.push(json!({"label": "Unterlagen", "current": current == "anlagen", "number": form_steps.len() + 1, "count": count}));
    }
    items.push(json!({"label": "Prüfen und absenden", "current": current == "pruefen", "number": count, "count": count}));
    items
}

fn step_view(
    visitor: &Visitor,
    draft: &Draft,
    service: &Service,
    form: &kopplung_forms::FormDefinition,
    step: u32,
    errors: &[FieldError],
    from_id: Option<&FromId>,
) -> Value {
    let fields = render::step_fields(form, step);
    let errors: Vec<FieldError> = errors
        .iter()
        .filter(|e| render::step_of(form, &e.field) == step)
        .cloned()
        .collect();
    let map = render::error_map(form, &errors);
    let summary: Vec<Value> = render::in_form_order(form, &map)
        .into_iter()
        .map(|(path, message)| json!({"id": render::field_id(path), "message": message}))
        .collect();
    let steps = render::steps(form);
    let index = steps.iter().position(|s| *s == step).unwrap_or(0);
    let mut views = render::views(form, &fields, "", &draft.data, &map);
    if let Some(from_id) = from_id {
        from_id.mark(&mut views);
    }
    json!({
        "csrf": visitor.csrf,
        "draft": draft.id,
        "service": service.name,
        "region": draft.region_name,
        "step": step,
        "progress": progress(form, &step.to_string()),
        "step_title": form.step_title(step),
        "step_number": index + 1,
        "has_entries": fields.iter().any(|f| f.repeat.is_some()),
        "fields": views,
        "errors": summary,
        "signed_in": visitor.account.is_some(),
        "back": if index == 0 { None } else { Some(format!("/entwurf/{}/schritt/{}", draft.id, steps[index - 1])) },
    })
}

pub async fn step_page(
    Visit { state, visitor }: Visit,
    Path((id, step)): Path<(String, u32)>,
) -> Page {
    let (mut draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    let form = service.form()?;
    if !render::steps(&form).contains(&step) {
        return Err(Failure::not_found());
    }
    let here = format!("/entwurf/{}/schritt/{step}", draft.id);
    if let Some(page) = oidc::step_up(&state, &visitor, StatusCode::OK, &service, &here) {
        return Ok(page);
    }
    let from_id = from_id::of(&state, &visitor, &service, &form).await?;
    if let Some(from_id) = &from_id {
        from_id.enforce(&state, &mut draft).await?;
    }
    let mut view = step_view(
        &visitor,
        &draft,
        &service,
        &form,
        step,
        &[],
        from_id.as_ref(),
    );
    names::Names::of(&state, &draft).await.fill_in(&mut view);
    state.templates.ok(
        &visitor,
        "form_step",
        &format!("{} – Schritt {}", service.name, view["step_number"]),
        &view,
    )
}

pub async fn step_save(
    Visit { state, visitor }: Visit,
    Path((id, step)): Path<(String, u32)>,
    Posted(mut pairs): Posted,
) -> Page {
    let (mut draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    let form = service.form()?;
    let steps = render::steps(&form);
    if !steps.contains(&step) {
        return Err(Failure::not_found());
    }
    let stripped = symbols::strip(&form, &mut pairs);
    // The count a fee per unit is paid for (`je`), as it was before this post.
    let unit = service.fee.as_ref().and_then(|f| f.je.clone());
    let counted = unit.as_ref().map(|u| draft.data[u.as_str()].clone());
    render::take_inputs(
        &render::step_fields(&form, step),
        "",
        &pairs,
        &mut draft.data,
    );
    // What is paid for stays: a changed count would no longer match the payment.
    let count_kept = match (&unit, counted) {
        (Some(unit), Some(before))
            if draft.data[unit.as_str()] != before && payment_binds(&state, &draft).await? =>
        {
            draft.data[unit.as_str()] = before;
            true
        }
        _ => false,
    };
    // What the ID confirmed stays, whatever was posted.
    let from_id = from_id::of(&state, &visitor, &service, &form).await?;
    if let Some(from_id) = from_id.as_ref().filter(|f| f.locked) {
        from_id.apply(&mut draft.data);
    }
    let entry_action = form_value(&pairs, "aktion").and_then(entries::EntryAction::parse);
    let anchor = entry_action.and_then(|action| action.apply(&form, &mut draft.data));
    drafts::save_data(&state, &draft.id, &draft.data).await?;
    if let Some(anchor) = anchor {
        return Ok(see_other(&format!(
            "/entwurf/{}/schritt/{step}#{anchor}",
            draft.id
        )));
    }
    if form_value(&pairs, "aktion") == Some("zurueck") {
        let previous = steps.iter().rev().find(|s| **s < step).unwrap_or(&step);
        return Ok(see_other(&format!(
            "/entwurf/{}/schritt/{previous}",
            draft.id
        )));
    }
    if form_value(&pairs, "aktion") == Some("speichern") {
        return Ok(see_other(&format!(
            "/konto/entwuerfe?gespeichert={}",
            draft.id
        )));
    }
    let errors = form
        .validate_submitted(&draft.data, crate::today())
        .err()
        .unwrap_or_default();
    let errors_here = errors
        .iter()
        .any(|e| render::step_of(&form, &e.field) == step);
    if errors_here || !stripped.is_empty() || count_kept {
        let mut view = step_view(
            &visitor,
            &draft,
            &service,
            &form,
            step,
            &errors,
            from_id.as_ref(),
        );
        names::Names::of(&state, &draft).await.fill_in(&mut view);
        let mut notes = Vec::new();
        if !stripped.is_empty() {
            notes.push(symbols::note(&stripped));
        }
        if count_kept {
            notes.push(COUNT_PAID.to_owned());
        }
        if !notes.is_empty() {
            view["notice"] = json!(notes.join(" "));
        }
        let (status, title) = if errors_here {
            (StatusCode::UNPROCESSABLE_ENTITY, "Fehler: ")
        } else {
            (StatusCode::OK, "")
        };
        return Ok(state.templates.page(
            &visitor,
            status,
            "form_step",
            &format!("{title}{} – Schritt {}", service.name, view["step_number"]),
            &view,
        ));
    }
    let next = steps.iter().find(|s| **s > step);
    Ok(see_other(&match next {
        Some(next) => format!("/entwurf/{}/schritt/{next}", draft.id),
        None if form.attachments.max_count > 0 => format!("/entwurf/{}/anlagen", draft.id),
        None => format!("/entwurf/{}/pruefen", draft.id),
    }))
}

/// Said when a paid count was posted changed, and kept.
const COUNT_PAID: &str = "Die Anzahl bleibt, wie Sie sie bezahlt haben. Möchten Sie eine andere Anzahl, verwerfen Sie bitte diesen Entwurf unter „Prüfen und absenden“ – die Gebühr wird Ihnen dann erstattet – und stellen Sie den Antrag neu.";

/// Whether the draft's payment binds its amount: paid, or open at the provider (a page
/// in another tab could still take the old amount).
async fn payment_binds(state: &Shared, draft: &drafts::Draft) -> Result<bool, Failure> {
    if draft.payment_reference.is_some() {
        return Ok(true);
    }
    let Some(transaction) = &draft.payment_transaction else {
        return Ok(false);
    };
    let status = state.payments.status(transaction).await?;
    Ok(matches!(status.status.as_str(), "INITIAL" | "PAYED"))
}

/// The words a page uses for what the citizen sends (Antrag, Meldung …).
pub(crate) fn wording_view(wording: kopplung_forms::Wording) -> Value {
    json!(wording.words())
}

/// `GET /konto/entwuerfe`: the Temp. Ablage.
pub async fn drafts(
    Visit { state, visitor }: Visit,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Page {
    let account = require_account(&visitor, "/konto/entwuerfe")?;
    let list = drafts::list(&state, &account.id, "draft").await?;
    state.templates.ok(
        &visitor,
        "drafts",
        "Meine Entwürfe",
        &json!({
            "csrf": visitor.csrf,
            "saved": query.contains_key("gespeichert"),
            "drafts": list.iter().map(|d| json!({
                "id": d.id,
                "service": d.service_name,
                "region": d.region_name,
                "updated": german_time_unix(d.updated_at),
                "paid": d.payment_reference.is_some(),
            })).collect::<Vec<_>>(),
        }),
    )
}
