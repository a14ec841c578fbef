//! The files a transport's configuration names: TLS certificates and keys (relative to
//! the PKI folder) and shared secrets (relative to the data directory). Read when the
//! sink is built, so a hub with an unreadable key does not start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::Error;

fn file_error(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| file_error(path, e.to_string()))
}

/// Reads a file only its owner may read (a key, a secret): anything wider is refused,
/// as the hub's own keys are.
fn read_private(path: &Path) -> Result<Vec<u8>, Error> {
    let mode = std::fs::metadata(path)
        .map_err(|e| file_error(path, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        let shown = mode & 0o777;
        let fix = format!("chmod 600 {}", path.display());
        return Err(file_error(
            path,
            format!("readable by group or others (mode {shown:o}); run: {fix}"),
        ));
    }
    read(path)
}

/// One PEM certificate.
pub(crate) fn certificate(path: &Path) -> Result<X509, Error> {
    X509::from_pem(&read(path)?).map_err(|_| file_error(path, "not a PEM certificate"))
}

/// One PEM private key; its content never appears in an error.
pub(crate) fn private_key(path: &Path) -> Result<PKey<Private>, Error> {
    PKey::private_key_from_pem(&read_private(path)?)
        .map_err(|_| file_error(path, "not a PEM private key (PKCS#8 or traditional)"))
}

/// A shared secret, white space around it trimmed.
pub(crate) fn secret(path: &Path) -> Result<Vec<u8>, Error> {
    let text = read(path)?;
    let text = String::from_utf8(text).map_err(|_| file_error(path, "not UTF-8 text"))?;
    Ok(text.trim().as_bytes().to_vec())
}
