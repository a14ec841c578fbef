//! `kopplung check` catches each class of configuration error with a message that names
//! the file and what is wrong — and the server refuses to start on the same errors.
//! (An expired certificate: tests/tests/certificates.rs.)

use std::ops::Deref;
use std::process::Output;

use kopplung_tests::site::Site;
use kopplung_tests::write_private;

/// A copy of the demo configuration and mappings with a data directory (PKI, tokens),
/// as after a first demo run.
struct DemoSite(Site);

impl Deref for DemoSite {
    type Target = Site;

    fn deref(&self) -> &Site {
        &self.0
    }
}

impl DemoSite {
    fn new() -> Self {
        Self::of(Site::new())
    }

    fn of(site: Site) -> Self {
        site.keys_init();
        // Every token and password file the configuration names, as the set-up does.
        let tokens = site.run(&["tokens", "init"]);
        assert!(
            tokens.status.success(),
            "{}",
            String::from_utf8_lossy(&tokens.stderr)
        );
        Self(site)
    }

    fn check(&self) -> Output {
        self.kopplung(&["check"])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    }

    /// `kopplung check` fails naming `file` and every fragment; `kopplung serve` refuses
    /// to start with the same message.
    fn refused(&self, file: &str, fragments: &[&str]) {
        let check = self.check();
        let message = String::from_utf8_lossy(&check.stderr).into_owned();
        assert!(!check.status.success(), "check passed: {message}");
        assert!(message.contains(file), "`{file}` not named: {message}");
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "`{fragment}` missing: {message}"
            );
        }
        // The server must refuse at once; one that starts is killed and fails the test.
        let mut serve = self
            .kopplung(&["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_BACKTRACE", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = serve.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = serve.kill();
                panic!("the server started on an invalid configuration");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let serve = Output {
            status,
            stdout: Vec::new(),
            stderr: {
                use std::io::Read;
                let mut stderr = Vec::new();
                if let Some(mut pipe) = serve.stderr.take() {
                    let _ = pipe.read_to_end(&mut stderr);
                }
                stderr
            },
        };
        assert!(!serve.status.success(), "the server started");
        let refused = String::from_utf8_lossy(&serve.stderr);
        assert!(
            refused.contains(fragments[0]),
            "serve refused differently: {refused}"
        );
    }
}

/// One test per single edit that `kopplung check` and `kopplung serve` must refuse: the
/// file, the text replaced and its replacement, the file named and what the message says.
macro_rules! refused_edits {
    ($($name:ident: $change:ident($($arg:expr),+); names $named:expr, $fragments:expr;)+) => {
        $(
            #[test]
            fn $name() {
                let site = DemoSite::new();
                site.$change($($arg),+);
                site.refused($named, &$fragments);
            }
        )+
    };
}

refused_edits! {
    an_identity_provider_over_plain_http: edit(
        "config/kopplung.toml",
        "issuer = \"http://127.0.0.1:8082\"",
        "issuer = \"http://idp.example\"");
        names "kopplung.toml", ["[[identity_provider]] servicekonto-demo: issuer: `http://idp.example`: need https:// and a host"];
    a_client_vouching_for_no_level: edit(
        "config/kopplung.toml",
        "asserts_up_to = \"basis\"",
        "asserts_up_to = \"niedrig\"");
        names "kopplung.toml", ["asserts_up_to: unknown variant `niedrig`"];
    an_ambiguous_route: append(
        "config/routing.toml",
        "\n[[route]]\nservice = \"99999001000000\"\nregion = \"14612\"\nprocedure = \"leipzig-maengel\"\n");
        names "routing.toml", ["route 99999001000000 / 14612 is defined twice (ambiguous)"];
    a_route_for_a_service_without_mapping: append(
        "config/routing.toml",
        "\n[[route]]\nservice = \"99999099000000\"\nregion = \"14612\"\nprocedure = \"dresden-maengel\"\n");
        names "mappings", ["names service 99999099000000, which has no mapping"];
    a_route_to_an_unknown_procedure: edit(
        "config/routing.toml",
        "procedure = \"dresden-maengel\"\n",
        "procedure = \"dresden-maengelmelder\"\n");
        names "routing.toml", ["unknown procedure `dresden-maengelmelder`"];
    a_municipality_the_service_claims_without_a_route: edit(
        "config/routing.toml",
        "[[route]]\nservice = \"99999001000000\"\nregion = \"14612\"\nprocedure = \"dresden-maengel\"\n",
        "");
        names "maengelanzeige/service.toml", ["available_in: service 99999001000000 (Mängelanzeige) claims 1 municipality without a route", "Dresden, Stadt (146120000000)"];
    a_syntax_error_names_the_line: edit(
        "config/routing.toml",
        "envelope = \"cms\"\n",
        "envelope = \"cms\n");
        names "routing.toml", ["line "];
    an_unknown_value_is_named: edit(
        "config/routing.toml",
        "envelope = \"cms\"\n",
        "envelope = \"pgp\"\n");
        names "routing.toml", ["unknown variant `pgp`"];
    a_procedure_of_an_unknown_authority: edit(
        "config/routing.toml",
        "authority = \"dresden\"\n",
        "authority = \"dresdner-rathaus\"\n");
        names "routing.toml", ["unknown authority `dresdner-rathaus`"];
    a_manual_procedure_with_an_unknown_clerk: edit(
        "config/routing.toml",
        "clerks = [\"demo-sachbearbeitung\"]",
        "clerks = [\"niemand\"]");
        names "routing.toml", ["unknown clerk `niemand`"];
    a_mapping_with_a_bad_claim: edit(
        "mappings/maengelanzeige/service.toml",
        "available_in = [\"14\"]",
        "available_in = [\"Sachsen\"]");
        names "maengelanzeige/service.toml", ["available_in: `Sachsen` is no ARS prefix"];
    a_decision_document_of_no_known_kind: edit(
        "mappings/gewerbeanmeldung/service.toml",
        "document = \"pdf/a\"",
        "document = \"pdfa\"");
        names "gewerbeanmeldung/service.toml", ["[decision] document: `pdfa` is neither `any` nor `pdf/a`"];
    a_retention_for_an_unknown_kind_of_key: edit(
        "config/kopplung.toml",
        "[retention]\ndays = 365\n",
        "[retention]\ndays = 365\n[retention.service]\nmaengel = 30\n");
        names "kopplung.toml", ["`maengel` is no 14-digit LeiKa key"];
    bad_limits_are_all_named_at_once: edit(
        "config/kopplung.toml",
        "max_body_bytes = 25_165_824\n",
        "max_body_bytes = 25_165_824\nheader_timeout_secs = 0\nmax_head_bytes = 100\ntrusted_proxies = [\"10.0.0.0/33\"]\n");
        names "kopplung.toml", ["[limits] header_timeout_secs", "[limits] max_head_bytes", "[limits] trusted_proxies"];
    a_template_using_a_field_the_form_does_not_define: edit(
        "mappings/maengelanzeige/nachricht.xml.hbs",
        "<beschreibung>{{data.beschreibung}}</beschreibung>",
        "<beschreibung>{{data.beschreibung}} {{data.farbe}}</beschreibung>");
        names "maengelanzeige/nachricht.xml.hbs", ["`data.farbe` refers to a field the form does not define", "none put in force"];
    a_template_rendering_two_root_elements: edit(
        "mappings/maengelanzeige/nachricht.xml.hbs",
        "</mng:maengelanzeige.meldung.0101>",
        "</mng:maengelanzeige.meldung.0101>\n<zweite/>");
        names "maengelanzeige/fixtures/", ["more than one root element"];
    a_fixture_that_no_longer_matches: edit(
        "mappings/maengelanzeige/fixtures/minimal.expected.xml",
        "ist seit einer Woche dunkel.",
        "ist seit zwei Wochen dunkel.");
        names "maengelanzeige/fixtures/minimal.expected.xml", ["the message differs from the expected XML"];
    a_bad_procedure_id_is_refused_with_its_line_and_key: edit(
        "config/routing.toml",
        "id = \"dresden-maengel\"\n",
        "id = \"Dresden_Maengel\"\n");
        names "routing.toml", ["id: `Dresden_Maengel` is no procedure id", "line "];
}

#[test]
fn the_demo_configuration_is_valid() {
    let site = DemoSite::new();
    let check = site.check();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("418 municipalities"));
}

/// With FIT-Connect (one destination of the demo's, each needs an RSA-4096 key): valid;
/// without the destination's key or the metadata schema, named.
#[test]
fn the_demo_configuration_with_fitconnect_is_valid_and_its_parts_are_named() {
    let site = DemoSite::of(Site::with_fitconnect(&["dresden-maengel"]));
    let check = site.check();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::remove_file(site.data().join("fitconnect/metadata.schema.json")).unwrap();
    site.refused(
        "metadata.schema.json",
        &["[fitconnect] metadata_schema", "schema.fitko.de"],
    );
    std::fs::remove_file(site.data().join("pki/fitconnect/dresden-maengel.key")).unwrap();
    site.refused(
        "dresden-maengel.key",
        &["[[procedure]] dresden-maengel: the FIT-Connect destination's key"],
    );
}

#[test]
fn a_missing_certificate() {
    let site = DemoSite::new();
    std::fs::remove_file(site.data().join("pki/procedures/dresden-maengel.crt")).unwrap();
    site.refused("dresden-maengel.crt", &["No such file"]);
}

#[test]
fn a_missing_token_file() {
    let site = DemoSite::new();
    std::fs::remove_file(site.data().join("intake-token")).unwrap();
    site.refused(
        "intake-token",
        &[
            "([[client]] demo: token_file) does not exist",
            "hint: `kopplung tokens init --config",
        ],
    );
}

#[test]
fn files_open_to_other_users_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let site = DemoSite::new();
    assert!(site.check().status.success());
    let token = site.data().join("admin-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(site.data(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let check = site.check();
    let message = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "check passed: {message}");
    for named in [
        format!("file {} has mode 0644", token.display()),
        format!("directory {} has mode 0755", site.data().display()),
    ] {
        assert!(message.contains(&named), "`{named}` missing: {message}");
    }
    // Certificates are public: the PKI's 0644 certificates are not reported.
    assert!(!message.contains(".crt"), "{message}");
}

#[test]
fn three_mistakes_in_two_files_are_all_named_at_once() {
    let site = DemoSite::new();
    // kopplung.toml: a clerk without a password; routing.toml: an AMQP procedure that
    // gives both a token hash and a token file (the arm-order bug let token_sha256 win
    // silently), and a route to an unknown procedure.
    site.edit(
        "config/kopplung.toml",
        "[[clerk]]\n",
        "[[clerk]]\nid = \"ohne-passwort\"\nname = \"Ohne Passwort\"\n\n[[clerk]]\n",
    );
    site.edit(
        "config/routing.toml",
        "token_file = \"procedure-tokens/dresden-maengel\"\n",
        "token_file = \"procedure-tokens/dresden-maengel\"\ntoken_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n",
    );
    site.edit(
        "config/routing.toml",
        "procedure = \"leipzig-maengel\"\n",
        "procedure = \"leipzig-maengelmelder\"\n",
    );
    site.refused(
        "routing.toml",
        &[
            "[[procedure]] dresden-maengel: token_sha256 and token_file: give one, not both",
            "kopplung.toml: [[clerk]] ohne-passwort: password_argon2: give exactly one of password_argon2 and password_file",
            "routing.toml: [[route]] 99999001000000 / 14713: procedure: unknown procedure `leipzig-maengelmelder`",
            "has 3 problems",
        ],
    );
}

#[test]
fn a_next_signing_key_that_does_not_match_its_certificate_is_named() {
    let site = DemoSite::new();
    let pki = site.data().join("pki");
    std::fs::copy(pki.join("hub.crt"), pki.join("bad-next.crt")).unwrap();
    // Some other EC key of the PKI: valid in itself, not the certificate's.
    let other = std::fs::read(pki.join("procedures/dresden-maengel-signatur.key")).unwrap();
    write_private(&pki.join("hub-next.key"), &other);
    site.append(
        "config/kopplung.toml",
        "\n[signing]\nnext_certificate = \"bad-next.crt\"\nnext_key = \"hub-next.key\"\n",
    );
    site.refused(
        "kopplung.toml",
        &["kopplung.toml: [signing] next_key: hub-next.key does not belong to next_certificate bad-next.crt"],
    );
}

/// On a fresh data directory `check` names every missing file and the command that
/// creates it; running exactly those commands makes the configuration valid.
#[test]
fn a_fresh_data_directory_names_the_commands_that_fill_it() {
    let site = Site::new();
    let check = site.run(&["check"]);
    let message = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(!check.status.success(), "check passed: {message}");
    kopplung_tests::assert_has(
        &message,
        "intake-token ([[client]] demo: token_file) does not exist",
    );
    assert!(message.contains("pki/hub.crt does not exist"), "{message}");
    let commands: Vec<String> = message
        .lines()
        .filter_map(|line| line.strip_prefix("hint: `"))
        .filter_map(|rest| rest.split_once('`').map(|(command, _)| command.to_owned()))
        .collect();
    assert_eq!(commands.len(), 2, "{message}");
    for command in &commands {
        let words: Vec<&str> = command.split(' ').collect();
        assert_eq!(words[0], "kopplung", "{command}");
        let output = std::process::Command::new(kopplung_tests::kopplung_bin())
            .args(&words[1..])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let check = site.run(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A sealed-for procedure without a receipt certificate would have every receipt
/// refused: `check` says so (a warning: the configuration is still usable).
#[test]
fn a_procedure_without_a_receipt_certificate_is_reported() {
    let site = DemoSite::new();
    site.edit(
        "config/routing.toml",
        "receipt_certificate = \"procedures/dresden-maengel-signatur.crt\"\n",
        "",
    );
    let check = site.check();
    let message = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{message}");
    assert!(
        message.contains("warning: procedure dresden-maengel: no receipt_certificate in")
            && message.contains("its receipts and events will be refused"),
        "{message}"
    );
}
