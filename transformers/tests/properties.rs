//! Property tests (proptest) of the parsers and the XML output (issue #10): form
//! validation, text normalisation, rendering, signed receipts (CMS, JWS) and sealed
//! messages (CMS, JWE) never panic on arbitrary input and refuse garbage; whatever text a
//! citizen may enter comes out of the Mängelanzeige as well-formed, schema-valid XML that
//! reads back as exactly that text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::OnceLock;

use common::{context, mapping_env, root, text_of};
use kopplung_transformers::mapping::Mapping;
use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
use kopplung_transformers::receipt::{Receipt, ReceiptEvent, sign_cms, verify_cms, verify_set};
use kopplung_transformers::seal::{TrustAnchors, load_certificate};
use kopplung_transformers::text::{check_din91379, normalise};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use proptest::prelude::*;
use serde_json::{Value, json};

fn mapping() -> &'static Mapping {
    static MAPPING: OnceLock<Mapping> = OnceLock::new();
    MAPPING.get_or_init(|| {
        Mapping::load(&root().join("maengelanzeige"), &mapping_env()).expect("Mängelanzeige")
    })
}

/// Pieces of text a hostile or careless citizen may type: markup, entity and CDATA
/// pieces, quotes, template syntax, umlauts, typographic and far-away characters.
const HOSTILE_PIECES: &[&str] = &[
    "<",
    ">",
    "&",
    "&amp;",
    "&#x41;",
    "&lt;",
    "\"",
    "'",
    "]]>",
    "<![CDATA[",
    "<!ENTITY x SYSTEM \"file:///etc/passwd\">",
    "<!DOCTYPE m [",
    "&x;",
    "</beschreibung>",
    "<?xml version=\"1.0\"?>",
    "{{data.ort.strasse}}",
    "{{{raw}}}",
    "Grüße aus Dresden ",
    "Łódź Ærø Ŋ ",
    "\u{201E}Zitat\u{201C} \u{2013} ",
    "\r\n",
    "\t",
];

/// One of `choices`, as a `String`.
fn one_of(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(choices).prop_map(str::to_owned)
}

/// Text a hostile or careless citizen may type: the pieces above, plain words, control
/// characters and any character at all.
fn hostile_text() -> impl Strategy<Value = String> {
    // Weighted so that each fixed piece is as likely as each kind of generated one.
    let pieces = prop_oneof![
        HOSTILE_PIECES.len() as u32 => one_of(HOSTILE_PIECES),
        1 => "[a-zA-Z0-9 .,;:!?()-]{1,20}",
        1 => any::<char>().prop_map(String::from),
        1 => (0u32..0x20).prop_map(|c| char::from_u32(c).map(String::from).unwrap_or_default()),
    ];
    prop::collection::vec(pieces, 1..24).prop_map(|p| p.concat())
}

/// The keys of the Mängelanzeige's form: the objects of `any_json` favour them.
const FORM_KEYS: &[&str] = &[
    "kategorie",
    "beschreibung",
    "ort",
    "strasse",
    "lat",
    "kontakt",
    "email",
];

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    FORM_KEYS.len() as u32 => one_of(FORM_KEYS),
                    1 => "[a-z]{1,8}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

struct Keys {
    cert: X509,
    key: PKey<Private>,
    anchors: TrustAnchors,
    _dir: tempfile::TempDir,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = PkiLayout::new(dir.path());
        init_demo_pki(&pki, &[]).expect("demo pki");
        Keys {
            cert: load_certificate(&pki.hub_cert()).expect("cert"),
            key: PKey::private_key_from_pem(&std::fs::read(pki.hub_key()).expect("key"))
                .expect("key"),
            anchors: TrustAnchors::load(&pki.ca_cert()).expect("anchors"),
            _dir: dir,
        }
    })
}

fn receipt() -> Receipt {
    Receipt {
        receipt_id: "7f0c1e38-5d1a-4c5e-9a2b-1d2e3f4a5b6c".into(),
        procedure: "dresden-maengel".into(),
        message_id: "0428020a-bbfa-40b2-bfe4-a91daa0e73de".into(),
        application_id: "f2e7e9bb-7a23-45a4-b4c0-6a4c93a75164".into(),
        problems: vec![],
        message: None,
        document: None,
        event: ReceiptEvent::Accept,
        appeal: None,
        fee: None,
        issued_at: "2026-11-30T10:00:00Z".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Normalisation never panics; what it lets through is DIN 91379 text, and doing it
    /// twice changes nothing.
    #[test]
    fn normalised_text_is_normed_and_stable(raw in hostile_text()) {
        if let Ok(text) = normalise(&raw) {
            prop_assert!(check_din91379(&text).is_ok());
            prop_assert_eq!(normalise(&text), Ok(text.clone()));
        }
    }

    /// Form validation of arbitrary JSON never panics; errors name fields, never values.
    #[test]
    fn form_validation_never_panics(data in any_json()) {
        if let Err(errors) = mapping().form.validate(&data) {
            prop_assert!(!errors.is_empty());
            for error in errors {
                prop_assert!(!error.field.contains('<') && !error.message.contains("ENTITY"));
            }
        }
    }

    /// Whatever text the form accepts renders to well-formed, schema-valid XML (render
    /// checks both) in which the text reads back exactly.
    #[test]
    fn accepted_text_renders_to_valid_xml_verbatim(
        beschreibung in hostile_text(),
        strasse in hostile_text(),
    ) {
        let beschreibung = format!("Mangel: {beschreibung}");
        let strasse: String = strasse.chars().take(100).collect();
        let data = json!({"kategorie": "sonstiges", "beschreibung": beschreibung,
                          "ort": {"strasse": strasse}});
        let Ok(data) = mapping().form.validate(&data) else {
            // Refused input (a control character, too long, …) never reaches a template.
            return Ok(());
        };
        let xml = mapping().render(&context(data.clone(), mapping()));
        prop_assert!(xml.is_ok(), "{:?}", xml.err());
        let xml = xml.unwrap_or_default();
        prop_assert_eq!(
            text_of(&xml, "beschreibung"),
            data["beschreibung"].as_str().map(str::to_owned)
        );
        prop_assert_eq!(
            text_of(&xml, "strasse"),
            data["ort"]["strasse"].as_str().map(str::to_owned)
        );
        prop_assert!(!xml.contains("<!ENTITY") && !xml.contains("<!DOCTYPE"));
    }

    /// Garbage in place of a signed receipt: refused, never a panic.
    #[test]
    fn garbage_receipts_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let keys = keys();
        prop_assert!(verify_cms(&bytes, &keys.cert, &keys.anchors).is_err());
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verify_set(&text, &keys.cert, &keys.anchors).is_err());
    }

    /// Three parts that look like a compact JWS: refused, never a panic.
    #[test]
    fn garbage_compact_tokens_are_refused(
        parts in prop::collection::vec("[A-Za-z0-9_=+/-]{0,64}", 1..6),
    ) {
        let keys = keys();
        let token = parts.join(".");
        prop_assert!(verify_set(&token, &keys.cert, &keys.anchors).is_err());
        prop_assert!(kopplung_transformers::jose::unseal(
            &token, &keys.cert, &keys.key, &keys.cert, &keys.anchors
        ).is_err());
    }

    /// A signed receipt with bytes changed: refused, or (where the change hit no signed
    /// byte) exactly the original receipt — never a different one.
    #[test]
    fn tampered_receipts_never_verify_as_something_else(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let keys = keys();
        let original = receipt();
        let mut der = sign_cms(&original, &keys.cert, &keys.key).expect("sign");
        for (at, xor) in flips {
            let i = at.index(der.len());
            der[i] ^= xor;
        }
        if let Ok(verified) = verify_cms(&der, &keys.cert, &keys.anchors) {
            prop_assert_eq!(verified, original);
        }
    }

    /// Garbage in place of a sealed message: refused by the vendor-side unseal.
    #[test]
    fn garbage_sealed_messages_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let keys = keys();
        prop_assert!(kopplung_transformers::seal::unseal(
            &bytes, &keys.cert, &keys.key, &keys.cert, &keys.anchors
        ).is_err());
    }
}
