//! The identity provider's secrets in its data directory, created at first start like the
//! rest of the demo PKI (directory `0700`, files `0600`, never overwritten): the RS256
//! signing key of its ID tokens, published as the JWKS, and the secret that makes each
//! client's subject identifiers unlinkable to the others'.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{Value, json};

use crate::Error;

const SIGNING_KEY: &str = "signing-key.pem";
const SUBJECT_SECRET: &str = "subject-secret";
// RS256 with 2048 bits, as common identity providers use; drawn once, at first start.
const KEY_BITS: u32 = 2048;

/// The keys of a running provider.
pub struct Keys {
    signer: RsassaJwsSigner,
    verifier: RsassaJwsVerifier,
    kid: String,
    jwks: Value,
    subject_secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish()
    }
}

impl Keys {
    /// Reads the keys from `data_dir`, creating what is missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, Error> {
        kopplung_web::files::create_private_dir(data_dir).map_err(io(data_dir))?;
        for wide in
            kopplung_web::files::wider_than_private(data_dir, |_| false).map_err(io(data_dir))?
        {
            tracing::warn!("{wide}");
        }
        let key_path = data_dir.join(SIGNING_KEY);
        if !key_path.exists() {
            let key = Rsa::generate(KEY_BITS)
                .and_then(PKey::from_rsa)
                .and_then(|key| key.private_key_to_pem_pkcs8())
                .map_err(crypto)?;
            kopplung_web::files::write_private_file(&key_path, &key).map_err(io(&key_path))?;
            tracing::info!(path = %key_path.display(), "new ID token signing key");
        }
        let secret_path = data_dir.join(SUBJECT_SECRET);
        if !secret_path.exists() {
            let secret = kopplung_web::shell::random_hex(32).map_err(crypto)?;
            kopplung_web::files::write_private_file(&secret_path, secret.as_bytes())
                .map_err(io(&secret_path))?;
        }
        let pem = std::fs::read(&key_path).map_err(io(&key_path))?;
        let subject_secret = std::fs::read_to_string(&secret_path)
            .map_err(io(&secret_path))?
            .trim()
            .to_owned();
        if subject_secret.len() < 32 {
            return Err(Error::Key(format!(
                "{}: the secret is too short; delete the file to have a new one drawn",
                secret_path.display()
            )));
        }
        Self::from_pem(&pem, subject_secret)
            .map_err(|e| Error::Key(format!("{}: {e}", key_path.display())))
    }

    fn from_pem(pem: &[u8], subject_secret: String) -> Result<Self, String> {
        let key: PKey<Private> = PKey::private_key_from_pem(pem).map_err(|e| e.to_string())?;
        let rsa = key
            .rsa()
            .map_err(|_| "the signing key must be an RSA key".to_owned())?;
        let b64 = |n: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
        let (n, e) = (b64(rsa.n()), b64(rsa.e()));
        // RFC 7638: the thumbprint of the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()));
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
        }]});
        let public = key.public_key_to_pem().map_err(|e| e.to_string())?;
        let mut signer = RS256.signer_from_pem(pem).map_err(|e| e.to_string())?;
        signer.set_key_id(kid.clone());
        let verifier = RS256
            .verifier_from_pem(&public)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            signer,
            verifier,
            kid,
            jwks,
            subject_secret,
        })
    }

    /// The JSON Web Key Set with the public key.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A compact JWS (RS256, with `kid`) of `claims`.
    pub fn sign(&self, claims: serde_json::Map<String, Value>) -> Result<String, Error> {
        let payload = JwtPayload::from_map(claims).map_err(jose)?;
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(self.kid.clone());
        jwt::encode_with_signer(&payload, &header, &self.signer).map_err(jose)
    }

    /// The claims of a JWS this provider signed, expired or not (an `id_token_hint`).
    pub fn verify(&self, token: &str) -> Option<serde_json::Map<String, Value>> {
        let (payload, _) = jwt::decode_with_verifier(token, &self.verifier).ok()?;
        Some(payload.claims_set().clone())
    }

    /// The pseudonymous subject of `identity` for `client`: the hex SHA-256 of the
    /// provider's secret, the identity and the client. Stable for one client, unlinkable
    /// across clients without the secret.
    pub fn subject(&self, identity: &str, client: &str) -> String {
        let input = format!("{}\n{identity}\n{client}", self.subject_secret);
        hex::encode(openssl::sha::sha256(input.as_bytes()))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn crypto(e: openssl::error::ErrorStack) -> Error {
    Error::Key(e.to_string())
}

fn jose(e: josekit::JoseError) -> Error {
    Error::Key(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_created_private_once_and_sign_what_they_verify() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("idp");
        let keys = Keys::load_or_create(&data).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(data.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(SIGNING_KEY), 0o600);
        assert_eq!(mode(SUBJECT_SECRET), 0o600);
        assert_eq!(
            std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let again = Keys::load_or_create(&data).unwrap();
        assert_eq!(keys.kid, again.kid);
        assert_eq!(
            keys.subject("erika", "portal"),
            again.subject("erika", "portal")
        );
        assert_ne!(
            keys.subject("erika", "portal"),
            keys.subject("erika", "other")
        );
        assert_eq!(keys.subject("erika", "portal").len(), 64);

        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), json!("x"));
        let token = keys.sign(claims).unwrap();
        assert_eq!(again.verify(&token).unwrap()["sub"], "x");
        assert!(keys.verify(&format!("{token}x")).is_none());
        assert_eq!(keys.jwks()["keys"][0]["kid"], json!(keys.kid));
    }
}
