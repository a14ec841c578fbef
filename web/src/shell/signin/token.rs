//! Signing in with a secret token (the admin console, the mapping workbench): the one
//! login form and the one refusal both front ends show.

use serde::Deserialize;

use std::net::IpAddr;

use super::SignInForm;
use crate::Refused;
use crate::client::limit_address;
use crate::limiter::wait_in_minutes;

/// The login form of a UI whose users sign in with a token.
#[derive(Debug, Deserialize)]
pub struct TokenLoginForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub csrf: String,
}

impl TokenLoginForm {
    /// The token typed, if any.
    pub fn token(&self) -> Option<&str> {
        Some(self.token.trim()).filter(|t| !t.is_empty())
    }
}

impl SignInForm for TokenLoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    /// A token names no one, so each address counts as an account of its own (attempts
    /// in flight, growing waits), besides the coarse cap per address.
    fn account(&self, base: &str, address: IpAddr) -> String {
        format!("{base}@{}", limit_address(address))
    }

    /// A token names no one, so only the address can be meant.
    fn refused(refused: &Refused) -> String {
        format!(
            "Zu viele fehlgeschlagene Anmeldeversuche. Die Anmeldung von diesem Rechner aus ist vorübergehend gesperrt. Bitte versuchen Sie es in {} erneut.",
            wait_in_minutes(refused.wait)
        )
    }
}
