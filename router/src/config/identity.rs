//! `[[identity_provider]]`: the issuers whose assertions identify an applicant at
//! intake. What an entry holds and checks of itself is the identity crate's; here only
//! what concerns the list: no id and no issuer twice.

use std::collections::BTreeSet;

pub use kopplung_identity::ProviderConfig as IdentityProviderConfig;

use super::problems::Findings;

pub(super) fn check_identity_providers(
    providers: &[IdentityProviderConfig],
    findings: &mut Findings,
) {
    let mut ids = BTreeSet::new();
    let mut issuers = BTreeSet::new();
    for provider in providers {
        if !ids.insert(provider.id.as_str()) {
            findings.list(
                "identity_provider",
                format!("identity provider `{}` is defined twice", provider.id),
            );
        }
        if !issuers.insert(provider.issuer.as_str()) {
            findings.entry(
                "identity_provider",
                &provider.id,
                "issuer",
                format!("`{}` is trusted by another entry already", provider.issuer),
            );
        }
        for (key, message) in provider.problems() {
            findings.entry("identity_provider", &provider.id, key, message);
        }
    }
}
