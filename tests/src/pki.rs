//! Certificates the tests need beyond the demo PKI: expired ones, rotated ones. Issued
//! by the demo CA of a hub's PKI folder with the openssl crate.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::KeyUsage;
use openssl::x509::{X509, X509Builder, X509NameBuilder};

pub enum Usage {
    /// A procedure's encryption certificate.
    KeyAgreement,
    /// The hub's signing certificate.
    Signature,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Writes `<pki>/<stem>.crt` and `.key` (mode 0600): a new EC P-256 key with a
/// certificate from the CA in `pki`, valid from `from_days` to `to_days` relative to now.
pub fn issue(
    pki: &Path,
    stem: &str,
    common_name: &str,
    usage: Usage,
    from_days: i64,
    to_days: i64,
) {
    let ca_cert = X509::from_pem(&std::fs::read(pki.join("ca.crt")).unwrap()).unwrap();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(pki.join("ca.key")).unwrap()).unwrap();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key: PKey<Private> = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(ca_cert.subject_name()).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(now() + from_days * 86_400).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now() + to_days * 86_400).unwrap())
        .unwrap();
    let usage = match usage {
        Usage::KeyAgreement => KeyUsage::new().critical().key_agreement().build(),
        Usage::Signature => KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build(),
    }
    .unwrap();
    builder.append_extension(usage).unwrap();
    builder.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert = builder.build();
    let cert_path = pki.join(format!("{stem}.crt"));
    let key_path = pki.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
