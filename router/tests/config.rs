//! The demo configuration routes every Saxon municipality, and a broken configuration
//! is refused with the file and line.

use std::path::Path;

use kopplung_router::config::Config;
use kopplung_router::regions::Regions;
use kopplung_router::routing::RoutingTable;

const MAENGEL: &str = "99999001000000";

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_saxon_municipality_has_a_responsible_procedure() {
    let config = Config::load(
        &workspace().join("config/kopplung.toml"),
        Path::new("/nonexistent"),
    )
    .unwrap();
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
        );
    std::fs::write(dir.path().join("kopplung.toml"), main).unwrap();
    std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
    Config::load(&dir.path().join("kopplung.toml"), dir.path())
        .unwrap_err()
        .to_string()
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

    let err = broken_config(&format!("{authority}{procedure}{}", route("14x", "p")));
    assert!(err.contains("region must be an ARS"), "{err}");

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
    let demo = Config::load(
        &workspace().join("config/kopplung.toml"),
        Path::new("/nonexistent"),
    )
    .unwrap();
    assert_eq!(demo.file.audit.checkpoint_secs, 300);
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
        );
    std::fs::write(
        dir.path().join("kopplung.toml"),
        format!("{main}\n[audit]\ncheckpoint_secs = 0\n"),
    )
    .unwrap();
    std::fs::copy(
        workspace().join("config/routing.toml"),
        dir.path().join("routing.toml"),
    )
    .unwrap();
    let error = Config::load(&dir.path().join("kopplung.toml"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("[audit]: checkpoint_secs must be at least 1"),
        "{error}"
    );
}
