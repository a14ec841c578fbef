//! The portal's assets over HTTP: its icon at `/favicon.ico`, text compressed as the
//! browser asks (brotli or gzip; fonts not, WOFF2 is compressed), the assets under
//! hashed names cached for a year, the pages never. Real hub and portal processes; the
//! first visit in a real browser is measured by `tests/browser/portal.mjs`.

mod portal_support;

use portal_support::Cycle;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The first `/assets/…` address in `text` that starts with `prefix` and ends with
/// `suffix`.
fn link(text: &str, prefix: &str, suffix: &str) -> String {
    text.match_indices(prefix)
        .find_map(|(at, _)| {
            let rest = &text[at..];
            let end = rest.find(['"', ')', '\''])?;
            rest[..end]
                .ends_with(suffix)
                .then(|| rest[..end].to_owned())
        })
        .unwrap_or_else(|| panic!("no {prefix}…{suffix} in:\n{text}"))
}

#[tokio::test]
async fn assets_are_compressed_cached_by_their_hash_and_the_icon_answers() {
    let cycle = Cycle::start(false).await;
    let client = reqwest::Client::new();
    let get = |path: String, encoding: Option<&'static str>| {
        let mut request = client.get(format!("{}{path}", cycle.portal_url));
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        async move { request.send().await.expect("portal answers") }
    };

    // The page: never compressed (its CSRF token beside echoed input: BREACH), never
    // cached, its assets named by their hash.
    let page = get("/".into(), Some("br, gzip")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
    let page = get("/".into(), None).await;
    assert!(page.headers().get(CONTENT_ENCODING).is_none());
    let html = page.text().await.unwrap();
    kopplung_tests::assert_has(
        &html,
        "<link rel=\"icon\" href=\"/favicon.ico\" sizes=\"32x32\">",
    );
    let icon = link(&html, "/assets/favicon.", ".svg");
    let kern = link(&html, "/assets/kern.", ".css");
    let portal_css = link(&html, "/assets/portal.", ".css");
    let script = link(&html, "/assets/portal.", ".js");

    // KERN's stylesheet: as it is for a client that asks for nothing, brotli or gzip
    // for one that does; cached for a year under its hashed name.
    let plain = get(kern.clone(), None).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()[CACHE_CONTROL], IMMUTABLE);
    assert_eq!(plain.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.len() > 100_000,
        "KERN's stylesheet: {} bytes",
        plain.len()
    );
    let brotli = get(kern.clone(), Some("br")).await;
    assert_eq!(brotli.headers()[CONTENT_ENCODING], "br");
    assert_eq!(brotli.headers()[CACHE_CONTROL], IMMUTABLE);
    assert!(
        brotli.headers()[VARY]
            .to_str()
            .unwrap()
            .contains("accept-encoding")
    );
    let brotli = brotli.bytes().await.unwrap();
    assert!(
        brotli.len() * 5 < plain.len(),
        "brotli: {} of {} bytes",
        brotli.len(),
        plain.len()
    );
    let gzip = get(kern.clone(), Some("gzip")).await;
    assert_eq!(gzip.headers()[CONTENT_ENCODING], "gzip");
    let gzip = gzip.bytes().await.unwrap();
    assert_eq!(&gzip[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(gzip.len() * 4 < plain.len());

    // The portal's stylesheet (with the font faces) and script alike.
    for asset in [&portal_css, &script, &icon] {
        let answer = get(asset.clone(), Some("gzip")).await;
        assert_eq!(answer.status(), 200, "{asset}");
        assert_eq!(answer.headers()[CACHE_CONTROL], IMMUTABLE, "{asset}");
        assert_eq!(answer.headers()[CONTENT_ENCODING], "gzip", "{asset}");
    }

    // The fonts: the weights KERN uses, cut to Latin (scripts/lib/setup.sh), never
    // compressed again.
    let faces = get(portal_css.clone(), None).await.text().await.unwrap();
    for weight in ["400", "500", "600"] {
        kopplung_tests::assert_has(&faces, format!("font-weight: {weight};"));
    }
    assert!(!faces.contains("font-weight: 700"), "{faces}");
    assert!(faces.contains("unicode-range: U+0000-00FF"), "{faces}");
    let font = link(&faces, "/assets/FiraSans-Regular.latin.", ".woff2");
    let answer = get(font.clone(), Some("br, gzip")).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[CONTENT_TYPE], "font/woff2");
    assert_eq!(answer.headers()[CACHE_CONTROL], IMMUTABLE);
    assert!(answer.headers().get(CONTENT_ENCODING).is_none());
    let bytes = answer.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"wOF2");
    assert!(
        bytes.len() < 40_000,
        "the Latin part: {} bytes",
        bytes.len()
    );

    // A name that is no asset (an old release's hash): 404.
    let gone = get("/assets/kern.000000000000.css".into(), None).await;
    assert_eq!(gone.status(), 404);

    // The icon at its classic address: a 32×32 ICO; and as SVG.
    let ico = get("/favicon.ico".into(), None).await;
    assert_eq!(ico.status(), 200);
    assert_eq!(ico.headers()[CONTENT_TYPE], "image/x-icon");
    let ico = ico.bytes().await.unwrap();
    assert_eq!(&ico[..6], &[0, 0, 1, 0, 1, 0], "an ICO with one image");
    assert_eq!((ico[6], ico[7]), (32, 32));
    let svg = get("/favicon.svg".into(), None).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()[CONTENT_TYPE], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
}
