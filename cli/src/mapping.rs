//! `kopplung mapping lint|test|render|catalogue`: work on mappings without a running hub.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum MappingCommand {
    /// Find template references to fields the form does not define, and form fields
    /// the template never uses.
    Lint {
        /// A service: its folder name or LeiKa key; all services if left out.
        service: Option<String>,
    },
    /// Render every fixture, compare it with the expected XML (canonically) and
    /// validate it against the schema.
    Test {
        service: Option<String>,
        /// Accept the render of every fixture whose expected XML is missing or differs:
        /// the difference is shown, then the expected file is written. Fixtures that do
        /// not validate, render or pass the schema still fail.
        #[arg(long)]
        bless: bool,
    },
    /// Create a new service folder (service, form, template with the XÖV header, an XSD
    /// on the XÖV base types, a fixture) and print its routing stanza.
    New(crate::scaffold::NewService),
    /// Write the message catalogue for vendors (`docs/messages.md`): per service its
    /// message type, schema and a full example message, and every event as signed.
    Catalogue {
        #[arg(long, default_value = "docs/messages.md")]
        out: PathBuf,
    },
    /// Render one input file (a fixture input) and print the message.
    Render {
        service: String,
        #[arg(long)]
        input: PathBuf,
    },
}

pub fn run(config: &Path, command: MappingCommand) -> anyhow::Result<()> {
    use kopplung_transformers::fixtures;
    match command {
        MappingCommand::Lint { service } => {
            let (mappings, mut failures) =
                crate::common::select_mappings(config, service.as_deref())?;
            for mapping in &mappings {
                let findings = mapping.lint();
                for finding in &findings {
                    eprintln!("error: {finding}");
                }
                failures += findings.len();
                if findings.is_empty() {
                    println!("ok   {} ({})", mapping.info.name, mapping.folder.display());
                }
            }
            if failures > 0 {
                bail!("{failures} problem(s)");
            }
            Ok(())
        }
        MappingCommand::New(request) => crate::scaffold::run(config, request),
        MappingCommand::Test { service, bless } => {
            let (mappings, mut failures) =
                crate::common::select_mappings(config, service.as_deref())?;
            let mut passed = 0;
            let mut count = |ok: bool| if ok { passed += 1 } else { failures += 1 };
            for mapping in &mappings {
                let list = fixtures::fixtures_of(mapping)?;
                if list.is_empty() {
                    eprintln!(
                        "error: {}: no fixtures",
                        mapping.folder.join("fixtures").display()
                    );
                    count(false);
                }
                for fixture in list {
                    let label = format!("{} / {}", mapping.info.name, fixture.name);
                    count(test_fixture(&label, &fixture, bless, || {
                        fixtures::render_input(mapping, &fixture.input)
                    })?);
                }
            }
            // The hub's follow-up template, for the services selected.
            let every;
            let all = if service.is_some() {
                every = crate::common::select_mappings(config, None)?.0;
                &every
            } else {
                &mappings
            };
            let root = crate::common::load_config(config, Path::new("."))?.mappings_dir;
            for fixture in fixtures::follow_up_fixtures(&root)? {
                let folder = fixtures::follow_up_service(&fixture.input).ok();
                let selected = mappings
                    .iter()
                    .any(|m| folder.as_deref().is_none_or(|f| m.folder.ends_with(f)));
                if !selected {
                    continue;
                }
                let label = format!("Folgenachricht / {}", fixture.name);
                count(test_fixture(&label, &fixture, bless, || {
                    fixtures::render_follow_up(all, &fixture.input)
                })?);
            }
            println!("{passed} passed, {failures} failed");
            if failures > 0 {
                bail!("{failures} fixture(s) failed");
            }
            Ok(())
        }
        MappingCommand::Catalogue { out } => {
            let (mappings, failures) = crate::common::select_mappings(config, None)?;
            if failures > 0 {
                bail!("{failures} mapping(s) could not be loaded");
            }
            crate::catalogue::write(&mappings, &out)?;
            println!("wrote {} ({} services)", out.display(), mappings.len());
            Ok(())
        }
        MappingCommand::Render { service, input } => {
            let (mappings, failures) = crate::common::select_mappings(config, Some(&service))?;
            let Some(mapping) = mappings.first().filter(|_| failures == 0) else {
                bail!("service `{service}` could not be loaded");
            };
            match fixtures::render_input(mapping, &input) {
                Ok(xml) => {
                    print!("{xml}");
                    Ok(())
                }
                Err(failure) => bail!("{failure}"),
            }
        }
    }
}

/// Renders one fixture and compares it with its expected XML; with `bless`, a render
/// that only differs from (or lacks) the expected file is written as expected. Whether
/// it passed.
fn test_fixture(
    label: &str,
    fixture: &kopplung_transformers::fixtures::Fixture,
    bless: bool,
    render: impl Fn() -> Result<String, kopplung_transformers::fixtures::FixtureFailure>,
) -> anyhow::Result<bool> {
    use kopplung_transformers::fixtures;
    let outcome = render().and_then(|xml| fixtures::compare(fixture, &xml));
    match outcome {
        Ok(()) => {
            println!("ok   {label}");
            Ok(true)
        }
        Err(failure) if bless && fixtures::blessable(&failure) => {
            println!("{failure}");
            let xml = render().map_err(|failure| anyhow::anyhow!("{failure}"))?;
            std::fs::write(&fixture.expected, xml)
                .with_context(|| format!("writing {}", fixture.expected.display()))?;
            println!("blessed {label}: wrote {}", fixture.expected.display());
            Ok(true)
        }
        Err(failure) => {
            eprintln!("FAIL {label}\n{failure}");
            Ok(false)
        }
    }
}
