//! Secret tokens — of sessions, of CSRF checks, of links sent by mail: how they are
//! drawn, what is stored of them, and how they are compared.

/// `n` random bytes as hex, from OpenSSL's CSPRNG.
pub fn random_hex(n: usize) -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = vec![0u8; n];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What is stored of a secret token: its SHA-256 (hex). Whoever reads the store cannot
/// use it.
pub fn token_id(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

/// Whether `text` looks like a token of [`random_hex`]`(32)`: 64 hex digits. Anything
/// else in a cookie is not looked up.
pub fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Constant-time comparison of two tokens; an empty token matches nothing.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_stored_as_their_hash_and_compared_whole() {
        let token = random_hex(32).expect("random");
        assert!(is_token(&token), "{token}");
        assert_ne!(token, random_hex(32).expect("random"));
        assert!(!is_token("abc") && !is_token(&"g".repeat(64)));
        assert_eq!(token_id(&token).len(), 64);
        assert_ne!(token_id(&token), token);
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", ""));
    }
}
