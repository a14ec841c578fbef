//! Periods of German administrative law: when an appeal period (Widerspruchsfrist) of a
//! decision ends. Shared by the hub (which refuses a late objection), the clerk inbox
//! (which proposes the deadline), the portal (which shows it) and the reference
//! procedure, so that all of them name the same day.

use time::{Date, Duration, Month, Weekday};

/// The same day a month later; the month's last day where it has no such day
/// (§ 188 Abs. 2, 3 BGB).
pub fn one_month_after(day: Date) -> Date {
    let (year, month) = match day.month() {
        Month::December => (day.year() + 1, Month::January),
        month => (day.year(), month.next()),
    };
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, day.day().min(last)).unwrap_or(day)
}

/// The last day of the one-month appeal period of a decision sent on `sent`: it counts
/// as made known on the fourth day after sending (§ 41 Abs. 2 VwVfG, since 2025), and
/// the period ends a month later, moved to the next working day (see
/// [`period_end`]).
pub fn appeal_deadline(sent: Date) -> Date {
    period_end(one_month_after(sent.saturating_add(Duration::days(4))))
}

/// The day a period whose last day is `day` really ends: a Saturday, a Sunday or a
/// public holiday moves it to the next working day (§ 57 Abs. 2 VwGO with § 222 Abs. 2
/// ZPO). Public holidays are those of Saxony, where the demo's authorities are.
pub fn period_end(day: Date) -> Date {
    let mut end = day;
    while matches!(end.weekday(), Weekday::Saturday | Weekday::Sunday) || holiday_in_saxony(end) {
        end = end.saturating_add(Duration::days(1));
    }
    end
}

/// Whether `day` is a public holiday in Saxony (SächsSFG): the nationwide ones,
/// Reformationstag and Buß- und Bettag.
pub fn holiday_in_saxony(day: Date) -> bool {
    use Month::*;
    let fixed = matches!(
        (day.month(), day.day()),
        (January, 1) | (May, 1) | (October, 3) | (October, 31) | (December, 25) | (December, 26)
    );
    let easter = easter_sunday(day.year());
    let after_easter = (day - easter).whole_days();
    // Karfreitag, Ostermontag, Christi Himmelfahrt, Pfingstmontag.
    let movable = matches!(after_easter, -2 | 1 | 39 | 50);
    // The Wednesday before 23 November.
    let repentance = day.month() == November
        && day.weekday() == Weekday::Wednesday
        && (16..=22).contains(&day.day());
    fixed || movable || repentance
}

/// Easter Sunday of `year` (Gregorian calendar; the anonymous algorithm of Meeus).
fn easter_sunday(year: i32) -> Date {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    let month = if month == 3 {
        Month::March
    } else {
        Month::April
    };
    Date::from_calendar_date(year, month, u8::try_from(day).unwrap_or(1)).unwrap_or(Date::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn easter_and_the_holidays_that_follow_it() {
        assert_eq!(easter_sunday(2026), date!(2026 - 04 - 05));
        assert_eq!(easter_sunday(2027), date!(2027 - 03 - 28));
        assert_eq!(easter_sunday(2024), date!(2024 - 03 - 31));
        for day in [
            date!(2027 - 03 - 26), // Karfreitag
            date!(2027 - 03 - 29), // Ostermontag
            date!(2027 - 05 - 06), // Christi Himmelfahrt
            date!(2027 - 05 - 17), // Pfingstmontag
            date!(2026 - 11 - 18), // Buß- und Bettag
            date!(2027 - 11 - 17),
            date!(2026 - 10 - 31), // Reformationstag
            date!(2026 - 12 - 25),
        ] {
            assert!(holiday_in_saxony(day), "{day}");
        }
        assert!(!holiday_in_saxony(date!(2026 - 11 - 25)));
        assert!(!holiday_in_saxony(date!(2027 - 03 - 25)));
    }

    #[test]
    fn a_period_ending_on_a_weekend_or_holiday_ends_on_the_next_working_day() {
        // Saturday → Monday.
        assert_eq!(period_end(date!(2027 - 01 - 09)), date!(2027 - 01 - 11));
        // Christmas Eve is a working day; Christmas and Boxing Day, then the weekend.
        assert_eq!(period_end(date!(2026 - 12 - 24)), date!(2026 - 12 - 24));
        assert_eq!(period_end(date!(2026 - 12 - 25)), date!(2026 - 12 - 28));
        // Karfreitag, the weekend, Ostermontag.
        assert_eq!(period_end(date!(2027 - 03 - 26)), date!(2027 - 03 - 30));
    }

    #[test]
    fn the_appeal_period_counts_from_the_fourth_day_after_sending() {
        // Sent Friday 4 December 2026: known Tuesday 8 December, ends Friday 8 January.
        assert_eq!(
            appeal_deadline(date!(2026 - 12 - 04)),
            date!(2027 - 01 - 08)
        );
        // Sent 5 December: known 9 December, a month later is Saturday 9 January →
        // Monday 11 January.
        assert_eq!(
            appeal_deadline(date!(2026 - 12 - 05)),
            date!(2027 - 01 - 11)
        );
        // The month has no such day: its last day (28 February 2027 is a Sunday →
        // Monday 1 March).
        assert_eq!(
            appeal_deadline(date!(2027 - 01 - 27)),
            date!(2027 - 03 - 01)
        );
        assert_eq!(
            one_month_after(date!(2027 - 01 - 31)),
            date!(2027 - 02 - 28)
        );
    }
}
