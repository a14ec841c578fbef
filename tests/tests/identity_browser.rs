//! Who applied, in a real browser (Debian's chromium, driven by playwright-core through
//! `tests/browser/oidc.mjs`), once at the demo Servicekonto (`kopplung idp-sim`) and once
//! at panva's `oidc-provider` from npm (OpenID Certified, not ours): signed in at basis,
//! the portal asks for step-up before the Wohnsitzanmeldung (hoch); signed in at
//! substanziell, a Meldebescheinigung is submitted, and the message the procedure gets,
//! decrypted and verified with stock `openssl cms`, carries the level, the means and the
//! issuer. The portal's CSP is enforced; axe-core checks the pages.

mod portal_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kopplung_tests::{amqp, delete_queue, drain, open_with_openssl_cli, xpath};
use portal_support::{Cycle, Options};

const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/browser`, its packages installed (scripts/test installs them).
fn browser_dir() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test does)"
    );
    kopplung_tests::node_packages("browser", &["playwright-core"], "the browser test")
}

/// Walks the citizen's way at `provider` (`oidc-provider` or `servicekonto`) and opens
/// the Meldebescheinigung that reached the Bürgerbüro of Dresden.
async fn walk(provider: &'static str) {
    let browser = browser_dir();
    let broker = amqp().await;
    let cycle = Cycle::with(Options {
        oidc: Some(String::new()),
        servicekonto: provider == "servicekonto",
        ..Options::default()
    })
    .await;
    let issuer = match (&cycle.idp, &cycle.servicekonto) {
        (Some(idp), _) => idp.issuer.clone(),
        (_, Some(servicekonto)) => servicekonto.issuer.clone(),
        _ => unreachable!("the cycle runs one identity provider"),
    };
    let out = std::env::var_os("SCREENSHOTS")
        .map(|dir| PathBuf::from(dir).join(provider))
        .unwrap_or_else(|| cycle.portal_dir.path().join("browser"));
    std::fs::create_dir_all(&out).unwrap();
    let (script, portal, folder) = (
        browser.join("oidc.mjs"),
        cycle.portal_url.clone(),
        out.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(portal)
            .arg(folder)
            .arg(provider)
            .env("CHROMIUM", CHROMIUM)
            .output()
            .expect("node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stdout.contains("PASSED") {
        let html = std::fs::read_to_string(out.join("failure.html")).unwrap_or_default();
        let provider_log = match (&cycle.idp, &cycle.servicekonto) {
            (Some(idp), _) => idp.log(),
            (_, Some(servicekonto)) => servicekonto.log(),
            _ => String::new(),
        };
        panic!(
            "the browser run failed:\n{stdout}\n{}\n--- page ---\n{}\n--- portal log ---\n{}\n--- provider log ---\n{provider_log}",
            String::from_utf8_lossy(&output.stderr),
            html.chars().take(6000).collect::<String>(),
            cycle.log(),
        );
    }
    for page in [
        "sign-in with providers",
        "account signed in at a provider",
        "step-up",
        "form prefilled from the ID",
        "identification",
        "start page after logout",
    ] {
        assert!(
            stdout.contains(&format!("ok axe-core {page}:")),
            "{page} was not checked:\n{stdout}"
        );
    }
    if provider == "servicekonto" {
        for level in ["low", "high", "substantial"] {
            assert!(
                stdout.contains(&format!("ok axe-core the Servicekonto's login ({level}):")),
                "the Servicekonto's login at {level} was not checked:\n{stdout}"
            );
        }
    }

    // What the procedure received: the one Meldebescheinigung, opened as a vendor would.
    let queue = cycle.hub.queue("dresden-buergerbuero");
    let mut messages = Vec::new();
    for _ in 0..120 {
        messages.extend(drain(&broker, &queue, Duration::from_millis(500)).await);
        if !messages.is_empty() {
            break;
        }
    }
    assert_eq!(messages.len(), 1, "one Meldebescheinigung reached Dresden");
    let xml = open_with_openssl_cli(
        &messages[0].body,
        &cycle.hub.pki_dir(),
        "dresden-buergerbuero",
    );
    let at = "//antrag/authentifizierung";
    let text = |path: &str| xpath(&xml, &format!("string({at}/{path})"));
    assert_eq!(text("vertrauensniveau/code"), "substanziell", "{xml}");
    assert_eq!(text("identifizierungsmittel/code"), "elster-zertifikat");
    assert_eq!(text("aussteller"), issuer);
    assert_eq!(text("bestaetigtDurch"), "identitaetsanbieter");
    assert!(!text("pseudonym").is_empty(), "a pseudonymous subject");
    assert_eq!(text("nachweisSHA256").len(), 64, "the assertion's hash");
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn at_the_demo_servicekonto_step_up_and_the_level_reaches_the_procedure() {
    walk("servicekonto").await;
}

#[tokio::test]
async fn at_oidc_provider_step_up_and_the_level_reaches_the_procedure() {
    walk("oidc-provider").await;
}
