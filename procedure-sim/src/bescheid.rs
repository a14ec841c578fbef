//! A small, valid one-page PDF as the demo decision (Bescheid): text in Helvetica with
//! WinAnsi encoding, so German umlauts print.

/// Escapes text for a PDF string literal in WinAnsiEncoding.
fn pdf_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            // Latin-1 letters have the same codes in WinAnsi.
            '\u{A0}'..='\u{FF}' => out.push_str(&format!("\\{:03o}", u32::from(c))),
            '\u{2013}' | '\u{2014}' => out.push('-'),
            _ => out.push('?'),
        }
    }
    out
}

/// The decision as PDF bytes: a title and lines of text.
pub fn pdf(title: &str, lines: &[String]) -> Vec<u8> {
    let mut content = String::from("BT /F1 16 Tf 56 780 Td (");
    content.push_str(&pdf_text(title));
    content.push_str(") Tj /F1 11 Tf");
    for line in lines {
        content.push_str(" 0 -22 Td (");
        content.push_str(&pdf_text(line));
        content.push_str(") Tj");
    }
    content.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    kopplung_web::pdf::assemble(&objects, false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pdf_has_a_correct_cross_reference_table() {
        let pdf = super::pdf(
            "Bescheid",
            &["Ihrem Antrag wird stattgegeben (Müller, Straße).".into()],
        );
        let find = |needle: &[u8]| {
            pdf.windows(needle.len())
                .rposition(|w| w == needle)
                .unwrap()
        };
        assert!(pdf.starts_with(b"%PDF-1.4"));
        let at = find(b"startxref\n") + b"startxref\n".len();
        let end = at + pdf[at..].iter().position(|b| *b == b'\n').unwrap();
        let startxref: usize = std::str::from_utf8(&pdf[at..end]).unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref"));
        // The table's entry for object 4 points at "4 0 obj".
        let table = std::str::from_utf8(&pdf[startxref..]).unwrap();
        let entry = table.lines().nth(6).unwrap();
        let offset: usize = entry[..10].parse().unwrap();
        assert!(pdf[offset..].starts_with(b"4 0 obj"));
        assert!(find(b"M\\374ller, Stra\\337e") > 0);
    }
}
