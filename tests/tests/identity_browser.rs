//! Who applied, in a real browser (Debian's chromium, driven by playwright-core through
//! `tests/browser/oidc.mjs`), once at the demo Servicekonto (`kopplung idp-sim`) and once
//! at panva's `oidc-provider` from npm (OpenID Certified, not ours): signed in at basis,
//! the portal asks for step-up before the Wohnsitzanmeldung (hoch); signed in at
//! substanziell, a Meldebescheinigung is submitted, and the message the procedure gets,
//! decrypted and verified with stock `openssl cms`, carries the level, the means and the
//! issuer. The portal's CSP is enforced; axe-core checks the pages.

mod portal_support;

use std::time::Duration;

use kopplung_tests::chromium::Walk;
use kopplung_tests::{amqp, delete_queue, drain, open_with_openssl_cli, xpath};
use portal_support::{Cycle, Options};

/// Walks the citizen's way at `provider` (`oidc-provider` or `servicekonto`) and opens
/// the Meldebescheinigung that reached the Bürgerbüro of Dresden.
async fn walk(provider: &'static str) {
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
    let walk = Walk::new("oidc.mjs").into_folder(provider);
    let out = walk.out().to_owned();
    let walked = walk
        .arg(&cycle.portal_url)
        .arg(out)
        .arg(provider)
        .run()
        .await;
    let provider_log = match (&cycle.idp, &cycle.servicekonto) {
        (Some(idp), _) => idp.log(),
        (_, Some(servicekonto)) => servicekonto.log(),
        _ => String::new(),
    };
    walked.assert_passed(&[("portal log", cycle.log()), ("provider log", provider_log)]);
    walked.assert_checked(&[
        "sign-in with providers",
        "account signed in at a provider",
        "step-up",
        "form prefilled from the ID",
        "identification",
        "start page after logout",
    ]);
    let stdout = &walked.stdout;
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
