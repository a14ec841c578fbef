//! The applicant's identification as the message shows it: the stored
//! `Authentication` in the codes and names of the `authentifizierung` block.

use kopplung_core::identity::{Authentication, TrustLevel, Voucher};
use kopplung_transformers::authentifizierung::{
    Authentifizierung, BY_CLIENT, BY_IDENTITY_PROVIDER,
};
use time::format_description::well_known::Rfc3339;

/// The template context's `authentifizierung` of an identified applicant.
pub(crate) fn authentifizierung(authentication: &Authentication) -> Authentifizierung {
    Authentifizierung {
        vertrauensniveau: level_code(authentication.level).to_owned(),
        identifizierungsmittel: authentication.means.code().to_owned(),
        aussteller: authentication.issuer.clone(),
        pseudonym: authentication.subject.to_string(),
        zeitpunkt: authentication
            .authenticated_at
            .format(&Rfc3339)
            .unwrap_or_default(),
        bestaetigt_durch: match authentication.voucher {
            Voucher::IdentityProvider => BY_IDENTITY_PROVIDER,
            Voucher::Client { .. } => BY_CLIENT,
        }
        .to_owned(),
        nachweis_sha256: authentication.assertion_sha256.clone(),
        nachweis: authentication.assertion.clone(),
    }
}

/// The level's code in messages (as in `service.toml` and the intake API).
fn level_code(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basis => "basis",
        TrustLevel::Substanziell => "substanziell",
        TrustLevel::Hoch => "hoch",
    }
}
