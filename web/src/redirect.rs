//! Redirect targets that come from the request (`weiter`, `next`, a payment provider's
//! return address) are parsed the way browsers parse them (WHATWG URL, the `url`
//! crate), so that what we check is what the browser will follow.
//!
//! Browsers drop TAB, CR and LF anywhere in a URL and read `\` as `/`: a naive check
//! lets `/\t/evil.example` through, which the browser follows to `//evil.example`.

use url::Url;

/// A same-origin path for `Location`, from `input` as the client sent it; `None` if it
/// is anything else (another origin, a scheme, credentials, an absolute URL, or a path
/// that a browser would read as another host).
pub fn local_target(base: &Url, input: &str) -> Option<String> {
    // What the WHATWG parser does first: drop tabs and newlines, trim C0 controls
    // and spaces. Only then can we look at how the input starts.
    let cleaned: String = input
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c <= ' ');
    // Only paths: `/x`, never `//host`, `/\host` or `\\host`.
    let mut chars = cleaned.chars();
    if chars.next() != Some('/') || matches!(chars.next(), Some('/' | '\\')) {
        return None;
    }
    let url = base.join(cleaned).ok()?;
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    if let Some(fragment) = url.fragment() {
        target.push('#');
        target.push_str(fragment);
    }
    // Dot segments can collapse into a leading `//` (`/.//evil.example`).
    if target.starts_with("//") || target.starts_with("/\\") {
        return None;
    }
    Some(target)
}

/// Whether `candidate` is an absolute URL of exactly `base`'s origin whose path starts
/// with `path_prefix` (for return addresses a payment provider is given).
pub fn same_origin_url(base: &Url, candidate: &str, path_prefix: &str) -> bool {
    let Ok(url) = Url::parse(candidate) else {
        return false;
    };
    url.origin() == base.origin()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path().starts_with(path_prefix)
        && candidate.trim() == candidate
        && !candidate.contains(['\t', '\r', '\n', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:8081/").unwrap()
    }

    /// Where a browser would go for `Location: <target>` on a page of `base`.
    fn browser_follows(target: &str) -> Url {
        base().join(target).unwrap()
    }

    #[test]
    fn hostile_targets_are_refused() {
        let hostile = [
            "//evil.example/x",
            "/\t/evil.example/x",
            "/\t\t/evil.example",
            "\t//evil.example",
            "/\r\n/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            " //evil.example",
            "\u{0}//evil.example",
            "/.//evil.example",
            "/./\\evil.example",
            "http://evil.example/",
            "https://127.0.0.1:8081/konto",
            "http://127.0.0.1:8081@evil.example/",
            "http://127.0.0.1:8081.evil.example/",
            "//127.0.0.1:8081.evil.example/",
            "//user@evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,hi",
            "evil.example",
            ".evil.example",
            "",
            " ",
        ];
        for input in hostile {
            let target = local_target(&base(), input);
            assert_eq!(target, None, "{input:?} must be refused, got {target:?}");
        }
    }

    #[test]
    fn local_paths_pass_and_stay_on_the_origin() {
        let cases = [
            ("/konto", "/konto"),
            ("/entwurf/1/pruefen?bezahlt", "/entwurf/1/pruefen?bezahlt"),
            ("/a/../konto", "/konto"),
            ("/%09/evil.example/x", "/%09/evil.example/x"),
            ("/@evil.example", "/@evil.example"),
            (
                "/zustaendigkeit?leistung=1&ort=Dresden#x",
                "/zustaendigkeit?leistung=1&ort=Dresden#x",
            ),
            ("/konto\t", "/konto"),
            ("/stra\u{df}e", "/stra%C3%9Fe"),
        ];
        for (input, expected) in cases {
            let target = local_target(&base(), input).unwrap_or_else(|| panic!("{input:?}"));
            assert_eq!(target, expected);
            // Checked against the WHATWG parser: the browser stays on our origin.
            assert_eq!(
                browser_follows(&target).origin(),
                base().origin(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn return_addresses_match_the_origin_exactly() {
        let base = base();
        assert!(same_origin_url(
            &base,
            "http://127.0.0.1:8081/entwurf/1/zahlung",
            "/entwurf/"
        ));
        for bad in [
            "http://127.0.0.1:8081@evil.example/entwurf/1/zahlung",
            "http://127.0.0.1:8081.evil.example/entwurf/1/zahlung",
            "http://127.0.0.1:80811/entwurf/1/zahlung",
            "https://127.0.0.1:8081/entwurf/1/zahlung",
            "http://127.0.0.1:8081/konto",
            "http://127.0.0.1:8081/entwurf\\..\\x",
            "http://127.0.0.1:8081/ent\twurf/1",
            " http://127.0.0.1:8081/entwurf/1",
            "/entwurf/1/zahlung",
        ] {
            assert!(!same_origin_url(&base, bad, "/entwurf/"), "{bad:?}");
        }
    }
}
