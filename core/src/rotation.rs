//! Staged rotation of a certificate: the next one is first only *published* (the other
//! side learns it and trusts it, or installs its key), then *active* (in use), and the one
//! it replaces *retired* (no longer used, still accepted for what was made with it).
//! Which certificate is in force at a moment is decided here, from the operator's
//! schedule and the vendor's confirmation, and nowhere else.

use time::OffsetDateTime;

/// A certificate's place in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Announced, not used yet: the other side prepares for it.
    Published,
    /// In use.
    Active,
    /// Replaced; still accepted for what was made with it during the overlap.
    Retired,
}

impl Stage {
    /// The name used in the API and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

/// When the next certificate takes over from the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// `None`: not scheduled; the next stays published.
    activate_at: Option<OffsetDateTime>,
}

impl Rotation {
    /// The hub's own signing certificate: active from `activate_at`, published until
    /// then; without a time it stays published (the operator schedules it later, or
    /// gives a time that has passed to activate it at the next reload).
    pub fn scheduled(activate_at: Option<OffsetDateTime>) -> Self {
        Self { activate_at }
    }

    /// A procedure's encryption certificate: the hub must not seal for a key the
    /// procedure does not hold yet. Active once the vendor `confirmed` it and
    /// `activate_at`, if given, has passed.
    pub fn confirmed_by_vendor(confirmed: bool, activate_at: Option<OffsetDateTime>) -> Self {
        Self {
            activate_at: confirmed.then(|| activate_at.unwrap_or(OffsetDateTime::UNIX_EPOCH)),
        }
    }

    /// Whether the next certificate is in force at `now`.
    pub fn next_in_force(&self, now: OffsetDateTime) -> bool {
        self.activate_at.is_some_and(|at| now >= at)
    }

    /// The stages of the current and the next certificate at `now`.
    pub fn stages(&self, now: OffsetDateTime) -> (Stage, Stage) {
        if self.next_in_force(now) {
            (Stage::Retired, Stage::Active)
        } else {
            (Stage::Active, Stage::Published)
        }
    }

    /// When the next certificate takes over, if that is decided.
    pub fn activate_at(&self) -> Option<OffsetDateTime> {
        self.activate_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock};
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn the_hubs_next_certificate_takes_over_at_its_time() {
        let clock = ManualClock::new(datetime!(2026-12-03 10:00 UTC));
        let rotation = Rotation::scheduled(Some(datetime!(2026-12-03 12:00 UTC)));
        assert!(!rotation.next_in_force(clock.now()));
        assert_eq!(
            rotation.stages(clock.now()),
            (Stage::Active, Stage::Published)
        );
        clock.advance(Duration::hours(2) - Duration::seconds(1));
        assert!(!rotation.next_in_force(clock.now()));
        clock.advance(Duration::seconds(1));
        assert!(rotation.next_in_force(clock.now()));
        assert_eq!(
            rotation.stages(clock.now()),
            (Stage::Retired, Stage::Active)
        );
    }

    #[test]
    fn an_unscheduled_next_certificate_stays_published() {
        let clock = ManualClock::new(datetime!(2026-12-03 10:00 UTC));
        let rotation = Rotation::scheduled(None);
        clock.advance(Duration::days(3650));
        assert_eq!(
            rotation.stages(clock.now()),
            (Stage::Active, Stage::Published)
        );
        assert_eq!(rotation.activate_at(), None);
    }

    #[test]
    fn a_procedures_next_certificate_waits_for_the_vendors_confirmation() {
        let clock = ManualClock::new(datetime!(2026-12-03 10:00 UTC));
        let at = datetime!(2026-12-03 11:00 UTC);
        // Not confirmed: never in force, whatever the schedule says.
        let unconfirmed = Rotation::confirmed_by_vendor(false, Some(at));
        clock.advance(Duration::days(1));
        assert!(!unconfirmed.next_in_force(clock.now()));
        // Confirmed without a time: in force at once.
        let at_once = Rotation::confirmed_by_vendor(true, None);
        assert!(at_once.next_in_force(clock.now()));
        // Confirmed with a time: from then on.
        clock.set(datetime!(2026-12-03 10:59 UTC));
        let scheduled = Rotation::confirmed_by_vendor(true, Some(at));
        assert_eq!(
            scheduled.stages(clock.now()),
            (Stage::Active, Stage::Published)
        );
        clock.advance(Duration::minutes(1));
        assert_eq!(
            scheduled.stages(clock.now()),
            (Stage::Retired, Stage::Active)
        );
    }

    #[test]
    fn stages_have_their_api_names() {
        assert_eq!(Stage::Published.as_str(), "published");
        assert_eq!(Stage::Active.as_str(), "active");
        assert_eq!(Stage::Retired.as_str(), "retired");
    }
}
