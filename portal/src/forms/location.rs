//! A report's location from the photo: where a form has a place with `lat` and `lon`
//! (the Mängelanzeige's `ort`) and the citizen uploads a photo that says where it was
//! taken, the attachments page offers to take that position — the citizen decides; the
//! stored photo keeps no position either way (`photo`).

use axum::extract::Path;
use kopplung_forms::FieldKind;
use kopplung_forms::form::FormDefinition;
use serde_json::{Value, json};

use super::{drafts, open_draft_of_service};
use crate::web::{Failure, Page, Posted, Visit};
use kopplung_web::shell::{form_value, see_other};

/// The top-level group that holds a position (`lat` and `lon` numbers), if the form has
/// one.
pub fn position_group(form: &FormDefinition) -> Option<&str> {
    form.fields
        .iter()
        .find(|group| {
            let number = |name: &str| {
                group
                    .fields
                    .iter()
                    .any(|f| f.name == name && f.kind == FieldKind::Number)
            };
            group.kind == FieldKind::Group && number("lat") && number("lon")
        })
        .map(|group| group.name.as_str())
}

/// Whether `data` has no position in `group` yet.
pub fn unset(data: &Value, group: &str) -> bool {
    data[group]["lat"].is_null() && data[group]["lon"].is_null()
}

/// `51.05040,13.73730`: the offer as the redirect carries it.
pub fn encode((lat, lon): (f64, f64)) -> String {
    format!("{lat:.5},{lon:.5}")
}

/// The offer a query `foto_ort=lat,lon` makes, for the page.
pub fn offer(form: &FormDefinition, query: Option<&str>) -> Option<Value> {
    let group = position_group(form)?;
    let (lat, lon) = query?.split_once(',')?;
    let (lat, lon): (f64, f64) = (lat.parse().ok()?, lon.parse().ok()?);
    if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
        return None;
    }
    let label = form
        .fields
        .iter()
        .find(|f| f.name == group)
        .map_or(group, |f| f.label.as_str());
    let german = |v: f64| format!("{v:.5}").replace('.', ",");
    Some(json!({
        "lat": format!("{lat:.5}"),
        "lon": format!("{lon:.5}"),
        "text": format!(
            "Ihr Foto enthält den Ort, an dem es aufgenommen wurde (Breite {}, Länge {}). Möchten Sie ihn als „{label}“ übernehmen? Das gespeicherte Foto enthält diese Angabe nicht mehr.",
            german(lat), german(lon)
        ),
    }))
}

/// `POST /entwurf/{id}/anlagen/ort`: takes the offered position into the form.
pub async fn take(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(pairs): Posted,
) -> Page {
    let (mut draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    let form = service.form()?;
    let group = position_group(&form).ok_or_else(Failure::not_found)?;
    let number = |key: &str, range: std::ops::RangeInclusive<f64>| {
        form_value(&pairs, key)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| range.contains(v))
    };
    let (Some(lat), Some(lon)) = (number("lat", -90.0..=90.0), number("lon", -180.0..=180.0))
    else {
        return Err(Failure::bad_request(
            "Der Ort aus dem Foto konnte nicht übernommen werden. Bitte tragen Sie ihn im Formular ein.",
        ));
    };
    if !draft.data[group].is_object() {
        draft.data[group] = json!({});
    }
    draft.data[group]["lat"] = json!(lat);
    draft.data[group]["lon"] = json!(lon);
    drafts::save_data(&state, &draft.id, &draft.data).await?;
    Ok(see_other(&format!(
        "/entwurf/{}/anlagen?ort=uebernommen",
        draft.id
    )))
}
