//! Text normalisation of user input before it is stored or rendered: Unicode NFC,
//! typographic characters to their plain equivalents where that is clear, and the check
//! against DIN 91379 datatype C — the normed Latin characters XÖV strings may carry.

use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises a user string and refuses characters outside DIN 91379 datatype C,
/// naming the first offending one so the citizen can fix the input.
pub fn normalise(raw: &str) -> Result<String, String> {
    normalise_or_refused(raw).map_err(describe)
}

/// [`normalise`], with the first character the normed set refuses as the error (for a
/// sentence that names it without codes, see `form::Problem`).
pub fn normalise_or_refused(raw: &str) -> Result<String, char> {
    // Line ends as XML parsers see them (CR LF and CR become LF), so lengths checked here
    // are the lengths a schema sees.
    let text = if raw.is_ascii() && !raw.contains('\r') {
        // Most input: ASCII is already NFC and holds no typographic character.
        raw.to_owned()
    } else {
        let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
        let plain: String = unified.chars().filter_map(plain_equivalent).collect();
        plain.nfc().collect()
    };
    first_refused(&text).map_or(Ok(text), Err)
}

/// Typographic characters with a clear plain equivalent in the normed set.
fn plain_equivalent(c: char) -> Option<char> {
    Some(match c {
        // Dashes and minus
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
        // Double quotes
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
        // Single quotes (U+2019 itself is in the normed set)
        '\u{2018}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
        // Spaces of other widths
        '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' => ' ',
        // Soft hyphen and zero-width characters carry no text
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {
            return None;
        }
        c => c,
    })
}

/// Single characters of datatype C (inclusive ranges).
const SINGLE: &[(char, char)] = &[
    ('\u{0009}', '\u{000A}'),
    ('\u{000D}', '\u{000D}'),
    ('\u{0020}', '\u{007E}'),
    ('\u{00A0}', '\u{00AC}'),
    ('\u{00AE}', '\u{017E}'),
    ('\u{0187}', '\u{0188}'),
    ('\u{018F}', '\u{018F}'),
    ('\u{0197}', '\u{0197}'),
    ('\u{01A0}', '\u{01A1}'),
    ('\u{01AF}', '\u{01B0}'),
    ('\u{01B7}', '\u{01B7}'),
    ('\u{01CD}', '\u{01DC}'),
    ('\u{01DE}', '\u{01DF}'),
    ('\u{01E2}', '\u{01F0}'),
    ('\u{01F4}', '\u{01F5}'),
    ('\u{01F8}', '\u{01FF}'),
    ('\u{0212}', '\u{0213}'),
    ('\u{0218}', '\u{021B}'),
    ('\u{021E}', '\u{021F}'),
    ('\u{0227}', '\u{0233}'),
    ('\u{0259}', '\u{0259}'),
    ('\u{0268}', '\u{0268}'),
    ('\u{0292}', '\u{0292}'),
    ('\u{02B9}', '\u{02BA}'),
    ('\u{02BE}', '\u{02BF}'),
    ('\u{02C8}', '\u{02C8}'),
    ('\u{02CC}', '\u{02CC}'),
    ('\u{1E02}', '\u{1E03}'),
    ('\u{1E06}', '\u{1E07}'),
    ('\u{1E0A}', '\u{1E11}'),
    ('\u{1E17}', '\u{1E17}'),
    ('\u{1E1C}', '\u{1E2B}'),
    ('\u{1E2F}', '\u{1E37}'),
    ('\u{1E3A}', '\u{1E3B}'),
    ('\u{1E40}', '\u{1E49}'),
    ('\u{1E52}', '\u{1E5B}'),
    ('\u{1E5E}', '\u{1E63}'),
    ('\u{1E6A}', '\u{1E6F}'),
    ('\u{1E80}', '\u{1E87}'),
    ('\u{1E8C}', '\u{1E97}'),
    ('\u{1E9E}', '\u{1E9E}'),
    ('\u{1EA0}', '\u{1EF9}'),
    ('\u{2019}', '\u{2019}'),
    ('\u{2021}', '\u{2021}'),
    ('\u{20AC}', '\u{20AC}'),
];

/// Letters with combining marks that have no precomposed form but are normed: the base
/// letter and the allowed mark sequences after it (the normative list, as data).
static SEQUENCES: LazyLock<Vec<(char, Vec<String>)>> =
    LazyLock::new(|| sequences(include_str!("din91379_sequences.txt")));

/// The lines of the sequence list; one that does not parse is left out (the tests read
/// every line).
fn sequences(text: &str) -> Vec<(char, Vec<String>)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let base = code_point(fields.next()?)?;
            let marks = fields
                .map(|sequence| sequence.split('+').map(code_point).collect())
                .collect::<Option<Vec<String>>>()?;
            Some((base, marks))
        })
        .collect()
}

fn code_point(hex: &str) -> Option<char> {
    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
}

fn is_single(c: char) -> bool {
    SINGLE.iter().any(|&(from, to)| (from..=to).contains(&c))
}

/// Checks `text` (already NFC) against datatype C. The error names the character.
pub fn check_din91379(text: &str) -> Result<(), String> {
    first_refused(text).map_or(Ok(()), |c| Err(describe(c)))
}

/// The first character of `text` (already NFC) outside datatype C, if any.
fn first_refused(text: &str) -> Option<char> {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // A normed sequence: the longest allowed mark sequence after this base letter.
        let after = &rest[c.len_utf8()..];
        // Every normed sequence starts with a combining mark (a test reads the list):
        // without one next, there is nothing to look up.
        let continues = after
            .chars()
            .next()
            .is_some_and(|next| !next.is_ascii() && is_combining_mark(next));
        if let Some(len) = continues.then(|| sequence_after(c, after)).flatten() {
            rest = &after[len..];
            continue;
        }
        if !is_single(c) {
            return Some(c);
        }
        rest = after;
    }
    None
}

/// The length of the longest normed mark sequence of base letter `c` that `after` starts
/// with.
fn sequence_after(c: char, after: &str) -> Option<usize> {
    SEQUENCES
        .iter()
        .filter(|(base, _)| *base == c)
        .flat_map(|(_, marks)| marks.iter())
        .filter(|marks| after.starts_with(marks.as_str()))
        .map(|marks| marks.len())
        .max()
}

fn describe(c: char) -> String {
    let code = u32::from(c);
    if is_combining_mark(c) {
        format!(
            "unzulässige Zeichenkombination: das kombinierende Zeichen U+{code:04X} ist hier nicht erlaubt (DIN 91379)"
        )
    } else if c.is_control() {
        format!("unzulässiges Steuerzeichen U+{code:04X}")
    } else {
        format!(
            "unzulässiges Zeichen „{c}“ (U+{code:04X}); erlaubt sind lateinische Buchstaben nach DIN 91379"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_and_keeps_xml_specials_verbatim() {
        assert_eq!(
            normalise("u\u{308}ber </x> & ]]> {{x}}").unwrap(),
            "über </x> & ]]> {{x}}"
        );
    }

    #[test]
    fn typographic_dashes_and_quotes_become_plain() {
        assert_eq!(
            normalise("Bahnhofstraße 3\u{2013}5, \u{201E}Altbau\u{201C}, \u{2018}A\u{2019}")
                .unwrap(),
            "Bahnhofstraße 3-5, \"Altbau\", 'A\u{2019}"
        );
        assert_eq!(normalise("Grund\u{00AD}stück").unwrap(), "Grundstück");
    }

    #[test]
    fn line_ends_are_unified() {
        assert_eq!(normalise("a\r\nb\rc\n").unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn sharp_s_and_capital_sharp_s_are_normed() {
        assert_eq!(normalise("Straße STRAẞE").unwrap(), "Straße STRAẞE");
    }

    #[test]
    fn combining_characters_are_composed_or_checked() {
        // e + combining acute composes to é.
        assert_eq!(normalise("Jose\u{301}").unwrap(), "José");
        // L with ring below and macron: no precomposed form, but normed.
        assert_eq!(normalise("L\u{325}\u{304}").unwrap(), "L\u{325}\u{304}");
        // x with acute: not normed.
        let err = normalise("x\u{301}").unwrap_err();
        assert!(err.contains("U+0301"), "{err}");
    }

    #[test]
    fn every_line_of_the_sequence_list_is_read() {
        let text = include_str!("din91379_sequences.txt");
        let lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(SEQUENCES.len(), lines);
        assert!(SEQUENCES.iter().all(|(_, marks)| !marks.is_empty()));
        // `first_refused` looks a sequence up only before a combining mark.
        for (base, marks) in SEQUENCES.iter() {
            for mark in marks {
                let first = mark.chars().next().unwrap();
                assert!(is_combining_mark(first), "{base:?} {mark:?}");
            }
        }
        // K with combining double macron below and H: a sequence of a mark and a letter.
        let k = &SEQUENCES.iter().find(|(base, _)| *base == 'K').unwrap().1;
        assert!(k.contains(&"\u{035F}H".to_owned()), "{k:?}");
    }

    #[test]
    fn emoji_greek_and_control_characters_are_named() {
        let err = normalise("Schlagloch 🕳 hier").unwrap_err();
        assert!(err.contains("U+1F573"), "{err}");
        assert!(normalise("Ωmega").unwrap_err().contains("U+03A9"));
        assert!(normalise("a\u{1}b").unwrap_err().contains("U+0001"));
        // ASCII takes a shorter way; line ends are still unified.
        assert_eq!(normalise("a\r\nb\rc\td").unwrap(), "a\nb\nc\td");
        assert!(normalise("a\u{7F}").unwrap_err().contains("U+007F"));
        assert!(normalise("\u{FFFE}").is_err());
    }
}
