//! `[[procedure]]` of the routing table: the specialist procedures, how their messages
//! are sealed and by which transport (`[procedure.delivery]`) they travel.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kopplung_adapters::registry::{ApiToken, CheckContext, DeliveryConfig, Transport};
use kopplung_core::ProcedureId;
use serde::Deserialize;

use super::access::check_token;
use super::delivery::RetryPolicy;
use super::problems::Findings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureConfig {
    pub id: ProcedureId,
    pub authority: String,
    /// How the message is protected; every transport that seals needs one.
    #[serde(default)]
    pub envelope: Option<Envelope>,
    /// The procedure's encryption certificate, relative to the PKI folder.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Several certificates with overlapping validity, for rotation: each message is
    /// sealed for the newest one that is valid now.
    #[serde(default)]
    pub certificates: Vec<PathBuf>,
    /// The procedure's signing certificate, against which its receipts are verified
    /// (relative to the PKI folder). Without it, receipts are refused.
    #[serde(default)]
    pub receipt_certificate: Option<PathBuf>,
    /// Staged rotation: the procedure's next encryption certificate. Published at once,
    /// sealed for only once the vendor confirmed it holds the key (`next_confirmed`)
    /// and `next_activate_at`, if given, has passed.
    #[serde(default)]
    pub certificate_next: Option<PathBuf>,
    /// The vendor confirmed that the procedure decrypts with `certificate_next`.
    #[serde(default)]
    pub next_confirmed: bool,
    /// When the confirmed next certificate takes over (RFC 3339); at once without it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_activate_at: Option<time::OffsetDateTime>,
    /// The procedure's next signing certificate: during its rotation receipts signed
    /// with either are accepted.
    #[serde(default)]
    pub receipt_certificate_next: Option<PathBuf>,
    pub delivery: DeliveryConfig,
    /// This procedure's retry policy; `[delivery]` of kopplung.toml otherwise.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Deliveries to this procedure at once: a slow procedure holds at most this many
    /// of the hub's delivery slots, so the others go on. Without it, the transport's
    /// default (see [`ProcedureConfig::max_in_flight`]).
    #[serde(default, rename = "max_in_flight")]
    pub max_in_flight_given: Option<u32>,
    /// How long a delivered message may wait for the procedure's receipt before it is
    /// overdue (seconds; 0: never). Without it, the transport's default
    /// (`Transport::default_receipt_deadline_secs`).
    #[serde(default)]
    pub receipt_deadline_secs: Option<u64>,
    /// How often the hub itself sends an overdue message again, with its message id
    /// (0: never; the operator resends). Only for receivers that de-duplicate.
    #[serde(default)]
    pub receipt_auto_resends: u32,
    /// The procedure's bearer token for the hub's API (hex SHA-256, or a file relative
    /// to the data directory): with it, it fetches attachments by claim check. A pull
    /// procedure has its token in `[delivery]`.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The accounting (HKR) procedure that books the fees paid for this procedure's
    /// applications: payment records go there. Without it, to this procedure itself.
    #[serde(default)]
    pub accounting: Option<ProcedureId>,
    /// The procedure is a FIT-Connect destination: senders submit to it through the hub.
    #[serde(default)]
    pub fitconnect: Option<super::DestinationConfig>,
}

/// The highest `max_in_flight`: a procedure's share of the outbox's delivery slots.
pub const MAX_IN_FLIGHT: u32 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// CMS SignedData (ECDSA) inside AuthEnvelopedData (ECDH, AES-256-GCM).
    Cms,
    /// JWS (ES256) inside a compact JWE (RSA-OAEP-256, A256GCM), FIT-Connect style.
    Jose,
}

impl ProcedureConfig {
    /// Deliveries to this procedure at once: its own `max_in_flight`, or its transport's
    /// default (hundreds for a broker, a few for an HTTP receiver).
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight_given
            .unwrap_or_else(|| self.delivery.default_max_in_flight())
    }

    /// How long a delivered message may wait for its receipt; `None`: never overdue.
    pub fn receipt_deadline(&self) -> Option<time::Duration> {
        let secs = self
            .receipt_deadline_secs
            .unwrap_or_else(|| self.delivery.default_receipt_deadline_secs());
        (secs > 0).then(|| time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
    }

    /// The certificate files, relative to the PKI folder.
    pub fn certificate_paths(&self) -> Vec<PathBuf> {
        self.certificate
            .iter()
            .chain(self.certificates.iter())
            .cloned()
            .collect()
    }

    /// Every problem of this procedure, its transport's included.
    fn check(
        &self,
        authorities: &BTreeSet<&str>,
        transports: &CheckContext<'_>,
        findings: &mut Findings,
    ) {
        let id = self.id.as_str();
        let mut found = |key: &str, message: String| findings.entry("procedure", id, key, message);
        let sealed_for = self.envelope.is_some()
            || !self.certificate_paths().is_empty()
            || self.certificate_next.is_some();
        if !self.delivery.sealed() {
            if sealed_for {
                let why = match self.delivery.transport() {
                    "fitconnect" => {
                        "what it collects is encrypted with FIT-Connect's own scheme for the certificate of its [procedure.delivery]"
                    }
                    _ => "it is read in the clerk inbox",
                };
                found(
                    "envelope",
                    format!(
                        "the hub seals nothing for a {} procedure ({why}); it takes no envelope and no certificate",
                        self.delivery.transport()
                    ),
                );
            }
        } else {
            if self.envelope.is_none() {
                found("envelope", "give `envelope` (cms or jose)".into());
            }
            if self.certificate_paths().is_empty() {
                found("certificate", "give `certificate` or `certificates`".into());
            }
        }
        if self.certificate_next.is_none()
            && (self.next_confirmed || self.next_activate_at.is_some())
        {
            found(
                "certificate_next",
                "next_confirmed and next_activate_at concern a next certificate: give certificate_next".into(),
            );
        }
        if self
            .max_in_flight_given
            .is_some_and(|n| n == 0 || n > MAX_IN_FLIGHT)
        {
            found("max_in_flight", format!("must be 1 to {MAX_IN_FLIGHT}"));
        }
        if self
            .receipt_deadline_secs
            .is_some_and(|secs| secs > 366 * 24 * 3600)
        {
            found(
                "receipt_deadline_secs",
                "must be at most a year (0: never overdue)".into(),
            );
        }
        if self.receipt_auto_resends > 10 {
            found("receipt_auto_resends", "must be 0 to 10".into());
        } else if self.receipt_auto_resends > 0 && self.receipt_deadline().is_none() {
            found(
                "receipt_auto_resends",
                "needs a receipt deadline (receipt_deadline_secs above 0)".into(),
            );
        }
        if !authorities.contains(self.authority.as_str()) {
            found(
                "authority",
                format!("unknown authority `{}`", self.authority),
            );
        }
        // Whatever the transport: an AMQP or HTTP procedure may not give both either.
        check_token(&self.token, false, |key, message| {
            found(key, message.into())
        });
        if let Some(retry) = &self.retry {
            retry.check_backoff(|key, message| found(&format!("retry.{key}"), message));
        }
        for problem in self.delivery.validate(transports) {
            found(&format!("delivery.{}", problem.key), problem.message);
        }
    }
}

/// Checks the procedures against the authorities and the hub's transports; returns
/// their ids.
pub(super) fn check_procedures<'a>(
    procedures: &'a [ProcedureConfig],
    authorities: &BTreeSet<&str>,
    transports: &CheckContext<'_>,
    findings: &mut Findings,
) -> BTreeSet<&'a str> {
    let ids = findings.ids("procedure", procedures, |p| p.id.as_str());
    for procedure in procedures {
        procedure.check(authorities, transports, findings);
        let Some(accounting) = &procedure.accounting else {
            continue;
        };
        let message = if accounting == &procedure.id {
            Some("names the procedure itself; leave it out to book here".to_owned())
        } else if !ids.contains(accounting.as_str()) {
            Some(format!("unknown procedure `{accounting}`"))
        } else {
            None
        };
        if let Some(message) = message {
            findings.entry("procedure", procedure.id.as_str(), "accounting", message);
        }
    }
    ids
}
