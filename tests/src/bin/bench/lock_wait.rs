//! The store's lock waits, from the hubs' own histogram on `/metrics`.

use kopplung_tests::TestHub;

/// The histogram of the time a state change waited for the store's lock.
pub const LOCK_WAIT: &str = "kopplung_store_lock_wait_seconds";

/// A Prometheus histogram's cumulative buckets (upper bound, count), all its series
/// summed bucket by bucket.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    /// The label sets (without `le`) that were summed.
    pub series: Vec<String>,
}

/// The histogram `name` of each hub's `/metrics`, summed; `None` if a hub does not
/// export it.
pub async fn scrape(hubs: &[&TestHub], name: &str) -> anyhow::Result<Option<Histogram>> {
    let mut sum = Histogram::default();
    for hub in hubs {
        let text = reqwest::get(hub.url("/metrics")).await?.text().await?;
        let Some(histogram) = parse(&text, name) else {
            return Ok(None);
        };
        sum = sum.plus(&histogram, 1.0);
    }
    Ok(Some(sum))
}

/// The `<name>_bucket` lines of a text exposition, summed over their label sets.
pub fn parse(text: &str, name: &str) -> Option<Histogram> {
    let prefix = format!("{name}_bucket{{");
    let mut histogram = Histogram::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let mut le = None;
        let mut others = Vec::new();
        for label in labels.split(',') {
            match label.strip_prefix("le=\"") {
                Some(bound) => le = Some(bound.trim_end_matches('"')),
                None if !label.is_empty() => others.push(label),
                None => {}
            }
        }
        let bound = match le? {
            "+Inf" => f64::INFINITY,
            bound => bound.parse().ok()?,
        };
        let count: f64 = value.trim().parse().ok()?;
        let series = others.join(",");
        if !histogram.series.contains(&series) {
            histogram.series.push(series);
        }
        add(&mut histogram.buckets, bound, count);
    }
    (!histogram.buckets.is_empty()).then_some(histogram)
}

fn add(buckets: &mut Vec<(f64, f64)>, bound: f64, count: f64) {
    match buckets.iter_mut().find(|(b, _)| *b == bound) {
        Some((_, total)) => *total += count,
        None => {
            buckets.push((bound, count));
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
}

impl Histogram {
    /// `self + factor × other`, bucket by bucket (factor -1: the observations in between
    /// two scrapes).
    pub fn plus(&self, other: &Histogram, factor: f64) -> Histogram {
        let mut sum = self.clone();
        for (bound, count) in &other.buckets {
            add(&mut sum.buckets, *bound, factor * count);
        }
        for series in &other.series {
            if !sum.series.contains(series) {
                sum.series.push(series.clone());
            }
        }
        sum
    }

    /// How many observations it holds.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, count)| *count)
    }

    /// The `q` quantile as Prometheus's `histogram_quantile` estimates it (linear within
    /// the bucket), and the bounds of that bucket; `None` without observations. In the
    /// `+Inf` bucket it is the largest finite bound, and `true` says "more than that".
    pub fn quantile(&self, q: f64) -> Option<(f64, bool, (f64, f64))> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, count) in &self.buckets {
            if *count >= rank {
                if bound.is_infinite() {
                    return Some((lower, true, (lower, *bound)));
                }
                let inside = count - below;
                let share = if inside > 0.0 {
                    (rank - below) / inside
                } else {
                    1.0
                };
                return Some((lower + (bound - lower) * share, false, (lower, *bound)));
            }
            (lower, below) = (*bound, *count);
        }
        Some((lower, true, (lower, f64::INFINITY)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE kopplung_store_lock_wait_seconds histogram
kopplung_store_lock_wait_seconds_bucket{op=\"a\",le=\"0.001\"} 90
kopplung_store_lock_wait_seconds_bucket{op=\"a\",le=\"0.01\"} 100
kopplung_store_lock_wait_seconds_bucket{op=\"a\",le=\"+Inf\"} 100
kopplung_store_lock_wait_seconds_bucket{op=\"b\",le=\"0.001\"} 100
kopplung_store_lock_wait_seconds_bucket{op=\"b\",le=\"0.01\"} 100
kopplung_store_lock_wait_seconds_bucket{op=\"b\",le=\"+Inf\"} 100
kopplung_store_lock_wait_seconds_sum 0.1
kopplung_store_lock_wait_seconds_count 200
";

    #[test]
    fn sums_series_and_interpolates_within_the_bucket() {
        let histogram = parse(TEXT, LOCK_WAIT).unwrap();
        assert_eq!(histogram.series, ["op=\"a\"", "op=\"b\""]);
        assert_eq!(histogram.count(), 200.0);
        // 190 of 200 within 1 ms; the 198th lies 8/10 into the bucket up to 10 ms.
        let (p99, above, _) = histogram.quantile(0.99).unwrap();
        assert!(!above);
        assert!((p99 - 0.0082).abs() < 1e-9, "{p99}");
        let (p50, _, bucket) = histogram.quantile(0.5).unwrap();
        assert_eq!(bucket, (0.0, 0.001));
        assert!(p50 <= 0.001);
    }

    #[test]
    fn a_histogram_without_labels() {
        let text = "kopplung_store_lock_wait_seconds_bucket{le=\"0.00005\"} 980
kopplung_store_lock_wait_seconds_bucket{le=\"0.0001\"} 1000
kopplung_store_lock_wait_seconds_bucket{le=\"+Inf\"} 1000
kopplung_store_lock_wait_seconds_sum 0.01
kopplung_store_lock_wait_seconds_count 1000
";
        let histogram = parse(text, LOCK_WAIT).unwrap();
        assert_eq!(histogram.series, [""]);
        let (p99, above, _) = histogram.quantile(0.99).unwrap();
        assert!(!above);
        assert!((p99 - 0.000075).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn the_difference_of_two_scrapes_and_the_infinite_bucket() {
        let before = parse(TEXT, LOCK_WAIT).unwrap();
        let after = parse(&TEXT.replace("+Inf\"} 100", "+Inf\"} 150"), LOCK_WAIT).unwrap();
        let between = after.plus(&before, -1.0);
        assert_eq!(between.count(), 100.0);
        assert_eq!(
            between.quantile(0.99),
            Some((0.01, true, (0.01, f64::INFINITY)))
        );
        assert!(parse(TEXT, "kopplung_other_seconds").is_none());
        assert_eq!(Histogram::default().quantile(0.99), None);
    }
}
