//! What the keyring tells others about a staged rotation: the hub's signing certificates
//! with their stages (published at `GET /api/v1/trust`, for vendors to trust the next
//! one before it signs), and the operator's notes on rotations still waiting (for
//! `kopplung check`).

use std::collections::BTreeMap;

use kopplung_core::Stage;
use kopplung_transformers::seal::subject_of;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Keyring;
use crate::keyring::{InForce, fingerprint};

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

/// A time as RFC 3339, for log lines.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn publish(
    certificate: &X509,
    stage: Stage,
    activate_at: Option<OffsetDateTime>,
) -> PublishedCertificate {
    PublishedCertificate {
        stage,
        activate_at,
        subject: subject_of(certificate),
        fingerprint_sha256: fingerprint(certificate),
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

    /// What switched since the last call (or the load): the hub's signing certificate
    /// in force, a procedure's next certificate now sealed for. One line each, for the
    /// log, once: the hub asks after every reload and every few seconds, so a switch
    /// at `activate_at` is seen then, on the clock tests can pause.
    pub fn switches(&self) -> Vec<String> {
        let keys = self.keys();
        let now = InForce::now(&keys, self.clock());
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut lines = Vec::new();
        if now.signer != reported.signer {
            let when = match &keys.next {
                Some((next, rotation)) if fingerprint(next.sealer.certificate()) == now.signer => {
                    rotation
                        .activate_at()
                        .map(|at| format!("activate_at {}", rfc3339(at)))
                        .unwrap_or_default()
                }
                _ => "on reload".to_owned(),
            };
            lines.push(format!(
                "the hub's signing certificate switched ({when}): now signing SHA-256 {}, retired SHA-256 {}",
                now.signer, reported.signer
            ));
        }
        for (id, next) in &now.sealed_for_next {
            if reported.sealed_for_next.get(id) == Some(next) {
                continue;
            }
            let Some(recipient) = keys.recipients.get(id) else {
                continue;
            };
            let files = recipient.certificate_files();
            let file = |(path, _): &(std::path::PathBuf, X509)| path.display().to_string();
            let when = recipient
                .next
                .and_then(|rotation| rotation.activate_at())
                .filter(|at| *at != OffsetDateTime::UNIX_EPOCH)
                .map(|at| format!("activate_at {}", rfc3339(at)))
                .unwrap_or_else(|| "on confirmation".to_owned());
            lines.push(format!(
                "procedure {id}: messages are now sealed for its next certificate {} ({when}), SHA-256 {next}; no longer for {}",
                files.last().map(file).unwrap_or_default(),
                files[..files.len().saturating_sub(1)]
                    .iter()
                    .map(file)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        *reported = now;
        lines
    }

    /// The stage of each certificate that takes part in a staged rotation now, by
    /// owner and name as [`Keyring::certificate_expiries`] lists them: the hub's
    /// `hub.crt` and `next`, a procedure's current and next encryption certificates.
    pub fn certificate_stages(&self) -> BTreeMap<(String, String), Stage> {
        let keys = self.keys();
        let now = self.clock().now();
        let mut stages = BTreeMap::new();
        if let Some((_, rotation)) = &keys.next {
            let (current, next) = rotation.stages(now);
            stages.insert(("hub".to_owned(), "hub.crt".to_owned()), current);
            stages.insert(("hub".to_owned(), "next".to_owned()), next);
        }
        for (id, recipient) in &keys.recipients {
            let Some(rotation) = recipient.next else {
                continue;
            };
            let (current, next) = rotation.stages(now);
            let files = recipient.certificate_files();
            for (n, (path, _)) in files.iter().enumerate() {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let stage = if n + 1 == files.len() { next } else { current };
                stages.insert((id.clone(), file), stage);
            }
        }
        stages
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
                subject_of(next.sealer.certificate())
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
