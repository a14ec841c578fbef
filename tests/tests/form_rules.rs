//! The form language's rules at the hub's intake: a date limit relative to the German
//! day of submission (`max_date = "today"` on the shared person group's birth date) and
//! a normalised text (the Kennzeichen in upper case) — refused or stored as the form
//! says, with German messages naming the field.

use kopplung_tests::shared::fixture_request;
use kopplung_tests::{HubSetup, TestHub};
use serde_json::Value;

const PARKAUSWEIS: &str = "99108001000000";
const DRESDEN: &str = "146120000000";

fn german_day(offset_days: i64) -> String {
    let day = kopplung_forms::german::today(time::OffsetDateTime::now_utc())
        + time::Duration::days(offset_days);
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

#[tokio::test]
async fn a_birth_date_after_the_day_of_submission_is_refused_and_text_is_normalised() {
    let hub = TestHub::start(HubSetup::default()).await;
    let mut body = fixture_request("bewohnerparkausweis/fixtures/minimal", PARKAUSWEIS, DRESDEN);
    body["data"]["person"]["geburtsdatum"] = german_day(1).into();
    let refused = hub.submit(&body, None).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    let errors = problem["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "data.person.geburtsdatum"
                && e["message"] == "Das Datum darf nicht in der Zukunft liegen."),
        "{problem:#}"
    );

    // Born today is possible; the Kennzeichen typed in lower case is stored as on the plate.
    body["data"]["person"]["geburtsdatum"] = german_day(0).into();
    let id = hub.submit_accepted(&body, None).await;
    let stored = hub.sql(&format!(
        "SELECT payload FROM applications WHERE id = '{id}'"
    ));
    assert!(stored.contains("\"kennzeichen\":\"DD-TB 90\""), "{stored}");
}
