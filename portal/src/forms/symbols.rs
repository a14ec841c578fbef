//! Emoji in free text: the authority's systems cannot carry them (the normed character
//! set of DIN 91379), but a citizen describing a pothole should not be stopped by a 😡.
//! In long free texts they are removed when the step is saved, and the step shows again
//! with a note, so the citizen sees the text as it will be sent.

use kopplung_forms::FieldKind;
use kopplung_forms::form::{FormDefinition, find_field, is_symbol};

/// Removes emoji and other symbols from the long free texts among `pairs`; the labels of
/// the fields that had any.
pub fn strip(form: &FormDefinition, pairs: &mut [(String, String)]) -> Vec<String> {
    let mut labels = Vec::new();
    for (name, value) in pairs.iter_mut() {
        let Some(field) = find_field(&form.fields, name) else {
            continue;
        };
        let free_text =
            field.kind == FieldKind::Text && field.max_length.is_none_or(|max| max > 200);
        if !free_text || !value.chars().any(is_symbol) {
            continue;
        }
        let cleaned: String = value.chars().filter(|c| !is_symbol(*c)).collect();
        // No double spaces where a symbol stood between two words.
        *value = cleaned
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !labels.contains(&field.label) {
            labels.push(field.label.clone());
        }
    }
    labels
}

/// The note the step shows after `strip` removed something.
pub fn note(labels: &[String]) -> String {
    let fields: Vec<String> = labels.iter().map(|l| format!("„{l}“")).collect();
    format!(
        "Wir haben Emojis und Symbole aus {} entfernt, weil die Behörde sie nicht verarbeiten kann. Bitte prüfen Sie den Text und wählen Sie dann „Weiter“.",
        kopplung_forms::german::and_list(&fields)
    )
}
