//! Passwords (argon2id, `kopplung_web::shell::password`), hashed and checked off the
//! async threads.

use kopplung_web::shell::password::{hash_password, verify_password};

use crate::Error;

/// A valid argon2id hash of a random password, verified against when there is no hash
/// to check, so that the answer takes as long as when there is one.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2mP4lpQ0qZK1sVbQnNkd6cZVdDT4C3m6Hc4P0nZzYzk";

pub async fn hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::Password(e.to_string()))?
        .map_err(|e| Error::Password(e.to_string()))
}

/// Checks `password` against an account's hash and a waiting registration's, always
/// both (the dummy in place of a missing one): the time taken tells nothing about
/// which exist.
pub async fn verify_both(
    password: String,
    account: Option<String>,
    registration: Option<String>,
) -> (bool, bool) {
    tokio::task::spawn_blocking(move || {
        let account_ok = verify_password(&password, account.as_deref().unwrap_or(DUMMY_HASH));
        let registration_ok =
            verify_password(&password, registration.as_deref().unwrap_or(DUMMY_HASH));
        (
            account_ok && account.is_some(),
            registration_ok && registration.is_some(),
        )
    })
    .await
    .unwrap_or((false, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_dummy_is_a_real_hash_and_both_checks_run() {
        // A dummy that did not parse would be refused at once: a timing hint.
        assert!(kopplung_web::shell::password::check_phc(DUMMY_HASH).is_ok());
        let hash = hash("ein-langes-Passwort".into()).await.unwrap();
        assert_eq!(
            verify_both("ein-langes-Passwort".into(), Some(hash.clone()), None).await,
            (true, false)
        );
        assert_eq!(
            verify_both("ein-langes-Passwort".into(), None, Some(hash.clone())).await,
            (false, true)
        );
        assert_eq!(
            verify_both("falsch".into(), Some(hash.clone()), Some(hash)).await,
            (false, false)
        );
    }
}
