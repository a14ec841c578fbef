//! The portal's assets, read once at start and served from memory: KERN UX's stylesheet
//! (npm), the Fira Sans faces it uses, the portal's own stylesheet and script, and its
//! icon. Each is served under a name with its content's hash (`/assets/kern.<hash>.css`)
//! and cached for a year (`immutable`): a new release has new names, and the HTML, never
//! cached, names the ones in force. The answers are compressed by the portal's
//! `CompressionLayer` (gzip or brotli, whichever the browser asks for; not the fonts,
//! which WOFF2 compresses already).
//!
//! Fonts: KERN's stylesheet asks for the weights 400, 500 and 600 of Fira Sans, upright
//! only. The package ships each as a full font of about 130 KB (Latin, Greek, Cyrillic,
//! …); `scripts/lib/setup.sh` (`portal_fonts`) cuts each into a Latin and a Latin
//! Extended part with Debian's fonttools. With them, the portal declares both parts with
//! their `unicode-range`: a German page loads only the Latin ones (about 25 KB each), a
//! name with „ł“ the other part as well. Without them it serves the full fonts and says
//! so at start.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use super::{Failure, favicon};
use crate::{Error, Shared};

/// The cache header of an asset whose name carries its content's hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The cache header of the icon at its fixed addresses (`/favicon.ico`, `/favicon.svg`).
const A_DAY: &str = "public, max-age=86400";

/// Where `portal_fonts` (`scripts/lib/setup.sh`) puts the cut fonts, below the KERN
/// folder (so that a new KERN UX release, reinstalled by npm, gets new ones).
pub const SUBSET_DIR: &str = "fonts/kopplung-subset";

/// The weights of Fira Sans KERN's stylesheet asks for, by the name of their file.
const WEIGHTS: [(u16, &str); 3] = [(400, "Regular"), (500, "Medium"), (600, "SemiBold")];

/// The two parts each weight is cut into, with the characters each holds: Google Fonts'
/// split of Latin. `scripts/lib/setup.sh` (`portal_fonts`) cuts with the same ranges.
const PARTS: [(&str, &str); 2] = [
    (
        "latin",
        "U+0000-00FF,U+0131,U+0152-0153,U+02BB-02BC,U+02C6,U+02DA,U+02DC,U+0304,U+0308,U+0329,U+2000-206F,U+20AC,U+2122,U+2191,U+2193,U+2212,U+2215,U+FEFF,U+FFFD",
    ),
    (
        "latin-ext",
        "U+0100-02BA,U+02BD-02C5,U+02C7-02CC,U+02CE-02D7,U+02DD-02FF,U+0304,U+0308,U+0329,U+1D00-1DBF,U+1E00-1E9F,U+1EF2-1EFF,U+2020,U+20A0-20AB,U+20AD-20C0,U+2113,U+2C60-2C7F,U+A720-A7FF",
    ),
];

/// The addresses the layout links, each with its hash.
#[derive(Debug, Clone, Serialize)]
pub struct Links {
    pub kern_css: String,
    pub portal_css: String,
    pub portal_js: String,
    pub icon: String,
}

struct Asset {
    media_type: &'static str,
    body: Bytes,
}

/// Every asset by its hashed name, and the links to them.
pub struct Assets {
    by_name: HashMap<String, Asset>,
    pub links: Links,
    /// The icon as `/favicon.ico` answers it.
    ico: Bytes,
}

impl Assets {
    /// No assets yet, and the classic icon `ico`.
    fn empty(ico: Bytes) -> Self {
        Self {
            by_name: HashMap::new(),
            links: Links {
                kern_css: String::new(),
                portal_css: String::new(),
                portal_js: String::new(),
                icon: String::new(),
            },
            ico,
        }
    }

    /// Reads KERN UX's stylesheet and fonts from `kern_dir`; the portal's own files are
    /// compiled in.
    pub fn load(kern_dir: &Path) -> Result<Self, Error> {
        let mut assets = Self::empty(Bytes::from(favicon::ico()));
        let kern = std::fs::read(kern_dir.join("kern.min.css"))
            .map_err(|_| Error::KernMissing(kern_dir.to_owned()))?;
        assets.links.kern_css = assets.add("kern", "css", kern);
        // The faces first, then the portal's own rules: one stylesheet.
        let mut portal_css = assets.font_faces(kern_dir)?;
        portal_css.push_str(include_str!("../../assets/portal.css"));
        assets.links.portal_css = assets.add("portal", "css", portal_css.into_bytes());
        assets.links.portal_js = assets.add(
            "portal",
            "js",
            include_str!("../../assets/portal.js").as_bytes().to_vec(),
        );
        assets.links.icon = assets.add("favicon", "svg", favicon::SVG.as_bytes().to_vec());
        Ok(assets)
    }

    /// `@font-face` rules for the weights KERN uses: the cut parts where
    /// `portal_fonts` made them, the full fonts otherwise.
    fn font_faces(&mut self, kern_dir: &Path) -> Result<String, Error> {
        let subsets = kern_dir.join(SUBSET_DIR);
        let cut = WEIGHTS.iter().all(|(_, name)| {
            PARTS
                .iter()
                .all(|(part, _)| subsets.join(subset_file(name, part)).is_file())
        });
        if !cut {
            tracing::warn!(
                folder = %subsets.display(),
                "the cut fonts are missing: the portal serves KERN's full fonts (about 130 KB per weight); scripts/test and scripts/demo cut them (portal_fonts in scripts/lib/setup.sh)"
            );
        }
        let mut css = String::from("/* Fira Sans, the weights KERN UX uses. */\n");
        for (weight, name) in WEIGHTS {
            if cut {
                for (part, range) in PARTS {
                    let file = subset_file(name, part);
                    let link =
                        self.add_font(&subsets.join(&file), &format!("FiraSans-{name}.{part}"))?;
                    face(&mut css, weight, &link, Some(range));
                }
            } else {
                let file = kern_dir.join(format!("fonts/fira-sans/FiraSans-{name}.woff2"));
                let link = self.add_font(&file, &format!("FiraSans-{name}"))?;
                face(&mut css, weight, &link, None);
            }
        }
        Ok(css)
    }

    fn add_font(&mut self, file: &Path, stem: &str) -> Result<String, Error> {
        let bytes = std::fs::read(file).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("font {}: {e}", file.display()),
            ))
        })?;
        Ok(self.add(stem, "woff2", bytes))
    }

    /// Keeps `body` as `<stem>.<hash>.<extension>` and returns its address.
    fn add(&mut self, stem: &str, extension: &str, body: Vec<u8>) -> String {
        let name = format!("{stem}.{}.{extension}", short_hash(&body));
        let media_type = match extension {
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            _ => "font/woff2",
        };
        let link = format!("/assets/{name}");
        self.by_name.insert(
            name,
            Asset {
                media_type,
                body: Bytes::from(body),
            },
        );
        link
    }
}

/// The file `portal_fonts` writes for a weight's part.
fn subset_file(name: &str, part: &str) -> String {
    format!("FiraSans-{name}.{part}.woff2")
}

fn face(css: &mut String, weight: u16, link: &str, range: Option<&str>) {
    let _ = write!(
        css,
        "@font-face {{ font-family: \"Fira Sans\"; font-style: normal; font-weight: {weight}; font-display: swap; src: url(\"{link}\") format(\"woff2\");"
    );
    if let Some(range) = range {
        let _ = write!(css, " unicode-range: {range};");
    }
    css.push_str(" }\n");
}

/// The first 12 hex digits of the SHA-256 of `bytes`: enough to tell releases apart.
fn short_hash(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)[..6]
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn answer(media_type: &'static str, cache: &'static str, body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        Body::from(body),
    )
        .into_response()
}

/// Compression of the portal's answers: gzip or brotli, as the browser accepts, for text
/// (HTML, CSS, JavaScript, SVG, JSON) from 32 bytes on; not for fonts (WOFF2 is
/// compressed already), pictures or PDF files.
pub fn compression() -> CompressionLayer<impl Predicate> {
    // Not HTML: a page carries the session's CSRF token next to text an attacker may
    // choose (a search echoed), and compressed together their length would tell the
    // token bit by bit (BREACH). Pages are small; the assets are what weighs.
    let predicate = DefaultPredicate::new()
        .and(NotForContentType::const_new("text/html"))
        .and(NotForContentType::const_new("font/"))
        .and(NotForContentType::const_new("application/pdf"));
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .compress_when(predicate)
}

/// `GET /assets/{name}`: an asset by its hashed name.
pub async fn asset(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    match state.assets.by_name.get(&name) {
        Some(asset) => answer(asset.media_type, IMMUTABLE, asset.body.clone()),
        None => Failure::not_found().into_response(),
    }
}

/// `GET /favicon.ico`: the icon for whoever asks at the classic address.
pub async fn favicon_ico(State(state): State<Shared>) -> Response {
    answer("image/x-icon", A_DAY, state.assets.ico.clone())
}

/// `GET /favicon.svg`: the icon as the pages link it, at a fixed address.
pub async fn favicon_svg() -> Response {
    answer(
        "image/svg+xml",
        A_DAY,
        Bytes::from_static(favicon::SVG.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_of_their_content() {
        let mut assets = Assets::empty(Bytes::new());
        let one = assets.add("portal", "css", b"body { margin: 0 }".to_vec());
        let other = assets.add("portal", "css", b"body { margin: 1px }".to_vec());
        assert!(
            one.starts_with("/assets/portal.") && one.ends_with(".css"),
            "{one}"
        );
        assert_ne!(one, other);
        assert_eq!(one.len(), "/assets/portal..css".len() + 12);
        let name = one.trim_start_matches("/assets/");
        assert_eq!(assets.by_name[name].media_type, "text/css; charset=utf-8");
    }

    #[test]
    fn a_face_names_its_part_of_the_characters() {
        let mut css = String::new();
        face(&mut css, 400, "/assets/a.woff2", Some(PARTS[0].1));
        assert!(css.contains("font-weight: 400"), "{css}");
        assert!(css.contains("unicode-range: U+0000-00FF,"), "{css}");
        assert!(css.contains("font-display: swap"), "{css}");
    }
}
