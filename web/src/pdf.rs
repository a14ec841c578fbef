//! The frame of a PDF (1.4) file around its objects: header, numbered objects, cross
//! reference table and trailer, for the portal's one-page confirmation. (The reference
//! procedure's decision is PDF/A, which needs more than a frame: krilla writes it.)

/// A PDF file of `objects`, numbered from 1; object 1 must be the catalog. With
/// `info_last`, the last object is the document information dictionary.
pub fn assemble<O: AsRef<[u8]>>(objects: &[O], info_last: bool) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(object.as_ref());
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let info = if info_last {
        format!(" /Info {} 0 R", objects.len())
    } else {
        String::new()
    };
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_at_the_objects_and_the_trailer_names_the_info() {
        let pdf = assemble(&["<< /Type /Catalog >>", "<< /Title (x) >>"], true);
        // Byte offsets: the binary comment in the header is no UTF-8.
        let find = |needle: &[u8]| pdf.windows(needle.len()).position(|w| w == needle);
        let second = find(b"2 0 obj").unwrap_or_default();
        assert!(find(format!("{second:010} 00000 n \n").as_bytes()).is_some());
        assert!(find(b"<< /Size 3 /Root 1 0 R /Info 2 0 R >>").is_some());
        let plain = assemble(&["<< /Type /Catalog >>"], false);
        assert!(plain.windows(24).any(|w| w == b"<< /Size 2 /Root 1 0 R >"));
        assert!(plain.ends_with(b"%%EOF\n"));
    }
}
