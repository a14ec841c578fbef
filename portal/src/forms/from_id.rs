//! Prefill from the identity provider, with the citizen's consent: the applicant's own
//! shared groups — the top-level group `person` that uses `person`, and `anschrift` that
//! uses `anschrift` (never a spouse, a new address or a business) — take the name, birth
//! date and address the ID confirmed. They are marked "aus Ihrem Servicekonto"; where the
//! service needs `substanziell` or `hoch` they cannot be changed: shown read-only, and
//! whatever is posted for them is replaced by the ID's values on the server. The
//! account's master data stays as it is.

use std::collections::BTreeMap;

use kopplung_forms::TrustLevel;
use kopplung_forms::form::FormDefinition;
use serde_json::{Value, json};

use super::drafts::{self, Draft};
use super::render::{self, visible};
use crate::router_client::Service;
use crate::web::Visitor;
use crate::{Error, Shared, oidc};

/// What the ID fills in one form: field path -> value, and whether it is locked.
pub struct FromId {
    pub values: BTreeMap<String, String>,
    pub locked: bool,
}

/// The groups of `form` the ID may fill, with the ID's values for them.
fn values(form: &FormDefinition, prefill: &Value) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for field in &form.fields {
        let own = matches!(
            (field.name.as_str(), field.uses.as_deref()),
            ("person", Some("person")) | ("anschrift", Some("anschrift"))
        );
        if !own || !visible(field) || field.when.is_some() {
            continue;
        }
        for child in field.fields.iter().filter(|f| visible(f)) {
            if let Some(value) = prefill[&field.name][&child.name].as_str() {
                values.insert(format!("{}.{}", field.name, child.name), value.to_owned());
            }
        }
    }
    values
}

/// Whether a service's level makes the ID's values binding.
pub fn binding(service: &Service) -> bool {
    service.trust_level >= TrustLevel::Substanziell
}

/// What the visitor's ID fills in `form`, if the visitor signed in at an identity
/// provider and agreed to the prefill.
pub async fn of(
    state: &Shared,
    visitor: &Visitor,
    service: &Service,
    form: &FormDefinition,
) -> Result<Option<FromId>, Error> {
    let agreed = visitor
        .account
        .as_ref()
        .and_then(|a| a.identity.as_ref())
        .is_some_and(|i| i.prefill);
    if !agreed {
        return Ok(None);
    }
    let Some(prefill) = oidc::store::held(state, visitor)
        .await?
        .and_then(|held| held.prefill)
    else {
        return Ok(None);
    };
    let values = values(form, &prefill);
    Ok((!values.is_empty()).then(|| FromId {
        values,
        locked: binding(service),
    }))
}

impl FromId {
    /// Writes the ID's values into `data`; whether anything changed.
    pub fn apply(&self, data: &mut Value) -> bool {
        let mut changed = false;
        for (path, value) in &self.values {
            if render::get(data, path).as_str() != Some(value) {
                render::set(data, path, json!(value));
                changed = true;
            }
        }
        changed
    }

    /// Locked: the draft holds the ID's values again (posted ones are replaced), saved
    /// if that changed it.
    pub async fn enforce(&self, state: &Shared, draft: &mut Draft) -> Result<(), sqlx::Error> {
        if self.locked && self.apply(&mut draft.data) {
            drafts::save_data(state, &draft.id, &draft.data).await?;
        }
        Ok(())
    }

    /// Marks the fields of a step's view that hold the ID's value: "aus Ihrem
    /// Servicekonto", read-only where locked.
    pub fn mark(&self, views: &mut [Value]) {
        for view in views {
            if let Some(children) = view["children"].as_array_mut() {
                self.mark(children);
            }
            let Some(path) = view["name"].as_str() else {
                continue;
            };
            let Some(value) = self.values.get(path) else {
                continue;
            };
            if view["value"].as_str() != Some(value) {
                continue;
            }
            let hint = format!("{}-id", view["id"].as_str().unwrap_or_default());
            let described = match view["describedby"].as_str() {
                Some(ids) => format!("{ids} {hint}"),
                None => hint.clone(),
            };
            view["describedby"] = json!(described);
            view["from_id"] = json!({"id": hint, "locked": self.locked});
            view["readonly"] = json!(self.locked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormDefinition {
        let mut form: FormDefinition = serde_json::from_value(json!({
            "field": [
                {"name": "person", "label": "Person", "type": "group", "use": "person",
                 "fields": [
                    {"name": "familienname", "label": "Familienname", "type": "text", "required": true},
                    {"name": "geburtsort", "label": "Geburtsort", "type": "text"}]},
                {"name": "ehegatte", "label": "Ehegatte", "type": "group", "use": "person",
                 "fields": [{"name": "familienname", "label": "Familienname", "type": "text"}]},
                {"name": "anschrift", "label": "Anschrift", "type": "group", "use": "anschrift",
                 "fields": [{"name": "ort", "label": "Ort", "type": "text"}]},
                {"name": "neue_anschrift", "label": "Neue Anschrift", "type": "group", "use": "anschrift",
                 "fields": [{"name": "ort", "label": "Ort", "type": "text"}]},
            ],
        }))
        .unwrap();
        form.compile().unwrap();
        form
    }

    #[test]
    fn only_the_applicant_s_own_groups_take_the_id_s_values() {
        let prefill = json!({
            "person": {"familienname": "Mustermann", "vornamen": "Erika"},
            "anschrift": {"ort": "Dresden"},
        });
        let found = values(&form(), &prefill);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [
                ("anschrift.ort".to_owned(), "Dresden".to_owned()),
                ("person.familienname".to_owned(), "Mustermann".to_owned()),
            ]
        );
    }

    #[test]
    fn locked_values_replace_what_was_posted_and_are_marked_read_only() {
        let from_id = FromId {
            values: values(&form(), &json!({"person": {"familienname": "Mustermann"}})),
            locked: true,
        };
        let mut data = json!({"person": {"familienname": "Falsch", "geburtsort": "Leipzig"}});
        assert!(from_id.apply(&mut data));
        assert_eq!(
            data,
            json!({"person": {"familienname": "Mustermann", "geburtsort": "Leipzig"}})
        );
        assert!(!from_id.apply(&mut data));
        let mut views = vec![json!({"name": "person", "children": [
            {"name": "person.familienname", "id": "f-person-familienname", "value": "Mustermann", "describedby": null},
            {"name": "person.geburtsort", "id": "f-person-geburtsort", "value": "Leipzig"},
        ]})];
        from_id.mark(&mut views);
        let children = &views[0]["children"];
        assert_eq!(children[0]["readonly"], true);
        assert_eq!(children[0]["from_id"]["id"], "f-person-familienname-id");
        assert_eq!(children[0]["describedby"], "f-person-familienname-id");
        assert!(children[1].get("readonly").is_none());
    }
}
