//! Checks of a form definition when it loads: shared groups resolved, names, patterns and
//! conditions sound, so that a broken form is refused before a citizen meets it.

use super::{Field, FieldKind, SharedGroups};

pub(super) fn collect_paths<'a>(
    fields: &'a [Field],
    prefix: &str,
    out: &mut Vec<(String, &'a Field)>,
) {
    for field in fields {
        let path = join(prefix, &field.name);
        out.push((path.clone(), field));
        collect_paths(&field.fields, &path, out);
    }
}

pub(super) fn resolve_uses(
    fields: &mut [Field],
    shared: &SharedGroups,
    prefix: &str,
) -> Result<(), String> {
    for field in fields.iter_mut() {
        let path = join(prefix, &field.name);
        if let Some(name) = &field.uses {
            if field.kind != FieldKind::Group || !field.fields.is_empty() {
                return Err(format!(
                    "field `{path}`: `use` needs type = \"group\" and no own fields"
                ));
            }
            let group = shared
                .groups
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| format!("field `{path}`: unknown shared group `{name}`"))?;
            field.fields = group.fields.clone();
        }
        resolve_uses(&mut field.fields, shared, &path)?;
    }
    Ok(())
}

/// The field at a dotted `path` (`ort.strasse`) among `fields`.
pub fn find_field<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = fields.iter().find(|f| f.name == head)?;
    match rest {
        Some(rest) => find_field(&field.fields, rest),
        None => Some(field),
    }
}

pub(super) fn check_conditions(
    root: &[Field],
    fields: &[Field],
    prefix: &str,
) -> Result<(), String> {
    for field in fields {
        let path = join(prefix, &field.name);
        // Follow the chain of conditions: it must end, not come back.
        let mut seen = vec![path.clone()];
        let mut next = field.when.as_ref().map(|c| c.field.clone());
        while let Some(target) = next {
            if seen.contains(&target) {
                return Err(format!(
                    "field `{path}`: conditions form a cycle through `{target}`"
                ));
            }
            next = find_field(root, &target)
                .and_then(|f| f.when.as_ref())
                .map(|c| c.field.clone());
            seen.push(target);
        }
        super::rules::check(root, field, &path)?;
        if let Some(condition) = &field.when {
            let Some(target) = find_field(root, &condition.field) else {
                return Err(format!(
                    "field `{path}`: `when` refers to unknown field `{}`",
                    condition.field
                ));
            };
            let fits = match target.kind {
                FieldKind::Boolean => condition.is_true.is_some() && condition.equals.is_empty(),
                FieldKind::Enum => {
                    condition.is_true.is_none()
                        && !condition.equals.is_empty()
                        && condition
                            .equals
                            .iter()
                            .all(|e| target.values.iter().any(|v| &v.code == e))
                }
                FieldKind::Text => condition.is_true.is_none() && !condition.equals.is_empty(),
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "field `{path}`: `when` on `{}` needs `is_true` for a boolean or `equals` with its values for an enum or text",
                    condition.field
                ));
            }
        }
        check_conditions(root, &field.fields, &path)?;
    }
    Ok(())
}

pub(super) fn compile_patterns(fields: &mut [Field], prefix: &str) -> Result<(), String> {
    for field in fields.iter_mut() {
        let path = join(prefix, &field.name);
        if let Some(pattern) = &field.pattern {
            if field.kind != FieldKind::Text {
                return Err(format!("field `{path}`: `pattern` is for text fields"));
            }
            let anchored = format!("^(?:{pattern})$");
            field.compiled_pattern = Some(
                regex::Regex::new(&anchored)
                    .map_err(|e| format!("field `{path}`: pattern: {e}"))?,
            );
        }
        compile_patterns(&mut field.fields, &path)?;
    }
    Ok(())
}

pub(super) fn check_fields(fields: &[Field], prefix: &str) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for field in fields {
        let path = join(prefix, &field.name);
        if field.name.is_empty()
            || !field
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "field `{path}`: names use only ASCII letters, digits and `_`"
            ));
        }
        if !seen.insert(field.name.as_str()) {
            return Err(format!("field `{path}` is defined twice"));
        }
        match field.kind {
            FieldKind::Enum if field.values.is_empty() => {
                return Err(format!("field `{path}`: an enum needs `values`"));
            }
            FieldKind::Group if field.fields.is_empty() => {
                return Err(format!("field `{path}`: a group needs `fields`"));
            }
            FieldKind::Group => check_fields(&field.fields, &path)?,
            _ => {}
        }
        if let (Some(min), Some(max)) = (field.min_length, field.max_length)
            && min > max
        {
            return Err(format!("field `{path}`: min_length is above max_length"));
        }
    }
    Ok(())
}

pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}
