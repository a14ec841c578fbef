use super::*;
use serde_json::json;

fn form() -> FormDefinition {
    toml::from_str(
        r#"
        [[field]]
        name = "kategorie"
        label = "Kategorie"
        type = "enum"
        required = true
        values = [{ code = "muell", label = "Müll" }]

        [[field]]
        name = "beschreibung"
        label = "Beschreibung"
        type = "text"
        required = true
        min_length = 10
        max_length = 20

        [[field]]
        name = "ort"
        label = "Ort"
        type = "group"
        required = true
          [[field.fields]]
          name = "strasse"
          label = "Straße"
          type = "text"
          required = true
          [[field.fields]]
          name = "lat"
          label = "Breite"
          type = "number"
          min = -90
          max = 90

        [[field]]
        name = "kontakt"
        label = "Kontakt"
        type = "group"
          [[field.fields]]
          name = "email"
          label = "E-Mail"
          type = "email"
        "#,
    )
    .unwrap()
}

#[test]
fn valid_data_is_normalised_with_every_declared_field() {
    let out = form()
        .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe\u{301} am Eck", "ort": {"strasse": "Hauptstraße"}}))
        .unwrap();
    assert_eq!(out["beschreibung"], "Café am Eck");
    assert_eq!(out["ort"]["lat"], Value::Null);
    let out = form()
        .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": 1e-7}}))
        .unwrap();
    assert_eq!(out["ort"]["lat"], "0.0000001");
    // Normalised data validates again to itself; German decimal commas are read.
    assert_eq!(form().validate(&out).unwrap(), out);
    let out = form()
        .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": "51,05"}}))
        .unwrap();
    assert_eq!(out["ort"]["lat"], "51.05");
    assert!(form()
        .validate(&json!({"kategorie": "muell", "beschreibung": "Cafe am Eck", "ort": {"strasse": "Markt", "lat": "5e1"}}))
        .is_err());
    assert_eq!(out["kontakt"], Value::Null);
}

#[test]
fn all_errors_are_reported_at_once() {
    let errors = form()
        .validate(&json!({"kategorie": "x", "beschreibung": "kurz", "ort": {"lat": 100}, "extra": 1, "kontakt": {"email": "nope"}}))
        .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "extra",
            "kategorie",
            "beschreibung",
            "ort.strasse",
            "ort.lat",
            "kontakt.email"
        ]
    );
}

#[test]
fn wrong_types_are_field_errors_not_panics() {
    let errors = form()
        .validate(&json!({"kategorie": 3, "beschreibung": ["x"], "ort": "Markt"}))
        .unwrap_err();
    assert_eq!(errors.len(), 3);
    assert!(form().validate(&json!("text")).is_err());
}

#[test]
fn a_definition_with_an_empty_enum_is_refused() {
    let mut broken: FormDefinition =
        toml::from_str("[[field]]\nname='x'\nlabel='X'\ntype='enum'\n").unwrap();
    assert!(broken.resolve(&SharedGroups::default()).is_err());
}

#[test]
fn dates_are_accepted_in_german_and_iso_and_stored_as_iso() {
    assert_eq!(parse_date("24.12.1990").as_deref(), Some("1990-12-24"));
    assert_eq!(parse_date("1.2.2026").as_deref(), Some("2026-02-01"));
    assert_eq!(parse_date("2026-02-01").as_deref(), Some("2026-02-01"));
    for bad in [
        "31.02.2026",
        "2026-13-01",
        "1.2.26",
        "heute",
        "1.2.2026.",
        "+2026-01-01",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn conditional_fields_apply_only_when_their_condition_holds() {
    let mut form: FormDefinition = toml::from_str(
        r#"
        [[field]]
        name = "art"
        label = "Art"
        type = "enum"
        required = true
        values = [{ code = "neu", label = "Neu" }, { code = "umzug", label = "Umzug" }]

        [[field]]
        name = "bisher"
        label = "Bisherige Anschrift"
        type = "group"
        use = "anschrift"
        required = true
        when = { field = "art", equals = ["umzug"] }
        "#,
    )
    .unwrap();
    let shared: SharedGroups = toml::from_str(
        r#"
        [[group]]
        name = "anschrift"
        [[group.fields]]
        name = "strasse"
        label = "Straße"
        type = "text"
        required = true
        "#,
    )
    .unwrap();
    form.resolve(&shared).unwrap();
    // Not applicable: ignored, even if sent.
    let out = form
        .validate(&json!({"art": "neu", "bisher": {"strasse": "Alt"}}))
        .unwrap();
    assert_eq!(out["bisher"], Value::Null);
    // Applicable: required.
    let errors = form.validate(&json!({"art": "umzug"})).unwrap_err();
    assert_eq!(errors[0].field, "bisher");
    let out = form
        .validate(&json!({"art": "umzug", "bisher": {"strasse": "Alt"}}))
        .unwrap();
    assert_eq!(out["bisher"]["strasse"], "Alt");
}

#[test]
fn conditions_and_uses_are_checked_when_loading() {
    let mut unknown: FormDefinition =
        toml::from_str("[[field]]\nname='x'\nlabel='X'\ntype='group'\nuse='nope'\n").unwrap();
    assert!(
        unknown
            .resolve(&SharedGroups::default())
            .unwrap_err()
            .contains("nope")
    );
    let mut dangling: FormDefinition = toml::from_str(
        "[[field]]\nname='x'\nlabel='X'\ntype='text'\nwhen={ field='y', equals=['a'] }\n",
    )
    .unwrap();
    assert!(
        dangling
            .resolve(&SharedGroups::default())
            .unwrap_err()
            .contains("unknown field `y`")
    );
}

/// A dog-tax-like form: an IBAN, a BIC, a licence plate normalised to upper case with its
/// own message, a birth date with limits and a purchase date after it.
fn hund() -> FormDefinition {
    let mut form: FormDefinition = toml::from_str(
        r#"
        [[field]]
        name = "iban"
        label = "IBAN"
        type = "text"
        format = "iban"
        [[field]]
        name = "bic"
        label = "BIC"
        type = "text"
        format = "bic"
        [[field]]
        name = "kennzeichen"
        label = "Kennzeichen"
        type = "text"
        normalise = ["upper"]
        pattern = "[A-ZÄÖÜ]{1,3}[- ][A-Z]{1,2} [0-9]{1,4}"
        pattern_message = "Geben Sie das Kennzeichen so ein, wie es auf dem Schild steht, zum Beispiel DD-AB 1234."
        [[field]]
        name = "geboren"
        label = "Geburtsdatum des Hundes"
        type = "date"
        min_date = "2000-01-01"
        max_date = "2026-12-31"
        [[field]]
        name = "erworben"
        label = "Erworben am"
        type = "date"
        after = "geboren"
        max_date = "today"
        [[field]]
        name = "beginn"
        label = "Beginn der Steuerpflicht"
        type = "date"
        min_date = "today"
        "#,
    )
    .unwrap();
    form.compile().unwrap();
    form
}

#[test]
fn an_iban_is_normalised_and_its_check_digits_checked() {
    let out = hund()
        .validate(&json!({"iban": "de02 1203 0000 0000 2020 51", "bic": "byladem1001"}))
        .unwrap();
    assert_eq!(out["iban"], "DE02120300000000202051");
    assert_eq!(out["bic"], "BYLADEM1001");
    for bad in [
        "DE00120300000000202051",
        "DE0212030000000020205",
        "XX02 1203",
    ] {
        let errors = hund().validate(&json!({ "iban": bad })).unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert_eq!(errors[0].field, "iban");
        assert!(
            errors[0].message.starts_with("Die IBAN ist nicht gültig"),
            "{errors:?}"
        );
    }
    let (_, message) = refused(json!({ "bic": "BYLA1" }));
    assert!(message.starts_with("Der BIC ist nicht gültig"), "{message}");
}

/// The one refusal of `data` by the dog-tax form: field and message.
fn refused(data: Value) -> (String, String) {
    let errors = hund().validate(&data).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    (errors[0].field.clone(), errors[0].message.clone())
}

#[test]
fn a_pattern_says_its_own_message_after_normalisation() {
    let out = hund()
        .validate(&json!({"kennzeichen": "dd-ab 1234"}))
        .unwrap();
    assert_eq!(out["kennzeichen"], "DD-AB 1234");
    let (_, message) = refused(json!({"kennzeichen": "DD1234"}));
    assert_eq!(
        message,
        "Geben Sie das Kennzeichen so ein, wie es auf dem Schild steht, zum Beispiel DD-AB 1234."
    );
}

#[test]
fn dates_keep_their_limits_and_order() {
    let out = hund()
        .validate(&json!({"geboren": "12.03.2021", "erworben": "2021-06-01"}))
        .unwrap();
    assert_eq!(out["geboren"], "2021-03-12");
    for (data, field, message) in [
        (
            json!({"geboren": "2099-01-01"}),
            "geboren",
            "Das Datum darf nicht nach dem 31.12.2026 liegen. Bitte geben Sie den 31.12.2026 oder ein früheres Datum an.",
        ),
        (
            json!({"geboren": "1999-12-31"}),
            "geboren",
            "Das Datum darf nicht vor dem 01.01.2000 liegen. Bitte geben Sie den 01.01.2000 oder ein späteres Datum an.",
        ),
        (
            json!({"geboren": "2021-03-12", "erworben": "01.03.2021"}),
            "erworben",
            "Das Datum muss nach dem Datum bei „Geburtsdatum des Hundes“ (12.03.2021) liegen.",
        ),
    ] {
        assert_eq!(refused(data), (field.to_owned(), message.to_owned()));
    }
    // Validating normalised data again gives the same result.
    assert_eq!(hund().validate(&out).unwrap(), out);
}

/// "today" is the German day of submission; the check of stored data (a message
/// prepared later) does not judge it against another day.
#[test]
fn limits_relative_to_the_day_of_submission_are_checked_when_submitted() {
    let day = time::macros::date!(2026 - 12 - 05);
    let submitted = |data: Value| hund().validate_submitted(&data, day);
    let errors = submitted(json!({"geboren": "2020-01-01", "erworben": "06.12.2026"})).unwrap_err();
    assert_eq!(
        (errors[0].field.as_str(), errors[0].message.as_str()),
        (
            "erworben",
            "Das Datum darf nicht in der Zukunft liegen. Bitte geben Sie ein Datum bis heute an."
        )
    );
    let errors = submitted(json!({"beginn": "2026-12-04"})).unwrap_err();
    assert_eq!(
        errors[0].message,
        "Das Datum darf nicht in der Vergangenheit liegen. Bitte geben Sie ein Datum ab heute an."
    );
    let out = submitted(json!({"erworben": "2026-12-05", "beginn": "2026-12-05"})).unwrap();
    // Stored and checked again a week later: still valid.
    assert_eq!(hund().validate(&out).unwrap(), out);
    assert!(hund().validate(&json!({"erworben": "2099-01-01"})).is_ok());
}

#[test]
fn german_today_follows_summer_time() {
    use time::macros::datetime;
    // 23:30 UTC is already the next day in Germany, in winter and in summer.
    assert_eq!(
        crate::german::today(datetime!(2026-12-05 23:30 UTC)),
        time::macros::date!(2026 - 12 - 06)
    );
    assert_eq!(
        crate::german::today(datetime!(2026-07-01 21:59 UTC)),
        time::macros::date!(2026 - 07 - 01)
    );
    assert_eq!(
        crate::german::today(datetime!(2026-07-01 22:00 UTC)),
        time::macros::date!(2026 - 07 - 02)
    );
}

#[test]
fn rules_on_the_wrong_kind_of_field_are_refused_when_the_form_loads() {
    for (rules, expected) in [
        (
            "type = \"number\"\nformat = \"iban\"",
            "are for text fields",
        ),
        (
            "type = \"text\"\npattern_message = \"x\"",
            "needs a `pattern`",
        ),
        (
            "type = \"text\"\nmax_date = \"2026-01-01\"",
            "are for date fields",
        ),
        (
            "type = \"date\"\nmin_date = \"01.01.2026\"",
            "nor a date as JJJJ-MM-TT",
        ),
        (
            "type = \"date\"\nafter = \"fehlt\"",
            "`fehlt` is no date field",
        ),
    ] {
        let mut form: FormDefinition = toml::from_str(&format!(
            "[[field]]\nname = \"x\"\nlabel = \"X\"\n{rules}\n"
        ))
        .unwrap();
        let error = form.compile().unwrap_err();
        assert!(error.contains(expected), "{rules}: {error}");
    }
}

/// Dogs as a repeatable group: a condition and a date order inside each entry.
fn hunde() -> FormDefinition {
    let mut form: FormDefinition = toml::from_str(
        r#"
        [[field]]
        name = "hunde"
        label = "Ihre Hunde"
        type = "group"
        repeat = { min = 1, max = 3, item = "Hund" }
          [[field.fields]]
          name = "name"
          label = "Name"
          type = "text"
          required = true
          [[field.fields]]
          name = "gefaehrlich"
          label = "Der Hund gilt als gefährlich"
          type = "boolean"
          [[field.fields]]
          name = "nachweis"
          label = "Nummer des Wesenstests"
          type = "text"
          required = true
          when = { field = "gefaehrlich", is_true = true }
          [[field.fields]]
          name = "geboren"
          label = "Geboren am"
          type = "date"
          [[field.fields]]
          name = "erworben"
          label = "Erworben am"
          type = "date"
          after = "geboren"
        "#,
    )
    .unwrap();
    form.compile().unwrap();
    form
}

#[test]
fn a_repeatable_group_checks_each_entry_on_its_own() {
    let form = hunde();
    let out = form
        .validate(&json!({"hunde": [
            {"name": "Bello", "gefaehrlich": false, "nachweis": "ignoriert"},
            {"name": "Rex", "gefaehrlich": true, "nachweis": "WT-17", "geboren": "01.02.2020", "erworben": "2021-03-04"},
        ]}))
        .unwrap();
    assert_eq!(
        out["hunde"][0]["nachweis"],
        Value::Null,
        "the condition of entry 1 does not hold"
    );
    assert_eq!(out["hunde"][1]["nachweis"], "WT-17");
    assert_eq!(out["hunde"][1]["geboren"], "2020-02-01");

    let errors = form
        .validate(&json!({"hunde": [
            {"name": "Bello"},
            {"name": "", "gefaehrlich": true, "geboren": "2022-01-01", "erworben": "2021-01-01"},
        ]}))
        .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["hunde.1.name", "hunde.1.nachweis", "hunde.1.erworben"]
    );
    assert_eq!(
        find_field(&form.fields, "hunde.1.nachweis").unwrap().label,
        "Nummer des Wesenstests"
    );
    assert!(in_repeat(&form.fields, "hunde.name"));
    assert!(!in_repeat(&form.fields, "hunde"));
}

#[test]
fn a_repeatable_group_keeps_its_counts() {
    let form = hunde();
    let errors = form.validate(&json!({})).unwrap_err();
    assert_eq!(errors, vec![FieldError::new("hunde", "Pflichtfeld")]);
    let four = json!({"hunde": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}]});
    let errors = form.validate(&four).unwrap_err();
    assert_eq!(
        errors,
        vec![FieldError::new("hunde", "darf höchstens 3 Einträge haben")]
    );
    let errors = form.validate(&json!({"hunde": {"name": "A"}})).unwrap_err();
    assert_eq!(errors[0].message, "muss eine Liste sein");
}

#[test]
fn repeatable_groups_are_checked_when_the_form_loads() {
    let load = |text: &str| {
        let mut form: FormDefinition = toml::from_str(text).unwrap();
        form.compile()
    };
    let refused = load(
        r#"
        [[field]]
        name = "name"
        label = "Name"
        type = "text"
        repeat = { max = 2, item = "Name" }
        "#,
    );
    assert!(refused.unwrap_err().contains("`repeat` is for groups"));
    // A group of dogs with `repeat`, then more TOML.
    let dogs = |repeat: &str, more: &str| {
        format!(
            "[[field]]\nname = \"hunde\"\nlabel = \"Hunde\"\ntype = \"group\"\nrepeat = {repeat}\n\
             [[field.fields]]\nname = \"gefaehrlich\"\nlabel = \"Gefährlich\"\ntype = \"boolean\"\n{more}"
        )
    };
    let refused = load(&dogs("{ min = 3, max = 2, item = \"Hund\" }", ""));
    assert!(refused.unwrap_err().contains("min <= max"));
    // A field outside cannot depend on one value of many.
    let outside = "[[field]]\nname = \"nachweis\"\nlabel = \"Nachweis\"\ntype = \"text\"\n\
                   when = { field = \"hunde.gefaehrlich\", is_true = true }\n";
    let refused = load(&dogs("{ max = 2, item = \"Hund\" }", outside));
    assert!(refused.unwrap_err().contains("repeatable group"));
    // Inside an entry, `when` names a field of the same entry; the absolute path is unknown.
    let inside = outside.replace("[[field]]", "[[field.fields]]");
    let refused = load(&dogs("{ max = 2, item = \"Hund\" }", &inside));
    assert!(
        refused
            .unwrap_err()
            .contains("unknown field `hunde.gefaehrlich`")
    );
}

#[test]
fn labels_name_only_the_known_placeholders() {
    let load = |label: &str| {
        let mut form: FormDefinition = serde_json::from_value(json!({
            "field": [{"name": "a", "label": label, "type": "text"}],
        }))
        .unwrap();
        form.compile()
    };
    assert!(load("Wohnen Sie in {gemeinde}? {behoerde} fragt.").is_ok());
    let refused = load("Ihr {amt}").unwrap_err();
    assert!(refused.contains("`{amt}` is no placeholder"), "{refused}");
}
