//! Retention (DSGVO): deletes personal data a configured number of days after an
//! application's final state, per service. The store does the deletion and records it
//! in the history and audit trail; this task decides when and for which services.

use std::sync::Arc;
use std::time::Duration;

use kopplung_core::Clock;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::config::RetentionConfig;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Applications purged per transaction batch (keeps each sweep step short).
const BATCH: u32 = 200;

/// Purges what is due at `now` for every service of the catalog. Returns how many
/// applications were purged.
pub async fn sweep(
    store: &dyn Store,
    catalog: &Catalog,
    retention: &RetentionConfig,
    metrics: &Metrics,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let services: Vec<String> = catalog.current().keys().cloned().collect();
    let mut total = 0;
    for service in services {
        let days = retention.days_for(&service);
        let cutoff = now - time::Duration::days(i64::from(days));
        loop {
            let purged = store.purge_personal_data(&service, cutoff, BATCH).await?;
            if purged > 0 {
                metrics
                    .retention_purged
                    .with_label_values(&[service.as_str()])
                    .inc_by(purged);
                tracing::info!(%service, purged, days, "retention: personal data deleted");
            }
            total += purged;
            if purged < u64::from(BATCH) {
                break;
            }
        }
    }
    Ok(total)
}

/// Sweeps at start and then every `sweep_secs` until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    retention: RetentionConfig,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(retention.sweep_secs);
    loop {
        let now = clock.now();
        if let Err(e) = sweep(store.as_ref(), &catalog, &retention, &metrics, now).await {
            tracing::error!(error = %e, "retention sweep failed; trying again next time");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Removes uploads that no application named within `ttl_hours` (a client that gave
/// up, or failed between upload and submission), at start and then hourly.
pub async fn discard_abandoned_uploads(
    store: Arc<dyn Store>,
    ttl_hours: u32,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let before = clock.now() - time::Duration::hours(ttl_hours.into());
        match store.discard_stale_uploads(before).await {
            Ok(0) => {}
            Ok(discarded) => tracing::info!(discarded, "abandoned uploads removed"),
            Err(e) => {
                tracing::error!(error = %e, "removing abandoned uploads failed; trying again later")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
