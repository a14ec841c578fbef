//! The demo decision (Bescheid) as a one-page PDF/A-2b, as a service may demand it
//! (`[decision] document = "pdf/a"`): krilla writes the XMP identification, the sRGB
//! output intent with its ICC profile and the font, subsetted and embedded, and refuses
//! to write what PDF/A-2b forbids. The font is DejaVu Sans from Debian's
//! `fonts-dejavu-core`, read at start: a font is no file of ours to ship, and it prints
//! every German letter.

use std::path::Path;

use krilla::Document;
use krilla::SerializeSettings;
use krilla::configure::{Configuration, Validator};
use krilla::geom::Point;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

/// Where Debian's `fonts-dejavu-core` puts the font.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Writes decisions with one font.
#[derive(Clone)]
pub struct Writer {
    font: Font,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Reads the TrueType font at `path`; the reason if it cannot be used.
    pub fn load(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| {
            format!("the decision's font: {e} (install the Debian package fonts-dejavu-core)")
        })?;
        let font = Font::new(data.into(), 0)
            .ok_or_else(|| "the decision's font is no TrueType or OpenType font".to_owned())?;
        Ok(Self { font })
    }

    /// The decision as PDF/A-2b bytes: a title and lines of text, on A4, written at
    /// `written` (PDF/A wants the date in the document information and the XMP).
    pub fn pdf(
        &self,
        title: &str,
        lines: &[String],
        written: time::OffsetDateTime,
    ) -> Result<Vec<u8>, String> {
        let written = written.to_offset(time::UtcOffset::UTC);
        let date = DateTime::new(u16::try_from(written.year()).unwrap_or_default())
            .month(u8::from(written.month()))
            .day(written.day())
            .hour(written.hour())
            .minute(written.minute())
            .second(written.second())
            .utc_offset_hour(0)
            .utc_offset_minute(0);
        let settings = SerializeSettings {
            configuration: Configuration::new_with_validator(Validator::A2_B),
            ..SerializeSettings::default()
        };
        let mut document = Document::new_with(settings);
        document.set_metadata(
            Metadata::new()
                .title(title.to_owned())
                .language("de-DE".to_owned())
                .creator("kopplung Referenz-Fachverfahren".to_owned())
                .creation_date(date),
        );
        let a4 = PageSettings::from_wh(595.0, 842.0).ok_or_else(|| "no A4 page".to_owned())?;
        let mut page = document.start_page_with(a4);
        let mut surface = page.surface();
        // krilla measures from the top left corner, downwards: the title, then a line of
        // text every 22 pt.
        let rows = std::iter::once((16.0, title)).chain(lines.iter().map(|l| (11.0, l.as_str())));
        let mut y = 62.0;
        for (size, text) in rows {
            surface.draw_text(
                Point::from_xy(56.0, y),
                self.font.clone(),
                size,
                text,
                false,
                TextDirection::Auto,
            );
            y += 22.0;
        }
        surface.finish();
        page.finish();
        document
            .finish()
            .map_err(|e| format!("the decision is no PDF/A-2b: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_is_pdf_a_as_the_hub_checks_it() {
        let writer = Writer::load(Path::new(FONT)).unwrap();
        let pdf = writer
            .pdf(
                "Bescheid",
                &["Ihrem Antrag wird stattgegeben (Müller, Straße, Ärger, Öl, Übel).".into()],
                time::macros::datetime!(2026-12-03 10:00 +01:00),
            )
            .unwrap();
        assert!(pdf.starts_with(b"%PDF-1.7"));
        assert_eq!(kopplung_core::pdfa::check(&pdf), Ok(()));
    }

    #[test]
    fn a_missing_font_names_the_package() {
        let error = Writer::load(Path::new("/nonexistent/DejaVuSans.ttf")).unwrap_err();
        assert!(error.contains("fonts-dejavu-core"), "{error}");
    }
}
