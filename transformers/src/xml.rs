//! Well-formedness check of rendered messages.

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use crate::Error;

/// Parses `xml` completely and refuses it unless it is one well-formed document:
/// matching tags, one root element, valid references, no text outside the root.
pub fn check_well_formed(xml: &str) -> Result<(), Error> {
    let mut reader = Reader::from_str(xml);
    let mut depth: usize = 0;
    let mut roots = 0;
    let fail = |reader: &Reader<&[u8]>, message: String| Error::NotWellFormed {
        position: reader.buffer_position(),
        message,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| fail(&reader, e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(fail(&reader, "more than one root element".into()));
                    }
                }
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| fail(&reader, e.to_string()))?;
                    attribute
                        .normalized_value(XmlVersion::Explicit1_0)
                        .map_err(|e| fail(&reader, e.to_string()))?;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            // Only text outside the root is an error of its own: looked at only there.
            Event::Text(text) if depth == 0 => {
                let decoded = text.xml_content(XmlVersion::Explicit1_0);
                if !decoded.trim().is_empty() {
                    return Err(fail(&reader, "text outside the root element".into()));
                }
            }
            Event::GeneralRef(reference) => {
                if depth == 0 {
                    return Err(fail(&reader, "reference outside the root element".into()));
                }
                let known = matches!(&*reference, "amp" | "lt" | "gt" | "quot" | "apos");
                if !known {
                    match reference.resolve_char_ref() {
                        Ok(Some(_)) => {}
                        _ => {
                            return Err(fail(
                                &reader,
                                format!("undefined reference &{};", &*reference),
                            ));
                        }
                    }
                }
            }
            Event::DocType(_) => {
                return Err(fail(&reader, "a DOCTYPE is not allowed".into()));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots == 0 {
        return Err(Error::NotWellFormed {
            position: xml.len() as u64,
            message: "no root element".into(),
        });
    }
    if depth != 0 {
        return Err(Error::NotWellFormed {
            position: xml.len() as u64,
            message: "unclosed element".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_document() {
        check_well_formed("<?xml version=\"1.0\"?>\n<a x=\"&amp;\"><b/>t &lt; &#228;</a>\n")
            .unwrap();
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "<a/><b/>",
            "text",
            "<a>&nbsp;</a>",
            "<a x=\"&x;\"/>",
            "<!DOCTYPE a><a/>",
            "",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad}");
        }
    }
}
