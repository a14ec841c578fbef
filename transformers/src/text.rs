//! Text normalisation of user input before it is stored or rendered.

use unicode_normalization::UnicodeNormalization;

/// Normalises a user string to NFC and refuses characters that XML 1.0 cannot carry,
/// naming the offending character so the citizen can fix the input.
///
/// The full DIN 91379 character-set check builds on this (mappings issue).
pub fn normalise(raw: &str) -> Result<String, String> {
    let text: String = raw.nfc().collect();
    if let Some(bad) = text.chars().find(|c| !is_xml_char(*c)) {
        return Err(format!(
            "unzulässiges Zeichen U+{:04X} (Steuerzeichen)",
            u32::from(bad)
        ));
    }
    Ok(text)
}

/// The `Char` production of XML 1.0.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
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
    fn control_characters_are_named() {
        let err = normalise("a\u{1}b").unwrap_err();
        assert!(err.contains("U+0001"), "{err}");
        assert!(normalise("\u{FFFE}").is_err());
    }
}
