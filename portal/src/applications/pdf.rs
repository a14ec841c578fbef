//! The confirmation of receipt (Eingangsbestätigung) as a tagged PDF that meets PDF/UA-1
//! (krilla checks it as it writes): title, headings with an outline, the entered data as
//! a table with header cells, the document language German. It names the authority, the
//! applicant, the date, the service, what was entered and the fee. The font is DejaVu
//! Sans from Debian's `fonts-dejavu-core`, read at start (a font is no file of ours to
//! ship), subsetted and embedded.

use std::num::NonZeroU16;
use std::path::Path;

use kopplung_forms::Wording;
use krilla::Document;
use krilla::SerializeSettings;
use krilla::configure::{Configuration, Validator};
use krilla::destination::XyzDestination;
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::surface::Surface;
use krilla::tagging::TableHeaderScope;
use krilla::tagging::{ContentTag, SpanTag, Tag, TagGroup, TagTree};
use krilla::text::{Font, TextDirection};

/// Where Debian's `fonts-dejavu-core` puts the font.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// What the confirmation says.
pub struct Confirmation {
    pub receipt: String,
    pub service: String,
    pub municipality: String,
    /// The responsible authority: its name and address lines.
    pub authority: Option<(String, Vec<String>)>,
    pub applicant: Option<String>,
    /// How the service speaks of what was sent (a Meldung has no applicant).
    pub wording: Wording,
    pub submitted: String,
    /// Sections of entered data: a heading (the form's step) and label/value rows.
    pub sections: Vec<(String, Vec<(String, String)>)>,
    /// The fee and its payment reference.
    pub fee: Option<(String, Option<String>)>,
}

/// Writes confirmations with one font.
#[derive(Clone)]
pub struct Writer {
    font: Font,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

const LEFT: f32 = 56.0;
const VALUE_AT: f32 = 250.0;
const BOTTOM: f32 = 790.0;

/// One page being written, with the tags of what it drew.
struct Pages {
    font: Font,
    tree: TagTree,
    outline: Outline,
    y: f32,
    page: usize,
}

impl Pages {
    /// Draws `text` at `x` (wrapped to `width` characters), tagged as a span; the
    /// identifiers, one per line.
    fn text(
        &mut self,
        surface: &mut Surface<'_>,
        x: f32,
        size: f32,
        width: usize,
        text: &str,
    ) -> Vec<krilla::tagging::Identifier> {
        let mut ids = Vec::new();
        for line in wrap(text, width) {
            let id = surface.start_tagged(ContentTag::Span(SpanTag::empty()));
            surface.draw_text(
                Point::from_xy(x, self.y),
                self.font.clone(),
                size,
                &line,
                false,
                TextDirection::Auto,
            );
            surface.end_tagged();
            ids.push(id);
            self.y += size + 5.0;
        }
        ids
    }
}

/// `text` in lines of at most `width` characters, broken at spaces where possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

impl Writer {
    /// Reads the TrueType font at `path`; the reason if it cannot be used.
    pub fn load(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| {
            format!(
                "the confirmation's font {}: {e} (install the Debian package fonts-dejavu-core)",
                path.display()
            )
        })?;
        let font = Font::new(data.into(), 0)
            .ok_or_else(|| "the confirmation's font is no TrueType or OpenType font".to_owned())?;
        Ok(Self { font })
    }

    /// The confirmation as PDF/UA-1 bytes.
    pub fn pdf(&self, c: &Confirmation) -> Result<Vec<u8>, String> {
        let title = format!("Eingangsbestätigung {}", c.receipt);
        let settings = SerializeSettings {
            configuration: Configuration::new_with_validator(Validator::UA1),
            ..SerializeSettings::default()
        };
        let mut document = Document::new_with(settings);
        document.set_metadata(
            Metadata::new()
                .title(title.clone())
                .language("de-DE".to_owned())
                .creator("kopplung Serviceportal".to_owned()),
        );
        let mut pages = Pages {
            font: self.font.clone(),
            tree: TagTree::new().with_lang(Some("de-DE".to_owned())),
            outline: Outline::new(),
            y: 70.0,
            page: 0,
        };
        let a4 = PageSettings::from_wh(595.0, 842.0).ok_or_else(|| "no A4 page".to_owned())?;
        let mut page = document.start_page_with(a4.clone());
        let mut surface = page.surface();

        let heading = |pages: &mut Pages, surface: &mut Surface<'_>, level: u16, text: &str| {
            let size = if level == 1 { 18.0 } else { 13.0 };
            pages.y += if level == 1 { 0.0 } else { 8.0 };
            pages.outline.push_child(OutlineNode::new(
                text.to_owned(),
                XyzDestination::new(pages.page, Point::from_xy(LEFT, pages.y - size)),
            ));
            let ids = pages.text(surface, LEFT, size, 60, text);
            let level = NonZeroU16::new(level).unwrap_or(NonZeroU16::MIN);
            let mut group = TagGroup::new(Tag::Hn(level, Some(text.to_owned())));
            ids.into_iter().for_each(|id| group.push(id));
            pages.tree.push(group);
        };
        let paragraph = |pages: &mut Pages, surface: &mut Surface<'_>, text: &str| {
            let ids = pages.text(surface, LEFT, 10.5, 88, text);
            let mut group = TagGroup::new(Tag::P);
            ids.into_iter().for_each(|id| group.push(id));
            pages.tree.push(group);
        };

        heading(&mut pages, &mut surface, 1, &title);
        paragraph(
            &mut pages,
            &mut surface,
            &format!(
                "{} „{}“ ist am {} elektronisch eingegangen und wird an die zuständige Behörde übermittelt. Bitte geben Sie bei Rückfragen die Vorgangsnummer {} an.",
                c.wording.yours(),
                c.service,
                c.submitted,
                c.receipt
            ),
        );
        let mut overview = vec![
            ("Vorgangsnummer".to_owned(), c.receipt.clone()),
            ("Leistung".to_owned(), c.service.clone()),
            ("Eingegangen am".to_owned(), c.submitted.clone()),
            ("Gemeinde".to_owned(), c.municipality.clone()),
        ];
        if let Some((name, address)) = &c.authority {
            let mut text = name.clone();
            for line in address {
                text.push_str(", ");
                text.push_str(line);
            }
            overview.push(("Zuständige Behörde".to_owned(), text));
        }
        let (who, nobody) = match c.wording {
            Wording::Meldung => ("Meldende Person", "keine Angabe (anonym)"),
            Wording::Anmeldung => ("Anmeldende Person", "keine Angabe"),
            Wording::Bestellung => ("Bestellende Person", "keine Angabe"),
            Wording::Antrag => ("Antragstellerin oder Antragsteller", "keine Angabe"),
        };
        overview.push((
            who.to_owned(),
            c.applicant.clone().unwrap_or_else(|| nobody.to_owned()),
        ));
        if let Some((amount, reference)) = &c.fee {
            let mut text = amount.clone();
            if let Some(reference) = reference {
                text.push_str(&format!(", bezahlt, Zahlungsreferenz {reference}"));
            }
            overview.push(("Gebühr".to_owned(), text));
        }
        let mut sections = vec![("Überblick".to_owned(), overview)];
        sections.extend(c.sections.iter().cloned());
        for (index, (title, rows)) in sections.iter().enumerate() {
            if index == 1 {
                heading(&mut pages, &mut surface, 2, "Ihre Angaben");
            }
            heading(
                &mut pages,
                &mut surface,
                if index == 0 { 2 } else { 3 },
                title,
            );
            let mut table = TagGroup::new(Tag::Table);
            for (label, value) in rows {
                let lines = wrap(value, 52).len().max(wrap(label, 32).len());
                if pages.y + lines as f32 * 15.5 > BOTTOM {
                    // The table goes on on the next page.
                    surface.finish();
                    page.finish();
                    page = document.start_page_with(a4.clone());
                    surface = page.surface();
                    pages.page += 1;
                    pages.y = 60.0;
                }
                let top = pages.y;
                let label_ids = pages.text(&mut surface, LEFT, 10.0, 32, label);
                let below_label = pages.y;
                pages.y = top;
                let value_ids = pages.text(&mut surface, VALUE_AT, 10.0, 52, value);
                pages.y = pages.y.max(below_label) + 3.0;
                let mut th = TagGroup::new(Tag::TH(TableHeaderScope::Row));
                label_ids.into_iter().for_each(|id| th.push(id));
                let mut td = TagGroup::new(Tag::TD);
                value_ids.into_iter().for_each(|id| td.push(id));
                table.push(TagGroup::with_children(Tag::TR, vec![th.into(), td.into()]));
            }
            pages.tree.push(table);
        }
        surface.finish();
        page.finish();
        document.set_outline(pages.outline);
        document.set_tag_tree(pages.tree);
        document
            .finish()
            .map_err(|e| format!("the confirmation is no PDF/UA-1: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_spaces() {
        assert_eq!(wrap("eins zwei drei", 9), vec!["eins zwei", "drei"]);
        assert_eq!(wrap("", 9), vec![""]);
    }

    #[test]
    fn the_confirmation_is_tagged_pdf_ua() {
        let writer = Writer::load(Path::new(FONT)).unwrap();
        let rows: Vec<(String, String)> = (0..60)
            .map(|n| {
                (
                    format!("Feld {n}"),
                    "Königsbrücker Straße 12, 01099 Dresden".to_owned(),
                )
            })
            .collect();
        let pdf = writer
            .pdf(&Confirmation {
                receipt: "AB12-CD34".into(),
                service: "Bewohnerparkausweis".into(),
                municipality: "Dresden, Stadt".into(),
                authority: Some(("Bürgerbüro".into(), vec!["Theaterstraße 11".into()])),
                applicant: Some("Sabine Hartmann".into()),
                wording: Wording::Antrag,
                submitted: "07.12.2026, 10:00 Uhr".into(),
                sections: vec![("Person".into(), rows)],
                fee: Some(("30,70 €".into(), Some("XBZ-2026-1".into()))),
            })
            .unwrap();
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/StructTreeRoot"), "tagged");
        assert!(text.contains("/Lang (de-DE)"));
        assert!(text.contains("pdfuaid"), "the PDF/UA identification");
        // Sixty rows need a second page.
        assert!(
            text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count() >= 2
                || text.contains("/Count 2")
        );
    }
}
