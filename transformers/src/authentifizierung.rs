//! Who applied and how they were identified, as a message carries it: the
//! `authentifizierung` block of the XML (`kb:AuthentifizierungType`; template context key
//! `authentifizierung`), and, for the `jose` profile, an Identification Report in
//! FIT-Connect's `authenticationInformation` (see [`crate::jose`]).
//!
//! The hub's core knows the applicant's `Authentication`; this module knows only the
//! codes and texts a message shows, so that rendering stays free of the domain.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `bestaetigtDurch`: the identity provider's signed assertion, verified by the hub.
pub const BY_IDENTITY_PROVIDER: &str = "identitaetsanbieter";
/// `bestaetigtDurch`: a client configured to assert levels on its own; no proof.
pub const BY_CLIENT: &str = "client";

/// `type` of the `authenticationInformation` entry (FIT-Connect metadata schema).
pub const REPORT_TYPE: &str = "identificationReport";
/// `version` of that entry: the version of the Identification Report schema used.
pub const REPORT_VERSION: &str = "2.0.0";
/// The Identification Report schema the report follows (its `$schema`).
pub const REPORT_SCHEMA: &str = "https://raw.githubusercontent.com/Governikus/IdentificationReport/2.0.0/schema/identification-report.json";
/// The schema of the report's `subjectRef` (`restrictedId`: the pseudonym), which
/// readers such as Governikus' own library need to parse it.
pub const SUBJECT_REF_SCHEMA: &str = "https://raw.githubusercontent.com/Governikus/IdentificationReport/2.0.0/schema/eid-authentication.json";

/// The applicant's identification in a message. Field names are the XML element names
/// (and the template's vocabulary, `docs/mappings.md`); absent = anonymous submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authentifizierung {
    /// `basis`, `substanziell` or `hoch`.
    pub vertrauensniveau: String,
    /// `benutzername-passwort`, `elster-zertifikat`, `online-ausweis`, `eu-eid` or
    /// `sonstiges`.
    pub identifizierungsmittel: String,
    /// The identity provider's issuer URL; the client's id for a client's own assertion.
    pub aussteller: String,
    /// The pseudonymous subject the issuer gave.
    pub pseudonym: String,
    /// When the applicant authenticated, RFC 3339.
    pub zeitpunkt: String,
    /// [`BY_IDENTITY_PROVIDER`] or [`BY_CLIENT`].
    #[serde(rename = "bestaetigtDurch")]
    pub bestaetigt_durch: String,
    /// SHA-256 (hex) of the assertion as received; `None` for a client's own.
    // Always serialized (as null): the template's strict mode needs the key.
    #[serde(rename = "nachweisSHA256", default)]
    pub nachweis_sha256: Option<String>,
    /// The assertion itself (a compact JWS), where the hub forwards it.
    #[serde(default)]
    pub nachweis: Option<String>,
}

impl Authentifizierung {
    /// The Identification Report (schema [`REPORT_SCHEMA`]) of this identification for
    /// one message: what the hub signs into the `jose` profile's
    /// `authenticationInformation`. `contextInformation` binds it to the message and
    /// application, so it cannot be moved to another; `documentReferences` names the
    /// assertion by its hash. A client's own assertion is reported with `idStatus`
    /// `unknown`: the hub has only the client's word.
    pub fn identification_report(
        &self,
        message_uuid: &str,
        application_id: &str,
        report_time: &str,
    ) -> Value {
        let vouched = self.bestaetigt_durch == BY_IDENTITY_PROVIDER;
        let mut report = json!({
            "$schema": REPORT_SCHEMA,
            "reportId": message_uuid,
            "serverIdentity": self.aussteller,
            "reportTime": report_time,
            "identificationTime": self.zeitpunkt,
            "idStatus": if vouched { "success" } else { "unknown" },
            "idStatement": if vouched {
                "Signierte Anmeldebestätigung des Identitätsanbieters, vom Hub geprüft."
            } else {
                "Vom Client selbst bestätigt; der Hub hat keinen Nachweis des Identitätsanbieters."
            },
            "trustFramework": self.identifizierungsmittel,
            "subjectRefType": SUBJECT_REF_SCHEMA,
            "subjectRef": {"restrictedId": self.pseudonym},
            "contextInformation": [
                format!("nachrichtenUUID:{message_uuid}"),
                format!("antragsID:{application_id}"),
            ],
            "levelOfAssurance": level_of_assurance(&self.vertrauensniveau),
        });
        if let (Some(digest), Value::Object(fields)) = (&self.nachweis_sha256, &mut report) {
            fields.insert(
                "documentReferences".into(),
                json!([{
                    "documentId": "nachweis",
                    "documentName": "ID-Token",
                    "digestAlgorithm": "SHA-256",
                    "digest": digest,
                }]),
            );
        }
        report
    }
}

/// The eIDAS level-of-assurance URI of a trust level (as the Identification Report and
/// OpenID Connect's `acr` name them); `unknown` for anything else.
pub fn level_of_assurance(vertrauensniveau: &str) -> &'static str {
    match vertrauensniveau {
        "basis" => "http://eidas.europa.eu/LoA/low",
        "substanziell" => "http://eidas.europa.eu/LoA/substantial",
        "hoch" => "http://eidas.europa.eu/LoA/high",
        _ => "unknown",
    }
}

/// One entry of FIT-Connect's `authenticationInformation`: the signed report.
pub fn authentication_information(report_jwt: &str) -> Value {
    json!({"type": REPORT_TYPE, "version": REPORT_VERSION, "content": report_jwt})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid() -> Authentifizierung {
        Authentifizierung {
            vertrauensniveau: "hoch".into(),
            identifizierungsmittel: "online-ausweis".into(),
            aussteller: "https://idp.example".into(),
            pseudonym: "a1b2".into(),
            zeitpunkt: "2026-01-01T11:58:00Z".into(),
            bestaetigt_durch: BY_IDENTITY_PROVIDER.into(),
            nachweis_sha256: Some("ab".repeat(32)),
            nachweis: None,
        }
    }

    #[test]
    fn the_report_is_bound_to_the_message_and_names_the_assertion() {
        let report = eid().identification_report("m-1", "a-1", "2026-01-01T12:00:00Z");
        assert_eq!(
            report["levelOfAssurance"],
            "http://eidas.europa.eu/LoA/high"
        );
        assert_eq!(report["idStatus"], "success");
        assert_eq!(report["identificationTime"], "2026-01-01T11:58:00Z");
        assert_eq!(report["subjectRef"]["restrictedId"], "a1b2");
        assert_eq!(report["subjectRefType"], SUBJECT_REF_SCHEMA);
        assert_eq!(
            report["contextInformation"],
            json!(["nachrichtenUUID:m-1", "antragsID:a-1"])
        );
        assert_eq!(report["documentReferences"][0]["digest"], "ab".repeat(32));
    }

    #[test]
    fn a_clients_own_assertion_is_not_reported_as_success() {
        let own = Authentifizierung {
            vertrauensniveau: "basis".into(),
            bestaetigt_durch: BY_CLIENT.into(),
            nachweis_sha256: None,
            ..eid()
        };
        let report = own.identification_report("m", "a", "t");
        assert_eq!(report["idStatus"], "unknown");
        assert_eq!(report["levelOfAssurance"], "http://eidas.europa.eu/LoA/low");
        assert!(report.get("documentReferences").is_none());
    }

    #[test]
    fn the_context_names_match_the_xml() {
        let value = serde_json::to_value(eid()).unwrap();
        for key in [
            "vertrauensniveau",
            "identifizierungsmittel",
            "aussteller",
            "pseudonym",
            "zeitpunkt",
            "bestaetigtDurch",
            "nachweisSHA256",
            "nachweis",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
    }
}
