//! The applicant's identification: stored with the application (NULL when anonymous),
//! read back by the prepare step and the clerk inbox, bound by the `accepted` entry's
//! content hash, and deleted by retention with the form data.

use crate::backend::Backend;
use crate::support::*;
use kopplung_core::identity::{Authentication, Means, TrustLevel, Voucher};

fn identification() -> Authentication {
    Authentication {
        level: TrustLevel::Substanziell,
        means: Means::ElsterZertifikat,
        issuer: "https://id.example".into(),
        subject: kopplung_core::identity::Pseudonym::parse("pseudonym-4711").unwrap(),
        authenticated_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        voucher: Voucher::IdentityProvider,
        assertion_sha256: Some("ab".repeat(32)),
        assertion: Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
    }
}

pub(crate) async fn an_identification_is_kept_bound_and_deleted_with_the_form(backend: Backend) {
    let store = &*backend.store;
    let anonymous = application(None);
    insert(store, &anonymous).await;
    assert_eq!(
        store
            .prepare_input(anonymous.id)
            .await
            .unwrap()
            .authentication,
        None
    );

    let mut identified = application(None);
    identified.authentication = Some(identification());
    to_decided(store, &identified, "identified", b"sealed").await;
    assert_eq!(
        store
            .prepare_input(identified.id)
            .await
            .unwrap()
            .authentication,
        identified.authentication
    );
    assert!(store.verify_audit().await.unwrap().is_intact());

    // Changed behind the store's back, it no longer matches its `accepted` entry (seq 2:
    // the anonymous application's is seq 1).
    let id = identified.id;
    let raise = format!(
        "UPDATE applications SET authentication = replace(authentication, 'substanziell', 'hoch') WHERE id = '{id}'"
    );
    backend.tamper(&raise).await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.content.mismatched, 1, "{report:?}");
    assert_eq!(
        report.first_break.unwrap().to_string(),
        format!(
            "payload (form data and attachments) does not match the hash in entry seq 2 of application {id}"
        )
    );
    backend
        .tamper(&format!(
            "UPDATE applications SET authentication = NULL WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(store.verify_audit().await.unwrap().content.mismatched, 1);
    backend
        .tamper(&format!(
            "UPDATE applications SET authentication = '{}' WHERE id = '{id}'",
            serde_json::to_string(&identified.authentication).unwrap()
        ))
        .await;
    assert!(store.verify_audit().await.unwrap().is_intact());

    // Retention deletes it with the form data; what is left still verifies.
    let later = OffsetDateTime::now_utc() + Duration::days(1);
    assert_eq!(
        store
            .purge_personal_data(&identified.service_key, later, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.prepare_input(id).await.unwrap().authentication, None);
    assert!(store.verify_audit().await.unwrap().is_intact());
}
