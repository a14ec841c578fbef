//! What a template reads: the paths of its expressions, resolved against the context
//! `{{#each}}` and `{{#with}}` blocks open (`{{#each data.hunde}}{{name}}{{/each}}` reads
//! `data.hunde.name`), and the enumeration labels it asks for with `label`.

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use kopplung_forms::form::{FieldKind, FormDefinition, find_field};
use serde_json::Value;

use super::xml_escape;

/// A path the template reads, with its line and column.
pub(super) struct Reference {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

/// A `label` helper's field path (a string literal), with its line and column.
pub(super) struct LabelUse {
    pub field: String,
    pub line: usize,
    pub column: usize,
}

/// Paths the template reads, including inside blocks and helper parameters; inside
/// `each` and `with` relative to the block's value.
pub(super) fn collect(template: &Template, out: &mut Vec<Reference>, labels: &mut Vec<LabelUse>) {
    walk(template, &[], out, labels);
}

fn walk(
    template: &Template,
    context: &[String],
    out: &mut Vec<Reference>,
    labels: &mut Vec<LabelUse>,
) {
    for (index, element) in template.elements.iter().enumerate() {
        let (line, column) = template
            .mapping
            .get(index)
            .map(|m| (m.0, m.1))
            .unwrap_or((0, 0));
        let (helper, block) = match element {
            TemplateElement::Expression(helper) => (helper, false),
            TemplateElement::HelperBlock(helper) => (helper, true),
            _ => continue,
        };
        let mut push = |raw: &str| {
            if let Some(path) = resolve(raw, context) {
                out.push(Reference { path, line, column });
            }
        };
        // A plain `{{data.x}}` is a path; a block's name or one with parameters, a helper.
        if !block
            && helper.params.is_empty()
            && helper.hash.is_empty()
            && let Some(raw) = relative(&helper.name)
        {
            push(raw);
        }
        for parameter in helper.params.iter().chain(helper.hash.values()) {
            if let Some(raw) = relative(parameter) {
                push(raw);
            }
        }
        if name_of(helper) == Some("label")
            && let Some(Parameter::Literal(Value::String(field))) = helper.params.first()
        {
            labels.push(LabelUse {
                field: field.clone(),
                line,
                column,
            });
        }
        let inner_context = match (name_of(helper), helper.params.first().and_then(relative)) {
            (Some("each" | "with"), Some(raw)) => {
                let mut inner = context.to_vec();
                inner.push(resolve(raw, context).unwrap_or_default());
                inner
            }
            _ => context.to_vec(),
        };
        if let Some(inner) = &helper.template {
            walk(inner, &inner_context, out, labels);
        }
        if let Some(inverse) = &helper.inverse {
            walk(inverse, context, out, labels);
        }
    }
}

fn name_of(helper: &HelperTemplate) -> Option<&str> {
    match &helper.name {
        Parameter::Name(name) => Some(name.as_str()),
        other => relative(other),
    }
}

fn relative(parameter: &Parameter) -> Option<&str> {
    match parameter {
        Parameter::Path(handlebars::Path::Relative((_, raw))) => Some(raw.as_str()),
        _ => None,
    }
}

/// `raw` as a path from the template's root: `../` climbs out of a block, `this` is the
/// block's value, `@root.` the root; other `@` variables (`@index`) are no field.
fn resolve(raw: &str, context: &[String]) -> Option<String> {
    if let Some(rest) = raw.strip_prefix("@root.") {
        return Some(rest.to_owned());
    }
    if raw.starts_with('@') {
        return None;
    }
    let mut depth = context.len();
    let mut rest = raw;
    while let Some(up) = rest.strip_prefix("../") {
        depth = depth.saturating_sub(1);
        rest = up;
    }
    let rest = match rest {
        "this" | "." => "",
        _ => rest
            .strip_prefix("this.")
            .or_else(|| rest.strip_prefix("./"))
            .unwrap_or(rest),
    };
    let base = depth.checked_sub(1).and_then(|d| context.get(d));
    Some(match (base, rest.is_empty()) {
        (Some(base), true) => base.clone(),
        (Some(base), false) => format!("{base}.{rest}"),
        (None, _) => rest.to_owned(),
    })
}

/// Why the field path of a `label` helper names no enumeration field, if it does not.
pub(super) fn label_problem(form: &FormDefinition, field: &str) -> Option<String> {
    match find_field(&form.fields, field) {
        Some(found) if found.kind == FieldKind::Enum => None,
        Some(_) => Some(format!("`label \"{field}\"`: the field is no enumeration")),
        None => Some(format!(
            "`label \"{field}\"` refers to a field the form does not define"
        )),
    }
}

/// `{{label "hunde.rasse" rasse}}`: the German label of an enumeration value, for fields
/// inside a repeatable group where `labels.…` cannot name the entry.
pub(super) fn register_label(templates: &mut Handlebars<'static>, form: FormDefinition) {
    templates.register_helper(
        "label",
        Box::new(
            move |h: &Helper,
                  _: &Handlebars,
                  _: &Context,
                  _: &mut RenderContext,
                  out: &mut dyn Output|
                  -> HelperResult {
                let fail = |message: &str| RenderErrorReason::Other(format!("label: {message}"));
                let field = h
                    .param(0)
                    .and_then(|p| p.value().as_str())
                    .ok_or_else(|| fail("needs the field's path as text first"))?;
                let code = match h.param(1).map(|p| p.value()) {
                    Some(Value::Null) => return Ok(()),
                    Some(Value::String(code)) => code,
                    _ => return Err(fail("needs the field's value second").into()),
                };
                let label = find_field(&form.fields, field)
                    .and_then(|f| f.values.iter().find(|v| &v.code == code))
                    .ok_or_else(|| fail(&format!("{field} has no value with this code")))?;
                out.write(&xml_escape(&label.label))?;
                Ok(())
            },
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_blocks_are_resolved_against_the_block() {
        let template = Template::compile(
            "{{data.a}}{{#each data.hunde}}{{name}}{{this.rasse}}{{../data.b}}{{@index}}{{datum geboren}}{{label \"hunde.rasse\" rasse}}{{/each}}{{#if data.c}}{{data.d}}{{else}}{{data.e}}{{/if}}",
        )
        .unwrap();
        let mut out = Vec::new();
        let mut labels = Vec::new();
        collect(&template, &mut out, &mut labels);
        let paths: Vec<&str> = out.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "data.a",
                "data.hunde",
                "data.hunde.name",
                "data.hunde.rasse",
                "data.b",
                "data.hunde.geboren",
                "data.hunde.rasse",
                "data.c",
                "data.d",
                "data.e"
            ]
        );
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].field, "hunde.rasse");
    }
}
