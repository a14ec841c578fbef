//! An option of a select list (`<option value selected>label</option>`), as the console's
//! search and the clerk inbox's case filter show them.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    /// `value` shown as `label`, selected when it is what was `chosen`.
    pub fn new(value: impl Into<String>, label: impl Into<String>, chosen: Option<&str>) -> Self {
        let value = value.into();
        Self {
            selected: chosen.is_some_and(|c| c.trim() == value),
            value,
            label: label.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Choice;

    #[test]
    fn a_choice_is_selected_when_it_was_chosen() {
        assert!(Choice::new("a", "A", Some(" a ")).selected);
        assert!(!Choice::new("a", "A", Some("b")).selected);
        assert!(!Choice::new("a", "A", None).selected);
    }
}
