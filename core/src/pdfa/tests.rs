//! Files made with lopdf, each short of one must. The font program and the ICC profile
//! are stand-ins: the check looks at the structure, not into them.

use lopdf::encryption::{EncryptionState, EncryptionVersion, Permissions};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

use super::{NotPdfA, check, pdfaid};

fn xmp(properties: &str) -> String {
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" {properties}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#
    )
}

const PDFA_2B: &str = "><pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>";

/// What the test file has; `Default` is a file without any of the PDF/A parts.
#[derive(Default)]
struct Parts {
    xmp: Option<String>,
    intent: Option<&'static str>,
    profile: bool,
    embedded: bool,
    /// An entry added to the catalog.
    catalog_extra: Option<(&'static str, Object)>,
    /// Encrypted with this user password.
    password: Option<&'static str>,
}

fn good() -> Parts {
    Parts {
        xmp: Some(xmp(PDFA_2B)),
        intent: Some("GTS_PDFA1"),
        profile: true,
        embedded: true,
        ..Parts::default()
    }
}

fn pdf(parts: Parts) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let mut descriptor = dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => "DejaVuSans",
        "Flags" => 32,
    };
    if parts.embedded {
        let program = doc.add_object(Stream::new(dictionary! {"Length1" => 4}, b"ttf!".to_vec()));
        descriptor.set("FontFile2", program);
    }
    let descriptor_id = doc.add_object(descriptor);
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "TrueType",
        "BaseFont" => "DejaVuSans",
        "FontDescriptor" => descriptor_id,
    });
    let content = doc.add_object(Stream::new(
        Dictionary::new(),
        b"BT /F1 12 Tf 56 780 Td (Bescheid) Tj ET".to_vec(),
    ));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Resources" => dictionary! {"Font" => dictionary! {"F1" => font_id}},
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let mut catalog = dictionary! {"Type" => "Catalog", "Pages" => pages_id};
    if let Some(xmp) = parts.xmp {
        let metadata = doc.add_object(Stream::new(
            dictionary! {"Type" => "Metadata", "Subtype" => "XML"},
            xmp.into_bytes(),
        ));
        catalog.set("Metadata", metadata);
    }
    if let Some(kind) = parts.intent {
        let mut intent = dictionary! {
            "Type" => "OutputIntent",
            "S" => kind,
            "OutputConditionIdentifier" => Object::string_literal("sRGB"),
        };
        if parts.profile {
            let icc = doc.add_object(Stream::new(dictionary! {"N" => 3}, b"icc!".to_vec()));
            intent.set("DestOutputProfile", icc);
        }
        catalog.set("OutputIntents", vec![intent.into()]);
    }
    if let Some((key, value)) = parts.catalog_extra {
        catalog.set(key, value);
    }
    let catalog_id = doc.add_object(catalog);
    doc.trailer.set("Root", catalog_id);
    if let Some(password) = parts.password {
        // The file id is part of the key derivation.
        let id = Object::String(
            b"kopplung-bescheid".to_vec(),
            lopdf::StringFormat::Hexadecimal,
        );
        doc.trailer.set("ID", vec![id.clone(), id]);
        let state = EncryptionState::try_from(EncryptionVersion::V2 {
            document: &doc,
            owner_password: "eigentümer",
            user_password: password,
            key_length: 128,
            permissions: Permissions::all(),
        })
        .unwrap();
        doc.encrypt(&state).unwrap();
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn a_file_with_every_structural_must_passes() {
    assert_eq!(check(&pdf(good())), Ok(()));
}

#[test]
fn each_missing_must_has_its_own_reason() {
    let cases = [
        ("no XMP metadata", Parts { xmp: None, ..good() }, NotPdfA::NoMetadata),
        (
            "XMP without pdfaid",
            Parts {
                xmp: Some(xmp(">")),
                ..good()
            },
            NotPdfA::NoIdentification,
        ),
        (
            "an unknown part",
            Parts {
                xmp: Some(xmp(r#"pdfaid:part="5" pdfaid:conformance="B">"#)),
                ..good()
            },
            NotPdfA::UnknownPart,
        ),
        (
            "PDF/A-2 without a level",
            Parts {
                xmp: Some(xmp("><pdfaid:part>2</pdfaid:part>")),
                ..good()
            },
            NotPdfA::NoConformance,
        ),
        (
            "PDF/A-1 has no level U",
            Parts {
                xmp: Some(xmp(r#"pdfaid:part="1" pdfaid:conformance="U">"#)),
                ..good()
            },
            NotPdfA::NoConformance,
        ),
        ("no output intent", Parts { intent: None, ..good() }, NotPdfA::NoOutputIntent),
        (
            "only a PDF/X output intent",
            Parts {
                intent: Some("GTS_PDFX"),
                ..good()
            },
            NotPdfA::NoOutputIntent,
        ),
        (
            "an output intent without its profile",
            Parts {
                profile: false,
                ..good()
            },
            NotPdfA::NoOutputProfile,
        ),
        (
            "a font that is not embedded",
            Parts {
                embedded: false,
                ..good()
            },
            NotPdfA::FontNotEmbedded,
        ),
        (
            "JavaScript run on opening",
            Parts {
                catalog_extra: Some((
                    "OpenAction",
                    dictionary! {"S" => "JavaScript", "JS" => Object::string_literal("app.alert(1)")}.into(),
                )),
                ..good()
            },
            NotPdfA::JavaScript,
        ),
        (
            "a Launch action",
            Parts {
                catalog_extra: Some((
                    "OpenAction",
                    dictionary! {"S" => "Launch", "F" => Object::string_literal("calc.exe")}.into(),
                )),
                ..good()
            },
            NotPdfA::Launch,
        ),
        (
            "encrypted, openable without a password",
            Parts {
                password: Some(""),
                ..good()
            },
            NotPdfA::Encrypted,
        ),
        (
            "encrypted with a password",
            Parts {
                password: Some("geheim"),
                ..good()
            },
            NotPdfA::Encrypted,
        ),
    ];
    for (what, parts, expected) in cases {
        assert_eq!(check(&pdf(parts)), Err(expected), "{what}");
    }
    assert_eq!(check(b"%PDF-1.7\nBescheid"), Err(NotPdfA::Unreadable));
    assert_eq!(
        check(&pdf(Parts::default())),
        Err(NotPdfA::NoMetadata),
        "a plain PDF"
    );
}

#[test]
fn the_identification_may_be_elements_or_attributes_under_any_prefix() {
    let attributes = xmp(r#"pdfaid:part="3" pdfaid:conformance="U">"#);
    assert_eq!(
        pdfaid(attributes.as_bytes()),
        Some(("3".into(), Some("U".into())))
    );
    let other_prefix = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:id="http://www.aiim.org/pdfa/ns/id/"><id:part> 2 </id:part><id:conformance>A</id:conformance></rdf:Description></rdf:RDF></x:xmpmeta>"#;
    assert_eq!(
        pdfaid(other_prefix.as_bytes()),
        Some(("2".into(), Some("A".into())))
    );
    // The prefix alone is not the namespace.
    let foreign = r#"<r xmlns:pdfaid="urn:other"><pdfaid:part>2</pdfaid:part></r>"#;
    assert_eq!(pdfaid(foreign.as_bytes()), None);
    let pdfa4 = xmp("><pdfaid:part>4</pdfaid:part>");
    assert_eq!(check_identification_only(&pdfa4), Ok(()));
}

/// The whole check of a good file whose XMP is `xmp`.
fn check_identification_only(xmp: &str) -> Result<(), NotPdfA> {
    check(&pdf(Parts {
        xmp: Some(xmp.to_owned()),
        ..good()
    }))
}
