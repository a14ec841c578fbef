//! Why a template did not render, told for the engineers and operators who read it (in
//! `mapping test`, an `invalid` application's reason, the logs). Handlebars' own texts
//! name its internals (``Failed to access variable in strict mode Some("data.x")``);
//! this names the template file, the place in it and the field path instead. A field
//! path is no personal data; no value ever appears here.

use std::path::Path;

use handlebars::{RenderError, RenderErrorReason};

/// `<template>:<line>:<column>: <what went wrong>`, the line and column where handlebars
/// knows them.
pub(crate) fn explain(template: &Path, error: &RenderError) -> String {
    let place = match (error.line_no, error.column_no) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", template.display()),
        _ => template.display().to_string(),
    };
    let what = match error.reason() {
        // The form's data (and its labels) may lack an optional value; any other name
        // is one the hub never provides.
        RenderErrorReason::MissingVariable(Some(path))
            if path.starts_with("data.") || path.starts_with("labels.") =>
        {
            format!("{path} is not set in the application's data")
        }
        RenderErrorReason::MissingVariable(Some(path)) => format!(
            "{path} is not in the template's context (docs/mappings.md lists what a template can use)"
        ),
        RenderErrorReason::MissingVariable(None) => {
            "a value the template uses is not set in the application's data".to_owned()
        }
        RenderErrorReason::HelperNotFound(name) => {
            format!("`{name}` is no helper the hub knows (see docs/mappings.md)")
        }
        RenderErrorReason::PartialNotFound(name) => {
            format!("the partial `{name}` does not exist (the hub registers none)")
        }
        // The messages of the hub's own helpers, and anything else handlebars reports,
        // as they are: none of them carries a value of the form.
        other => other.to_string(),
    };
    format!("{place}: {what}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use handlebars::Handlebars;
    use serde_json::json;

    use super::explain;

    /// The explanation of rendering `source` with `data` in strict mode, as the hub does.
    fn failure(source: &str, data: serde_json::Value) -> String {
        let mut templates = Handlebars::new();
        templates.set_strict_mode(true);
        templates.register_template_string("t", source).unwrap();
        let error = templates.render("t", &data).unwrap_err();
        explain(Path::new("hundesteuer/nachricht.xml.hbs"), &error)
    }

    #[test]
    fn a_missing_field_names_the_file_the_place_and_the_path() {
        let message = failure(
            "<a>\n  <b>{{data.hund.name}}</b>\n  <c>{{data.hund.farbe}}</c>\n</a>",
            json!({"data": {"hund": {"name": "Bello"}}}),
        );
        assert_eq!(
            message,
            "hundesteuer/nachricht.xml.hbs:3:6: data.hund.farbe is not set in the application's data"
        );
        assert!(!message.contains("strict mode"), "{message}");
        assert!(!message.contains("Bello"), "no values: {message}");
    }

    #[test]
    fn a_missing_field_inside_a_block_is_found_too() {
        let message = failure(
            "<a>\n{{#if data.hund}}\n  <c>{{data.hund.farbe}}</c>\n{{/if}}\n</a>",
            json!({"data": {"hund": {"name": "Bello"}}}),
        );
        assert!(
            message.starts_with("hundesteuer/nachricht.xml.hbs:")
                && message.ends_with(": data.hund.farbe is not set in the application's data"),
            "{message}"
        );
        assert!(!message.contains("Some("), "{message}");
    }

    #[test]
    fn a_name_outside_the_data_is_no_field_of_the_application() {
        let message = failure("<a>{{antrag.bearbeiter}}</a>", json!({"antrag": {}}));
        assert_eq!(
            message,
            "hundesteuer/nachricht.xml.hbs:1:4: antrag.bearbeiter is not in the template's context (docs/mappings.md lists what a template can use)"
        );
    }

    #[test]
    fn an_unknown_helper_is_named() {
        let message = failure("<a>{{farbe data.x}}</a>", json!({"data": {"x": "1"}}));
        assert!(
            message.starts_with("hundesteuer/nachricht.xml.hbs:1:4: `farbe` is no helper"),
            "{message}"
        );
    }
}
