//! What the pipeline and the core's services get from the configuration: the router
//! reads `config.rs` and hands down plain values, so neither depends on its shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use kopplung_adapters::Sink;
use kopplung_adapters::amqp::AmqpBroker;
use kopplung_adapters::registry::{BuildContext, Transport};
use kopplung_core::Rotation;
use kopplung_core::events::EventLimits;
use kopplung_pipeline::{Envelope, KeyringConfig, NextSigning, Pkcs12, ProcedureKeys, RetryPolicy};
use kopplung_transformers::Sealer;
use kopplung_transformers::mapping::Behoerde;

use crate::Error;
use crate::config::{self, Config, DeliveryConfig};

/// The keys and certificates the configuration names.
pub fn keyring_config(config: &Config) -> Result<KeyringConfig, Error> {
    let procedures = config
        .routing
        .procedures
        .iter()
        .map(|procedure| {
            let authority =
                config
                    .authority(&procedure.authority)
                    .ok_or_else(|| Error::Config {
                        file: config.pki_dir.clone(),
                        message: format!("unknown authority `{}`", procedure.authority),
                    })?;
            Ok(ProcedureKeys {
                id: procedure.id.clone(),
                envelope: procedure.envelope.map(envelope),
                certificates: procedure.certificate_paths(),
                certificate_next: procedure.certificate_next.clone().map(|file| {
                    (
                        file,
                        Rotation::confirmed_by_vendor(
                            procedure.next_confirmed,
                            procedure.next_activate_at,
                        ),
                    )
                }),
                receipt_certificate: procedure.receipt_certificate.clone(),
                receipt_certificate_next: procedure.receipt_certificate_next.clone(),
                reader: Behoerde {
                    verzeichnisdienst: authority.verzeichnisdienst.clone(),
                    verzeichnisdienst_list_version: authority
                        .verzeichnisdienst_list_version
                        .clone(),
                    kennung: authority.kennung.clone(),
                    name: authority.name.clone(),
                },
                can_fetch: procedure.token.is_given()
                    || matches!(procedure.delivery, DeliveryConfig::Pull(_)),
                fitconnect_subscriber: matches!(procedure.delivery, DeliveryConfig::FitConnect(_)),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(KeyringConfig {
        source: config.source.clone(),
        pki_dir: config.pki_dir.clone(),
        pkcs12: config.file.signing.as_ref().and_then(|s| {
            Some(Pkcs12 {
                file: s.pkcs12.clone()?,
                passphrase_env: s.passphrase_env.clone()?,
            })
        }),
        next_signing: config.file.signing.as_ref().and_then(|s| {
            Some(NextSigning {
                certificate: s.next_certificate.clone()?,
                key: s.next_key.clone()?,
                rotation: Rotation::scheduled(s.activate_at),
            })
        }),
        procedures,
    })
}

/// Loads the hub's signing identity as configured (PEM files or PKCS#12).
pub fn load_sealer(config: &Config) -> Result<Sealer, Error> {
    Ok(kopplung_pipeline::load_sealer(&keyring_config(config)?)?)
}

/// The hub as the author (`autor`) of its messages.
pub fn hub_authority(config: &Config) -> Behoerde {
    let hub = &config.file.hub;
    Behoerde {
        verzeichnisdienst: hub.verzeichnisdienst.clone(),
        verzeichnisdienst_list_version: hub.verzeichnisdienst_list_version.clone(),
        kennung: hub.kennung.clone(),
        name: hub.name.clone(),
    }
}

pub fn envelope(envelope: config::Envelope) -> Envelope {
    match envelope {
        config::Envelope::Cms => Envelope::Cms,
        config::Envelope::Jose => Envelope::Jose,
    }
}

pub fn retry_policy(policy: &config::RetryPolicy) -> RetryPolicy {
    RetryPolicy {
        base_delay_ms: policy.base_delay_ms,
        max_delay_ms: policy.max_delay_ms,
        max_attempts: policy.max_attempts,
    }
}

/// What the dispatcher delivers with under `config`: the procedures' sinks, their
/// limits and retry policies.
pub fn deliveries(
    config: &Config,
    sinks: BTreeMap<String, Arc<dyn Sink>>,
) -> kopplung_pipeline::Deliveries {
    let procedures = &config.routing.procedures;
    kopplung_pipeline::Deliveries {
        sinks,
        max_in_flight: procedures
            .iter()
            .map(|p| (p.id.to_string(), p.max_in_flight()))
            .collect(),
        policies: kopplung_pipeline::RetryPolicies {
            hub: retry_policy(&config.file.delivery),
            procedures: procedures
                .iter()
                .filter_map(|p| p.retry.map(|r| (p.id.to_string(), retry_policy(&r))))
                .collect(),
        },
    }
}

/// One sink per procedure, built by its transport (see `adapters/src/registry.rs`). TLS
/// material and secrets are read (and checked) here, so a hub with an unreadable key
/// does not start, and a reload with one is refused.
pub fn build_sinks(
    config: &Config,
    broker: Option<&Arc<AmqpBroker>>,
) -> Result<BTreeMap<String, Arc<dyn Sink>>, Error> {
    let mut sinks: BTreeMap<String, Arc<dyn Sink>> = BTreeMap::new();
    for procedure in &config.routing.procedures {
        let id = procedure.id.as_str();
        let context = BuildContext {
            procedure: id,
            pki_dir: &config.pki_dir,
            data_dir: &config.data_dir,
            broker,
        };
        let sink = procedure.delivery.build(&context).map_err(|e| match e {
            kopplung_adapters::Error::File { path, message } => Error::Config {
                file: path,
                message: format!("procedure `{id}`: {message}"),
            },
            other => Error::Config {
                file: config.source.clone(),
                message: format!("procedure `{id}`: {other}"),
            },
        })?;
        sinks.insert(id.to_owned(), sink);
    }
    Ok(sinks)
}

/// Per procedure, how long a delivered message may wait for its receipt (procedures
/// without a deadline are left out: never overdue).
pub fn receipt_deadlines(config: &Config) -> kopplung_core::oversight::ReceiptDeadlines {
    kopplung_core::oversight::ReceiptDeadlines::new(config.routing.procedures.iter().filter_map(
        |p| {
            p.receipt_deadline()
                .map(|deadline| (p.id.to_string(), deadline))
        },
    ))
}

/// Per procedure, how often the hub itself resends an overdue message (only those
/// that allow it), and how often to look: a quarter of the shortest of their deadlines,
/// between a second and a minute. `None` if no procedure allows it.
pub fn auto_resends(
    config: &Config,
) -> Option<(std::collections::BTreeMap<String, u32>, std::time::Duration)> {
    let allowed: Vec<_> = config
        .routing
        .procedures
        .iter()
        .filter(|p| p.receipt_auto_resends > 0)
        .filter_map(|p| Some((p, p.receipt_deadline()?)))
        .collect();
    let shortest: time::Duration = allowed.iter().map(|(_, deadline)| *deadline).min()?;
    let every = (shortest / 4_u32).clamp(time::Duration::SECOND, time::Duration::MINUTE);
    let limits = allowed
        .iter()
        .map(|(p, _)| (p.id.to_string(), p.receipt_auto_resends))
        .collect();
    Some((limits, every.unsigned_abs()))
}

/// How far an event's `issued_at` may lie from the hub's clock.
pub fn event_limits(limits: &config::Limits) -> EventLimits {
    EventLimits {
        clock_skew_secs: limits.event_clock_skew_secs,
        max_age_secs: limits.event_max_age_secs,
    }
}
