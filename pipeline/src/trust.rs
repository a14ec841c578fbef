//! What the keyring tells others about a staged rotation: the hub's signing certificates
//! with their stages (published at `GET /api/v1/trust`, for vendors to trust the next
//! one before it signs), and the operator's notes on rotations still waiting (for
//! `kopplung check`).

use kopplung_core::Stage;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509;
use time::OffsetDateTime;

use crate::Keyring;

/// One of the hub's signing certificates as published.
#[derive(Debug, Clone)]
pub struct PublishedCertificate {
    pub stage: Stage,
    /// When a published certificate takes over, if scheduled.
    pub activate_at: Option<OffsetDateTime>,
    pub subject: String,
    /// SHA-256 of the DER, upper-case hex pairs joined by `:` (as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub fingerprint_sha256: String,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub pem: String,
}

/// An ASN.1 time as a date, via its distance from the epoch.
fn to_datetime(at: &Asn1TimeRef) -> Option<OffsetDateTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(at).ok()?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The subject as `CN=…, O=…`.
fn subject(certificate: &X509) -> String {
    certificate
        .subject_name()
        .entries()
        .filter_map(|entry| {
            let key = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn publish(
    certificate: &X509,
    stage: Stage,
    activate_at: Option<OffsetDateTime>,
) -> PublishedCertificate {
    let fingerprint = certificate
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    PublishedCertificate {
        stage,
        activate_at,
        subject: subject(certificate),
        fingerprint_sha256: fingerprint,
        not_before: to_datetime(certificate.not_before()),
        not_after: to_datetime(certificate.not_after()),
        pem: certificate
            .to_pem()
            .map(|pem| String::from_utf8_lossy(&pem).into_owned())
            .unwrap_or_default(),
    }
}

impl Keyring {
    /// The hub's signing certificates with their stages now: the one in force, and
    /// during a rotation the next (published, then active) beside the current (then
    /// retired: what it signed still verifies).
    pub fn published(&self) -> Vec<PublishedCertificate> {
        let keys = self.keys();
        let current = keys.current.sealer.certificate();
        match &keys.next {
            None => vec![publish(current, Stage::Active, None)],
            Some((next, rotation)) => {
                let (now_current, now_next) = rotation.stages(self.clock().now());
                vec![
                    publish(current, now_current, None),
                    publish(next.sealer.certificate(), now_next, rotation.activate_at()),
                ]
            }
        }
    }

    /// Rotations that wait for someone, for the operator: a procedure's next
    /// certificate the vendor has not confirmed (the hub keeps sealing for the current
    /// one) or that could not be used (expired, untrusted, wrong profile), a next
    /// signing certificate of the hub with no activation time.
    pub fn rotation_warnings(&self) -> Vec<String> {
        let keys = self.keys();
        let mut warnings = Vec::new();
        if let Some((next, rotation)) = &keys.next
            && rotation.activate_at().is_none()
        {
            warnings.push(format!(
                "the hub's next signing certificate ({}) is published but has no activate_at: it does not sign yet",
                subject(next.sealer.certificate())
            ));
        }
        for (id, recipient) in &keys.recipients {
            let Some(rotation) = recipient.next else {
                continue;
            };
            let file = recipient
                .certificate_files()
                .last()
                .map(|(path, _)| path.display().to_string())
                .unwrap_or_default();
            // Found now, not when the switch blocks the procedure.
            if let Err(reason) = keys.choose_certificate(recipient, true) {
                warnings.push(format!(
                    "procedure {id}: the next certificate cannot be used: {reason}"
                ));
            }
            if rotation.activate_at().is_none() {
                warnings.push(format!(
                    "procedure {id}: the next certificate {file} is not yet confirmed (next_confirmed): messages stay sealed for the current one"
                ));
            }
        }
        warnings
    }
}
