//! Bearer tokens of the hub's API (clients, procedures, operators), kept only as SHA-256
//! hashes.

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::{HeaderMap, header};
use kopplung_core::identity::TrustLevel;
use openssl::sha::sha256;

use crate::Error;
use crate::config::ClientConfig;

#[derive(Debug, Clone, Default)]
pub struct Clients {
    clients: Vec<(String, [u8; 32])>,
    /// What each client may assert on its own (`asserts_up_to`).
    asserts: BTreeMap<String, TrustLevel>,
}

impl Clients {
    /// Reads every client's token hash; token files are relative to `data_dir`.
    pub fn load(configs: &[ClientConfig], data_dir: &Path) -> Result<Self, Error> {
        let mut clients = Vec::new();
        for client in configs {
            let hash = match (&client.token.sha256, &client.token.file) {
                (Some(hex_hash), _) => {
                    let bytes = hex::decode(hex_hash).unwrap_or_default();
                    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Config {
                        file: data_dir.to_owned(),
                        message: format!("client `{}`: bad token_sha256", client.id),
                    })?
                }
                (None, Some(file)) => {
                    let path = data_dir.join(file);
                    let token = std::fs::read_to_string(&path).map_err(|e| Error::Config {
                        file: path.clone(),
                        message: format!("token of client `{}`: {e}", client.id),
                    })?;
                    let token = token.trim();
                    if token.len() < 16 {
                        return Err(Error::Config {
                            file: path,
                            message: format!(
                                "token of client `{}` is shorter than 16 characters",
                                client.id
                            ),
                        });
                    }
                    sha256(token.as_bytes())
                }
                (None, None) => {
                    return Err(Error::Config {
                        file: data_dir.to_owned(),
                        message: format!("client `{}` has no token", client.id),
                    });
                }
            };
            clients.push((client.id.clone(), hash));
        }
        let asserts = configs
            .iter()
            .filter_map(|c| Some((c.id.clone(), c.asserts_up_to?)))
            .collect();
        Ok(Self { clients, asserts })
    }

    /// The highest trust level `client` may assert on its own, if any.
    pub fn asserts_up_to(&self, client: &str) -> Option<TrustLevel> {
        self.asserts.get(client).copied()
    }

    /// The client whose token the request carries.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<&str> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        self.authenticate_token(token)
    }

    /// The client whose token this is (surrounding white space ignored), e.g. a token
    /// typed into the admin console's login form.
    pub fn authenticate_token(&self, token: &str) -> Option<&str> {
        let presented = sha256(token.trim().as_bytes());
        // Compare against every client in constant time, so timing reveals nothing.
        let mut found = None;
        for (id, hash) in &self.clients {
            if openssl::memcmp::eq(hash, &presented) {
                found = Some(id.as_str());
            }
        }
        found
    }
}
