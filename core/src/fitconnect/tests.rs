use uuid::Uuid;

use super::*;

#[test]
fn a_case_is_a_uuid_of_the_same_version_and_leads_back_to_its_submission() {
    let submission = Uuid::now_v7();
    let case = case_of(submission);
    assert_ne!(case, submission);
    assert_eq!(case.get_version_num(), 7);
    assert_eq!(case.get_variant(), submission.get_variant());
    assert_eq!(submission_of(case), submission);
}

#[test]
fn a_service_is_named_by_its_leika_urn_or_its_key() {
    let key = service_of("urn:de:fim:leika:leistung:99999001000000").unwrap();
    assert_eq!(key.as_ref(), "99999001000000");
    assert_eq!(service_of("99999001000000"), Some(key.clone()));
    assert_eq!(urn_of(&key), "urn:de:fim:leika:leistung:99999001000000");
    assert_eq!(service_of("urn:de:fim:leika:leistung:123"), None);
}

#[test]
fn reach_all_includes_every_destination_only_the_named() {
    let id = Uuid::new_v4();
    assert!(Reach::All.includes(id));
    assert!(Reach::Only([id].into()).includes(id));
    assert!(!Reach::Only(Default::default()).includes(id));
}
