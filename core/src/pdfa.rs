//! What the hub can check of PDF/A (ISO 19005) when a service demands it of its
//! decisions: the musts that show in a file's structure. No PDF/A validator exists in
//! Rust and the reference one (veraPDF) is a Java application, so this is no
//! validation: a file that passes may still fail a validator (colour spaces,
//! transparency, font widths and encodings, the XMP schemas are not looked at); one
//! that fails is certainly no PDF/A. Each must that fails has its own reason.

use std::collections::HashSet;

use lopdf::{Dictionary, Document, Object};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

/// The namespace of the PDF/A identification schema (`pdfaid:part`, `pdfaid:conformance`).
const PDFAID: &str = "http://www.aiim.org/pdfa/ns/id/";

/// How deep Form XObjects may nest inside one another before the search stops: deeper
/// ones are no part of a decision letter, and the bound keeps a hostile file cheap.
const MAX_FORM_DEPTH: usize = 16;

/// Why a document is no PDF/A: one must each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPdfA {
    /// It does not parse as PDF.
    Unreadable,
    /// It is encrypted (`/Encrypt`).
    Encrypted,
    /// The catalog has no XMP metadata stream (`/Metadata`).
    NoMetadata,
    /// The XMP metadata has no `pdfaid:part`.
    NoIdentification,
    /// `pdfaid:part` is not 1, 2, 3 or 4.
    UnknownPart,
    /// Parts 1 to 3 need `pdfaid:conformance` (A, B or U; part 1: A or B).
    NoConformance,
    /// No `/OutputIntents` entry with `/S /GTS_PDFA1`.
    NoOutputIntent,
    /// The PDF/A output intent has no `/DestOutputProfile`.
    NoOutputProfile,
    /// A font used on a page is not embedded.
    FontNotEmbedded,
    /// JavaScript (a `/JS` entry, a `/JavaScript` action or name tree).
    JavaScript,
    /// A Launch action (starts a program or opens a file).
    Launch,
}

impl NotPdfA {
    /// The reason, for the procedure that sent the document. It names the must, never
    /// the document's content.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unreadable => "the service requires PDF/A: the document does not parse as PDF",
            Self::Encrypted => {
                "the service requires PDF/A: the document is encrypted (/Encrypt), which PDF/A forbids"
            }
            Self::NoMetadata => {
                "the service requires PDF/A: the document has no PDF/A identification (no XMP metadata stream /Metadata in its catalog)"
            }
            Self::NoIdentification => {
                "the service requires PDF/A: the document has no PDF/A identification (XMP pdfaid:part)"
            }
            Self::UnknownPart => "the service requires PDF/A: XMP pdfaid:part is not 1, 2, 3 or 4",
            Self::NoConformance => {
                "the service requires PDF/A: XMP pdfaid:conformance is missing or not a level of its part (A or B for PDF/A-1; A, B or U for PDF/A-2 and -3)"
            }
            Self::NoOutputIntent => {
                "the service requires PDF/A: the catalog has no PDF/A output intent (/OutputIntents with /S /GTS_PDFA1)"
            }
            Self::NoOutputProfile => {
                "the service requires PDF/A: the PDF/A output intent has no ICC profile (/DestOutputProfile)"
            }
            Self::FontNotEmbedded => {
                "the service requires PDF/A: a font used on a page is not embedded (no /FontFile, /FontFile2 or /FontFile3)"
            }
            Self::JavaScript => {
                "the service requires PDF/A: the document holds JavaScript, which PDF/A forbids"
            }
            Self::Launch => {
                "the service requires PDF/A: the document holds a Launch action, which PDF/A forbids"
            }
        }
    }
}

/// Checks the PDF/A musts that show in the file's structure: it parses, is not
/// encrypted, identifies itself as PDF/A in its XMP metadata, has a PDF/A output intent
/// with an ICC profile, embeds every font its pages use and holds no JavaScript or
/// Launch action.
pub fn check(content: &[u8]) -> Result<(), NotPdfA> {
    let document = match Document::load_mem(content) {
        Ok(document) => document,
        Err(
            lopdf::Error::Decryption(_)
            | lopdf::Error::InvalidPassword
            | lopdf::Error::UnsupportedSecurityHandler(_)
            | lopdf::Error::AlreadyEncrypted,
        ) => return Err(NotPdfA::Encrypted),
        Err(_) => return Err(NotPdfA::Unreadable),
    };
    // lopdf opens a file encrypted with an empty user password, and drops `/Encrypt`.
    if document.was_encrypted() || document.is_encrypted() {
        return Err(NotPdfA::Encrypted);
    }
    let catalog = document.catalog().map_err(|_| NotPdfA::Unreadable)?;
    identification(&document, catalog)?;
    output_intent(&document, catalog)?;
    fonts_embedded(&document)?;
    no_forbidden_actions(&document)
}

/// Follows a reference (once per hop, as lopdf bounds the chain).
fn resolve<'a>(document: &'a Document, object: &'a Object) -> Option<&'a Object> {
    document.dereference(object).ok().map(|(_, object)| object)
}

fn dictionary<'a>(document: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    match resolve(document, object)? {
        Object::Dictionary(dictionary) => Some(dictionary),
        Object::Stream(stream) => Some(&stream.dict),
        _ => None,
    }
}

fn entry<'a>(document: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    resolve(document, dict.get(key).ok()?)
}

fn is_name(object: Option<&Object>, name: &[u8]) -> bool {
    matches!(object, Some(Object::Name(n)) if n == name)
}

/// The catalog's XMP metadata names a PDF/A part and, for parts 1 to 3, a level.
fn identification(document: &Document, catalog: &Dictionary) -> Result<(), NotPdfA> {
    let Some(Object::Stream(stream)) = entry(document, catalog, b"Metadata") else {
        return Err(NotPdfA::NoMetadata);
    };
    // PDF/A-1 forbids filters on the metadata stream; later parts allow them.
    let xmp = if stream.dict.has(b"Filter") {
        stream
            .decompressed_content()
            .map_err(|_| NotPdfA::NoIdentification)?
    } else {
        stream.content.clone()
    };
    let (part, conformance) = pdfaid(&xmp).ok_or(NotPdfA::NoIdentification)?;
    let levels: &[&str] = match part.as_str() {
        "1" => &["A", "B"],
        "2" | "3" => &["A", "B", "U"],
        // PDF/A-4 has no level; its `conformance` (E, F) is optional.
        "4" => return Ok(()),
        _ => return Err(NotPdfA::UnknownPart),
    };
    match conformance {
        Some(level) if levels.contains(&level.as_str()) => Ok(()),
        _ => Err(NotPdfA::NoConformance),
    }
}

/// `pdfaid:part` and `pdfaid:conformance` of an XMP packet, written either as elements
/// or as attributes of an `rdf:Description` (XMP allows both); none without a part.
fn pdfaid(xmp: &[u8]) -> Option<(String, Option<String>)> {
    let text = std::str::from_utf8(xmp).ok()?;
    let mut reader = NsReader::from_str(text);
    let (mut part, mut conformance) = (None, None);
    // The pdfaid property whose element is open, whose text is its value.
    let mut open: Option<&'static str> = None;
    let property = |resolved: &ResolveResult, local: &str| -> Option<&'static str> {
        if !matches!(resolved, ResolveResult::Bound(Namespace(ns)) if *ns == PDFAID) {
            return None;
        }
        match local {
            "part" => Some("part"),
            "conformance" => Some("conformance"),
            _ => None,
        }
    };
    loop {
        let (resolved, event) = reader.read_resolved_event().ok()?;
        match event {
            Event::Start(element) | Event::Empty(element) => {
                open = property(&resolved, element.local_name().as_ref());
                for attribute in element.attributes().flatten() {
                    let (resolved, local) = reader.resolver().resolve_attribute(attribute.key);
                    let value = attribute.value.trim().to_owned();
                    match property(&resolved, local.as_ref()) {
                        Some("part") => part = Some(value),
                        Some(_) => conformance = Some(value),
                        None => {}
                    }
                }
            }
            Event::Text(value) => {
                let value = value.trim().to_owned();
                match open {
                    Some("part") => part = Some(value),
                    Some(_) => conformance = Some(value),
                    None => {}
                }
            }
            Event::End(_) => open = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Some((part?, conformance))
}

/// An `/OutputIntents` entry of `/S /GTS_PDFA1` with its ICC profile.
fn output_intent(document: &Document, catalog: &Dictionary) -> Result<(), NotPdfA> {
    let intents = match entry(document, catalog, b"OutputIntents") {
        Some(Object::Array(intents)) => intents,
        _ => return Err(NotPdfA::NoOutputIntent),
    };
    let mut pdfa = intents
        .iter()
        .filter_map(|intent| dictionary(document, intent))
        .filter(|intent| is_name(entry(document, intent, b"S"), b"GTS_PDFA1"))
        .peekable();
    if pdfa.peek().is_none() {
        return Err(NotPdfA::NoOutputIntent);
    }
    if pdfa.any(|intent| {
        matches!(
            entry(document, intent, b"DestOutputProfile"),
            Some(Object::Stream(_))
        )
    }) {
        Ok(())
    } else {
        Err(NotPdfA::NoOutputProfile)
    }
}

/// Every font of every page's resources, and of the Form XObjects they draw, is
/// embedded. (Fonts only in annotations' appearance streams are not looked at.)
fn fonts_embedded(document: &Document) -> Result<(), NotPdfA> {
    let mut seen = HashSet::new();
    for page in document.get_pages().into_values() {
        let (direct, referenced) = document
            .get_page_resources(page)
            .map_err(|_| NotPdfA::Unreadable)?;
        let resources = direct.into_iter().chain(
            referenced
                .into_iter()
                .filter_map(|id| document.get_dictionary(id).ok()),
        );
        for resources in resources {
            resources_embedded(document, resources, 0, &mut seen)?;
        }
    }
    Ok(())
}

fn resources_embedded(
    document: &Document,
    resources: &Dictionary,
    depth: usize,
    seen: &mut HashSet<lopdf::ObjectId>,
) -> Result<(), NotPdfA> {
    if let Some(Object::Dictionary(fonts)) = entry(document, resources, b"Font") {
        for (_, font) in fonts.iter() {
            if let Some(font) = dictionary(document, font) {
                font_embedded(document, font)?;
            }
        }
    }
    if depth >= MAX_FORM_DEPTH {
        return Ok(());
    }
    let Some(Object::Dictionary(xobjects)) = entry(document, resources, b"XObject") else {
        return Ok(());
    };
    for (_, xobject) in xobjects.iter() {
        // A form drawn twice is looked at once; a form that draws itself, once.
        if let Object::Reference(id) = xobject
            && !seen.insert(*id)
        {
            continue;
        }
        let Some(form) = dictionary(document, xobject) else {
            continue;
        };
        if !is_name(entry(document, form, b"Subtype"), b"Form") {
            continue;
        }
        if let Some(Object::Dictionary(inner)) = entry(document, form, b"Resources") {
            resources_embedded(document, inner, depth + 1, seen)?;
        }
    }
    Ok(())
}

/// A font's program is in the file: in its descriptor (a composite font's, in its
/// descendant's). A Type 3 font's glyphs are content streams of the file itself.
fn font_embedded(document: &Document, font: &Dictionary) -> Result<(), NotPdfA> {
    let subtype = entry(document, font, b"Subtype");
    if is_name(subtype, b"Type3") {
        return Ok(());
    }
    let described = if is_name(subtype, b"Type0") {
        match entry(document, font, b"DescendantFonts") {
            Some(Object::Array(descendants)) => descendants
                .first()
                .and_then(|descendant| dictionary(document, descendant)),
            _ => None,
        }
    } else {
        Some(font)
    };
    let embedded = described
        .and_then(|font| entry(document, font, b"FontDescriptor"))
        .and_then(|descriptor| dictionary(document, descriptor))
        .is_some_and(|descriptor| {
            [&b"FontFile"[..], b"FontFile2", b"FontFile3"]
                .iter()
                .any(|key| matches!(entry(document, descriptor, key), Some(Object::Stream(_))))
        });
    if embedded {
        Ok(())
    } else {
        Err(NotPdfA::FontNotEmbedded)
    }
}

/// No JavaScript and no Launch action anywhere in the file: every object is looked at,
/// so that no way of reaching one (open action, additional actions, annotations,
/// outlines, the name tree) is missed.
fn no_forbidden_actions(document: &Document) -> Result<(), NotPdfA> {
    let mut stack: Vec<&Object> = document.objects.values().collect();
    while let Some(object) = stack.pop() {
        let dict = match object {
            Object::Dictionary(dict) => dict,
            Object::Stream(stream) => &stream.dict,
            Object::Array(items) => {
                stack.extend(items.iter());
                continue;
            }
            _ => continue,
        };
        let action = dict.get(b"S").ok();
        if dict.has(b"JS") || dict.has(b"JavaScript") || is_name(action, b"JavaScript") {
            return Err(NotPdfA::JavaScript);
        }
        if is_name(action, b"Launch") {
            return Err(NotPdfA::Launch);
        }
        // References are objects of their own: each is looked at once, from the list.
        stack.extend(dict.iter().map(|(_, value)| value));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
