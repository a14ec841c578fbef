//! The citizens' portal in a real browser: Debian's `chromium`, driven by
//! `playwright-core` (npm, never a downloaded browser), with `axe-core` on every page
//! type. The script `tests/browser/portal.mjs` walks the whole cycle — search, the
//! registration confirmed through the development mail viewer, finder,
//! a form with an error and its correction, an attachment, the fee, submission, the
//! receipt and the decision in the mailbox — against the real hub, the reference
//! procedure and the portal. Any failed step fails this test.

mod portal_support;

use kopplung_tests::chromium::Walk;
use portal_support::{Cycle, Options};

#[tokio::test]
async fn a_citizen_applies_pays_and_reads_the_decision_in_a_real_browser() {
    // SCREENSHOTS=<folder>: the run leaves screenshots of the new pages there.
    let walk = Walk::new("portal.mjs");
    // The demo's mail drop: the citizen reads the confirmation mail in the development
    // mail viewer, as a demo user does (SMTP itself: tests/tests/portal_accounts.rs).
    let cycle = Cycle::with(Options {
        procedures: true,
        mail: "transport = \"drop\"\nviewer = true\n".into(),
        ..Options::default()
    })
    .await;
    // The phone's photo of the pothole: over 9 MB, with its GPS position.
    let photo_dir = tempfile::tempdir().expect("photo dir");
    let photo = photo_dir.path().join("IMG_2041.JPG");
    std::fs::write(
        &photo,
        portal_support::phone_photo(2500, 1600, (51.05089, 13.73832)),
    )
    .expect("photo written");
    let out = walk.out().to_owned();
    let walked = walk
        .arg(&cycle.portal_url)
        .arg(out)
        .env("PHONE_PHOTO", &photo)
        .run()
        .await;
    println!("{}", walked.stdout);
    walked.assert_passed(&[("portal log", cycle.log())]);
    // Every page type was checked with axe-core.
    walked.assert_checked(&[
        "start page",
        "Impressum",
        "Datenschutzerklärung",
        "Erklärung zur Barrierefreiheit",
        "Kontakt",
        "search results",
        "Leistungskatalog (service)",
        "Behördenkatalog",
        "authority",
        "registration sent",
        "development mail viewer",
        "development mail",
        "address confirmation",
        "account",
        "Zuständigkeitsfinder",
        "Zuständigkeitsfinder by postcode",
        "form step with errors",
        "attachments",
        "review",
        "payment provider",
        "review after a cancelled payment",
        "review after the payment",
        "discard a paid draft",
        "draft discarded with a refund",
        "confirmation",
        "mailbox",
        "Meine Entwürfe",
        "sign-in",
        "error page",
        "attachments with the photo's position offered at 320 px",
        "report confirmation at 320 px",
    ]);
    // The phone photo as the portal keeps it: a JPEG below 5 MB, without EXIF.
    let stored = cycle.sql(
        "SELECT size || ' ' || substr(hex(content), 1, 6) || ' ' || instr(hex(content), '457869660000') FROM draft_attachments WHERE filename = 'IMG_2041.JPG'",
    );
    let parts: Vec<&str> = stored.split(' ').collect();
    assert!(
        parts.len() == 3
            && parts[0].parse::<u64>().unwrap_or(u64::MAX) < 5_000_000
            && parts[1] == "FFD8FF"
            && parts[2] == "0",
        "stored photo (size, magic, EXIF at): {stored}"
    );
    // The second draft's fee went back, recorded as a refund.
    assert_eq!(
        cycle.sql("SELECT reason || ' ' || amount_cents FROM refunds"),
        "discarded 3070"
    );
    // The payment reference travelled in the message: the receipt of the procedure
    // came back, and the portal's log holds no personal data.
    let log = cycle.log();
    assert!(log.contains("application submitted"), "{log}");
    for personal in ["Hartmann", "Königsbrücker", "DD-KP 2027", "@example.org"] {
        assert!(
            !log.contains(personal),
            "personal data in the portal's log: {personal}"
        );
    }
}

/// The dog tax with two dogs in a real browser, once with JavaScript and once without:
/// `tests/browser/dogs.mjs` adds and removes dogs, meets the errors of the second dog
/// and of the IBAN, and submits. The citizen signs up over HTTP first; the browser
/// takes over the session.
#[tokio::test]
async fn two_dogs_are_registered_in_a_real_browser_with_and_without_javascript() {
    let cycle = Cycle::start(true).await;
    for mode in ["js", "nojs"] {
        let mut citizen = portal_support::Citizen::new(&cycle);
        citizen
            .register(&format!("hundehalterin-{mode}@example.org"))
            .await;
        let cookie = citizen.cookie_header().expect("signed in");
        let walk = Walk::new("dogs.mjs");
        let out = walk.out().to_owned();
        let walked = walk
            .arg(&cycle.portal_url)
            .arg(out)
            .arg(cookie)
            .arg(mode)
            .run()
            .await;
        println!("{mode}:\n{}", walked.stdout);
        walked.assert_passed(&[]);
    }
    let log = cycle.log();
    for personal in ["Ronja", "Schröder", "DE02", "WT-2022"] {
        assert!(
            !log.contains(personal),
            "personal data in the portal's log: {personal}"
        );
    }
}
