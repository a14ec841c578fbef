//! Checks of a form definition when it loads: shared groups resolved, names, patterns and
//! conditions sound, so that a broken form is refused before a citizen meets it.

use super::{Condition, Field, FieldKind, SharedGroups};

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

/// The field at a dotted `path` (`ort.strasse`) among `fields`. An entry's number after
/// a repeatable group is passed over (`hunde.1.name` is the field `hunde.name`).
pub fn find_field<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = fields.iter().find(|f| f.name == head)?;
    let rest = match (rest, &field.repeat) {
        (Some(rest), Some(_)) => match rest.split_once('.') {
            Some((index, inner)) if index.parse::<usize>().is_ok() => Some(inner),
            None if rest.parse::<usize>().is_ok() => return Some(field),
            _ => Some(rest),
        },
        (rest, _) => rest,
    };
    match rest {
        Some(rest) => find_field(&field.fields, rest),
        None => Some(field),
    }
}

/// Whether `path` names a field inside a repeatable group (not the group itself): such a
/// field has one value per entry.
pub fn in_repeat(fields: &[Field], path: &str) -> bool {
    let Some((head, rest)) = path.split_once('.') else {
        return false;
    };
    match fields.iter().find(|f| f.name == head) {
        Some(field) if field.repeat.is_some() => true,
        Some(field) => in_repeat(&field.fields, rest),
        None => false,
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
            if in_repeat(root, &condition.field) {
                return Err(format!(
                    "field `{path}`: `when` cannot look into the repeatable group of `{}` (inside a repeatable group, `when` names a field of the same entry)",
                    condition.field
                ));
            }
            if !condition_fits(target, condition) {
                return Err(format!(
                    "field `{path}`: `when` on `{}` needs `is_true` for a boolean or `equals` with its values for an enum or text",
                    condition.field
                ));
            }
        }
        // Inside a repeatable group, conditions and `after` name fields of the same entry.
        let inner_root = if field.repeat.is_some() {
            &field.fields
        } else {
            root
        };
        check_conditions(inner_root, &field.fields, &path)?;
    }
    Ok(())
}

/// Whether `condition` can be asked of `target`: `is_true` of a boolean, `equals` with
/// values of an enum (its codes) or a text.
pub(super) fn condition_fits(target: &Field, condition: &Condition) -> bool {
    match target.kind {
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
    }
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
    check_fields_in(fields, prefix, false)
}

fn check_fields_in(fields: &[Field], prefix: &str, in_repeat: bool) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for field in fields {
        let path = join(prefix, &field.name);
        if let Some(repeat) = &field.repeat {
            if field.kind != FieldKind::Group {
                return Err(format!("field `{path}`: `repeat` is for groups"));
            }
            if in_repeat {
                return Err(format!(
                    "field `{path}`: a repeatable group cannot sit inside another one"
                ));
            }
            if repeat.max == 0 || repeat.min > repeat.max || repeat.item.trim().is_empty() {
                return Err(format!(
                    "field `{path}`: `repeat` needs 0 < max, min <= max and an `item` name"
                ));
            }
        }
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
        for text in std::iter::once(&field.label).chain(field.help.iter()) {
            if let Some(unknown) = unknown_placeholder(text) {
                return Err(format!(
                    "field `{path}`: `{{{unknown}}}` is no placeholder (`{{behoerde}}`, `{{gemeinde}}`)"
                ));
            }
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
            FieldKind::Group => {
                check_fields_in(&field.fields, &path, in_repeat || field.repeat.is_some())?;
            }
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

/// Placeholders a front end fills in a label or help text: the responsible authority and
/// the municipality.
pub const PLACEHOLDERS: [&str; 2] = ["behoerde", "gemeinde"];

/// The first `{name}` in `text` that is no placeholder.
fn unknown_placeholder(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').unwrap_or(after.len());
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Some(name);
        }
        rest = &after[end..];
    }
    None
}
