//! The demo configuration routes every Saxon municipality, and a broken configuration
//! is refused with the file and line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use kopplung_adapters::registry::Transport;
use kopplung_router::config::Config;
use kopplung_router::regions::Regions;
use kopplung_router::routing::RoutingTable;

const MAENGEL: &str = "99999001000000";

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The demo configuration as it is in the repository.
fn demo_config() -> Config {
    Config::load(
        &workspace().join("config/kopplung.toml"),
        Path::new("/nonexistent"),
    )
    .unwrap()
}

/// The error of a configuration that must not load (`what` it is, if it does).
fn refused(loaded: Result<Config, String>, what: &str) -> String {
    match loaded {
        Err(error) => error,
        Ok(_) => panic!("loaded: {what}"),
    }
}

/// The error names every one of `problems`.
fn assert_names(error: &str, problems: &[&str]) {
    for problem in problems {
        assert!(error.contains(problem), "`{problem}` missing: {error}");
    }
}

/// The error names every one of `problems`, and no other.
fn assert_names_all(error: &str, problems: &[&str]) {
    assert_names(error, problems);
    assert!(
        error.contains(&format!("has {} problems:", problems.len())),
        "{error}"
    );
}

#[test]
fn every_saxon_municipality_has_a_responsible_procedure() {
    let config = demo_config();
    let regions = Regions::load(&config.regions_file).unwrap();
    assert_eq!(regions.len(), 418);
    let routing = RoutingTable::new(&config.routing.routes);
    let mut per_procedure = std::collections::BTreeMap::<&str, usize>::new();
    for (ars, name) in regions.iter() {
        let procedure = routing
            .resolve(MAENGEL, ars)
            .unwrap_or_else(|| panic!("no route for {name} ({ars})"));
        *per_procedure.entry(procedure).or_default() += 1;
        let expected = match &ars[..5] {
            "14612" => "dresden-maengel",
            "14713" => "leipzig-maengel",
            "14511" => "chemnitz-maengel",
            "14729" => "landkreis-leipzig-maengel",
            _ => procedure,
        };
        assert_eq!(procedure, expected, "{name}");
    }
    assert_eq!(per_procedure.len(), 13, "3 cities and 10 districts");
    assert_eq!(per_procedure["dresden-maengel"], 1);
    assert_eq!(per_procedure["mittelsachsen-maengel"], 52);
}

fn broken_config(routing: &str) -> String {
    refused(load_with("", routing), routing)
}

#[test]
fn broken_routing_tables_are_refused_precisely() {
    let authority = "[[authority]]\nid = \"a\"\nname = \"A\"\nkennung = \"k\"\n\n";
    let procedure = "[[procedure]]\nid = \"p\"\nauthority = \"a\"\nenvelope = \"cms\"\ncertificate = \"p.crt\"\n[procedure.delivery]\ntransport = \"amqp\"\nqueue = \"q\"\n\n";
    let route = |region: &str, procedure: &str| {
        format!(
            "[[route]]\nservice = \"{MAENGEL}\"\nregion = \"{region}\"\nprocedure = \"{procedure}\"\n\n"
        )
    };

    let err = broken_config(&format!("{authority}{procedure}{}", route("14", "nope")));
    assert!(
        err.contains("routing.toml") && err.contains("unknown procedure `nope`"),
        "{err}"
    );

    let err = broken_config(&format!(
        "{authority}{procedure}{}{}",
        route("14", "p"),
        route("14", "p")
    ));
    assert!(err.contains("defined twice (ambiguous)"), "{err}");

    // Keys and ids are parsed at the edge: a bad one names its line and key.
    let err = broken_config(&format!("{authority}{procedure}{}", route("14x", "p")));
    assert!(
        err.contains("routing.toml")
            && err.contains("line 17: region: `14x` is no ARS prefix: 1 to 12 digits"),
        "{err}"
    );
    let err = broken_config(&format!("{authority}{procedure}{}", route("14", "P_1")));
    assert!(
        err.contains("line 18: procedure: `P_1` is no procedure id"),
        "{err}"
    );

    let err = broken_config(&format!(
        "{authority}\n\n[[procedure]]\nid = \"p\"\nauthority = \"a\"\nenvelope = \"rot13\"\n"
    ));
    assert!(
        err.contains("routing.toml") && err.contains("line 11"),
        "{err}"
    );
}

#[test]
fn audit_checkpoints_default_to_five_minutes_and_never_is_refused() {
    let demo = demo_config();
    assert_eq!(demo.file.audit.checkpoint_secs, 300);
    let routing = std::fs::read_to_string(workspace().join("config/routing.toml")).unwrap();
    let error = refused(
        load_with("[audit]\ncheckpoint_secs = 0\n", &routing),
        "checkpoints every 0 s",
    );
    assert!(
        error.contains("kopplung.toml: [audit] checkpoint_secs: must be at least 1"),
        "{error}"
    );
}

/// The demo's `kopplung.toml` in a fresh folder (with `extra` appended), and `routing`.
fn load_with(extra: &str, routing: &str) -> Result<Config, String> {
    load_edited(("", ""), extra, routing)
}

/// [`load_with`], with `old` in `kopplung.toml` replaced by `new` first.
fn load_edited((old, new): (&str, &str), extra: &str, routing: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let main = std::fs::read_to_string(workspace().join("config/kopplung.toml"))
        .unwrap()
        .replace(
            "../mappings",
            &workspace().join("mappings").display().to_string(),
        )
        .replace(
            "\"regions.csv\"",
            &format!("\"{}\"", workspace().join("config/regions.csv").display()),
        )
        .replacen(old, new, 1);
    std::fs::write(dir.path().join("kopplung.toml"), format!("{main}\n{extra}")).unwrap();
    std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
    Config::load(&dir.path().join("kopplung.toml"), dir.path()).map_err(|e| e.to_string())
}

const AUTHORITY: &str = "[[authority]]\nid = \"a\"\nname = \"A\"\nkennung = \"k\"\n\n";
/// The `[procedure.delivery]` of a procedure whose transport does not matter.
const AMQP: &str = "transport = \"amqp\"\nqueue = \"q\"";

fn procedure(id: &str, extra: &str, delivery: &str) -> String {
    format!(
        "[[procedure]]\nid = \"{id}\"\nauthority = \"a\"\nenvelope = \"cms\"\ncertificate = \"{id}.crt\"\n{extra}\n[procedure.delivery]\n{delivery}\n\n"
    )
}

/// The guard on `token_sha256 && token_file` stood after the AMQP and HTTP arms of the
/// check: such a procedure could give both, and `token_sha256` silently won.
#[test]
fn no_transport_may_give_both_a_token_hash_and_a_token_file() {
    let both = "token_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\ntoken_file = \"token\"";
    for delivery in [
        AMQP,
        "transport = \"http\"\nurl = \"https://fv.example/eingang\"",
        "transport = \"pull\"\ntoken_file = \"pull-token\"",
    ] {
        let routing = format!(
            "{AUTHORITY}{}",
            procedure("dresden-maengel", both, delivery)
        );
        let error = load_with("", &routing).unwrap_err();
        assert!(
            error.contains("routing.toml: [[procedure]] dresden-maengel: token_sha256 and token_file: give one, not both"),
            "{delivery}: {error}"
        );
        // One of them is fine.
        let one = "token_file = \"token\"";
        let routing = format!("{AUTHORITY}{}", procedure("dresden-maengel", one, delivery));
        load_with("", &routing).unwrap();
    }
}

#[test]
fn plain_http_push_is_refused_unless_the_procedure_allows_it() {
    let routing =
        |delivery: &str| format!("{AUTHORITY}{}", procedure("dresden-maengel", "", delivery));
    let plain = "transport = \"http\"\nurl = \"http://fv.example/eingang\"";
    let error = load_with("", &routing(plain)).unwrap_err();
    assert!(
        error.contains("routing.toml: [[procedure]] dresden-maengel: delivery.url: `http://fv.example/eingang` is plain HTTP")
            && error.contains("allow_plain_http = true"),
        "{error}"
    );
    load_with("", &routing(&format!("{plain}\nallow_plain_http = true"))).unwrap();
    load_with(
        "",
        &routing("transport = \"http\"\nurl = \"https://fv.example/eingang\""),
    )
    .unwrap();
}

#[test]
fn every_problem_of_every_section_is_named_at_once() {
    let extra = "[audit]\ncheckpoint_secs = 0\n\n[[clerk]]\nid = \"anna\"\nname = \"Anna\"\n";
    let routing = format!(
        "{AUTHORITY}{}{}{}[[route]]\nservice = \"{MAENGEL}\"\nregion = \"14\"\nprocedure = \"nirgends\"\n",
        procedure(
            "p",
            "max_in_flight = 0",
            "transport = \"http\"\nurl = \"ftp://fv.example/\"\ntimeout_ms = 0"
        ),
        procedure(
            "q",
            "",
            "transport = \"pull\"\ntoken_sha256 = \"abc\"\ncallback_url = \"https://fv.example/hook\""
        ),
        "[[procedure]]\nid = \"m\"\nauthority = \"b\"\nenvelope = \"cms\"\n[procedure.delivery]\ntransport = \"manual\"\nclerks = [\"anna\", \"niemand\"]\n\n",
    );
    let error = load_with(extra, &routing).unwrap_err();
    let expected = [
        "kopplung.toml: [[clerk]] anna: password_argon2: give exactly one of password_argon2 and password_file",
        "kopplung.toml: [audit] checkpoint_secs: must be at least 1",
        "routing.toml: [[procedure]] p: max_in_flight: must be 1 to 512",
        "routing.toml: [[procedure]] p: delivery.url: `ftp://fv.example/`: need http:// or https:// and a host",
        "routing.toml: [[procedure]] p: delivery.timeout_ms: need 0 < connect_timeout_ms <= timeout_ms",
        "routing.toml: [[procedure]] q: delivery.token_sha256: must be 64 hex digits",
        "routing.toml: [[procedure]] q: delivery.callback_secret_file: give callback_url together with callback_secret_file",
        "routing.toml: [[procedure]] m: envelope: the hub seals nothing for a manual procedure (it is read in the clerk inbox)",
        "routing.toml: [[procedure]] m: authority: unknown authority `b`",
        "routing.toml: [[procedure]] m: delivery.clerks: unknown clerk `niemand`",
        "routing.toml: [[route]] 99999001000000 / 14: procedure: unknown procedure `nirgends`",
    ];
    assert_names_all(&error, &expected);
}

#[test]
fn the_lease_bounds_what_one_attempt_of_each_transport_may_take() {
    let routing = format!(
        "{AUTHORITY}{}",
        procedure(
            "p",
            "",
            "transport = \"http\"\nurl = \"https://fv.example/\"\ntimeout_ms = 60000"
        )
    );
    // 60 s fit into three quarters of the default lease (120 s), not of 40 s; nor does
    // an AMQP attempt of 2 * 5 + 30 s.
    let config = load_with("", &routing).unwrap();
    // The floor `kopplung check` prints: 4/3 of the longest attempt.
    let floor = config.lease_floor().unwrap();
    assert_eq!(floor.attempt.as_secs(), 60);
    assert_eq!(floor.minimum.as_secs(), 80);
    assert_eq!(floor.set_by, "procedure p timeout_ms");
    let short = ("[delivery]\n", "[delivery]\nlease_secs = 40\n");
    let error = refused(
        load_edited(short, "", &routing),
        "a 60 s attempt in a 40 s lease",
    );
    assert_names(
        &error,
        &[
            "routing.toml: [[procedure]] p: delivery.timeout_ms: must fit into three quarters of [delivery] lease_secs (40 s): a lease of at least 80 s",
            "kopplung.toml: [amqp] confirm_timeout_secs: 2 * connect_timeout_secs + confirm_timeout_secs must fit into three quarters of [delivery] lease_secs (40 s): a lease of at least 54 s",
        ],
    );
    // A lease out of range is named once, not again for every transport.
    let lease = ("[delivery]\n", "[delivery]\nlease_secs = 4\n");
    let error = refused(load_edited(lease, "", &routing), "a lease of 4 s");
    assert!(
        error.contains("kopplung.toml: [delivery] lease_secs: must be 5 to 3600")
            && !error.contains("problems"),
        "{error}"
    );
}

/// An authority's contact details and a bearer token are types of their own, flattened
/// into the tables that take them: their keys stand in those tables as before, and a
/// mistyped key is still refused by its name.
#[test]
fn shared_keys_stand_in_their_tables_and_a_mistyped_one_is_refused() {
    let authority = "[[authority]]\nid = \"a\"\nname = \"A\"\nkennung = \"k\"\naddress = \"Markt 1\"\nopening_hours = [\"Mo 9–12 Uhr\"]\n\n";
    let pull = "transport = \"pull\"\ntoken_file = \"pull-token\"";
    let client = "[[client]]\nid = \"zweitportal\"\ntoken_file = \"zweit-token\"\n";
    let routing = format!(
        "{authority}{}{}",
        procedure("p", "token_file = \"token\"", AMQP),
        procedure("q", "", pull)
    );
    let config = load_with(client, &routing).unwrap();
    let contact = &config.authority("a").unwrap().contact;
    assert_eq!(contact.address.as_deref(), Some("Markt 1"));
    assert_eq!(contact.opening_hours, ["Mo 9–12 Uhr"]);
    assert_eq!(contact.phone, None);
    let token = |id: &str| config.procedure(id).unwrap().token.file.clone();
    assert_eq!(token("p"), Some("token".into()));
    assert_eq!(token("q"), None);
    let pull_token = config.procedure("q").unwrap().delivery.api_token().unwrap();
    assert_eq!(pull_token.file.as_deref(), Some(Path::new("pull-token")));
    let zweit = config.file.clients.iter().find(|c| c.id == "zweitportal");
    assert_eq!(
        zweit.unwrap().token.file.as_deref(),
        Some(Path::new("zweit-token"))
    );

    let mistyped = [
        (
            client.to_owned(),
            routing.replace("address", "adresse"),
            "adresse",
        ),
        (
            client.to_owned(),
            routing.replace("token_file = \"token\"", "token_fil = \"token\""),
            "token_fil",
        ),
        (
            client.to_owned(),
            routing.replace("token_file = \"pull-token\"", "tokenfile = \"pull-token\""),
            "tokenfile",
        ),
        (
            client.replace("token_file", "token_datei"),
            routing.clone(),
            "token_datei",
        ),
    ];
    for (extra, routing, key) in mistyped {
        let error = load_with(&extra, &routing).unwrap_err();
        assert!(error.contains(&format!("unknown field `{key}`")), "{error}");
    }
}

#[test]
fn an_id_given_twice_in_any_list_is_named() {
    let clerk = "[[clerk]]\nid = \"anna\"\nname = \"Anna\"\npassword_file = \"anna\"\n\n";
    let client = "[[client]]\nid = \"portal\"\ntoken_file = \"zweit-token\"\n\n";
    let routing = format!(
        "{AUTHORITY}{AUTHORITY}{}{}",
        procedure("p", "", AMQP),
        procedure("p", "", AMQP)
    );
    let error = load_with(&format!("{clerk}{clerk}{client}"), &routing).unwrap_err();
    assert_names(
        &error,
        &[
            "kopplung.toml: [[client]]: client `portal` is defined twice",
            "kopplung.toml: [[clerk]]: clerk `anna` is defined twice",
            "routing.toml: [[authority]]: authority `a` is defined twice",
            "routing.toml: [[procedure]]: procedure `p` is defined twice",
        ],
    );
}

#[test]
fn identity_providers_and_client_caps_are_checked_with_every_problem_named() {
    let routing = std::fs::read_to_string(workspace().join("config/routing.toml")).unwrap();
    // The demo trusts its simulated Servicekonto and lets the portal vouch for basis.
    let demo = demo_config();
    let providers = &demo.file.identity_providers;
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].issuer, "http://127.0.0.1:8082");
    assert_eq!(providers[0].audiences, ["portal"]);
    let portal = demo.file.clients.iter().find(|c| c.id == "portal").unwrap();
    assert_eq!(
        portal.asserts_up_to,
        Some(kopplung_core::identity::TrustLevel::Basis)
    );
    let extra = r#"
[[identity_provider]]
id = "servicekonto-demo"
issuer = "http://idp.example"
jwks_url = "https://idp.example/jwks#keys"
audiences = []
max_age_secs = 0

[identity_provider.levels]

[[identity_provider]]
id = "zweiter"
issuer = "http://127.0.0.1:8082"
audiences = ["portal"]
"#;
    let error = refused(
        load_with(extra, &routing),
        "identity providers with problems",
    );
    let expected = [
        "kopplung.toml: [[identity_provider]]: identity_provider `servicekonto-demo` is defined twice",
        "kopplung.toml: [[identity_provider]] servicekonto-demo: issuer: `http://idp.example`: need https:// and a host (http:// only on 127.0.0.1, ::1 or localhost)",
        "kopplung.toml: [[identity_provider]] servicekonto-demo: jwks_url: `https://idp.example/jwks#keys`: no query, fragment or user name",
        "kopplung.toml: [[identity_provider]] servicekonto-demo: audiences: name at least one client id, none of them empty",
        "kopplung.toml: [[identity_provider]] servicekonto-demo: max_age_secs: must be 1 to 86400",
        "kopplung.toml: [[identity_provider]] servicekonto-demo: levels: map at least one acr value to basis, substanziell or hoch",
        "kopplung.toml: [[identity_provider]] zweiter: issuer: `http://127.0.0.1:8082` is trusted by another entry already",
    ];
    assert_names_all(&error, &expected);
    // A level that is none, and a means that is none, name their line.
    let error = load_edited(
        ("asserts_up_to = \"basis\"", "asserts_up_to = \"mittel\""),
        "",
        &routing,
    )
    .unwrap_err();
    assert!(
        error.contains("asserts_up_to: unknown variant `mittel`"),
        "{error}"
    );
    let error = load_edited(
        ("pwd = \"benutzername-passwort\"", "pwd = \"pin\""),
        "",
        &routing,
    )
    .unwrap_err();
    assert!(error.contains("pwd: unknown variant `pin`"), "{error}");
}

#[test]
fn receipt_deadlines_default_by_transport_and_bad_ones_are_named() {
    let routing = format!(
        "{AUTHORITY}{}{}{}",
        procedure("push", "", AMQP),
        procedure(
            "collects",
            "",
            "transport = \"pull\"\ntoken_file = \"pull-token\""
        ),
        procedure(
            "own",
            "receipt_deadline_secs = 60\nreceipt_auto_resends = 2",
            AMQP
        ),
    );
    let config = load_with("", &routing).unwrap();
    let deadline = |id: &str| {
        let p = config
            .routing
            .procedures
            .iter()
            .find(|p| p.id.as_str() == id);
        p.unwrap().receipt_deadline()
    };
    assert_eq!(deadline("push"), Some(time::Duration::minutes(15)));
    assert_eq!(deadline("collects"), Some(time::Duration::hours(24)));
    assert_eq!(deadline("own"), Some(time::Duration::seconds(60)));
    let (limits, every) = kopplung_router::setup::auto_resends(&config).unwrap();
    assert_eq!(
        limits.into_iter().collect::<Vec<_>>(),
        [("own".to_owned(), 2)]
    );
    assert_eq!(every, std::time::Duration::from_secs(15));

    let routing = format!(
        "{AUTHORITY}{}{}",
        procedure("long", "receipt_deadline_secs = 40000000", AMQP),
        procedure(
            "never",
            "receipt_deadline_secs = 0\nreceipt_auto_resends = 1",
            AMQP
        ),
    );
    let error = load_with("", &routing).unwrap_err();
    assert_names(
        &error,
        &[
            "routing.toml: [[procedure]] long: receipt_deadline_secs: must be at most a year (0: never overdue)",
            "routing.toml: [[procedure]] never: receipt_auto_resends: needs a receipt deadline (receipt_deadline_secs above 0)",
        ],
    );
}

#[test]
fn staged_rotation_settings_are_checked() {
    let routing = |extra: &str| format!("{AUTHORITY}{}", procedure("p", extra, AMQP));
    // (kopplung.toml, the procedure's further settings, what it is, what the error names)
    for (config, extra, what, names) in [
        (
            "[signing]\nnext_certificate = \"hub-next.crt\"\n",
            "",
            "a next certificate without its key",
            ["[signing] next_key", "together"],
        ),
        (
            "[signing]\nnext_certificate = \"n.crt\"\nnext_key = \"n.key\"\nactivate_at = \"tomorrow\"\n",
            "",
            "a time that is no RFC 3339",
            ["kopplung.toml", "activate_at"],
        ),
        (
            "",
            "next_confirmed = true",
            "a confirmation of no next certificate",
            ["routing.toml", "certificate_next"],
        ),
    ] {
        let err = refused(load_with(config, &routing(extra)), what);
        assert_names(&err, &names);
    }
    let config = load_with(
        "[signing]\nnext_certificate = \"n.crt\"\nnext_key = \"n.key\"\nactivate_at = \"2026-12-10T06:00:00Z\"\n",
        &routing(
            "certificate_next = \"p-next.crt\"\nnext_confirmed = true\nnext_activate_at = \"2026-12-10T06:00:00+01:00\"\nreceipt_certificate_next = \"p-signatur-next.crt\"",
        ),
    )
    .unwrap();
    let next = &config.routing.procedures[0];
    assert!(next.next_confirmed);
    assert_eq!(
        next.next_activate_at.unwrap().unix_timestamp(),
        config
            .file
            .signing
            .as_ref()
            .unwrap()
            .activate_at
            .unwrap()
            .unix_timestamp()
            - 3600
    );
}

#[test]
fn the_engineers_token_is_a_file_of_its_own() {
    let demo = demo_config();
    let admin = demo.file.admin.as_ref().expect("[admin]");
    assert_eq!(
        admin.engineer_token_file.as_deref(),
        Some(Path::new("engineer-token"))
    );
    let routing = std::fs::read_to_string(workspace().join("config/routing.toml")).unwrap();
    for shared in ["admin-token", "auditor-token"] {
        let error = refused(
            load_edited(
                (
                    "engineer_token_file = \"engineer-token\"",
                    &format!("engineer_token_file = \"{shared}\""),
                ),
                "",
                &routing,
            ),
            "an engineer token shared with another role",
        );
        assert!(
            error.contains("[admin] engineer_token_file: must not be the operators' token_file or the auditors' auditor_token_file"),
            "{error}"
        );
    }
}

/// A procedure's `accounting` names the HKR procedure its payment records go to: an
/// unknown one or the procedure itself is named as a problem.
#[test]
fn the_accounting_procedure_must_be_another_known_procedure() {
    let routing = |accounting: &str| {
        format!(
            "{AUTHORITY}{}{}",
            procedure(
                "buergerbuero",
                &format!("accounting = \"{accounting}\""),
                AMQP
            ),
            procedure("kasse", "", AMQP)
        )
    };
    let loaded = load_with("", &routing("kasse")).unwrap();
    let named = loaded
        .routing
        .procedures
        .iter()
        .find(|p| p.id.as_str() == "buergerbuero");
    assert_eq!(
        named
            .and_then(|p| p.accounting.as_ref())
            .map(|a| a.as_str()),
        Some("kasse")
    );
    assert_names(
        &load_with("", &routing("kase")).unwrap_err(),
        &["routing.toml: [[procedure]] buergerbuero: accounting: unknown procedure `kase`"],
    );
    assert_names(
        &load_with("", &routing("buergerbuero")).unwrap_err(),
        &["routing.toml: [[procedure]] buergerbuero: accounting: names the procedure itself"],
    );
}

/// The FIT-Connect sections: every problem named, each in its own file.
#[test]
fn every_problem_of_the_fitconnect_sections_is_named_at_once() {
    let destination = "6a0d44a3-557c-5b3d-bf69-70c31ecfa17c";
    let unknown = "00000000-0000-4000-8000-000000000001";
    // The demo's [fitconnect], with a lifetime it refuses, and two clients more.
    let lifetime = (
        "token_key_file = \"fitconnect/token-key\"",
        "token_key_file = \"fitconnect/token-key\"\ntoken_lifetime_secs = 0",
    );
    let extra = format!(
        "[[fitconnect.client]]\nid = \"abonnent\"\nrole = \"subscriber\"\ntoken_file = \"t\"\n\n\
         [[fitconnect.client]]\nid = \"portal\"\nrole = \"sender\"\ntoken_file = \"t\"\n\n\
         [[fitconnect.client]]\nid = \"dienst\"\nrole = \"sender\"\ntoken_file = \"t\"\ntoken_sha256 = \"abc\"\ndestinations = [\"{unknown}\"]\n"
    );
    let offered = format!("[procedure.fitconnect]\ndestination = \"{destination}\"");
    let routing = format!(
        "{AUTHORITY}{}{}{}",
        procedure("p", &offered, AMQP),
        procedure("q", &offered, AMQP),
        "[[procedure]]\nid = \"s\"\nauthority = \"a\"\n[procedure.delivery]\ntransport = \"fitconnect\"\ncertificate = \"s.crt\"\n\n",
    );
    let error = load_edited(lifetime, &extra, &routing).unwrap_err();
    assert_names_all(
        &error,
        &[
            "kopplung.toml: [fitconnect] token_lifetime_secs: must be between 1 and 86400",
            "kopplung.toml: [[fitconnect.client]] abonnent: destinations: a subscriber collects only from the destinations it names",
            "kopplung.toml: [[fitconnect.client]] dienst: token_sha256 and token_file: give one, not both",
            "kopplung.toml: [[fitconnect.client]] dienst: token_sha256: must be 64 hex digits",
            "kopplung.toml: [[fitconnect.client]] portal: id: a [[client]] of the hub's API has this id",
            "kopplung.toml: [[fitconnect.client]] dienst: destinations: no procedure has the destination 00000000-0000-4000-8000-000000000001",
            "routing.toml: [[procedure]] q: fitconnect.destination: another procedure has this destination",
            "routing.toml: [[procedure]] s: fitconnect: a procedure that collects as a FIT-Connect subscriber needs [procedure.fitconnect]",
        ],
    );
    // Without [fitconnect], a destination is named too.
    let demo = std::fs::read_to_string(workspace().join("config/kopplung.toml")).unwrap();
    let section = &demo[demo.find("\n[fitconnect]").unwrap()..];
    let routing = format!("{AUTHORITY}{}", procedure("p", &offered, AMQP));
    let error = load_edited((section, "\n"), "", &routing).unwrap_err();
    assert!(
        error.contains("routing.toml: [[procedure]] p: fitconnect: a FIT-Connect destination needs [fitconnect] in kopplung.toml"),
        "{error}"
    );
}
