//! How the applicant was identified, as the clerk reads it beside the application: the
//! trust level, the means, who issued the identification and who vouched for it.

use kopplung_core::identity::{Authentication, Means, Voucher};
use kopplung_web::shell::{german_time, iso};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentificationView {
    /// Vertrauensniveau: basis, substanziell, hoch.
    pub level: String,
    pub means: String,
    pub issuer: String,
    pub vouched_by: String,
    /// Whether the hub verified an identity provider's signed assertion.
    pub proven: bool,
    pub at: String,
    pub at_iso: String,
}

/// What the clerk reads; none for an anonymous application.
pub fn view(authentication: Option<&Authentication>) -> Option<IdentificationView> {
    let auth = authentication?;
    let (vouched_by, proven) = match &auth.voucher {
        Voucher::IdentityProvider => (
            "Identitätsanbieter (signierter Nachweis vom Hub geprüft)".to_owned(),
            true,
        ),
        Voucher::Client { client } => (
            format!("Einreichendes System „{client}“ (ohne Nachweis eines Identitätsanbieters)"),
            false,
        ),
    };
    Some(IdentificationView {
        level: auth.level.code().to_owned(),
        means: means_label(auth.means).to_owned(),
        issuer: auth.issuer.clone(),
        vouched_by,
        proven,
        at: german_time(auth.authenticated_at),
        at_iso: iso(auth.authenticated_at),
    })
}

fn means_label(means: Means) -> &'static str {
    match means {
        Means::BenutzernamePasswort => "Benutzername und Passwort",
        Means::ElsterZertifikat => "ELSTER-Zertifikat",
        Means::OnlineAusweis => "Online-Ausweis (eID)",
        Means::EuEid => "eID eines anderen EU-Mitgliedstaats",
        Means::Sonstiges => "anderes Mittel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_core::identity::TrustLevel;
    use time::macros::datetime;

    #[test]
    fn the_clerk_reads_level_means_issuer_and_who_vouched() {
        let mut auth = Authentication {
            level: TrustLevel::Substanziell,
            means: Means::ElsterZertifikat,
            issuer: "https://id.example".into(),
            subject: kopplung_core::identity::Pseudonym::parse("pseudonym").unwrap(),
            authenticated_at: datetime!(2025-06-01 08:30 UTC),
            voucher: Voucher::IdentityProvider,
            assertion_sha256: None,
            assertion: None,
        };
        let shown = view(Some(&auth)).unwrap();
        assert_eq!(shown.level, "substanziell");
        assert_eq!(shown.means, "ELSTER-Zertifikat");
        assert!(shown.proven);
        auth.voucher = Voucher::Client {
            client: "portal".into(),
        };
        let shown = view(Some(&auth)).unwrap();
        assert!(!shown.proven);
        assert!(
            shown.vouched_by.contains("„portal“"),
            "{}",
            shown.vouched_by
        );
        assert_eq!(view(None), None);
    }
}
