//! The review page and the submission: what the citizen entered, in words, with what is
//! still missing (attachments, trust level, the fee), and the binding submission through
//! the router's intake API.

use axum::extract::Path;
use axum::http::StatusCode;
use kopplung_forms::FieldError;
use kopplung_forms::form::FormDefinition;
use serde_json::{Value, json};

use super::attachments::human_size;
use super::drafts::{self, Draft};
use super::{from_id, names, open_draft_of_service, progress, render, wording_view};
use crate::account::trust_label;
use crate::router_client::{Service, Submitted, Unidentified};
use crate::web::{Failure, Page, Posted, Visit, Visitor, euro};
use crate::{Shared, oidc};
use kopplung_web::shell::{german_time_unix, see_other};

/// What stands between the draft and its submission, besides field errors.
fn trust_problem(visitor: &Visitor, service: &Service) -> Option<String> {
    match &visitor.account {
        None if service.anonymous => None,
        None => Some("Bitte melden Sie sich mit Ihrem Servicekonto an.".to_owned()),
        Some(account) if account.trust_level < service.trust_level => Some(format!(
            "Für „{}“ ist das Vertrauensniveau „{}“ nötig; Ihr Servicekonto hat „{}“. Bitte identifizieren Sie sich zuerst.",
            service.name,
            trust_label(service.trust_level),
            trust_label(account.trust_level)
        )),
        Some(_) => None,
    }
}

/// What is wrong with the draft's attachment slots: a required one that applies and has
/// no file, and a file in a slot the data no longer asks for.
fn slot_problems(
    form: &FormDefinition,
    data: &Value,
    attachments: &[drafts::StoredAttachment],
) -> Vec<FieldError> {
    let given: Vec<Option<&str>> = attachments.iter().map(|a| a.slot.as_deref()).collect();
    let mut problems = form.attachments.missing(&form.fields, data, &given);
    for slot in &form.attachments.slots {
        let filled = given.contains(&Some(slot.name.as_str()));
        if filled && !slot.applies(&form.fields, data) {
            problems.push(FieldError::new(
                format!("attachments.{}", slot.name),
                render::NOT_NEEDED,
            ));
        }
    }
    problems
}

/// The review page of one draft of one service, as one visitor sees it.
#[derive(Clone, Copy)]
struct Review<'a> {
    state: &'a Shared,
    visitor: &'a Visitor,
    draft: &'a Draft,
    service: &'a Service,
    /// How the citizen came back from the payment provider (`?zahlung=`), if just now.
    payment_return: Option<&'a str>,
}

impl<'a> Review<'a> {
    /// The review of `draft`, once what the applicant's identity fixes (`from_id`) is
    /// put into it.
    async fn of(
        state: &'a Shared,
        visitor: &'a Visitor,
        draft: &'a mut Draft,
        service: &'a Service,
        form: &FormDefinition,
    ) -> Result<Self, Failure> {
        if let Some(from_id) = from_id::of(state, visitor, service, form).await? {
            from_id.enforce(state, draft).await?;
        }
        Ok(Self {
            state,
            visitor,
            draft,
            service,
            payment_return: None,
        })
    }

    /// The page, with the router's `extra_errors` besides the form's own and `notice`
    /// on top; anything missing makes it a 422.
    async fn page(self, extra_errors: &[FieldError], notice: Option<String>) -> Page {
        let Self {
            state,
            visitor,
            draft,
            service,
            payment_return,
        } = self;
        let form = service.form()?;
        let mut errors = form
            .validate_submitted(&draft.data, crate::today())
            .err()
            .unwrap_or_default();
        let attachments = drafts::attachments(state, &draft.id).await?;
        errors.extend(slot_problems(&form, &draft.data, &attachments));
        errors.extend(extra_errors.iter().cloned());
        let map = render::error_map(&form, &errors);
        let summary: Vec<Value> = render::in_form_order(&form, &map)
            .into_iter()
            .map(|(path, message)| {
                let href = match path.strip_prefix("attachments.") {
                    Some(slot) => format!("/entwurf/{}/anlagen#anlage-{slot}", draft.id),
                    None => format!(
                        "/entwurf/{}/schritt/{}#{}",
                        draft.id,
                        render::step_of(&form, path),
                        render::field_id(path)
                    ),
                };
                json!({"href": href, "message": message})
            })
            .collect();
        let paid = draft.payment_reference.is_some();
        let trust = trust_problem(visitor, service);
        let status = if summary.is_empty() && notice.is_none() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let mut view = json!({
            "csrf": visitor.csrf,
            "draft": draft.id,
            "service": service.name,
            "region": draft.region_name,
            "progress": progress(&form, "pruefen"),
            "rows": render::summary(&form, &draft.data),
            "steps": render::steps(&form).iter().map(|s| json!({"href": format!("/entwurf/{}/schritt/{s}", draft.id)})).collect::<Vec<_>>(),
            "has_attachments": form.attachments.max_count > 0,
            "attachments": attachments.iter().map(|a| json!({"filename": a.filename, "size": human_size(a.size)})).collect::<Vec<_>>(),
            "errors": summary,
            "notice": notice,
            "trust_problem": trust,
            "identify_href": format!("/konto/identifizierung?weiter={}&niveau={}", crate::router_client::encode(&format!("/entwurf/{}/pruefen", draft.id)), trust_label(service.trust_level)),
            "fee": service.fee.as_ref().map(|f| f.due(&draft.data)).map(|f| json!({"amount": euro(&f.betrag), "description": f.beschreibung})),
            "paid": paid,
            "paid_banner": paid && service.fee.is_some(),
            "payment_problem": if paid { None } else { payment_return.and_then(payment_problem) },
            "payment_reference": draft.payment_reference,
            "can_pay": service.fee.is_some() && !paid && map.is_empty() && trust.is_none(),
            "can_submit": (service.fee.is_none() || paid) && map.is_empty() && trust.is_none(),
            "updated": german_time_unix(draft.updated_at),
            "wording": wording_view(service.wording),
        });
        names::Names::of(state, draft).await.fill_in(&mut view);
        let title = if status == StatusCode::OK {
            format!("{} – Prüfen und absenden", service.name)
        } else {
            format!("Fehler: {} – Prüfen und absenden", service.name)
        };
        Ok(state
            .templates
            .page(visitor, status, "review", &title, &view))
    }
}

/// What the review says when the citizen came back from the provider without paying.
fn payment_problem(outcome: &str) -> Option<&'static str> {
    Some(match outcome {
        "abgebrochen" => {
            "Sie haben die Zahlung abgebrochen. Es wurde kein Geld abgebucht. Ihr Antrag ist gespeichert, aber noch nicht abgesendet: Um ihn abzusenden, bezahlen Sie bitte zuerst die Gebühr."
        }
        "fehlgeschlagen" => {
            "Die Zahlung ist fehlgeschlagen. Es wurde kein Geld abgebucht. Bitte versuchen Sie es noch einmal, wenn nötig mit einer anderen Zahlungsart. Ihr Antrag ist gespeichert."
        }
        "offen" => {
            "Die Zahlung ist noch nicht abgeschlossen. Bitte schließen Sie sie beim Zahlungsdienst ab oder starten Sie sie unten erneut. Ihr Antrag ist gespeichert."
        }
        _ => return None,
    })
}

pub async fn review(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Page {
    let (mut draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    let here = format!("/entwurf/{}/pruefen", draft.id);
    if let Some(page) = oidc::step_up(&state, &visitor, StatusCode::OK, &service, &here) {
        return Ok(page);
    }
    let mut review = Review::of(&state, &visitor, &mut draft, &service, &service.form()?).await?;
    review.payment_return = query.get("zahlung").map(String::as_str);
    let mut page = review.page(&[], None).await?;
    // Showing the review is no error, even when something is missing.
    *page.status_mut() = StatusCode::OK;
    Ok(page)
}

/// `POST /entwurf/{id}/absenden`: the submission through the router's intake API.
pub async fn submit(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(_): Posted,
) -> Page {
    let (mut draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    let form = service.form()?;
    let here = format!("/entwurf/{}/pruefen", draft.id);
    if let Some(page) = oidc::step_up(&state, &visitor, StatusCode::FORBIDDEN, &service, &here) {
        return Ok(page);
    }
    if let Some(problem) = trust_problem(&visitor, &service) {
        return Err(Failure::forbidden(problem));
    }
    // The hub takes a sign-in only while its ID token is valid and not too old.
    if let Some(account) = &visitor.account
        && !oidc::still_valid(&state, account)
    {
        return Ok(see_other(&oidc::sign_in_again(
            account,
            service.trust_level,
            &here,
        )));
    }
    let review = Review::of(&state, &visitor, &mut draft, &service, &form).await?;
    let draft = review.draft;
    if form
        .validate_submitted(&draft.data, crate::today())
        .is_err()
    {
        return review.page(&[], None).await;
    }
    let mut data = draft.data.clone();
    if let Some(fee) = service.fee.as_ref().map(|f| f.due(&draft.data)) {
        // Only after a successful payment of the full fee, confirmed by the provider.
        let (Some(transaction), Some(reference)) =
            (&draft.payment_transaction, &draft.payment_reference)
        else {
            return review
                .page(&[], Some("Bitte bezahlen Sie zuerst die Gebühr.".into()))
                .await;
        };
        let status = state.payments.status(transaction).await?;
        if !status.paid(&fee.betrag) {
            return review
                .page(
                    &[],
                    Some(
                        "Die Zahlung ist nicht abgeschlossen. Bitte bezahlen Sie die Gebühr."
                            .into(),
                    ),
                )
                .await;
        }
        data["zahlung"] = json!({ "referenz": reference });
    }
    let attachments = drafts::attachment_contents(&state, &draft.id).await?;
    let applicant = oidc::applicant(&state, &visitor).await?;
    let answer = state
        .router
        .submit(
            &draft.service,
            &draft.region,
            &data,
            &attachments,
            applicant.as_ref(),
            &draft.id,
        )
        .await?;
    match answer {
        Submitted::Accepted {
            id: application,
            receipt,
        } => {
            drafts::mark_submitted(&state, &draft.id, &application, &receipt).await?;
            tracing::info!(draft = %draft.id, application = %application, "application submitted");
            if draft.payment_reference.is_some() {
                // The fee paid at submission, as a payment record for the accounting.
                state.payment_records.notify_one();
            }
            // The confirmation is said once, right after submitting.
            Ok(see_other(&format!("/antraege/{}?eingereicht", draft.id)))
        }
        Submitted::Invalid(errors) => {
            tracing::warn!(draft = %draft.id, count = errors.len(), "the router refused fields");
            review.page(&errors, Some("Die Angaben wurden nicht angenommen. Bitte korrigieren Sie die markierten Felder.".into())).await
        }
        Submitted::Unidentified { why, kind } => {
            tracing::warn!(draft = %draft.id, %kind, "the router refused the identification");
            Err(refused_identification(&visitor, &service, why, &here))
        }
        Submitted::Refused { status, kind } => {
            tracing::warn!(draft = %draft.id, status, %kind, "the router refused the application");
            let paid = if draft.payment_reference.is_some() {
                " Die bezahlte Gebühr geht nicht verloren: Sie wird erstattet, wenn Sie den Entwurf verwerfen."
            } else {
                ""
            };
            Err(Failure::bad_request(format!(
                "{} wurde nicht angenommen. Ihre Angaben bleiben als Entwurf gespeichert.{paid} Bitte versuchen Sie es später noch einmal. Gelingt es wieder nicht, wenden Sie sich bitte an die zuständige Stelle; der Zuständigkeitsfinder nennt sie Ihnen mit Anschrift und Telefonnummer.",
                service.wording.yours()
            )))
        }
    }
}

/// The hub did not accept the applicant's identification: sign in again where that
/// helps, else say so.
fn refused_identification(
    visitor: &Visitor,
    service: &Service,
    why: Unidentified,
    review: &str,
) -> Failure {
    match (&visitor.account, why) {
        (Some(account), Unidentified::SignInAgain) => {
            Failure::see_other(oidc::sign_in_again(account, service.trust_level, review))
        }
        (_, Unidentified::LevelTooLow) => Failure::forbidden(format!(
            "Die Behörde verlangt für „{}“ ein höheres Vertrauensniveau, als Ihre Anmeldung bestätigt. Bitte melden Sie sich über „Identifizieren“ mit einem passenden Identifizierungsmittel an.",
            service.name
        )),
        (_, Unidentified::ProviderUnavailable) => Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Ihre Anmeldung kann gerade nicht geprüft werden, weil der Identitätsanbieter nicht erreichbar ist. Bitte versuchen Sie es in einigen Minuten noch einmal. Ihr Antrag ist gespeichert.",
        ),
        _ => Failure::forbidden(
            "Ihre Anmeldung wurde nicht anerkannt. Bitte melden Sie sich ab und noch einmal an. Gelingt es wieder nicht, wenden Sie sich bitte an den Betreiber des Portals (siehe „Kontakt“ unten auf jeder Seite).",
        ),
    }
}
