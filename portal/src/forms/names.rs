//! Placeholders in a form's labels and help texts: `{behoerde}` (the responsible
//! authority) and `{gemeinde}` (the municipality), filled in for the draft's region.

use serde_json::Value;

use super::drafts::Draft;
use crate::Shared;

/// The names a draft's labels may use.
pub struct Names {
    behoerde: String,
    gemeinde: String,
}

impl Names {
    /// The draft's authority (asked of the hub) and municipality. Without an answer the
    /// label still reads as a sentence.
    pub async fn of(state: &Shared, draft: &Draft) -> Self {
        let authority = match state
            .router
            .responsibility(&draft.service, &draft.region)
            .await
        {
            Ok(found) => found.and_then(|r| r.authority).map(|a| a.name),
            Err(e) => {
                tracing::warn!(error = %e, "the responsible authority is unknown for a label");
                None
            }
        };
        Self {
            behoerde: authority.unwrap_or_else(|| "die zuständige Stelle".to_owned()),
            gemeinde: draft.region_name.clone(),
        }
    }

    /// Fills in the placeholders in every text of a page's view, except what the citizen
    /// typed (`value`).
    pub fn fill_in(&self, view: &mut Value) {
        match view {
            Value::String(text) if text.contains('{') => {
                *text = text
                    .replace("{behoerde}", &self.behoerde)
                    .replace("{gemeinde}", &self.gemeinde);
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.fill_in(item)),
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if key != "value" {
                        self.fill_in(item);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_filled_in_but_not_in_what_was_typed() {
        let names = Names {
            behoerde: "Landeshauptstadt Dresden, Bürgerbüro".into(),
            gemeinde: "Dresden, Stadt".into(),
        };
        let mut view = json!({"fields": [{"label": "Wohnen Sie in {gemeinde}?",
            "help": "{behoerde} prüft Ihre Angaben.", "value": "{gemeinde}"}]});
        names.fill_in(&mut view);
        assert_eq!(
            view,
            json!({"fields": [{"label": "Wohnen Sie in Dresden, Stadt?",
                "help": "Landeshauptstadt Dresden, Bürgerbüro prüft Ihre Angaben.", "value": "{gemeinde}"}]})
        );
    }
}
