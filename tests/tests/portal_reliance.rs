//! A portal real people can rely on (issue 25), over HTTP against the real hub and the
//! portal's simulated payment provider: the review says when a payment succeeded, was
//! cancelled or is still open; a paid draft is discarded only after a confirmation that
//! explains the refund, and discarding refunds the fee and records it; an open payment
//! of a discarded draft can no longer be paid; going back a step keeps what was typed;
//! a file chosen and sent with "Weiter zur Prüfung" is stored; field errors are German
//! sentences; the confirmation PDF says everything and is tagged; a phone photo is
//! scaled down, loses its metadata and offers its position.

mod portal_support;

use portal_support::{Citizen, Cycle, Page};

const PARKING: &str = "99108001000000";

/// A signed-in citizen's complete Bewohnerparkausweis (fee 30,70 €), at its review.
async fn parking_at_review(cycle: &Cycle, email: &str) -> (Citizen, String, Page) {
    let mut citizen = Citizen::new(cycle);
    citizen.register(email).await;
    let region = portal_support::fixture("bewohnerparkausweis")["region"]
        .as_str()
        .unwrap()
        .to_owned();
    let location = citizen.start(PARKING, &region).await;
    let draft =
        portal_support::fill_from_fixture(&mut citizen, "bewohnerparkausweis", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert_eq!(review.status, 200, "{}", review.body);
    kopplung_tests::assert_has(&review.body, "Weiter zur Bezahlung");
    (citizen, draft, review)
}

#[tokio::test]
async fn a_paid_draft_is_discarded_only_after_a_confirmation_and_its_fee_is_refunded() {
    let cycle = Cycle::start(false).await;
    let (mut citizen, draft, review) = parking_at_review(&cycle, "sabine@example.org").await;
    // The wording says what happens: paying does not submit.
    assert!(
        !review
            .body
            .contains("nach erfolgreicher Bezahlung abgesendet")
    );
    assert!(
        review
            .body
            .contains("Erst wenn Sie den Antrag dann absenden")
    );

    // Cancelled at the provider: the review says so, and that nothing was charged.
    let (_, cancelled) = citizen
        .pay(&draft, &review.csrf(), "kreditkarte", "abbrechen")
        .await;
    assert!(
        cancelled
            .body
            .contains("Sie haben die Zahlung abgebrochen. Es wurde kein Geld abgebucht."),
        "{}",
        cancelled.body
    );
    assert!(!cancelled.body.contains("Zahlung erfolgreich"));

    // Paid: a banner at the top says so, with the submit action in it.
    let (_, paid) = citizen
        .pay(&draft, &review.csrf(), "kreditkarte", "bezahlen")
        .await;
    let banner = paid
        .body
        .find("Zahlung erfolgreich – jetzt absenden")
        .unwrap_or_else(|| panic!("no success banner:\n{}", paid.body));
    let details = paid.body.find(">Ihre Angaben</h2>").expect("the inputs");
    let submit = paid
        .body
        .find("Antrag verbindlich absenden")
        .expect("the submit action");
    assert!(
        banner < submit && submit < details,
        "banner and submit on top"
    );
    assert!(!paid.body.contains("Sie haben die Zahlung abgebrochen"));
    let reference: String = paid.body[paid.body.find("XBZ-").expect("reference")..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    // The draft list says it is paid but not sent.
    let list = citizen.get("/konto/entwuerfe").await;
    assert!(
        list.body
            .contains("Die Gebühr ist bezahlt, abgesendet ist aber noch nichts.")
    );

    // "Entwurf verwerfen" first asks, naming the fee and the refund; nothing is gone yet.
    let path = format!("/entwurf/{draft}/loeschen");
    let asked = citizen.post(&path, &[("csrf", &paid.csrf())]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Entwurf wirklich verwerfen?"));
    assert!(
        asked
            .body
            .contains("Sie haben die Gebühr von 30,70 € bereits bezahlt")
    );
    assert!(asked.body.contains(&reference));
    assert!(
        asked
            .body
            .contains("erstatten wir die Gebühr vollständig über die Zahlungsart")
    );
    assert_eq!(
        citizen
            .get(&format!("/entwurf/{draft}/pruefen"))
            .await
            .status,
        200,
        "kept until confirmed"
    );
    assert_eq!(cycle.sql("SELECT count(*) FROM refunds"), "0");

    // Confirmed: refunded at the provider, recorded, and the draft is gone.
    let done = citizen
        .post(&path, &[("csrf", &asked.csrf()), ("bestaetigt", "ja")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Entwurf verworfen"), "{}", done.body);
    assert!(
        done.body
            .contains("Die bezahlte Gebühr von 30,70 € wird über die Zahlungsart erstattet"),
        "{}",
        done.body
    );
    let refund_at = done.body.find("Erstattungsreferenz: ").expect("refund") + 21;
    let refund: String = done.body[refund_at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    assert!(refund.starts_with("XBZ-E-"), "{refund}");
    assert_eq!(
        cycle.sql(
            "SELECT refund_reference || '|' || payment_reference || '|' || amount_cents
               || '|' || service || '|' || reason FROM refunds"
        ),
        format!("{refund}|{reference}|3070|{PARKING}|discarded")
    );
    assert_eq!(
        citizen
            .get(&format!("/entwurf/{draft}/pruefen"))
            .await
            .status,
        404
    );
    assert_eq!(
        cycle.sql(&format!("SELECT count(*) FROM drafts WHERE id = '{draft}'")),
        "0"
    );
}

#[tokio::test]
async fn a_discarded_drafts_open_payment_can_no_longer_be_paid() {
    let cycle = Cycle::start(false).await;
    let (mut citizen, draft, review) = parking_at_review(&cycle, "karl@example.org").await;
    // The payment is started (the provider's page is open in another tab) ...
    let started = citizen
        .post(
            &format!("/entwurf/{draft}/bezahlen"),
            &[("csrf", &review.csrf())],
        )
        .await;
    assert_eq!(started.status, 303);
    let provider = citizen.get(&started.location()).await;
    assert_eq!(provider.status, 200);
    // ... and the draft discarded meanwhile: nothing was paid, so nothing to refund.
    let done = citizen
        .post(
            &format!("/entwurf/{draft}/loeschen"),
            &[("csrf", &review.csrf()), ("bestaetigt", "ja")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!done.body.contains("erstattet"), "{}", done.body);
    // The open transaction was cancelled: paying in the other tab takes no money.
    let paid_late = citizen
        .post(
            &started.location(),
            &[
                ("csrf", &provider.csrf()),
                ("zahlart", "kreditkarte"),
                ("aktion", "bezahlen"),
            ],
        )
        .await;
    assert_eq!(paid_late.status, 303, "{}", paid_late.body);
    let again = citizen.get(&started.location()).await;
    assert_eq!(again.status, 303, "the provider no longer offers to pay");
    assert_eq!(cycle.sql("SELECT count(*) FROM refunds"), "0");
}

#[tokio::test]
async fn going_back_keeps_the_input_and_a_chosen_file_is_stored_on_weiter() {
    let cycle = Cycle::start(false).await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("paula@example.org").await;
    let step1 = citizen.start(PARKING, "147130000000").await;
    let draft = portal_support::draft_of(&step1);
    let first = citizen
        .press(
            &step1,
            "weiter",
            &[
                ("antragsart", "erstantrag"),
                ("parkzone", "L12"),
                ("gueltig_ab", "01.03.2027"),
            ],
        )
        .await;
    assert_eq!(first.status, 303, "{}", first.body);
    let step2 = first.location();
    assert!(step2.ends_with("/schritt/2"), "{step2}");
    // Typed on step 2, then back: no error, the input is kept.
    let page = citizen.get(&step2).await;
    assert!(page.body.contains("Zurück zum vorigen Schritt"));
    let back = citizen
        .press(
            &step2,
            "zurueck",
            &[
                ("person.familienname", "Neumann"),
                ("person.vornamen", "Paula"),
            ],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), step1);
    let again = citizen.get(&step2).await;
    assert!(again.body.contains("value=\"Neumann\""), "{}", again.body);
    assert!(again.body.contains("value=\"Paula\""));

    // On the attachments page a file chosen but not uploaded goes with "Weiter".
    let attachments = format!("/entwurf/{draft}/anlagen");
    let csrf = citizen.get(&attachments).await.csrf();
    let pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "datei",
            reqwest::multipart::Part::bytes(pdf)
                .file_name("Fahrzeugschein.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        )
        .text("aktion", "weiter");
    let onward = citizen
        .send(citizen.http.post(citizen.url(&attachments)).multipart(form))
        .await;
    assert_eq!(onward.status, 303, "{}", onward.body);
    assert_eq!(onward.location(), format!("/entwurf/{draft}/pruefen"));
    let review = citizen.get(&onward.location()).await;
    kopplung_tests::assert_has(&review.body, "Fahrzeugschein.pdf");
    // The documents the service names are required: a file among the further
    // documents is no Fahrzeugschein, and the page asks for it where it belongs.
    assert!(review.body.contains(
        "Bitte laden Sie „Fahrzeugschein (Zulassungsbescheinigung Teil I)“ bei den Unterlagen hoch."
    ));
    let page = citizen.get(&attachments).await;
    let heading = page
        .body
        .find("Fahrzeugschein (Zulassungsbescheinigung Teil I)")
        .unwrap();
    let after: String = page.body[heading..].chars().take(100).collect();
    assert!(!after.contains("(freiwillig)"), "{after}");
    // A refused file on "Weiter" stays on the page with its error, nothing is skipped.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .part(
            "datei",
            reqwest::multipart::Part::bytes(b"GIF89a\x01\x00".to_vec())
                .file_name("bild.gif")
                .mime_str("image/gif")
                .unwrap(),
        )
        .text("aktion", "weiter");
    let refused = citizen
        .send(citizen.http.post(citizen.url(&attachments)).multipart(form))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("Dateityp ist nicht erlaubt"));
}

/// Field errors read as whole German sentences that say how to fix them, without codes;
/// a plate typed loosely is written as on the sign; emoji are taken out of a free text
/// with a note, and refused with a sentence in a name.
#[tokio::test]
async fn field_errors_are_sentences_plates_are_normalised_and_emoji_leave_free_text() {
    use portal_support::{DRESDEN, MAENGEL};
    let cycle = Cycle::start(false).await;
    let mut visitor = Citizen::new(&cycle);
    let step = visitor.start(MAENGEL, DRESDEN).await;
    let csrf = visitor.get(&step).await.csrf();
    let fields = |description: &'static str, name: &'static str| {
        vec![
            ("aktion", "weiter"),
            ("kategorie", "strassenschaden"),
            ("beschreibung", description),
            ("ort.strasse", "Königsbrücker Straße"),
            ("ort.hausnummer", "12"),
            ("kontakt.name", name),
        ]
    };
    let post = |pairs: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(pairs.into_iter().map(|(k, v)| (k, v.to_owned())));
        form
    };
    let short = post(fields("Loch", "Max Muster"));
    let short: Vec<(&str, &str)> = short.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = visitor.post(&step, &short).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains(
            "Bitte schreiben Sie bei „Beschreibung“ mindestens 10 Zeichen; bisher sind es 4."
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("(jetzt"));

    // An emoji in the description goes, with a note; the step shows the text again.
    let emoji = post(fields("Tiefes Schlagloch 😡 vor der Schule", "Max Muster"));
    let emoji: Vec<(&str, &str)> = emoji.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = visitor.post(&step, &emoji).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(
        "Wir haben Emojis und Symbole aus „Beschreibung“ entfernt, weil die Behörde sie nicht verarbeiten kann."
    ));
    assert!(page.body.contains("Tiefes Schlagloch vor der Schule"));
    assert!(!page.body.contains('😡'));

    // In a name it is refused, in words, without a code or a norm's number.
    let name = post(fields("Tiefes Schlagloch vor der Schule", "Max 😡"));
    let name: Vec<(&str, &str)> = name.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = visitor.post(&step, &name).await;
    assert_eq!(page.status, 422);
    kopplung_tests::assert_has(
        &page.body,
        "„Name“ enthält das Symbol „😡“. Emojis und Symbole kann die Behörde nicht verarbeiten; bitte lassen Sie sie weg.",
    );
    assert!(!page.body.contains("U+") && !page.body.contains("DIN 91379"));

    // A date that is none, and a plate typed in small letters without a hyphen.
    let mut citizen = Citizen::new(&cycle);
    citizen.register("kennzeichen@example.org").await;
    let first = citizen.start(PARKING, DRESDEN).await;
    let wrong_date = citizen
        .press(
            &first,
            "weiter",
            &[
                ("antragsart", "erstantrag"),
                ("parkzone", "A3"),
                ("gueltig_ab", "morgen"),
            ],
        )
        .await;
    assert_eq!(wrong_date.status, 422);
    assert!(wrong_date.body.contains(
        "Bitte geben Sie „Gewünschter Beginn der Gültigkeit“ als Datum in der Form TT.MM.JJJJ ein, zum Beispiel 23.06.1979."
    ));
    let third = first.replace("/schritt/1", "/schritt/3");
    let saved = citizen
        .press(&third, "speichern", &[("kennzeichen", "dd ab 1234")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = citizen.get(&third).await;
    assert!(page.body.contains("value=\"DD-AB 1234\""), "{}", page.body);
}

/// The confirmation of receipt names the authority, the applicant, the date, the
/// service, what was entered and the fee, and is a tagged PDF (pdftotext and pdfinfo
/// from poppler-utils read it as a reader would).
#[tokio::test]
async fn the_confirmation_pdf_says_who_what_when_and_the_fee_and_is_tagged() {
    for tool in ["pdftotext", "pdfinfo"] {
        assert!(
            std::process::Command::new(tool).arg("-v").output().is_ok(),
            "{tool} is missing: `apt-get install poppler-utils` (scripts/test does)"
        );
    }
    let cycle = Cycle::start(false).await;
    let (mut citizen, draft, review) = parking_at_review(&cycle, "beleg@example.org").await;
    let (_, paid) = citizen
        .pay(&draft, &review.csrf(), "kreditkarte", "bezahlen")
        .await;
    let reference: String = paid.body[paid.body.find("XBZ-").expect("reference")..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    citizen.submit_reviewed(&draft, &paid).await;
    let page = citizen.get(&format!("/antraege/{draft}")).await;
    let receipt_at = page.body.find("id=\"vorgangsnummer\"").expect("receipt");
    let receipt: String = page.body[receipt_at..]
        .chars()
        .skip_while(|c| *c != '>')
        .skip(1)
        .take_while(|c| *c != '<')
        .collect();
    let response = citizen
        .http
        .get(citizen.url(&format!("/antraege/{draft}/bestaetigung.pdf")))
        .header("cookie", citizen.cookie_header().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bestaetigung.pdf");
    std::fs::write(&file, &bytes).unwrap();
    // SCREENSHOTS=<folder>: the confirmation is left there for a look.
    if let Some(folder) = std::env::var_os("SCREENSHOTS") {
        std::fs::write(
            std::path::Path::new(&folder).join("bestaetigung.pdf"),
            &bytes,
        )
        .unwrap();
    }
    let text = String::from_utf8(
        std::process::Command::new("pdftotext")
            .arg(&file)
            .arg("-")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for expected in [
        format!("Eingangsbestätigung {receipt}"),
        "Bewohnerparkausweis".to_owned(),
        "Zuständige Behörde".to_owned(),
        "Stadt Leipzig".to_owned(),
        "Sabine Hoffmann".to_owned(),
        "Eingegangen am".to_owned(),
        "Karl-Heine-Straße".to_owned(),
        "L-SH 2206E".to_owned(),
        "30,70 €".to_owned(),
        reference.clone(),
        "Fahrzeugschein.jpg".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected} missing in:\n{text}");
    }
    let info = String::from_utf8(
        std::process::Command::new("pdfinfo")
            .arg(&file)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(info.contains("Tagged:          yes"), "{info}");
    assert!(
        info.lines()
            .any(|l| l.starts_with("Title:")
                && l.ends_with(&format!("Eingangsbestätigung {receipt}"))),
        "{info}"
    );
}

/// A 9 MB phone photo is taken where the limit is 5 MiB: stored smaller than 5 MB,
/// without its EXIF; the position it held is offered for the report's place and taken
/// into the form on request.
#[tokio::test]
async fn a_phone_photo_is_scaled_down_stripped_and_its_position_offered() {
    use portal_support::start_pothole_report;
    let photo = portal_support::phone_photo(2500, 1600, (51.05089, 13.73832));
    println!("phone photo: {} bytes", photo.len());
    assert!(photo.len() > 9_000_000, "{} bytes", photo.len());
    let cycle = Cycle::start(false).await;
    let mut reporter = Citizen::new(&cycle);
    let (draft, attachments) = start_pothole_report(&mut reporter).await;
    let csrf = reporter.get(&attachments).await.csrf();
    let stored = reporter
        .upload(&draft, &csrf, "IMG_2041.JPG", "image/jpeg", photo)
        .await;
    assert_eq!(stored.status, 303, "{}", stored.body);
    assert_eq!(
        stored.location(),
        format!("/entwurf/{draft}/anlagen?foto_ort=51.05089,13.73832")
    );
    let size: u64 = cycle
        .sql(&format!(
            "SELECT size FROM draft_attachments WHERE draft_id = '{draft}'"
        ))
        .parse()
        .unwrap();
    println!("stored: {size} bytes");
    assert!(size < 5_000_000, "{size} bytes stored");
    let blob = cycle.sql(&format!(
        "SELECT hex(content) FROM draft_attachments WHERE draft_id = '{draft}'"
    ));
    assert!(blob.starts_with("FFD8FF"), "a JPEG");
    // No EXIF segment (APP1 "Exif") and no trace of the device.
    assert!(
        !blob.contains("457869660000"),
        "EXIF left in the stored photo"
    );
    assert!(!blob.contains(&hex("Telefonbau")));

    let page = reporter.get(&stored.location()).await;
    kopplung_tests::assert_has(
        &page.body,
        "Ihr Foto enthält den Ort, an dem es aufgenommen wurde (Breite 51,05089, Länge 13,73832).",
    );
    let taken = reporter
        .post(
            &format!("/entwurf/{draft}/anlagen/ort"),
            &[
                ("csrf", &page.csrf()),
                ("lat", "51.05089"),
                ("lon", "13.73832"),
            ],
        )
        .await;
    assert_eq!(taken.status, 303, "{}", taken.body);
    let review = reporter.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(review.body.contains("51,05089"), "{}", review.body);
    assert!(review.body.contains("IMG_2041.JPG"));
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

/// A fee per certificate (`je = "anzahl"`): two certificates cost twice 12 € on the
/// review page, at the payment provider and in the confirmation; once paid, the count
/// stays as paid (a changed count is kept back with a note), and the paid draft submits.
#[tokio::test]
async fn a_fee_per_certificate_is_charged_for_each_and_the_paid_count_stays() {
    use kopplung_tests::oidc::{ERIKA, HIGH, IdpBrowser};
    let cycle = Cycle::with_oidc_provider().await;
    let mut citizen = Citizen::new(&cycle);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    citizen
        .sign_in_at(&mut idp, ERIKA, HIGH, "/konto", false)
        .await;
    let fixture = portal_support::fixture("urkundenbestellung");
    assert_eq!(fixture["data"]["anzahl"], 2, "the fixture orders two");
    let region = fixture["region"].as_str().unwrap().to_owned();
    let location = citizen.start("99014002000000", &region).await;
    let first_step = location.clone();
    let draft =
        portal_support::fill_from_fixture(&mut citizen, "urkundenbestellung", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(
        review.body.contains("24,00 €") && review.body.contains("Gebühr je Urkunde (2 × 12,00 €)"),
        "{}",
        review.body
    );
    let (provider, paid) = citizen
        .pay(&draft, &review.csrf(), "kreditkarte", "bezahlen")
        .await;
    assert!(provider.body.contains("24,00 €"), "{}", provider.body);
    assert!(paid.body.contains("Zahlung erfolgreich"), "{}", paid.body);

    // Five instead of two, after paying for two: kept at two, and said why.
    let mut pairs = Vec::new();
    portal_support::flatten("", &fixture["data"], &mut pairs);
    for pair in &mut pairs {
        if pair.0 == "anzahl" {
            pair.1 = "5".into();
        }
    }
    let step = citizen.get(&first_step).await;
    assert!(
        step.body.contains("name=\"anzahl\""),
        "anzahl on the first step"
    );
    let csrf = step.csrf();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let changed = citizen.post(&first_step, &form).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(
        changed
            .body
            .contains("Die Anzahl bleibt, wie Sie sie bezahlt haben."),
        "{}",
        changed.body
    );
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(
        review.body.contains("24,00 €") && !review.body.contains("60,00 €"),
        "{}",
        review.body
    );
    citizen.submit_reviewed(&draft, &review).await;
    let response = citizen
        .http
        .get(citizen.url(&format!("/antraege/{draft}/bestaetigung.pdf")))
        .header("cookie", citizen.cookie_header().unwrap())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bestaetigung.pdf");
    std::fs::write(&file, response.bytes().await.unwrap()).unwrap();
    let text = String::from_utf8(
        std::process::Command::new("pdftotext")
            .arg(&file)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils)")
            .stdout,
    )
    .unwrap();
    assert!(text.contains("24,00 €"), "{text}");
}
