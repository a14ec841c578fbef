//! The form language's rules at the hub's intake: a date limit relative to the German
//! day of submission (`max_date = "today"` on the shared person group's birth date) and
//! a normalised text (the Kennzeichen in upper case) — refused or stored as the form
//! says, with German messages naming the field.

use kopplung_tests::keys::DRESDEN;
use kopplung_tests::shared::fixture_request;
use kopplung_tests::{HubSetup, TestHub};
use serde_json::Value;

const PARKAUSWEIS: &str = "99108001000000";

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
                && e["message"] == "Das Datum darf nicht in der Zukunft liegen. Bitte geben Sie ein Datum bis heute an."),
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

const HUNDESTEUER: &str = "99999003000000";

/// The dog tax: two dogs in a repeatable group, an IBAN typed with spaces, a field and
/// a check only for the dangerous dog — refused where wrong, naming the entry, and
/// delivered as an XSD-valid message with one `hund` per dog.
#[tokio::test]
async fn two_dogs_are_checked_one_by_one_and_delivered_as_two() {
    let broker = kopplung_tests::amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let fixture = "hundesteuer/fixtures/vollstaendig";
    let refused_fields = |problem: &Value| -> Vec<(String, String)> {
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    let mut body = fixture_request(fixture, HUNDESTEUER, DRESDEN);
    body["data"]["iban"] = "DE03 1203 0000 0000 2020 51".into();
    body["data"]["hunde"][1]["geboren"] = german_day(3).into();
    body["data"]["hunde"][1]["wesenstest"] = Value::Null;
    // What the second dog's condition does not ask for is ignored for the first.
    body["data"]["hunde"][0]["wesenstest"] = "egal".into();
    // The dangerous dog's certificate (an attachment slot) is missing.
    body["attachments"] = serde_json::json!([]);
    let refused = hub.submit(&body, None).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    let fields = refused_fields(&problem);
    assert_eq!(
        fields.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        [
            "data.hunde.1.geboren",
            "data.hunde.1.gehalten_seit",
            "data.hunde.1.wesenstest",
            "data.iban",
            "attachments.wesenstest"
        ],
        "{problem:#}"
    );
    assert_eq!(
        fields[0].1,
        "Das Datum darf nicht in der Zukunft liegen. Bitte geben Sie ein Datum bis heute an."
    );
    // `after` compares with the same dog's birth date.
    assert!(fields[1].1.contains("„Geburtsdatum des Hundes“"));
    assert!(fields[3].1.starts_with("Die IBAN ist nicht gültig"));
    assert_eq!(fields[4].1, "Pflichtfeld");

    let body = fixture_request(fixture, HUNDESTEUER, DRESDEN);
    let id = hub.submit_accepted(&body, None).await;
    let xml = hub
        .delivered_xml(&broker, &id, "dresden-buergerbuero")
        .await;
    kopplung_tests::shared::assert_contains_all(
        &xml,
        &[
            "<name>Bello</name>",
            "<name>Ronja</name>",
            "<name>American Staffordshire Terrier</name>",
            "<wesenstest>WT-2022-0815</wesenstest>",
            "<iban>DE02120300000000202051</iban>",
            "<code>wesenstest</code>",
            "<name>Bescheinigung des Wesenstests</name>",
        ],
    );
    assert_eq!(xml.matches("<hund>").count(), 2);
    assert_eq!(
        xml.matches("<wesenstest>").count(),
        1,
        "only the dangerous dog's"
    );
    kopplung_tests::delete_queue(&broker, &hub.queue("dresden-buergerbuero")).await;
}
