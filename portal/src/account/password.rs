//! Passwords: argon2id (the crate's defaults: 19 MiB, 2 passes) with a random salt,
//! hashed off the async threads.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::Error;

/// A valid argon2id hash of a random password, verified against when the address is
/// unknown, so that the answer takes as long as for a known one.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2mP4lpQ0qZK1sVbQnNkd6cZVdDT4C3m6Hc4P0nZzYzk";

pub async fn hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Password(e.to_string()))
    })
    .await
    .map_err(|e| Error::Password(e.to_string()))?
}

pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}
