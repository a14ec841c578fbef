//! The portal's rendering of a form definition outside a draft, for the hub's mapping
//! workbench: every step with its title and its fields, rendered by the portal's own
//! field template (`templates/field.hbs` through `render::views`), empty and without
//! errors — what a citizen would see on the form's pages, without the page around it.
//!
//! The hub cannot depend on the portal; the binary wraps [`FormPreviewer`] in the hub's
//! `FormPreview` trait.

use std::collections::BTreeMap;

use kopplung_forms::form::FormDefinition;
use kopplung_web::shell::{TemplateSet, Templates};
use serde_json::{Value, json};

use super::render::{step_fields, steps, views};
use crate::Error;

/// The steps around the portal's field partial; the `layout` the shell's templates need
/// is not used.
const PREVIEW: &str = r#"{{#each steps}}
<section class="portal-preview-step" aria-label="Schritt {{number}}">
<h4>Schritt {{number}}{{#if title}}: {{title}}{{/if}}</h4>
{{#each fields}}{{> field}}{{/each}}
</section>
{{/each}}"#;

/// Renders form definitions as the portal shows them.
#[derive(Debug)]
pub struct FormPreviewer {
    templates: Templates,
}

impl FormPreviewer {
    /// Compiles the portal's field template.
    pub fn new() -> Result<Self, Error> {
        let sources = [
            ("layout", "{{{content}}}"),
            ("field", include_str!("../../templates/field.hbs")),
            ("preview", PREVIEW),
        ];
        let templates = Templates::compile(TemplateSet {
            ui: "portal form preview",
            folder: "portal/templates",
            sources: &sources,
            partials: &["field"],
            // As the portal's own pages: optional values are left out.
            strict: false,
            internal_error: "Interner Fehler.",
        })
        .map_err(|e| Error::Template(e.to_string()))?;
        Ok(Self { templates })
    }

    /// The form's steps and fields as HTML, as a citizen would see them (empty).
    pub fn render(&self, form: &FormDefinition) -> Result<String, Error> {
        let (empty, no_errors) = (json!({}), BTreeMap::new());
        let steps: Vec<Value> = steps(form)
            .into_iter()
            .map(|number| {
                let fields = step_fields(form, number);
                json!({
                    "number": number,
                    "title": form.step_title(number),
                    "fields": views(form, &fields, "", &empty, &no_errors),
                })
            })
            .collect();
        self.templates
            .render("preview", &json!({ "steps": steps }))
            .map_err(|e| Error::Template(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_renders_with_its_labels_and_steps() {
        let form: FormDefinition = toml::from_str(
            r#"
[[field]]
name = "beschreibung"
label = "Was ist <kaputt>?"
type = "text"
required = true
"#,
        )
        .expect("form");
        let html = FormPreviewer::new()
            .expect("templates")
            .render(&form)
            .expect("html");
        assert!(html.contains("Schritt 1"), "{html}");
        assert!(html.contains("Was ist &lt;kaputt&gt;?"), "{html}");
        assert!(html.contains("name=\"beschreibung\""), "{html}");
    }
}
