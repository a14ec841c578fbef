use super::*;
use crate::store::{Accepted, AttachmentContent};
use base64::Engine;

fn rules() -> kopplung_forms::AttachmentRules {
    kopplung_forms::AttachmentRules {
        max_count: 2,
        max_bytes: 16,
        media_types: vec!["application/pdf".into(), "image/png".into()],
        slots: Vec::new(),
    }
}

/// A form with these attachment rules and no fields.
fn form(attachments: kopplung_forms::AttachmentRules) -> kopplung_forms::FormDefinition {
    kopplung_forms::FormDefinition {
        fields: Vec::new(),
        attachments,
        steps: Vec::new(),
    }
}

fn inline(filename: &str, media_type: &str, content: &[u8]) -> AttachmentIn {
    AttachmentIn {
        filename: Some(filename.into()),
        media_type: Some(media_type.into()),
        content_base64: Some(base64::engine::general_purpose::STANDARD.encode(content)),
        upload: None,
        slot: None,
    }
}

fn upload(id: Uuid) -> AttachmentIn {
    AttachmentIn {
        filename: None,
        media_type: None,
        content_base64: None,
        upload: Some(id.to_string()),
        slot: None,
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
    let kept = attachments::check(
        &form(rules()),
        &Value::Null,
        "portal",
        &[],
        given,
        &mut errors,
    )
    .unwrap();
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
    let refused = attachments::check(
        &form(rules()),
        &Value::Null,
        "portal",
        &[],
        given,
        &mut errors,
    );
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
        &form(kopplung_forms::AttachmentRules {
            max_count: 5,
            ..rules()
        }),
        &Value::Null,
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
    let refused = attachments::check(
        &form(rules()),
        &Value::Null,
        "portal",
        &uploads,
        vec![upload(big)],
        &mut errors,
    );
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

/// Dogs and a Wesenstest slot that applies only when one of them is dangerous.
fn dog_form() -> kopplung_forms::FormDefinition {
    let mut form: kopplung_forms::FormDefinition = serde_json::from_value(serde_json::json!({
        "attachments": {
            "max_count": 3, "max_bytes": 16, "media_types": ["application/pdf", "image/png"],
            "slot": [{"name": "wesenstest", "label": "Bescheinigung des Wesenstests",
                      "required": true, "media_types": ["application/pdf"], "max_bytes": 12,
                      "when": {"field": "hunde.gefaehrlich", "is_true": true}}],
        },
        "field": [{"name": "hunde", "label": "Hunde", "type": "group",
                   "repeat": {"max": 3, "item": "Hund"},
                   "fields": [{"name": "gefaehrlich", "label": "Gefährlich", "type": "boolean"}]}],
    }))
    .unwrap();
    form.compile().unwrap();
    form
}

#[test]
fn a_slot_is_required_only_when_one_entry_asks_for_it() {
    let form = dog_form();
    let calm = serde_json::json!({"hunde": [{"gefaehrlich": false}]});
    let dangerous = serde_json::json!({"hunde": [{"gefaehrlich": false}, {"gefaehrlich": true}]});
    let check = |data: &Value, given: Vec<AttachmentIn>| {
        let mut errors = Vec::new();
        let kept = attachments::check(&form, data, "portal", &[], given, &mut errors);
        (kept, errors)
    };
    let (_, errors) = check(&calm, vec![]);
    assert!(errors.is_empty(), "{errors:?}");
    let (_, errors) = check(&dangerous, vec![]);
    assert_eq!(
        errors,
        vec![FieldError::new("attachments.wesenstest", "Pflichtfeld")]
    );
    let in_slot = |media_type: &str, content: &[u8]| AttachmentIn {
        slot: Some("wesenstest".into()),
        ..inline("test.pdf", media_type, content)
    };
    let (kept, errors) = check(&dangerous, vec![in_slot("application/pdf", b"%PDF-1.4")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(kept.unwrap()[0].slot.as_deref(), Some("wesenstest"));
    // The slot's own media types and size; a slot that does not apply; an unknown one.
    let (_, errors) = check(&dangerous, vec![in_slot("image/png", b"\x89PNG\r\n\x1a\n")]);
    assert_eq!(errors[0].field, "attachments[0].media_type");
    let (kept, _) = check(
        &dangerous,
        vec![in_slot("application/pdf", b"%PDF-1.4 0123456")],
    );
    assert!(matches!(
        kept,
        Err(IntakeError::AttachmentTooLarge { max_bytes: 12, .. })
    ));
    let (_, errors) = check(&calm, vec![in_slot("application/pdf", b"%PDF-1.4")]);
    assert!(errors[0].message.contains("nicht vorgesehen"), "{errors:?}");
    let unknown = AttachmentIn {
        slot: Some("impfpass".into()),
        ..inline("impf.pdf", "application/pdf", b"%PDF-1.4")
    };
    let (_, errors) = check(&calm, vec![unknown]);
    assert_eq!(
        errors[0].message,
        "unbekannte Anlagenart `impfpass`; erlaubt: wesenstest"
    );
}
