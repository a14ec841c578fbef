//! A minimal PDF (1.4) of text lines: the printable confirmation of a submission.
//! Helvetica with WinAnsiEncoding covers German text (umlauts, ß, €, „“).

/// Windows-1252 byte of a character, `?` where there is none.
fn win_ansi(c: char) -> u8 {
    match c {
        '€' => 0x80,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '–' => 0x96,
        '—' => 0x97,
        c if (c as u32) < 0x80 && !c.is_control() => c as u8,
        c if (0xA0..=0xFF).contains(&(c as u32)) => c as u32 as u8,
        _ => b'?',
    }
}

fn escape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            _ => out.push(win_ansi(c)),
        }
    }
    out
}

/// One A4 page; `lines` are (font size, bold, text), top to bottom.
pub fn document(title: &str, lines: &[(u32, bool, String)]) -> Vec<u8> {
    let mut content = Vec::new();
    let mut y: i64 = 800;
    for (size, bold, text) in lines {
        // Long lines are wrapped at about 90 characters.
        let mut rest: Vec<char> = text.chars().collect();
        loop {
            let width = (90 * 11 / (*size).max(8)) as usize;
            let take = if rest.len() <= width {
                rest.len()
            } else {
                rest[..width]
                    .iter()
                    .rposition(|c| *c == ' ')
                    .unwrap_or(width)
            };
            let line: String = rest[..take].iter().collect();
            content.extend_from_slice(
                format!(
                    "BT /{} {size} Tf 56 {y} Td (",
                    if *bold { "F2" } else { "F1" }
                )
                .as_bytes(),
            );
            content.extend_from_slice(&escape(line.trim()));
            content.extend_from_slice(b") Tj ET\n");
            y -= i64::from(*size) + 6;
            rest = rest[take..].to_vec();
            if rest.is_empty() || y < 40 {
                break;
            }
        }
        if y < 40 {
            break;
        }
    }
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec());
    objects.push(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>".to_vec());
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"endstream");
    objects.push(stream);
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut info = b"<< /Title (".to_vec();
    info.extend_from_slice(&escape(title));
    info.extend_from_slice(b") /Producer (kopplung portal) >>");
    objects.push(info);

    kopplung_web::pdf::assemble(&objects, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_with_german_text() {
        let pdf = document(
            "Bestätigung",
            &[(
                16,
                true,
                "Eingangsbestätigung für Straßenschäden (5,00 €)".into(),
            )],
        );
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        // ä (0xE4), ß (0xDF) and € (0x80) in Windows-1252.
        assert!(pdf.windows(4).any(|w| w == b"Stra"));
        assert!(pdf.contains(&0xDF) && pdf.contains(&0x80) && pdf.contains(&0xE4));
    }
}
