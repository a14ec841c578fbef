//! Every secret file the configuration names (tokens, passwords, shared secrets), for
//! `kopplung tokens init`: one list here, next to the types that name them, so that a
//! new key with a file is not forgotten by the set-up.

use std::path::PathBuf;

use kopplung_adapters::registry::{DeliveryConfig, Transport};

use super::Config;

/// What a secret file is for: it decides what the operator is told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A bearer token: its holder presents it, the hub compares its SHA-256.
    Token,
    /// A clerk's password for the clerk inbox.
    Password,
    /// A shared secret both sides sign with (HMAC of pull callbacks).
    Shared,
    /// A key only the hub holds (it signs FIT-Connect's access tokens).
    Key,
}

/// One secret file and the key that names it.
#[derive(Debug, Clone)]
pub struct SecretFile {
    /// Relative to the data directory, as the configuration gives it.
    pub file: PathBuf,
    pub kind: SecretKind,
    /// The key that names it: `[[client]] demo: token_file`.
    pub key: String,
}

impl Config {
    /// Every secret file of `kopplung.toml` and the routing table, in the files' order,
    /// each once (several keys may share a file; the first names it).
    pub fn secret_files(&self) -> Vec<SecretFile> {
        let mut all = Vec::new();
        let mut add = |file: &PathBuf, kind, key: String| {
            if !all.iter().any(|s: &SecretFile| &s.file == file) {
                all.push(SecretFile {
                    file: file.clone(),
                    kind,
                    key,
                });
            }
        };
        let file = &self.file;
        if let Some(token) = &file.monitoring.token_file {
            add(token, SecretKind::Token, "[monitoring] token_file".into());
        }
        if let Some(admin) = &file.admin {
            add(
                &admin.token_file,
                SecretKind::Token,
                "[admin] token_file".into(),
            );
            if let Some(auditor) = &admin.auditor_token_file {
                let key = "[admin] auditor_token_file".to_string();
                add(auditor, SecretKind::Token, key);
            }
            if let Some(engineer) = &admin.engineer_token_file {
                let key = "[admin] engineer_token_file".to_string();
                add(engineer, SecretKind::Token, key);
            }
        }
        for client in &file.clients {
            if let Some(token) = &client.token.file {
                let key = format!("[[client]] {}: token_file", client.id);
                add(token, SecretKind::Token, key);
            }
        }
        if let Some(fitconnect) = &file.fitconnect {
            let key = "[fitconnect] token_key_file".to_string();
            add(&fitconnect.token_key_file, SecretKind::Key, key);
            for client in &fitconnect.clients {
                if let Some(secret) = &client.secret.file {
                    let key = format!("[[fitconnect.client]] {}: token_file", client.id);
                    add(secret, SecretKind::Token, key);
                }
            }
        }
        for clerk in &file.clerks {
            if let Some(password) = &clerk.password_file {
                let key = format!("[[clerk]] {}: password_file", clerk.id);
                add(password, SecretKind::Password, key);
            }
        }
        for procedure in &self.routing.procedures {
            let id = &procedure.id;
            if let Some(token) = &procedure.token.file {
                let key = format!("[[procedure]] {id}: token_file");
                add(token, SecretKind::Token, key);
            }
            if let Some(token) = procedure.delivery.api_token().and_then(|t| t.file.as_ref()) {
                let key = format!("[[procedure]] {id}: [procedure.delivery] token_file");
                add(token, SecretKind::Token, key);
            }
            if let DeliveryConfig::Pull(pull) = &procedure.delivery
                && let Some(secret) = &pull.callback_secret_file
            {
                let key = format!("[[procedure]] {id}: [procedure.delivery] callback_secret_file");
                add(secret, SecretKind::Shared, key);
            }
        }
        all
    }
}
