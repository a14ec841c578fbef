use super::*;
use crate::store::{Accepted, AttachmentContent};
use base64::Engine;

fn rules() -> kopplung_forms::AttachmentRules {
    kopplung_forms::AttachmentRules {
        max_count: 2,
        max_bytes: 16,
        media_types: vec!["application/pdf".into(), "image/png".into()],
    }
}

fn inline(filename: &str, media_type: &str, content: &[u8]) -> AttachmentIn {
    AttachmentIn {
        filename: Some(filename.into()),
        media_type: Some(media_type.into()),
        content_base64: Some(base64::engine::general_purpose::STANDARD.encode(content)),
        upload: None,
    }
}

fn upload(id: Uuid) -> AttachmentIn {
    AttachmentIn {
        filename: None,
        media_type: None,
        content_base64: None,
        upload: Some(id.to_string()),
    }
}

fn uploaded(id: Uuid, client: &str, size: u64) -> UploadInfo {
    UploadInfo {
        id,
        client_id: client.into(),
        filename: "plan.pdf".into(),
        media_type: "application/pdf".into(),
        complete: Some((size, "ab".into())),
        application_id: None,
    }
}

#[test]
fn every_attachment_problem_is_named_at_once() {
    let mut errors = Vec::new();
    let given = vec![
        inline("../", "application/pdf", b"%PDF-1"),
        inline("a.exe", "application/x-msdownload", b"MZ"),
        inline("b.png", "image/png", b"%PDF-1"),
    ];
    let kept = attachments::check(&rules(), "portal", &[], given, &mut errors).unwrap();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "attachments",
            "attachments[0].filename",
            "attachments[1].media_type",
            "attachments[2].content_base64",
        ]
    );
    assert_eq!(kept.len(), 3);
}

#[test]
fn an_attachment_over_the_limit_ends_the_check() {
    let mut errors = Vec::new();
    let given = vec![inline("a.pdf", "application/pdf", &[b'%'; 40])];
    let refused = attachments::check(&rules(), "portal", &[], given, &mut errors);
    assert!(matches!(
        refused,
        Err(IntakeError::AttachmentTooLarge {
            index: 0,
            max_bytes: 16
        })
    ));
}

#[test]
fn an_upload_counts_only_for_its_own_client_and_once() {
    let (mine, theirs, big) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut taken = uploaded(Uuid::now_v7(), "portal", 4);
    taken.application_id = Some(Uuid::now_v7());
    let uploads = [
        uploaded(mine, "portal", 4),
        uploaded(theirs, "other", 4),
        uploaded(big, "portal", 99),
        taken.clone(),
    ];
    let mut errors = Vec::new();
    let kept = attachments::check(
        &kopplung_forms::AttachmentRules {
            max_count: 5,
            ..rules()
        },
        "portal",
        &uploads,
        vec![upload(mine), upload(theirs), upload(taken.id)],
        &mut errors,
    )
    .unwrap();
    assert_eq!(kept.len(), 1);
    assert!(matches!(kept[0].content, AttachmentContent::Upload(id) if id == mine));
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unbekannter Upload",
            "dieser Upload gehört bereits zu einem anderen Antrag"
        ]
    );
    let refused = attachments::check(&rules(), "portal", &uploads, vec![upload(big)], &mut errors);
    assert!(matches!(
        refused,
        Err(IntakeError::AttachmentTooLarge { index: 0, .. })
    ));
}

#[test]
fn file_names_and_signatures() {
    assert!(valid_filename("Bescheid 2026.pdf"));
    for bad in ["", " . ", "..", "a/b", "a\\b", "a\u{7}b"] {
        assert!(!valid_filename(bad), "{bad:?}");
    }
    assert!(content_matches("application/pdf", b"%PDF-1.7"));
    assert!(!content_matches("image/png", b"%PDF-1.7"));
    assert!(content_matches("text/plain", b"anything"));
}

#[test]
fn the_store_answer_becomes_the_clients() {
    let accepted = Accepted {
        id: Uuid::nil(),
        receipt: "K7QX-2M4P".into(),
    };
    assert_eq!(
        admitted(Inserted::Replayed(accepted.clone())).unwrap(),
        Admitted {
            id: Uuid::nil(),
            receipt: "K7QX-2M4P".into(),
            replayed: true
        }
    );
    assert!(!admitted(Inserted::Created(accepted)).unwrap().replayed);
    assert!(matches!(
        admitted(Inserted::KeyConflict),
        Err(IntakeError::KeyReused)
    ));
    assert!(matches!(
        admitted(Inserted::ReceiptTaken),
        Err(IntakeError::Internal)
    ));
}
