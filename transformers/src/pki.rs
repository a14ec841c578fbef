//! A demo PKI: one CA, the hub's signing certificate and one encryption certificate per
//! procedure, all EC P-256 (BSI TR-02102-1). For demos and tests only: a real
//! deployment uses certificates from the authorities' own PKI.
//! `issue_rsa_recipient` adds RSA encryption certificates for procedures on the `jose`
//! profile (RSA-OAEP-256).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

use crate::Error;

/// The files of a PKI folder.
#[derive(Debug, Clone)]
pub struct PkiLayout {
    pub dir: PathBuf,
}

impl PkiLayout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn hub_cert(&self) -> PathBuf {
        self.dir.join("hub.crt")
    }
    pub fn hub_key(&self) -> PathBuf {
        self.dir.join("hub.key")
    }
    pub fn procedure_cert(&self, id: &str) -> PathBuf {
        self.dir.join("procedures").join(format!("{id}.crt"))
    }
    pub fn procedure_key(&self, id: &str) -> PathBuf {
        self.dir.join("procedures").join(format!("{id}.key"))
    }
    /// The procedure's signing certificate, for its receipts.
    pub fn procedure_signing_cert(&self, id: &str) -> PathBuf {
        self.dir
            .join("procedures")
            .join(format!("{id}-signatur.crt"))
    }
    pub fn procedure_signing_key(&self, id: &str) -> PathBuf {
        self.dir
            .join("procedures")
            .join(format!("{id}-signatur.key"))
    }
    /// The encryption certificate of procedure `id`'s FIT-Connect destination.
    pub fn destination_cert(&self, id: &str) -> PathBuf {
        self.dir.join("fitconnect").join(format!("{id}.crt"))
    }
    pub fn destination_key(&self, id: &str) -> PathBuf {
        self.dir.join("fitconnect").join(format!("{id}.key"))
    }
}

/// What a certificate's key is for (its key usage).
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Ca,
    /// Signs messages (and receipts).
    Signer,
    /// Receives encrypted messages (ECDH key agreement).
    Recipient,
    /// Receives encrypted messages of the `jose` profile (RSA-OAEP key transport).
    RsaRecipient,
}

/// When a certificate is valid, in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// From a day ago, so that small clock differences between hosts do not matter, to
    /// `days` from now.
    pub fn days(days: i64) -> Self {
        Self::relative(-1, days)
    }

    /// From `from_days` to `to_days` relative to now (negative: in the past).
    pub fn relative(from_days: i64, to_days: i64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self {
            not_before: now + from_days * 86_400,
            not_after: now + to_days * 86_400,
        }
    }
}

/// Creates whatever is missing of the demo PKI and keeps what exists, so it can run
/// again after procedures were added. Returns the files it wrote.
pub fn init_demo_pki(layout: &PkiLayout, procedures: &[String]) -> Result<Vec<PathBuf>, Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    private_dir(&layout.dir.join("procedures")).map_err(io(&layout.dir))?;
    let mut written = Vec::new();

    let (ca_cert, ca_key) = if layout.ca_cert().is_file() && layout.ca_key().is_file() {
        load_ca(layout)?
    } else {
        let key = new_key()?;
        let cert = issue(
            "kopplung Demo-CA",
            &key,
            None,
            Role::Ca,
            Validity::days(3650),
        )?;
        write_pair(layout.ca_cert(), layout.ca_key(), &cert, &key, &mut written)?;
        (cert, key)
    };

    let mut leaves = vec![(
        "kopplung Hub".to_owned(),
        layout.hub_cert(),
        layout.hub_key(),
        Role::Signer,
    )];
    for id in procedures {
        leaves.push((
            format!("Fachverfahren {id}"),
            layout.procedure_cert(id),
            layout.procedure_key(id),
            Role::Recipient,
        ));
    }
    let ca = (&ca_cert, &ca_key);
    for (name, cert, key, role) in leaves {
        issue_leaf(ca, &name, role, (cert, key), new_key, &mut written)?;
    }
    Ok(written)
}

/// Creates an RSA encryption certificate for procedure `id` (key usage
/// `keyEncipherment`, issued by the demo CA of `layout`), as the `jose` profile needs
/// (RSA-OAEP-256, at least 3072 bits) — unless `procedures/<id>.crt` and `.key` exist
/// already. The CA must exist (`init_demo_pki`). Returns the files it wrote.
pub fn issue_rsa_recipient(layout: &PkiLayout, id: &str, bits: u32) -> Result<Vec<PathBuf>, Error> {
    let files = (layout.procedure_cert(id), layout.procedure_key(id));
    let name = format!("Fachverfahren {id}");
    issue_from_ca(layout, files, &name, Role::RsaRecipient, || {
        let dir = layout.dir.join("procedures");
        private_dir(&dir).map_err(|source| Error::Io { path: dir, source })?;
        let rsa = Rsa::generate(bits).map_err(crypto("generating an RSA key"))?;
        PKey::from_rsa(rsa).map_err(crypto("wrapping a key"))
    })
}

/// Creates the encryption key of procedure `id`'s FIT-Connect destination (RSA,
/// 4096 bits as FIT-Connect demands, key usage `keyEncipherment`, issued by the demo
/// CA) unless `fitconnect/<id>.crt` and `.key` exist. Returns the files it wrote.
pub fn issue_destination_key(layout: &PkiLayout, id: &str) -> Result<Vec<PathBuf>, Error> {
    let files = (layout.destination_cert(id), layout.destination_key(id));
    // A common name has at most 64 characters.
    let name: String = format!("FIT-Connect {id}").chars().take(64).collect();
    issue_from_ca(layout, files, &name, Role::RsaRecipient, || {
        let dir = layout.dir.join("fitconnect");
        private_dir(&dir).map_err(|source| Error::Io { path: dir, source })?;
        let bits = crate::fitconnect::MIN_DESTINATION_RSA_BITS;
        let rsa = Rsa::generate(bits).map_err(crypto("generating an RSA key"))?;
        PKey::from_rsa(rsa).map_err(crypto("wrapping a key"))
    })
}

/// Issues a procedure's signing certificate for its receipts (EC P-256, key usage
/// digitalSignature) from the demo CA, if it does not exist yet.
pub fn issue_procedure_signer(layout: &PkiLayout, id: &str) -> Result<Vec<PathBuf>, Error> {
    let files = (
        layout.procedure_signing_cert(id),
        layout.procedure_signing_key(id),
    );
    issue_from_ca(
        layout,
        files,
        &format!("{id} (Signatur)"),
        Role::Signer,
        new_key,
    )
}

/// Issues a certificate for a key from `new_key` by the demo CA, unless both `files`
/// (certificate, key) exist already. Returns the files it wrote.
fn issue_from_ca(
    layout: &PkiLayout,
    (cert_path, key_path): (PathBuf, PathBuf),
    name: &str,
    role: Role,
    new_key: impl FnOnce() -> Result<PKey<Private>, Error>,
) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    if cert_path.is_file() && key_path.is_file() {
        return Ok(written);
    }
    let (ca_cert, ca_key) = load_ca(layout)?;
    let files = (cert_path, key_path);
    issue_leaf(
        (&ca_cert, &ca_key),
        name,
        role,
        files,
        new_key,
        &mut written,
    )?;
    Ok(written)
}

/// Issues a demo certificate (two years) for a key from `new_key` by the CA and writes
/// both to `files` (certificate, key), adding them to `written`; nothing when both
/// exist already.
fn issue_leaf(
    ca: (&X509, &PKey<Private>),
    name: &str,
    role: Role,
    (cert_path, key_path): (PathBuf, PathBuf),
    new_key: impl FnOnce() -> Result<PKey<Private>, Error>,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    if cert_path.is_file() && key_path.is_file() {
        return Ok(());
    }
    let key = new_key()?;
    let cert = issue(name, &key, Some(ca), role, Validity::days(730))?;
    write_pair(cert_path, key_path, &cert, &key, written)
}

/// Issues a certificate for `key` from the demo CA of `layout`, valid as `validity` says:
/// for certificates the demo PKI does not make itself (an expired or a rotated one, a
/// hub key of another kind).
pub fn issue_from_demo_ca(
    layout: &PkiLayout,
    common_name: &str,
    key: &PKey<Private>,
    role: Role,
    validity: Validity,
) -> Result<X509, Error> {
    let (ca_cert, ca_key) = load_ca(layout)?;
    issue(common_name, key, Some((&ca_cert, &ca_key)), role, validity)
}

/// A new P-256 key with a self-signed certificate that no CA vouches for: a stranger's
/// identity (the conformance kit signs with it to see a receiver refuse it).
pub fn self_signed(
    common_name: &str,
    role: Role,
    validity: Validity,
) -> Result<(X509, PKey<Private>), Error> {
    let key = new_key()?;
    let certificate = issue(common_name, &key, None, role, validity)?;
    Ok((certificate, key))
}

/// A new P-256 key with a certificate from the demo CA of `layout`.
pub fn issue_key_from_demo_ca(
    layout: &PkiLayout,
    common_name: &str,
    role: Role,
    validity: Validity,
) -> Result<(X509, PKey<Private>), Error> {
    let key = new_key()?;
    let certificate = issue_from_demo_ca(layout, common_name, &key, role, validity)?;
    Ok((certificate, key))
}

/// The demo CA's certificate and key, to issue further certificates.
fn load_ca(layout: &PkiLayout) -> Result<(X509, PKey<Private>), Error> {
    let ca_cert = crate::seal::load_certificate(&layout.ca_cert())?;
    let ca_pem = std::fs::read(layout.ca_key()).map_err(|source| Error::Io {
        path: layout.ca_key(),
        source,
    })?;
    let ca_key = PKey::private_key_from_pem(&ca_pem).map_err(crypto("reading the CA key"))?;
    Ok((ca_cert, ca_key))
}

fn crypto(context: &str) -> impl FnOnce(openssl::error::ErrorStack) -> Error + use<> {
    let context = context.to_owned();
    move |source| Error::Crypto { context, source }
}

fn new_key() -> Result<PKey<Private>, Error> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(crypto("EC group"))?;
    let ec = EcKey::generate(&group).map_err(crypto("generating a key"))?;
    PKey::from_ec_key(ec).map_err(crypto("wrapping a key"))
}

fn issue(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    role: Role,
    validity: Validity,
) -> Result<X509, Error> {
    let c = |what: &str| crypto(&format!("issuing certificate for {common_name}: {what}"));
    let mut name = X509NameBuilder::new().map_err(c("name"))?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "kopplung Demo")
        .map_err(c("name"))?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .map_err(c("name"))?;
    let name = name.build();

    let mut builder = X509Builder::new().map_err(c("builder"))?;
    builder.set_version(2).map_err(c("version"))?;
    let mut serial = BigNum::new().map_err(c("serial"))?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(c("serial"))?;
    let serial = serial.to_asn1_integer().map_err(c("serial"))?;
    builder.set_serial_number(&serial).map_err(c("serial"))?;
    builder.set_subject_name(&name).map_err(c("subject"))?;
    let issuer_name = issuer.map(|(cert, _)| cert.subject_name()).unwrap_or(&name);
    builder.set_issuer_name(issuer_name).map_err(c("issuer"))?;
    builder.set_pubkey(key).map_err(c("key"))?;
    let not_before = Asn1Time::from_unix(validity.not_before).map_err(c("validity"))?;
    let not_after = Asn1Time::from_unix(validity.not_after).map_err(c("validity"))?;
    builder.set_not_before(&not_before).map_err(c("validity"))?;
    builder.set_not_after(&not_after).map_err(c("validity"))?;

    let usage = match role {
        Role::Ca => {
            builder
                .append_extension(
                    BasicConstraints::new()
                        .critical()
                        .ca()
                        .build()
                        .map_err(c("ext"))?,
                )
                .map_err(c("ext"))?;
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
        }
        Role::Signer => KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build(),
        Role::Recipient => KeyUsage::new().critical().key_agreement().build(),
        Role::RsaRecipient => KeyUsage::new().critical().key_encipherment().build(),
    }
    .map_err(c("key usage"))?;
    builder.append_extension(usage).map_err(c("ext"))?;
    let ski = SubjectKeyIdentifier::new()
        .build(&builder.x509v3_context(issuer.map(|(cert, _)| &**cert), None))
        .map_err(c("subject key id"))?;
    builder.append_extension(ski).map_err(c("ext"))?;
    if let Some((ca, _)) = issuer {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(Some(ca), None))
            .map_err(c("authority key id"))?;
        builder.append_extension(aki).map_err(c("ext"))?;
    }
    let signing_key = issuer.map(|(_, k)| k).unwrap_or(key);
    builder
        .sign(signing_key, MessageDigest::sha256())
        .map_err(c("signing"))?;
    Ok(builder.build())
}

fn write_pair(
    cert_path: PathBuf,
    key_path: PathBuf,
    cert: &X509,
    key: &PKey<Private>,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(crypto("encoding key"))?;
    let cert_pem = cert.to_pem().map_err(crypto("encoding certificate"))?;
    write_file(&key_path, &key_pem, 0o600)?;
    write_file(&cert_path, &cert_pem, 0o644)?;
    written.push(cert_path);
    written.push(key_path);
    Ok(())
}

/// The PKI folders hold private keys: `0700` from the start.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(content).map_err(io)?;
    file.sync_all().map_err(io)
}
