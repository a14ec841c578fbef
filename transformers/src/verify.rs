//! What a mapping must pass before it is put in force — at start, in `kopplung check` and
//! on every reload: what `mapping lint` and `mapping test` check. A template that uses a
//! field the form does not define, renders two root elements or breaks a fixture is
//! refused there, while the mappings in force stay, instead of turning the next
//! application `invalid`.

use crate::fixtures;
use crate::mapping::Mapping;

/// Every reason `mapping` must not be put in force, each naming its file (and line where
/// known); empty if it may.
pub fn problems(mapping: &Mapping) -> Vec<String> {
    let mut problems: Vec<String> = mapping.lint().iter().map(ToString::to_string).collect();
    // Without a fixture nothing is ever rendered before the first application arrives.
    let dir = mapping.folder.join("fixtures");
    let list = match fixtures::fixtures_of(mapping) {
        Ok(list) => list,
        Err(_) if !dir.exists() => Vec::new(),
        Err(e) => {
            problems.push(e.to_string());
            return problems;
        }
    };
    if list.is_empty() {
        problems.push(format!(
            "{}: no fixtures: a mapping needs at least one (`<name>.input.json` with its `<name>.expected.xml`, see docs/mappings.md)",
            dir.display()
        ));
    }
    for fixture in &list {
        if let Err(failure) = fixtures::run(mapping, fixture) {
            problems.push(failure.to_string());
        }
    }
    problems
}
