//! Passwords — of the clerks (inbox) and of the citizens' accounts (portal): argon2id
//! with the crate's defaults (RFC 9106 / OWASP: 19 MiB, 2 passes) and a random 16-byte
//! salt from OpenSSL, kept as PHC strings. Hashing takes a core for a moment: callers
//! on async threads use `spawn_blocking`.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::Error;

/// Passwords are at least this long (clerks' from files, citizens' accounts).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The PHC string of `password`.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| Error::Password(e.to_string()))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Password(e.to_string()))
}

/// Checks that `phc` is an argon2id PHC string this build can verify.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the algorithm is `{}`, not argon2id",
            hash.algorithm.as_str()
        ));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("the PHC string has no salt or no hash".into());
    }
    Ok(())
}

/// Whether `password` matches the PHC string (with the parameters stored in it).
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify_as_argon2id() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        check_phc(&phc).expect("valid");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(check_phc("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA").is_err());
        assert!(check_phc("plain").is_err());
    }
}
