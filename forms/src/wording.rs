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

    /// „Ihrem Antrag“, „Ihrer Meldung“ … (after „zu“).
    pub fn yours_dative(self) -> &'static str {
        match self {
            Wording::Antrag => "Ihrem Antrag",
            Wording::Anmeldung => "Ihrer Anmeldung",
            Wording::Bestellung => "Ihrer Bestellung",
            Wording::Meldung => "Ihrer Meldung",
        }
    }

    /// „Ihren Antrag“, „Ihre Meldung“ … (the object of „bearbeitet“).
    pub fn yours_accusative(self) -> &'static str {
        match self {
            Wording::Antrag => "Ihren Antrag",
            other => other.yours(),
        }
    }

    /// „Ihres Antrags“, „Ihrer Meldung“ … (after „der Stand“).
    pub fn yours_genitive(self) -> &'static str {
        match self {
            Wording::Antrag => "Ihres Antrags",
            Wording::Anmeldung => "Ihrer Anmeldung",
            Wording::Bestellung => "Ihrer Bestellung",
            Wording::Meldung => "Ihrer Meldung",
        }
    }

    /// The state in which the authority is done: an application is decided, a report
    /// dealt with.
    pub fn done(self) -> &'static str {
        match self {
            Wording::Meldung | Wording::Bestellung => "Erledigt",
            Wording::Anmeldung => "Bestätigt",
            Wording::Antrag => "Entschieden",
        }
    }

    /// The authority's last letter: a decision (Bescheid); for a report the closing
    /// letter and for a registration its confirmation, which decide nothing and so
    /// cannot be objected to.
    pub fn final_letter(self) -> &'static str {
        match self {
            Wording::Meldung => "Abschlussmitteilung",
            Wording::Anmeldung => "Bestätigung",
            Wording::Antrag | Wording::Bestellung => "Bescheid",
        }
    }

    /// „den Antrag“, „die Meldung“ … (the object of „absenden“).
    pub fn accusative(self) -> &'static str {
        match self {
            Wording::Antrag => "den Antrag",
            Wording::Anmeldung => "die Anmeldung",
            Wording::Bestellung => "die Bestellung",
            Wording::Meldung => "die Meldung",
        }
    }

    /// „er“ or „sie“: the noun again, as the subject.
    pub fn pronoun(self) -> &'static str {
        match self {
            Wording::Antrag => "er",
            _ => "sie",
        }
    }

    /// „ihn“ or „sie“: the noun again, as the object.
    pub fn pronoun_accusative(self) -> &'static str {
        match self {
            Wording::Antrag => "ihn",
            _ => "sie",
        }
    }

    /// The finder's button that starts the form: „Antrag online stellen“, „Online melden“ …
    pub fn start(self) -> &'static str {
        match self {
            Wording::Antrag => "Antrag online stellen",
            Wording::Anmeldung => "Online anmelden",
            Wording::Bestellung => "Online bestellen",
            Wording::Meldung => "Online melden",
        }
    }

    /// The submit button: binding for all but a report.
    pub fn submit(self) -> String {
        match self {
            Wording::Meldung => "Meldung absenden".to_owned(),
            other => format!("{} verbindlich absenden", other.noun()),
        }
    }

    /// All of the words at once, for a page's template.
    pub fn words(self) -> Words {
        Words {
            noun: self.noun(),
            yours: self.yours(),
            yours_dative: self.yours_dative(),
            yours_accusative: self.yours_accusative(),
            yours_genitive: self.yours_genitive(),
            done: self.done(),
            final_letter: self.final_letter(),
            submit: self.submit(),
            accusative: self.accusative(),
            pronoun: self.pronoun(),
            pronoun_accusative: self.pronoun_accusative(),
            start: self.start(),
        }
    }
}

/// A service's words as a template reads them (`{{wording.yours}}` …).
#[derive(Debug, Clone, Serialize)]
pub struct Words {
    pub noun: &'static str,
    pub yours: &'static str,
    pub yours_dative: &'static str,
    pub yours_accusative: &'static str,
    pub yours_genitive: &'static str,
    pub done: &'static str,
    pub final_letter: &'static str,
    pub submit: String,
    pub accusative: &'static str,
    pub pronoun: &'static str,
    pub pronoun_accusative: &'static str,
    pub start: &'static str,
}

#[cfg(test)]
mod tests {
    use super::Wording;

    #[test]
    fn a_report_is_sent_and_dealt_with_not_applied_for_and_decided() {
        assert_eq!(Wording::Meldung.submit(), "Meldung absenden");
        assert_eq!(Wording::Antrag.submit(), "Antrag verbindlich absenden");
        assert_eq!(Wording::Meldung.yours(), "Ihre Meldung");
        assert_eq!(Wording::Meldung.done(), "Erledigt");
        assert_eq!(Wording::Antrag.done(), "Entschieden");
        assert_eq!(Wording::Meldung.final_letter(), "Abschlussmitteilung");
        assert_eq!(Wording::Anmeldung.yours_genitive(), "Ihrer Anmeldung");
        assert_eq!(Wording::Anmeldung.done(), "Bestätigt");
        assert_eq!(Wording::Anmeldung.final_letter(), "Bestätigung");
        assert_eq!(
            Wording::Bestellung.submit(),
            "Bestellung verbindlich absenden"
        );
        assert_eq!(Wording::Meldung.start(), "Online melden");
        assert_eq!(
            (Wording::Antrag.accusative(), Wording::Antrag.pronoun()),
            ("den Antrag", "er")
        );
        assert_eq!(Wording::Antrag.yours_dative(), "Ihrem Antrag");
        let parsed: Wording = serde_json::from_str("\"meldung\"").unwrap();
        assert_eq!(parsed, Wording::Meldung);
    }
}
