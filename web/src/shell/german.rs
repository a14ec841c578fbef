//! German time for the pages: civil time in Germany (CET/CEST) and its notation.

use time::{Date, OffsetDateTime};

// German civil time is the forms' too (a date field's "today"): written once there.
pub use kopplung_forms::german::berlin;

/// The start of a German calendar day (midnight German time).
pub fn berlin_midnight(day: Date) -> OffsetDateTime {
    // Summer time switches at 01:00 UTC, after midnight in Germany: the offset at
    // 00:00 UTC of the day is the one at its German midnight.
    let offset = berlin(day.midnight().assume_utc()).offset();
    day.midnight().assume_offset(offset)
}

/// `6. Januar 2027`: a day as a German letter writes it (a deadline).
pub fn german_day(day: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ];
    let month = MONTHS[usize::from(u8::from(day.month())).saturating_sub(1) % 12];
    format!("{}. {month} {}", day.day(), day.year())
}

/// `2027-01-06` (as JSON carries a day) as [`german_day`]; anything else as it is.
pub fn german_day_iso(text: &str) -> String {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_or_else(|_| text.to_owned(), german_day)
}

/// `14.03.2025, 11:22 Uhr` (German time).
pub fn german_time(t: OffsetDateTime) -> String {
    notation(t, false)
}

/// `14.03.2025, 11:22:05 Uhr` (German time, with seconds: for histories).
pub fn german_time_seconds(t: OffsetDateTime) -> String {
    notation(t, true)
}

fn notation(t: OffsetDateTime, with_seconds: bool) -> String {
    let local = berlin(t);
    let seconds = if with_seconds {
        format!(":{:02}", local.second())
    } else {
        String::new()
    };
    format!(
        "{:02}.{:02}.{}, {:02}:{:02}{seconds} Uhr",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute()
    )
}

/// [`german_time`] of seconds since the epoch (empty if out of range).
pub fn german_time_unix(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(german_time)
        .unwrap_or_default()
}

/// [`german_time`] of an RFC 3339 text (as the router's API gives times); the text as
/// it is if it does not parse.
pub fn german_time_rfc3339(text: &str) -> String {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(german_time)
        .unwrap_or_else(|_| text.to_owned())
}

/// `1 Anlage`, `3 Anlagen`: a number with its noun in the singular or the plural.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// RFC 3339, for `<time datetime>`.
pub fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn times_are_german_civil_time() {
        for (utc, german) in [
            (datetime!(2025-01-15 10:22 UTC), "15.01.2025, 11:22 Uhr"),
            (datetime!(2025-07-01 10:22 UTC), "01.07.2025, 12:22 Uhr"),
            // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
            (datetime!(2025-03-30 00:59 UTC), "30.03.2025, 01:59 Uhr"),
            (datetime!(2025-03-30 01:00 UTC), "30.03.2025, 03:00 Uhr"),
            (datetime!(2025-10-26 00:59 UTC), "26.10.2025, 02:59 Uhr"),
            (datetime!(2025-10-26 01:00 UTC), "26.10.2025, 02:00 Uhr"),
        ] {
            assert_eq!(german_time(utc), german, "{utc}");
        }
        assert_eq!(
            german_time_seconds(datetime!(2025-07-01 10:22:05.9 UTC)),
            "01.07.2025, 12:22:05 Uhr"
        );
    }

    #[test]
    fn times_come_as_seconds_or_rfc3339_text() {
        let t = datetime!(2025-01-15 10:22 UTC);
        assert_eq!(
            german_time_unix(t.unix_timestamp()),
            "15.01.2025, 11:22 Uhr"
        );
        assert_eq!(german_time_unix(i64::MAX), "");
        assert_eq!(
            german_time_rfc3339("2025-07-01T10:22:00Z"),
            "01.07.2025, 12:22 Uhr"
        );
        assert_eq!(german_time_rfc3339("gestern"), "gestern");
        assert_eq!(iso(t), "2025-01-15T10:22:00Z");
    }

    #[test]
    fn counts_take_the_singular_for_one_only() {
        assert_eq!(counted(0, "Anlage", "Anlagen"), "0 Anlagen");
        assert_eq!(counted(1, "Anlage", "Anlagen"), "1 Anlage");
        assert_eq!(counted(2, "Anlage", "Anlagen"), "2 Anlagen");
    }

    #[test]
    fn german_days_start_at_german_midnight() {
        for (day, utc) in [
            (date!(2025 - 01 - 15), datetime!(2025-01-14 23:00 UTC)),
            (date!(2025 - 07 - 01), datetime!(2025-06-30 22:00 UTC)),
            // The days of the switches still begin in the old offset.
            (date!(2025 - 03 - 30), datetime!(2025-03-29 23:00 UTC)),
            (date!(2025 - 10 - 26), datetime!(2025-10-25 22:00 UTC)),
        ] {
            assert_eq!(berlin_midnight(day), utc, "{day}");
        }
    }
}
