//! The keys and ids of the domain, each a type that can only hold a valid value: a
//! `ServiceKey` is 14 digits whatever path it came by, so nothing downstream checks again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a text is not a valid key or id; says what it should look like (never echoes a
/// long input back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is no {what}: {rule}")]
pub struct InvalidId {
    pub what: &'static str,
    pub rule: &'static str,
    shown: String,
}

impl InvalidId {
    fn new(what: &'static str, rule: &'static str, input: &str) -> Self {
        let shown: String = input.chars().take(40).collect();
        Self { what, rule, shown }
    }
}

fn digits(input: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    made_of(input, len, |b| b.is_ascii_digit())
}

/// `input` has a length in `len` (bytes) and only bytes that are `allowed`.
fn made_of(input: &str, len: std::ops::RangeInclusive<usize>, allowed: fn(u8) -> bool) -> bool {
    len.contains(&input.len()) && input.bytes().all(allowed)
}

/// `FromStr` through the type's own `parse`, and `Display` as the value it holds: the same
/// for text keys and UUID ids.
macro_rules! parsed_and_shown {
    ($name:ident) => {
        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(input: &str) -> Result<Self, InvalidId> {
                Self::parse(input)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $rule:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                let valid: fn(&str) -> bool = $valid;
                if valid(input) {
                    Ok(Self(input.to_owned()))
                } else {
                    Err(InvalidId::new($what, $rule, input))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        parsed_and_shown!($name);

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(
    /// A service's key in the Leistungskatalog (LeiKa): 14 digits.
    ServiceKey,
    "LeiKa key",
    "14 digits",
    |s| digits(s, 14..=14)
);

text_id!(
    /// The Amtlicher Regionalschlüssel of a municipality: 12 digits.
    Ars,
    "ARS",
    "12 digits (Amtlicher Regionalschlüssel of a municipality)",
    |s| digits(s, 12..=12)
);

text_id!(
    /// A prefix of ARS codes, as routes use it (`14612`: every municipality of Dresden):
    /// 1 to 12 digits.
    ArsPrefix,
    "ARS prefix",
    "1 to 12 digits",
    |s| digits(s, 1..=12)
);

text_id!(
    /// A specialist procedure (Fachverfahren) of the routing table: lowercase letters,
    /// digits and `-`, at most 64.
    ProcedureId,
    "procedure id",
    "1 to 64 lowercase letters, digits and `-`",
    |s| made_of(s, 1..=64, |b| b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || b == b'-')
);

text_id!(
    /// One hub instance on a shared store, the same across its restarts (kept in its
    /// data directory): 1 to 80 ASCII letters, digits, `-`, `_` and `.`. Never a `/`, so
    /// the [`InstanceId::lease_prefix`] of one instance is no prefix of another's tokens.
    InstanceId,
    "instance id",
    "1 to 80 ASCII letters, digits, `-`, `_` and `.`",
    |s| made_of(s, 1..=80, |b| b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'_' | b'.'))
);

impl InstanceId {
    /// A new id, `kopplung-<uuid>`, for an instance's first start.
    pub fn generate() -> Self {
        Self(format!("kopplung-{}", Uuid::new_v4()))
    }

    /// What every lease token of this instance begins with: its id and a `/`.
    pub fn lease_prefix(&self) -> String {
        format!("{}/", self.0)
    }

    /// A new lease token of this instance (`<id>/<unique>`): whose claim it is can be read
    /// from the token alone.
    pub fn new_lease(&self) -> String {
        format!("{}/{}", self.0, Uuid::new_v4())
    }
}

impl ArsPrefix {
    /// Whether the municipality `ars` lies in this prefix.
    pub fn covers(&self, ars: &Ars) -> bool {
        ars.as_str().starts_with(self.as_str())
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7: index inserts land at the end).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(input)
                    .map(Self)
                    .map_err(|_| InvalidId::new($what, "a UUID", input))
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        parsed_and_shown!($name);
    };
}

uuid_id!(
    /// An application: the API's handle, AMQP `correlation_id`.
    ApplicationId,
    "application id"
);

uuid_id!(
    /// A message to a procedure (`nachrichtenUUID`): fixed at intake, the same on every
    /// retry, so receivers de-duplicate by it.
    MessageId,
    "message id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_valid_values() {
        assert!(ServiceKey::parse("99999001000000").is_ok());
        for bad in [
            "",
            "9999900100000",
            "999990010000001",
            "9999900100000x",
            " 99999001000000",
        ] {
            let error = ServiceKey::parse(bad).unwrap_err();
            assert_eq!(error.what, "LeiKa key", "{bad:?}");
        }
        assert!(Ars::parse("146120000000").is_ok());
        assert!(Ars::parse("14612").is_err());
        let dresden = ArsPrefix::parse("14612").unwrap();
        assert!(dresden.covers(&Ars::parse("146120000000").unwrap()));
        assert!(!dresden.covers(&Ars::parse("145110000000").unwrap()));
        assert!(ArsPrefix::parse("").is_err());
        assert!(ProcedureId::parse("dresden-maengel").is_ok());
        for bad in [
            "",
            "Dresden",
            "dresden_maengel",
            "dresden maengel",
            &"a".repeat(65),
        ] {
            assert!(ProcedureId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_instance_id_has_no_slash_and_prefixes_only_its_own_tokens() {
        let one = InstanceId::parse("kopplung-1").unwrap();
        let longer = InstanceId::parse("kopplung-10").unwrap();
        assert!(one.new_lease().starts_with(&one.lease_prefix()));
        assert!(InstanceId::parse(InstanceId::generate().as_str()).is_ok());
        assert!(!longer.new_lease().starts_with(&one.lease_prefix()));
        for bad in ["", "a/b", "a b", "ä", &"x".repeat(81)] {
            assert!(InstanceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_rule_and_cut_long_inputs() {
        let error = ProcedureId::parse(&"X".repeat(500)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("lowercase letters"), "{text}");
        assert!(text.len() < 150, "{text}");
    }

    #[test]
    fn ids_go_through_serde_and_refuse_invalid_values() {
        let key: ServiceKey = serde_json::from_str("\"99999001000000\"").unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"99999001000000\"");
        let error = serde_json::from_str::<ServiceKey>("\"abc\"").unwrap_err();
        assert!(error.to_string().contains("14 digits"), "{error}");
        let id = ApplicationId::new();
        let back: ApplicationId =
            serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        assert_eq!(back, id);
        assert!(MessageId::parse("kein-uuid").is_err());
    }
}
