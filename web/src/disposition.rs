//! `Content-Disposition` of downloads (RFC 6266): written with a plain ASCII `filename`
//! and the exact name as `filename*` (RFC 8187), and read back by a client that relays a
//! download (the portal relays the hub's decision documents).

use percent_encoding::percent_decode_str;

/// `attachment; filename="…"; filename*=UTF-8''…` with a plain ASCII fallback: no
/// quotes, separators or control characters survive.
pub fn attachment(filename: &str) -> String {
    let base = filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, '"' | ';' | ',') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    let cleaned = if cleaned.is_empty() {
        "anlage"
    } else {
        cleaned
    };
    let ascii: String = cleaned
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in cleaned.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The file name a `Content-Disposition` header gives: `filename*` (UTF-8, percent-
/// encoded) where there is one, else the (quoted) `filename`; its path parts dropped.
pub fn filename_of(header: &str) -> Option<String> {
    let mut plain = None;
    for parameter in header.split(';').skip(1) {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let (charset, rest) = value.split_once('\'')?;
                let (_, encoded) = rest.split_once('\'')?;
                if !charset.eq_ignore_ascii_case("utf-8") {
                    continue;
                }
                let decoded = percent_decode_str(encoded).decode_utf8().ok()?;
                return Some(last_part(&decoded));
            }
            "filename" => plain = Some(last_part(value.trim_matches('"'))),
            _ => {}
        }
    }
    plain.filter(|name| !name.is_empty())
}

fn last_part(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_written_safely_and_read_back_exactly() {
        let header = attachment("../Bild \"1\";\r\nx.svg");
        assert!(!header.contains(".."), "{header}");
        assert!(!header.contains('\r') && !header.contains('\n'), "{header}");
        for name in ["Bescheid Straße 12.pdf", "bescheid-K7QX-2M4P.pdf"] {
            assert_eq!(filename_of(&attachment(name)).as_deref(), Some(name));
        }
        assert!(attachment("Straße.pdf").contains("filename*=UTF-8''Stra%C3%9Fe.pdf"));
        assert!(attachment("...").contains("filename=\"anlage\""));
    }

    #[test]
    fn a_plain_filename_is_read_too() {
        assert_eq!(
            filename_of("attachment; filename=\"a.pdf\"").as_deref(),
            Some("a.pdf")
        );
        assert_eq!(filename_of("attachment").as_deref(), None);
    }
}
