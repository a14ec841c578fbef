//! The difference between a fixture's expected XML and the render, as `mapping test`
//! shows it. The comparison runs on the canonical form (one line per tag or text), but
//! an engineer edits the files: every hunk names the expected file's `file:line` of its
//! first difference, and every line carries its line in the expected file and in the
//! rendered output (as `kopplung mapping render` prints it).

use std::fmt::Write;
use std::path::Path;

use similar::{ChangeTag, DiffTag, TextDiff};

/// A line of a canonical form (`crate::fixtures::canonical`): its text and the line of
/// the source it comes from.
pub(crate) type Located<'a> = (&'a str, usize);

/// Lines of unchanged context around each difference.
const CONTEXT: usize = 3;

/// A unified diff of `expected` (from `expected_file`) against `rendered`, in hunks named
/// by their place in the file. Lines read `<sign><expected line> <rendered line> | <text>`.
pub(crate) fn located(
    expected_file: &Path,
    expected: &[Located<'_>],
    rendered: &[Located<'_>],
) -> String {
    let old: Vec<&str> = expected.iter().map(|(text, _)| *text).collect();
    let new: Vec<&str> = rendered.iter().map(|(text, _)| *text).collect();
    let diff = TextDiff::from_slices(&old, &new);
    let file = expected_file.display();
    let line_of = |lines: &[Located<'_>], index: Option<usize>| {
        index
            .and_then(|i| lines.get(i))
            .map_or_else(String::new, |(_, line)| line.to_string())
    };
    let mut out = format!("--- {file} (expected)\n+++ rendered\n");
    for group in diff.grouped_ops(CONTEXT) {
        // The hunk's name: where its first difference is (an insertion at the end of
        // the file is placed on the file's last line).
        let Some(first) = group.iter().find(|op| op.tag() != DiffTag::Equal) else {
            continue;
        };
        let at = |lines: &[Located<'_>], start: usize| {
            lines
                .get(start)
                .or_else(|| lines.last())
                .map_or(1, |(_, line)| *line)
        };
        let _ = writeln!(
            out,
            "@@ {file}:{} (rendered line {}) @@",
            at(expected, first.old_range().start),
            at(rendered, first.new_range().start)
        );
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                let _ = writeln!(
                    out,
                    "{sign}{:>5} {:>5} | {}",
                    line_of(expected, change.old_index()),
                    line_of(rendered, change.new_index()),
                    change.value()
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Located, located};

    /// Canonical lines as `crate::fixtures::canonical` gives them: (text, source line).
    fn lines(lines: &[(&'static str, usize)]) -> Vec<Located<'static>> {
        lines.to_vec()
    }

    #[test]
    fn hunks_name_the_expected_files_lines_not_the_canonical_ones() {
        // Several tags share a line of the file: the canonical form has more lines.
        // `<a>\n  <b><c>1</c></b>\n\n  <e>alt</e>\n</a>` against it all on one line.
        let expected = lines(&[
            ("<a>", 1),
            ("  <b>", 2),
            ("    <c>", 2),
            ("      \"1\"", 2),
            ("    </c>", 2),
            ("  </b>", 2),
            ("  <e>", 4),
            ("    \"alt\"", 4),
            ("  </e>", 4),
            ("</a>", 5),
        ]);
        let mut rendered: Vec<Located<'static>> =
            expected.iter().map(|(text, _)| (*text, 1)).collect();
        rendered[7].0 = "    \"neu\"";
        let diff = located(Path::new("f/x.expected.xml"), &expected, &rendered);
        assert!(
            diff.contains("@@ f/x.expected.xml:4 (rendered line 1) @@"),
            "{diff}"
        );
        assert!(
            diff.lines()
                .any(|l| l.starts_with('-') && l.contains(" 4 ") && l.ends_with("\"alt\"")),
            "{diff}"
        );
        assert!(
            diff.lines()
                .any(|l| l.starts_with('+') && l.contains(" 1 | ") && l.ends_with("\"neu\"")),
            "{diff}"
        );
    }

    #[test]
    fn an_addition_at_the_end_is_placed_on_the_last_line() {
        let diff = located(
            Path::new("x.expected.xml"),
            &lines(&[("<a>", 1), ("  <b>", 2), ("  </b>", 2), ("</a>", 3)]),
            &lines(&[
                ("<a>", 1),
                ("  <b>", 2),
                ("  </b>", 2),
                ("  <c>", 3),
                ("  </c>", 3),
                ("</a>", 4),
            ]),
        );
        assert!(
            diff.contains("@@ x.expected.xml:3 (rendered line 3) @@"),
            "{diff}"
        );
    }
}
