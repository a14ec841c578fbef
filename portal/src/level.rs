//! The Vertrauensniveau as written in URLs, the database and the pages.

use kopplung_forms::TrustLevel;

pub fn label(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basis => "basis",
        TrustLevel::Substanziell => "substanziell",
        TrustLevel::Hoch => "hoch",
    }
}

/// The level's name in running text: the lowest is a noun and so capitalised („Basis“),
/// the others are adjectives („substanziell“, „hoch“).
pub fn name(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basis => "Basis",
        other => label(other),
    }
}

/// The level `text` names; `None` for anything else.
pub fn parse(text: &str) -> Option<TrustLevel> {
    match text {
        "basis" => Some(TrustLevel::Basis),
        "substanziell" => Some(TrustLevel::Substanziell),
        "hoch" => Some(TrustLevel::Hoch),
        _ => None,
    }
}
