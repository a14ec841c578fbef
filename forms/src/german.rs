//! German civil time (CET/CEST): the calendar day a citizen means by "today", which a
//! date field's limits (`max_date = "today"`) and the web pages' times use.

use time::macros::{offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// German civil time (CET/CEST, the EU rule: summer time from the last Sunday of March
/// to the last Sunday of October, switching at 01:00 UTC).
pub fn berlin(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    let switch = |month: Month| {
        last_sunday(utc.year(), month)
            .map(|day| PrimitiveDateTime::new(day, time!(01:00)).assume_utc())
    };
    let summer = match (switch(Month::March), switch(Month::October)) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        _ => false,
    };
    utc.to_offset(if summer { offset!(+2) } else { offset!(+1) })
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    // March and October have 31 days.
    let last = Date::from_calendar_date(year, month, 31).ok()?;
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(time::Duration::days(i64::from(back)))
}

/// The German calendar day at `now`.
pub fn today(now: OffsetDateTime) -> Date {
    berlin(now).date()
}

/// A municipality's name as running text says it: the German name without the official
/// additions (`Chemnitz, Stadt` → `Chemnitz`; `Bautzen / Budyšin, Stadt, Hochschulstadt /
/// Wysokošulske město` → `Bautzen`). Messages to an authority keep the official name.
pub fn place_name(official: &str) -> &str {
    let base = official.split(',').next().unwrap_or(official);
    base.split(" / ").next().unwrap_or(base).trim()
}

/// Items in running text: „A“, „A und B“, „A, B und C“.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} und {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod place_tests {
    use super::{and_list, place_name};

    #[test]
    fn lists_put_und_before_the_last_item_only() {
        let items = |n: usize| (1..=n).map(|i| format!("„{i}“")).collect::<Vec<_>>();
        assert_eq!(and_list(&items(1)), "„1“");
        assert_eq!(and_list(&items(2)), "„1“ und „2“");
        assert_eq!(and_list(&items(3)), "„1“, „2“ und „3“");
    }

    #[test]
    fn running_text_names_a_municipality_without_its_official_additions() {
        assert_eq!(place_name("Chemnitz, Stadt"), "Chemnitz");
        assert_eq!(
            place_name("Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město"),
            "Bautzen"
        );
        assert_eq!(place_name("Amtsberg"), "Amtsberg");
    }
}
