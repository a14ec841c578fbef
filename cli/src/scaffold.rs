//! `kopplung mapping new`: a new service folder that passes `mapping lint` at once and
//! `mapping test` after `--bless` — the header, the authentication block, the attachments
//! and an XSD on the XÖV base types written once here, not copied from another service.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kopplung_core::ServiceKey;

use crate::common::load_config;

/// `kopplung mapping new`: create a new service folder (service, form, template with the
/// XÖV header, an XSD on the XÖV base types, a fixture) and print its routing stanza.
#[derive(clap::Args)]
pub struct NewService {
    /// The folder's name under the mappings folder, e.g. `hundesteuer`.
    folder: String,
    /// The service's German name.
    #[arg(long)]
    name: String,
    /// Its LeiKa key; without it the next free local key (99999…).
    #[arg(long)]
    key: Option<String>,
    /// ARS prefixes where it is offered (comma-separated); Saxony (`14`) if left out.
    #[arg(long, value_delimiter = ',')]
    available_in: Vec<String>,
    /// The procedure its routes name, for the printed stanza.
    #[arg(long)]
    procedure: Option<String>,
}

/// Local keys are assigned by the installation in the 99999… range the LeiKa does not use.
const LOCAL_PREFIX: &str = "99999";

/// Writes the service folder and prints what comes next (the routing stanza).
pub fn run(config_path: &Path, request: NewService) -> anyhow::Result<()> {
    let config = load_config(config_path, Path::new("."))?;
    let folder_name = &request.folder;
    if folder_name.is_empty()
        || !folder_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || !folder_name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        bail!(
            "`{folder_name}`: a service folder's name starts with a lowercase letter and has lowercase letters, digits and `-` only"
        );
    }
    if request.name.trim().is_empty() {
        bail!("--name: give the service's German name, e.g. \"Hundesteuer-Anmeldung\"");
    }
    let root = &config.mappings_dir;
    let folder = root.join(folder_name);
    if folder.exists() {
        bail!(
            "{} exists already: choose another folder name",
            folder.display()
        );
    }
    let regions = kopplung_router::regions::Regions::load(&config.regions_file)?;
    // The keys of every mapping that loads (the others are reported as they fail).
    let (mappings, _) = crate::common::select_mappings(config_path, None)?;
    let mut taken: Vec<(String, PathBuf)> = mappings
        .into_iter()
        .map(|m| (m.info.key, m.folder))
        .collect();
    taken.sort();
    let key = match &request.key {
        Some(key) => ServiceKey::parse(key)
            .map_err(|e| anyhow::anyhow!("--key: {e}"))?
            .to_string(),
        None => next_local_key(&taken),
    };
    if let Some((_, used_by)) = taken.iter().find(|(k, _)| *k == key) {
        bail!(
            "--key {key} is already used by {}; keys in use: {}",
            used_by.display(),
            list(&taken)
        );
    }
    let available_in = if request.available_in.is_empty() {
        vec!["14".to_owned()]
    } else {
        request.available_in.clone()
    };
    let region = available_in
        .iter()
        .find_map(|prefix| {
            regions
                .iter()
                .find(|(ars, _)| ars.starts_with(prefix.as_str()))
                .map(|(ars, _)| ars.to_owned())
        })
        .with_context(|| {
            format!(
                "--available-in {}: no municipality of {} has such an ARS prefix",
                available_in.join(","),
                config.regions_file.display()
            )
        })?;
    let local = key.starts_with(LOCAL_PREFIX);
    // XML names may not start with a digit; the message type is the root element's name.
    let message_type = format!("{}.antrag.0101", folder_name.replace('-', ""));
    let values = [
        ("@FOLDER@", folder_name.clone()),
        ("@NAME@", request.name.trim().to_owned()),
        ("@KEY@", key.clone()),
        (
            "@KEY_KIND@",
            if local {
                "local: assigned by this installation; replace it once the LeiKa has one".into()
            } else {
                "from the LeiKa".into()
            },
        ),
        ("@LOCAL@", local.to_string()),
        (
            "@AVAILABLE_IN@",
            available_in
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("@MESSAGE_TYPE@", message_type),
        ("@NAMESPACE@", format!("urn:kopplung:{folder_name}:1.0")),
        ("@STANDARD@", format!("XKopplung-{}", request.name.trim())),
        // The code list version of the LeiKa key: "lokal" for an installation's own key.
        (
            "@LEIKA_VERSION@",
            if local { "lokal" } else { "LeiKa-2026" }.into(),
        ),
        ("@REGION@", region),
    ];
    let fill = |template: &str| {
        values
            .iter()
            .fold(template.to_owned(), |text, (placeholder, value)| {
                text.replace(placeholder, value)
            })
    };
    let files: [(&str, &str); 5] = [
        ("service.toml", include_str!("scaffold/service.toml.tmpl")),
        ("form.toml", include_str!("scaffold/form.toml.tmpl")),
        (
            "nachricht.xml.hbs",
            include_str!("scaffold/nachricht.xml.hbs.tmpl"),
        ),
        ("nachricht.xsd", include_str!("scaffold/nachricht.xsd.tmpl")),
        (
            "fixtures/beispiel.input.json",
            include_str!("scaffold/beispiel.input.json.tmpl"),
        ),
    ];
    std::fs::create_dir_all(folder.join("fixtures"))
        .with_context(|| format!("creating {}", folder.display()))?;
    for (name, template) in files {
        let path = folder.join(name);
        std::fs::write(&path, fill(template))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("created {}", path.display());
    }
    let procedure = request
        .procedure
        .clone()
        .unwrap_or_else(|| "<procedure id>".into());
    println!(
        "\nNext: replace the sample fields, review the render of the fixture and accept it:\n  \
         kopplung mapping test --bless {folder_name}\n\
         then route it in {}:\n",
        config.source.with_file_name(&config.file.routing).display()
    );
    for prefix in &available_in {
        println!(
            "[[route]]\nservice = \"{key}\"\nregion = \"{prefix}\"\nprocedure = \"{procedure}\"\n"
        );
    }
    Ok(())
}

/// One above the highest local key in use (99999001000000, 99999002000000, …).
fn next_local_key(taken: &[(String, PathBuf)]) -> String {
    let highest = taken
        .iter()
        .filter_map(|(key, _)| key.strip_prefix(LOCAL_PREFIX))
        .filter_map(|rest| rest.get(..3)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    format!("{LOCAL_PREFIX}{:03}000000", highest + 1)
}

fn list(taken: &[(String, PathBuf)]) -> String {
    taken
        .iter()
        .map(|(key, path)| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            format!("{key} ({name})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
