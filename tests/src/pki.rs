//! Certificates the tests need beyond the demo PKI: expired ones, rotated ones. Issued
//! by the demo CA of a hub's PKI folder (`kopplung_transformers::pki`).

use std::path::Path;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};

pub use kopplung_transformers::pki::Role;
use kopplung_transformers::pki::{PkiLayout, Validity, issue_from_demo_ca};

/// Writes `<pki>/<stem>.crt` and `.key` (mode 0600): a new EC P-256 key with a
/// certificate for `role` from the CA in `pki`, valid from `from_days` to `to_days`
/// relative to now.
pub fn issue(pki: &Path, stem: &str, common_name: &str, role: Role, from_days: i64, to_days: i64) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key: PKey<Private> = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let cert = issue_from_demo_ca(
        &PkiLayout::new(pki),
        common_name,
        &key,
        role,
        Validity::relative(from_days, to_days),
    )
    .unwrap();
    let cert_path = pki.join(format!("{stem}.crt"));
    let key_path = pki.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The operator lists Dresden's next encryption certificate: issued by the demo CA in
/// `pki` (key beside it) and named as `certificate_next` in the routing table `routing`.
pub fn list_dresden_next_certificate(pki: &Path, routing: &Path) {
    issue(
        pki,
        "procedures/dresden-maengel-next",
        "Fachverfahren dresden-maengel 2027",
        Role::Recipient,
        0,
        730,
    );
    let text = std::fs::read_to_string(routing).unwrap().replace(
        "certificate = \"procedures/dresden-maengel.crt\"",
        "certificate = \"procedures/dresden-maengel.crt\"\ncertificate_next = \"procedures/dresden-maengel-next.crt\"",
    );
    std::fs::write(routing, text).unwrap();
}
