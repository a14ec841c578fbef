//! A front end's Handlebars templates (compiled into the binary, escaping every value)
//! and pages rendered inside its layout.

use axum::http::StatusCode;
use axum::response::Response;
use handlebars::Handlebars;
use serde::Serialize;

use super::answer::{html, plain_error};
use crate::Error;

/// The templates `<folder>/<name>.hbs` (`templates` by default) next to the calling
/// source file, compiled into the binary: `&[(name, source)]` for [`TemplateSet`].
#[macro_export]
macro_rules! templates {
    ($($name:literal),+ $(,)?) => {
        $crate::templates!(in "templates"; $($name),+)
    };
    (in $folder:literal; $($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!($folder, "/", $name, ".hbs")))),+]
    };
}

/// What a front end's templates are.
#[derive(Debug, Clone, Copy)]
pub struct TemplateSet<'a> {
    /// The front end, in logs: `admin console`.
    pub ui: &'static str,
    /// The folder of the sources, named in errors.
    pub folder: &'a str,
    /// Each template's name and source; one of them is `layout`.
    pub sources: &'a [(&'a str, &'a str)],
    /// Which of them are partials.
    pub partials: &'a [&'a str],
    /// A missing value is an error, not empty text.
    pub strict: bool,
    /// The text of the 500 when even a page cannot be rendered.
    pub internal_error: &'static str,
}

/// The compiled templates of one front end.
#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
    ui: &'static str,
    internal_error: &'static str,
}

impl Templates {
    /// Compiles `set`; an error names the template's file.
    pub fn compile(set: TemplateSet<'_>) -> Result<Self, Error> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(set.strict);
        for (name, source) in set.sources {
            let registered = if set.partials.contains(name) {
                registry.register_partial(name, *source)
            } else {
                registry.register_template_string(name, *source)
            };
            registered.map_err(|e| Error::Template {
                file: format!("{}/{name}.hbs", set.folder),
                message: e.to_string(),
            })?;
        }
        Ok(Self {
            registry,
            ui: set.ui,
            internal_error: set.internal_error,
        })
    }

    /// `template` with `data`, without the layout.
    pub fn render(
        &self,
        template: &str,
        data: &impl Serialize,
    ) -> Result<String, handlebars::RenderError> {
        self.registry.render(template, data)
    }

    /// Renders `template` with `data`, then the template `layout` around it: `layout`
    /// makes the layout's data from the rendered content. A page that cannot be
    /// rendered is logged and answered with the plain 500.
    pub fn page<L: Serialize>(
        &self,
        status: StatusCode,
        template: &str,
        data: &impl Serialize,
        layout: impl FnOnce(String) -> L,
    ) -> Response {
        let rendered = self
            .registry
            .render(template, data)
            .and_then(|content| self.registry.render("layout", &layout(content)));
        match rendered {
            Ok(page) => html(status, page),
            Err(e) => {
                tracing::error!(template, error = %e, "{} page could not be rendered", self.ui);
                self.internal_error()
            }
        }
    }

    /// The plain 500 of this front end.
    pub fn internal_error(&self) -> Response {
        plain_error(self.internal_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set<'a>(sources: &'a [(&'a str, &'a str)], strict: bool) -> TemplateSet<'a> {
        TemplateSet {
            ui: "test",
            folder: "tests",
            sources,
            partials: &["name"],
            strict,
            internal_error: "Interner Fehler.",
        }
    }

    #[tokio::test]
    async fn pages_are_rendered_in_the_layout_and_escaped() {
        let sources = [
            ("layout", "<title>{{title}}</title>{{{content}}}"),
            ("name", "<b>{{name}}</b>"),
            ("page", "{{> name}}"),
        ];
        let templates = Templates::compile(set(&sources, true)).expect("templates");
        let page = templates.page(
            StatusCode::OK,
            "page",
            &json!({"name": "<A & B>"}),
            |c| json!({"title": "T", "content": c}),
        );
        assert_eq!(page.status(), StatusCode::OK);
        let body = axum::body::to_bytes(page.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(body, "<title>T</title><b>&lt;A &amp; B&gt;</b>");
        // Strict: a missing value is a 500, not a page with a gap.
        let page = templates.page(
            StatusCode::OK,
            "page",
            &json!({}),
            |c| json!({"title": "T", "content": c}),
        );
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let lenient = Templates::compile(set(&sources, false)).expect("templates");
        assert_eq!(
            lenient.render("page", &json!({})).expect("render"),
            "<b></b>"
        );
    }

    #[test]
    fn a_broken_template_names_its_file() {
        let error = Templates::compile(set(&[("layout", "{{#if}}")], true)).unwrap_err();
        assert!(error.to_string().contains("tests/layout.hbs"), "{error}");
    }
}
