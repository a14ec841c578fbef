//! The fictitious test identities a demo citizen may sign in as, and the means of
//! identification with the trust level each reaches — as in the test environments of
//! the Servicekonten (BundID), where a tester picks a person and a means.

use serde::Serialize;
use serde_json::{Value, json};

/// A trust level as OpenID Connect carries it: the eIDAS levels of assurance in `acr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Level {
    Low,
    Substantial,
    High,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Low, Level::Substantial, Level::High];

    /// The `acr` value (eIDAS level of assurance URI).
    pub fn acr(self) -> &'static str {
        match self {
            Self::Low => "http://eidas.europa.eu/LoA/low",
            Self::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Self::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.acr() == acr)
    }

    /// The Vertrauensniveau as citizens read it in the portal.
    pub fn german(self) -> &'static str {
        match self {
            Self::Low => "basis",
            Self::Substantial => "substanziell",
            Self::High => "hoch",
        }
    }
}

/// A means of identification (Identifizierungsmittel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Means {
    Password,
    ElsterCertificate,
    IdCard,
}

impl Means {
    pub const ALL: [Means; 3] = [Means::Password, Means::ElsterCertificate, Means::IdCard];

    /// The value in the login form.
    pub fn code(self) -> &'static str {
        match self {
            Self::Password => "benutzername-passwort",
            Self::ElsterCertificate => "elster-zertifikat",
            Self::IdCard => "online-ausweis",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|means| means.code() == code)
    }

    /// The `amr` value (RFC 8176): password, software key, hardware key.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::ElsterCertificate => "swk",
            Self::IdCard => "hwk",
        }
    }

    pub fn level(self) -> Level {
        match self {
            Self::Password => Level::Low,
            Self::ElsterCertificate => Level::Substantial,
            Self::IdCard => Level::High,
        }
    }

    pub fn german(self) -> &'static str {
        match self {
            Self::Password => "Benutzername und Passwort",
            Self::ElsterCertificate => "ELSTER-Zertifikat",
            Self::IdCard => "Online-Ausweis",
        }
    }

    /// What the login page says the means is.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Password => "Die Anmeldedaten Ihres Servicekontos.",
            Self::ElsterCertificate => {
                "Die Zertifikatsdatei Ihres ELSTER-Kontos mit ihrem Passwort."
            }
            Self::IdCard => {
                "Personalausweis, eID-Karte oder elektronischer Aufenthaltstitel mit PIN, über die AusweisApp."
            }
        }
    }
}

/// A fictitious citizen. The data is made up (Erika Mustermann is the sample person of
/// the German ID card); any likeness to a real person is chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Stable id, part of the pseudonymous `sub`.
    pub id: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    /// `YYYY-MM-DD`.
    pub birthdate: &'static str,
    pub street_address: &'static str,
    pub postal_code: &'static str,
    pub locality: &'static str,
}

pub const IDENTITIES: [Identity; 5] = [
    Identity {
        id: "erika-mustermann",
        given_name: "Erika",
        family_name: "Mustermann",
        birthdate: "1964-08-12",
        street_address: "Heidestraße 17",
        postal_code: "51147",
        locality: "Köln",
    },
    Identity {
        id: "jana-richter",
        given_name: "Jana",
        family_name: "Richter",
        birthdate: "1988-03-21",
        street_address: "Königsbrücker Straße 42",
        postal_code: "01099",
        locality: "Dresden",
    },
    Identity {
        id: "matthias-krause",
        given_name: "Matthias",
        family_name: "Krause",
        birthdate: "1975-11-02",
        street_address: "Karl-Liebknecht-Straße 88",
        postal_code: "04275",
        locality: "Leipzig",
    },
    Identity {
        id: "sophie-lehmann",
        given_name: "Sophie",
        family_name: "Lehmann",
        birthdate: "2001-06-30",
        street_address: "Straße der Nationen 12",
        postal_code: "09111",
        locality: "Chemnitz",
    },
    // A name beyond ASCII and Latin-1 (DIN 91379), for the hub's text checks.
    Identity {
        id: "zoe-simkova",
        given_name: "Zoë",
        family_name: "Šimková",
        birthdate: "1993-01-15",
        street_address: "Berliner Straße 3",
        postal_code: "02826",
        locality: "Görlitz",
    },
];

impl Identity {
    pub fn find(id: &str) -> Option<&'static Identity> {
        IDENTITIES.iter().find(|identity| identity.id == id)
    }

    /// `12.08.1964`
    pub fn german_birthdate(&self) -> String {
        let mut parts = self.birthdate.split('-');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(year), Some(month), Some(day)) => format!("{day}.{month}.{year}"),
            _ => self.birthdate.to_owned(),
        }
    }

    /// The claims a scope releases: `profile` (names, birth date) and `address`.
    pub fn claims(&self, scopes: &[String]) -> serde_json::Map<String, Value> {
        let mut claims = serde_json::Map::new();
        if scopes.iter().any(|s| s == "profile") {
            claims.insert("given_name".into(), json!(self.given_name));
            claims.insert("family_name".into(), json!(self.family_name));
            claims.insert("birthdate".into(), json!(self.birthdate));
        }
        if scopes.iter().any(|s| s == "address") {
            claims.insert(
                "address".into(),
                json!({
                    "street_address": self.street_address,
                    "postal_code": self.postal_code,
                    "locality": self.locality,
                    "country": "DE",
                }),
            );
        }
        claims
    }
}

/// The lowest level that satisfies `acr_values` (space-separated, in order of
/// preference): eIDAS levels include those below them, so any requested level is
/// reached by every means at or above the lowest one requested. Values this provider
/// does not know are ignored (OpenID Connect Core 1.0, 3.1.2.1: voluntary).
pub fn required_level(acr_values: Option<&str>) -> Option<Level> {
    acr_values?.split(' ').filter_map(Level::from_acr).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_ask_for_the_lowest_known_level() {
        assert_eq!(required_level(None), None);
        assert_eq!(required_level(Some("urn:other")), None);
        assert_eq!(
            required_level(Some("http://eidas.europa.eu/LoA/high")),
            Some(Level::High)
        );
        assert_eq!(
            required_level(Some(
                "http://eidas.europa.eu/LoA/high urn:x http://eidas.europa.eu/LoA/substantial"
            )),
            Some(Level::Substantial)
        );
        assert!(Means::IdCard.level() >= Level::Substantial);
        assert!(Means::Password.level() < Level::Substantial);
        for means in Means::ALL {
            assert_eq!(Means::from_code(means.code()), Some(means));
        }
    }

    #[test]
    fn scopes_release_their_claims() {
        let erika = Identity::find("erika-mustermann").unwrap();
        assert!(erika.claims(&["openid".into()]).is_empty());
        let profile = erika.claims(&["openid".into(), "profile".into()]);
        assert_eq!(profile["birthdate"], "1964-08-12");
        assert!(!profile.contains_key("address"));
        let address = erika.claims(&["address".into()]);
        assert_eq!(address["address"]["postal_code"], "51147");
        assert_eq!(erika.german_birthdate(), "12.08.1964");
    }
}
