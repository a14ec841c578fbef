//! How a service's citizens speak of what they send (`wording` in `service.toml`): an
//! Antrag is applied for, a Meldung (a pothole) is reported — sent, not bindingly
//! applied for —, an Anmeldung registered, a Bestellung ordered. The portal words its
//! pages by it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wording {
    #[default]
    Antrag,
    Anmeldung,
    Bestellung,
    Meldung,
}

impl Wording {
    /// „Antrag“, „Meldung“ …
    pub fn noun(self) -> &'static str {
        match self {
            Wording::Antrag => "Antrag",
            Wording::Anmeldung => "Anmeldung",
            Wording::Bestellung => "Bestellung",
            Wording::Meldung => "Meldung",
        }
    }

    /// „Ihr Antrag“, „Ihre Meldung“ …
    pub fn yours(self) -> &'static str {
        match self {
            Wording::Antrag => "Ihr Antrag",
            Wording::Anmeldung => "Ihre Anmeldung",
            Wording::Bestellung => "Ihre Bestellung",
            Wording::Meldung => "Ihre Meldung",
        }
    }

    /// The submit button: binding for all but a report.
    pub fn submit(self) -> String {
        match self {
            Wording::Meldung => "Meldung absenden".to_owned(),
            other => format!("{} verbindlich absenden", other.noun()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Wording;

    #[test]
    fn a_report_is_sent_and_dealt_with_not_applied_for_and_decided() {
        assert_eq!(Wording::Meldung.submit(), "Meldung absenden");
        assert_eq!(Wording::Antrag.submit(), "Antrag verbindlich absenden");
        assert_eq!(Wording::Meldung.yours(), "Ihre Meldung");
        let parsed: Wording = serde_json::from_str("\"meldung\"").unwrap();
        assert_eq!(parsed, Wording::Meldung);
    }
}
