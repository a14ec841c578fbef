//! Prometheus metrics of the router, served at `/metrics`.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    pub registry: Registry,
    /// Mapping reloads by outcome (`applied`, `refused`).
    pub mapping_reloads: IntCounterVec,
    /// Reloads of keys and certificates by outcome.
    pub key_reloads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let mapping_reloads = IntCounterVec::new(
            Opts::new(
                "kopplung_mapping_reloads_total",
                "Reloads of the mappings, by outcome (applied, refused).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(mapping_reloads.clone()))?;
        let key_reloads = IntCounterVec::new(
            Opts::new(
                "kopplung_key_reloads_total",
                "Reloads of the signing key and certificates, by outcome (applied, refused).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(key_reloads.clone()))?;
        key_reloads.with_label_values(&["applied"]);
        key_reloads.with_label_values(&["refused"]);
        // Both series exist from the start, so an alert on `refused` sees a 0 first.
        mapping_reloads.with_label_values(&["applied"]);
        mapping_reloads.with_label_values(&["refused"]);
        Ok(Self {
            registry,
            mapping_reloads,
            key_reloads,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
