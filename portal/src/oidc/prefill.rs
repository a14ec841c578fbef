//! What an identity provider says about the citizen, as the values of the shared form
//! groups `person` and `anschrift` (mappings/groups.toml): the ID token's or the
//! userinfo endpoint's `given_name`, `family_name`, `birthdate` and `address`.

use openidconnect::LocalizedClaim;
use openidconnect::core::{CoreIdTokenClaims, CoreUserInfoClaims};
use serde_json::{Map, Value, json};

/// The claims found, as given.
#[derive(Default)]
pub struct Found {
    given_name: Option<String>,
    family_name: Option<String>,
    birthdate: Option<String>,
    street_address: Option<String>,
    postal_code: Option<String>,
    locality: Option<String>,
}

/// The unlocalized value, else any.
fn localized<T: std::ops::Deref<Target = String>>(
    claim: Option<&LocalizedClaim<T>>,
) -> Option<String> {
    let claim = claim?;
    claim
        .get(None)
        .or_else(|| claim.iter().next().map(|(_, value)| value))
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn plain<T: std::ops::Deref<Target = String>>(value: Option<&T>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The same claims read from an ID token's or a userinfo answer's standard claims.
macro_rules! found_of {
    ($claims:expr) => {{
        let claims = $claims;
        let address = claims.address();
        Found {
            given_name: localized(claims.given_name()),
            family_name: localized(claims.family_name()),
            birthdate: plain(claims.birthdate()),
            street_address: plain(address.and_then(|a| a.street_address.as_ref())),
            postal_code: plain(address.and_then(|a| a.postal_code.as_ref())),
            locality: plain(address.and_then(|a| a.locality.as_ref())),
        }
    }};
}

impl Found {
    pub fn of_claims(claims: &CoreIdTokenClaims) -> Self {
        found_of!(claims)
    }

    pub fn of_user_info(claims: &CoreUserInfoClaims) -> Self {
        found_of!(claims)
    }

    /// Whether every claim is there (else the userinfo endpoint is asked).
    pub fn complete(&self) -> bool {
        [
            &self.given_name,
            &self.family_name,
            &self.birthdate,
            &self.street_address,
            &self.postal_code,
            &self.locality,
        ]
        .iter()
        .all(|claim| claim.is_some())
    }

    /// Fills what is missing from `other`.
    pub fn complete_with(&mut self, other: &Found) {
        let pairs = [
            (&mut self.given_name, &other.given_name),
            (&mut self.family_name, &other.family_name),
            (&mut self.birthdate, &other.birthdate),
            (&mut self.street_address, &other.street_address),
            (&mut self.postal_code, &other.postal_code),
            (&mut self.locality, &other.locality),
        ];
        for (mine, theirs) in pairs {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }

    /// `{"person": {...}, "anschrift": {...}}` with the fields the claims give; `None`
    /// if they give none.
    pub fn groups(&self) -> Option<Value> {
        let mut person = Map::new();
        let put = |group: &mut Map<String, Value>, name: &str, value: Option<String>| {
            if let Some(value) = value {
                group.insert(name.to_owned(), json!(value));
            }
        };
        put(&mut person, "familienname", self.family_name.clone());
        put(&mut person, "vornamen", self.given_name.clone());
        put(
            &mut person,
            "geburtsdatum",
            self.birthdate.as_deref().and_then(german_date),
        );
        let mut anschrift = Map::new();
        if let Some(street) = &self.street_address {
            let (strasse, hausnummer, zusatz) = split_street(street);
            put(&mut anschrift, "strasse", Some(strasse));
            put(&mut anschrift, "hausnummer", hausnummer);
            put(&mut anschrift, "adresszusatz", zusatz);
        }
        put(&mut anschrift, "postleitzahl", self.postal_code.clone());
        put(&mut anschrift, "ort", self.locality.clone());
        let mut groups = Map::new();
        if !person.is_empty() {
            groups.insert("person".into(), Value::Object(person));
        }
        if !anschrift.is_empty() {
            groups.insert("anschrift".into(), Value::Object(anschrift));
        }
        (!groups.is_empty()).then_some(Value::Object(groups))
    }
}

/// `1964-08-12` (OpenID Connect) as `12.08.1964` (the forms' date); a year alone or
/// anything else: nothing.
fn german_date(date: &str) -> Option<String> {
    let parts: Vec<&str> = date.split('-').collect();
    match parts[..] {
        [year, month, day]
            if year.len() == 4
                && month.len() == 2
                && day.len() == 2
                && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Some(format!("{day}.{month}.{year}"))
        }
        _ => None,
    }
}

/// `street_address` as street, house number (the last word if it starts with a digit)
/// and the further lines as Adresszusatz.
fn split_street(street_address: &str) -> (String, Option<String>, Option<String>) {
    let mut lines = street_address
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    let zusatz = (!rest.is_empty()).then(|| rest.join(", "));
    match first.rsplit_once(' ') {
        Some((street, number)) if number.starts_with(|c: char| c.is_ascii_digit()) => {
            (street.trim().to_owned(), Some(number.to_owned()), zusatz)
        }
        _ => (first.to_owned(), None, zusatz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_the_shared_groups() {
        let found = Found {
            given_name: Some("Erika".into()),
            family_name: Some("Mustermann".into()),
            birthdate: Some("1964-08-12".into()),
            street_address: Some("Königsbrücker Straße 12a\nHinterhaus".into()),
            postal_code: Some("01099".into()),
            locality: Some("Dresden".into()),
        };
        assert!(found.complete());
        assert_eq!(
            found.groups().unwrap(),
            json!({
                "person": {"familienname": "Mustermann", "vornamen": "Erika", "geburtsdatum": "12.08.1964"},
                "anschrift": {"strasse": "Königsbrücker Straße", "hausnummer": "12a", "adresszusatz": "Hinterhaus", "postleitzahl": "01099", "ort": "Dresden"},
            })
        );
    }

    #[test]
    fn what_is_missing_is_left_out_or_completed() {
        let mut found = Found {
            family_name: Some("Mustermann".into()),
            birthdate: Some("1964".into()),
            street_address: Some("Am Markt".into()),
            ..Found::default()
        };
        assert!(!found.complete());
        assert_eq!(
            found.groups().unwrap(),
            json!({"person": {"familienname": "Mustermann"}, "anschrift": {"strasse": "Am Markt"}})
        );
        found.complete_with(&Found {
            family_name: Some("Anders".into()),
            given_name: Some("Erika".into()),
            ..Found::default()
        });
        assert_eq!(found.groups().unwrap()["person"]["vornamen"], "Erika");
        assert_eq!(
            found.groups().unwrap()["person"]["familienname"],
            "Mustermann"
        );
        assert_eq!(Found::default().groups(), None);
    }
}
