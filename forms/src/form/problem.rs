//! What a citizen is told about a field, as a whole German sentence with the field's
//! name in it and the way to fix it — never a code. The API keeps its short `message`
//! for integrators; a front end words the problem with [`Problem::sentence`].

use unicode_normalization::char::is_combining_mark;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Required,
    /// A required choice (a list of options) left open.
    NotChosen,
    /// Fewer entries of a repeated group than it needs.
    TooFew(usize),
    /// More entries of a repeated group than it takes.
    TooMany(usize),
    MustConfirm,
    NotADate,
    TooShort {
        min: usize,
        length: usize,
    },
    TooLong {
        max: usize,
        length: usize,
    },
    NotAnEmail,
    NotANumber,
    BelowMinimum(String),
    AboveMaximum(String),
    NotWhole,
    NotOffered,
    /// The default text of a pattern without its own `pattern_message`.
    Malformed,
    /// A character the normed set (DIN 91379) cannot carry.
    Character(char),
}

impl Problem {
    /// The sentence for the field named `subject` (`„Beschreibung“`, quoted already).
    pub fn sentence(&self, subject: &str) -> String {
        match self {
            Problem::Required => format!("Bitte geben Sie {subject} an."),
            Problem::NotChosen => {
                format!("Bitte wählen Sie bei {subject} eine der Möglichkeiten aus.")
            }
            Problem::TooFew(least) => {
                format!("Bitte geben Sie bei {subject} mindestens {least} Einträge an.")
            }
            Problem::TooMany(max) => format!(
                "Bei {subject} sind höchstens {max} Einträge möglich. Bitte entfernen Sie die übrigen."
            ),
            Problem::MustConfirm => format!("Bitte bestätigen Sie {subject}."),
            Problem::NotADate => format!(
                "Bitte geben Sie {subject} als Datum in der Form TT.MM.JJJJ ein, zum Beispiel 23.06.1979."
            ),
            Problem::TooShort { min, length } => format!(
                "Bitte schreiben Sie bei {subject} mindestens {min} Zeichen; bisher sind es {length}."
            ),
            Problem::TooLong { max, length } => format!(
                "Bitte kürzen Sie {subject} auf höchstens {max} Zeichen; bisher sind es {length}."
            ),
            Problem::NotAnEmail => format!(
                "Bitte geben Sie bei {subject} eine E-Mail-Adresse in der Form name@example.org ein."
            ),
            Problem::NotANumber => format!("Bitte geben Sie bei {subject} eine Zahl ein."),
            Problem::BelowMinimum(min) => {
                format!("Bitte geben Sie bei {subject} eine Zahl ab {min} ein.")
            }
            Problem::AboveMaximum(max) => {
                format!("Bitte geben Sie bei {subject} eine Zahl bis {max} ein.")
            }
            Problem::NotWhole => format!("Bitte geben Sie bei {subject} eine ganze Zahl ein."),
            Problem::NotOffered => {
                format!("Bitte wählen Sie bei {subject} eine der angebotenen Möglichkeiten.")
            }
            Problem::Malformed => format!(
                "Bitte prüfen Sie {subject}: Die Eingabe hat nicht die erwartete Form. Der Hinweis beim Feld zeigt ein Beispiel."
            ),
            Problem::Character(c) if c.is_control() => format!(
                "{subject} enthält ein unsichtbares Steuerzeichen. Bitte tippen Sie den Text neu ein, statt ihn einzufügen."
            ),
            Problem::Character(c) if is_combining_mark(*c) => format!(
                "{subject} enthält einen Buchstaben mit einem Zusatzzeichen, das die Behörde nicht verarbeiten kann. Bitte geben Sie den Buchstaben ohne dieses Zeichen ein."
            ),
            Problem::Character(c) if is_symbol(*c) => format!(
                "{subject} enthält das Symbol „{c}“. Emojis und Symbole kann die Behörde nicht verarbeiten; bitte lassen Sie sie weg."
            ),
            Problem::Character(c) => format!(
                "{subject} enthält das Zeichen „{c}“, das die Behörde nicht verarbeiten kann. Bitte schreiben Sie es mit lateinischen Buchstaben."
            ),
        }
    }
}

/// Emoji and other pictographs (outside every script a name or address uses).
pub fn is_symbol(c: char) -> bool {
    matches!(u32::from(c),
        0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x27BF | 0x2900..=0x297F
        | 0x2B00..=0x2BFF | 0x1F000..=0x1FAFF | 0xFE0F | 0x200D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_the_field_and_the_fix_without_codes() {
        let subject = "„Beschreibung“";
        let short = Problem::TooShort { min: 10, length: 4 }.sentence(subject);
        assert_eq!(
            short,
            "Bitte schreiben Sie bei „Beschreibung“ mindestens 10 Zeichen; bisher sind es 4."
        );
        for c in ['😡', '\u{1}', '\u{301}', 'Ω'] {
            let sentence = Problem::Character(c).sentence(subject);
            assert!(sentence.starts_with(subject), "{sentence}");
            assert!(!sentence.contains("U+"), "{sentence}");
            assert!(!sentence.contains("DIN"), "{sentence}");
            assert!(sentence.ends_with('.'), "{sentence}");
        }
        assert!(
            Problem::Character('😡')
                .sentence(subject)
                .contains("Emojis")
        );
    }
}
