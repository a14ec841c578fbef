//! A service's mapping as an engineer edits it in the workbench: its form definition,
//! template and schema as text, checked in a temporary copy of the mappings folder with
//! the checks every start and reload runs (`verify::problems`), each fixture rendered
//! and validated for display, and the change put in force through the reloader.
//!
//! Nothing here knows HTTP; the pages (`pages.rs`) only call [`preview`] and [`apply`].

use std::path::{Path, PathBuf};

use kopplung_transformers::fixtures::{self, FixtureFailure};
use kopplung_transformers::mapping::{Mapping, MappingEnv};
use kopplung_transformers::{schema, verify, xml};
use serde::Serialize;

use super::FormPreview;
use crate::Error;
use crate::reload::Reloader;

/// The three files the workbench edits, as text, and the fixtures' expected XML an
/// apply accepts (`--bless`): a fixture's name and its new content (`None`: no file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub form: String,
    pub template: String,
    pub schema: String,
    pub expected: Vec<(String, Option<String>)>,
}

/// Where a service's mapping lives and what its editable files are called.
#[derive(Debug, Clone)]
pub struct ServiceFiles {
    /// The mappings root (`mappings = …` of `kopplung.toml`).
    pub root: PathBuf,
    /// The service's folder below it (`maengelanzeige`).
    pub folder: String,
    /// The template's and the schema's file names (`service.toml`'s `message`).
    pub template: String,
    pub schema: String,
}

impl ServiceFiles {
    /// The files of a mapping in force.
    pub fn of(root: &Path, mapping: &Mapping) -> Self {
        Self {
            root: root.to_owned(),
            folder: mapping
                .folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            template: mapping.info.message.template.clone(),
            schema: mapping.info.message.schema.clone(),
        }
    }

    fn paths_in(&self, root: &Path) -> [(PathBuf, &'static str); 3] {
        let folder = root.join(&self.folder);
        [
            (folder.join("form.toml"), "form"),
            (folder.join(&self.template), "template"),
            (folder.join(&self.schema), "schema"),
        ]
    }

    /// The files as they are on disk.
    pub fn read(&self) -> Result<Edit, Error> {
        let [form, template, schema] = self.paths_in(&self.root).map(|(path, _)| {
            std::fs::read_to_string(&path).map_err(|e| Error::Config {
                file: path,
                message: e.to_string(),
            })
        });
        Ok(Edit {
            form: form?,
            template: template?,
            schema: schema?,
            expected: Vec::new(),
        })
    }

    /// The expected XML of fixture `name` below `root`.
    fn expected_path(&self, root: &Path, name: &str) -> PathBuf {
        root.join(&self.folder)
            .join("fixtures")
            .join(format!("{name}.expected.xml"))
    }

    /// The files on disk, with the expected XML of the fixtures `edit` accepts (to
    /// restore them as they were).
    fn read_for(&self, edit: &Edit) -> Result<Edit, Error> {
        let mut before = self.read()?;
        before.expected = edit
            .expected
            .iter()
            .map(|(name, _)| {
                let path = self.expected_path(&self.root, name);
                (name.clone(), std::fs::read_to_string(path).ok())
            })
            .collect();
        Ok(before)
    }

    fn write_in(&self, root: &Path, edit: &Edit) -> std::io::Result<()> {
        let files = self.paths_in(root).map(|(path, which)| {
            let text = match which {
                "form" => &edit.form,
                "template" => &edit.template,
                _ => &edit.schema,
            };
            (path, Some(text))
        });
        let expected = edit
            .expected
            .iter()
            .map(|(name, text)| (self.expected_path(root, name), text.as_ref()));
        for (path, text) in files.into_iter().chain(expected) {
            match text {
                Some(text) => {
                    // Written beside and renamed: a reader never sees half a file.
                    let partial = path.with_extension("workbench-partial");
                    std::fs::write(&partial, text)?;
                    std::fs::rename(&partial, &path)?;
                }
                None if path.exists() => std::fs::remove_file(&path)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// What the workbench shows for an edit: the checks' verdict, each fixture's XML, schema
/// validation and difference, and the portal's rendering of the form.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Every reason the edit must not be put in force, each naming file, line and column
    /// where known (as `mapping lint` and `mapping test` say it); empty: it may.
    pub problems: Vec<String>,
    pub fixtures: Vec<FixtureView>,
    /// The portal's rendering of the form (HTML of the portal's own templates).
    pub form_html: Option<String>,
    /// Why there is no rendering of the form.
    pub form_error: Option<String>,
}

impl Preview {
    pub fn passes(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One fixture rendered with the edited mapping.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureView {
    pub name: String,
    /// The rendered message, as the template wrote it; empty if it did not render.
    pub xml: String,
    /// Well-formed and valid against the edited schema.
    pub valid: bool,
    /// The failure of rendering, well-formedness or the schema.
    pub validation: Option<String>,
    /// The message matches the fixture's expected XML.
    pub matches: bool,
    /// The unified difference to the expected XML (file lines of the expected file).
    pub diff: Option<String>,
}

/// Checks `edit` in a temporary copy of the mappings folder: the same checks as every
/// start and reload (`verify::problems`), each fixture shown, the form rendered by
/// `portal`. Paths in messages name the real mappings folder.
pub fn preview(
    files: &ServiceFiles,
    edit: &Edit,
    regions: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    portal: Option<&dyn FormPreview>,
) -> Result<Preview, Error> {
    let copy = tempfile::Builder::new()
        .prefix("kopplung-workbench-")
        .tempdir()
        .map_err(|e| io_error(&files.root, &e))?;
    copy_shared(&files.root, copy.path(), &files.folder)?;
    files
        .write_in(copy.path(), edit)
        .map_err(|e| io_error(copy.path(), &e))?;
    let shown = |text: String| -> String {
        text.replace(
            &copy.path().display().to_string(),
            &files.root.display().to_string(),
        )
    };
    let env = MappingEnv::load(copy.path(), regions);
    let mapping = env.and_then(|env| Mapping::load(&copy.path().join(&files.folder), &env));
    let mapping = match mapping {
        Ok(mapping) => mapping,
        Err(e) => {
            return Ok(Preview {
                problems: vec![shown(e.to_string())],
                fixtures: Vec::new(),
                form_html: None,
                form_error: Some(
                    "Die Abbildung lässt sich nicht laden (siehe Prüfergebnis).".into(),
                ),
            });
        }
    };
    let problems = verify::problems(&mapping).into_iter().map(shown).collect();
    let fixtures = match fixtures::fixtures_of(&mapping) {
        Ok(list) => list
            .iter()
            .map(|f| fixture_view(&mapping, f, &shown))
            .collect(),
        Err(_) => Vec::new(),
    };
    let (form_html, form_error) = match portal.map(|p| p.render(&mapping.form)) {
        Some(Ok(html)) => (Some(html), None),
        Some(Err(e)) => (None, Some(e)),
        None => (
            None,
            Some("Die Formularvorschau des Portals ist in diesem Hub nicht eingerichtet.".into()),
        ),
    };
    Ok(Preview {
        problems,
        fixtures,
        form_html,
        form_error,
    })
}

fn fixture_view(
    mapping: &Mapping,
    fixture: &fixtures::Fixture,
    shown: &impl Fn(String) -> String,
) -> FixtureView {
    let mut view = FixtureView {
        name: fixture.name.clone(),
        xml: String::new(),
        valid: false,
        validation: None,
        matches: false,
        diff: None,
    };
    let rendered = fixtures::fixture_context(mapping, &fixture.input)
        .map_err(|failure| failure.to_string())
        .and_then(|context| {
            mapping
                .render_text(&context)
                .map_err(|error| error.to_string())
        });
    match rendered {
        Ok(text) => {
            let checked = xml::check_well_formed(&text)
                .and_then(|()| schema::validate(&mapping.schema_path, &text));
            view.valid = checked.is_ok();
            view.validation = checked.err().map(|e| shown(e.to_string()));
            view.xml = text;
        }
        Err(message) => view.validation = Some(shown(message)),
    }
    // Nothing rendered: the validation's message says why. Otherwise compared even when
    // the schema refuses it: the difference often says why.
    if view.xml.is_empty() {
        return view;
    }
    match fixtures::compare(fixture, &view.xml) {
        Ok(()) => view.matches = true,
        Err(FixtureFailure::Mismatch {
            file,
            line,
            column,
            diff,
        }) => view.diff = Some(shown(format!("{}:{line}:{column}\n{diff}", file.display()))),
        // The expected file itself is missing or broken: that is the difference.
        Err(expected @ FixtureFailure::Expected { .. }) => {
            view.diff = Some(shown(expected.to_string()))
        }
        // Not well-formed: the validation's message already.
        Err(_) => {}
    }
    view
}

/// Why an apply did not put the edit in force.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The edited service fails the checks; nothing was written.
    Checks(Vec<String>),
    /// The mappings as a whole were refused by the reload; the files were restored.
    Reload(String),
    /// The files could not be written (the folder's permissions); what was written was
    /// restored.
    Write(String),
}

impl Refusal {
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Self::Checks(problems) => problems.clone(),
            Self::Reload(reason) => reason.lines().map(|l| l.trim().to_owned()).collect(),
            Self::Write(reason) => vec![reason.clone()],
        }
    }
}

/// What an apply put in force: how many services, and the fixtures whose new render
/// it accepted as expected.
#[derive(Debug, Clone)]
pub struct InForce {
    pub services: usize,
    pub blessed: Vec<String>,
}

/// Puts `edit` in force: checked first like [`preview`]; then written into the mappings
/// folder and reloaded through the reloader, as SIGHUP does. A refused reload restores
/// the files as they were. With `bless`, a fixture whose render differs from its
/// expected XML but is well-formed and valid gets that render as its expected XML first
/// (as `kopplung mapping test --bless`).
pub async fn apply(
    files: &ServiceFiles,
    edit: &Edit,
    reloader: &Reloader,
    bless: bool,
) -> Result<Result<InForce, Refusal>, Error> {
    let regions = reloader.hub.regions.names();
    let check = |edit: Edit| {
        let (copy, regions) = (files.clone(), regions.clone());
        async move {
            tokio::task::spawn_blocking(move || preview(&copy, &edit, regions, None))
                .await
                .map_err(|e| Error::Config {
                    file: files.root.clone(),
                    message: format!("checking the edit stopped: {e}"),
                })?
        }
    };
    let mut edit = edit.clone();
    if bless {
        let first = check(edit.clone()).await?;
        edit.expected = first
            .fixtures
            .into_iter()
            .filter(|f| f.valid && !f.matches && !f.xml.is_empty())
            .map(|f| (f.name, Some(f.xml)))
            .collect();
    }
    let checked = check(edit.clone()).await?;
    if !checked.passes() {
        return Ok(Err(Refusal::Checks(checked.problems)));
    }
    let before = files.read_for(&edit)?;
    let restore = || {
        if let Err(e) = files.write_in(&files.root, &before) {
            tracing::error!(error = %e, folder = %files.folder, "restoring the mapping files after a refused apply failed");
        }
    };
    let outcome = reloader
        .change_mappings(
            || {
                // A file that could not be written must not leave the others changed.
                files
                    .write_in(&files.root, &edit)
                    .inspect_err(|_| restore())
            },
            restore,
        )
        .await;
    let blessed = edit.expected.iter().map(|(name, _)| name.clone()).collect();
    Ok(match outcome {
        Ok(reloaded) => reloaded
            .map(|services| InForce { services, blessed })
            .map_err(Refusal::Reload),
        Err(e) => Err(Refusal::Write(format!(
            "{}: {e}",
            files.root.join(&files.folder).display()
        ))),
    })
}

/// Copies what the mappings share (`groups.toml`, `xoev/`, …) and the folder `service`
/// from `root` into `to`; other services' folders are left out (not needed to load one).
fn copy_shared(root: &Path, to: &Path, service: &str) -> Result<(), Error> {
    let entries = std::fs::read_dir(root).map_err(|e| io_error(root, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root, &e))?;
        let path = entry.path();
        let name = entry.file_name();
        let other_service =
            path.join("service.toml").is_file() && name.to_string_lossy() != service;
        if !other_service {
            copy_tree(&path, &to.join(&name))?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    if from.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| io_error(to, &e))?;
        for entry in std::fs::read_dir(from).map_err(|e| io_error(from, &e))? {
            let entry = entry.map_err(|e| io_error(from, &e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if from.is_file() {
        std::fs::copy(from, to).map_err(|e| io_error(from, &e))?;
    }
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Config {
        file: path.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    fn maengelanzeige() -> ServiceFiles {
        ServiceFiles {
            root: repository("mappings"),
            folder: "maengelanzeige".into(),
            template: "nachricht.xml.hbs".into(),
            schema: "nachricht.xsd".into(),
        }
    }

    fn regions() -> std::sync::Arc<std::collections::BTreeMap<String, String>> {
        crate::regions::Regions::load(&repository("config/regions.csv"))
            .expect("regions")
            .names()
    }

    #[test]
    fn the_mapping_in_force_passes_and_shows_every_fixture() {
        let files = maengelanzeige();
        let preview =
            preview(&files, &files.read().expect("files"), regions(), None).expect("preview");
        assert!(preview.passes(), "{:?}", preview.problems);
        assert!(preview.fixtures.len() >= 2);
        for fixture in &preview.fixtures {
            assert!(fixture.valid && fixture.matches, "{fixture:?}");
            assert!(fixture.xml.contains("<beschreibung>"), "{fixture:?}");
        }
        assert!(preview.form_error.is_some(), "no portal given");
    }

    #[test]
    fn an_edit_is_checked_in_a_copy_and_its_problems_name_the_real_files() {
        let files = maengelanzeige();
        let mut edit = files.read().expect("files");
        let field = "<beschreibung>{{data.beschreibung}}</beschreibung>";
        let line = edit
            .template
            .lines()
            .position(|l| l.contains(field))
            .expect("the field")
            + 1;
        edit.template =
            edit.template
                .replacen(field, "<beschreibungx>{{data.farbe}}</beschreibungx>", 1);
        let preview = preview(&files, &edit, regions(), None).expect("preview");
        let template = files.root.join("maengelanzeige/nachricht.xml.hbs");
        let wanted = format!("{}:{line}:", template.display());
        assert!(
            preview
                .problems
                .iter()
                .any(|p| p.starts_with(&wanted) && p.contains("data.farbe")),
            "{:?}",
            preview.problems
        );
        assert!(preview.fixtures.iter().all(|f| !f.valid));
        // The mapping on disk is untouched.
        assert!(files.read().expect("files").template.contains(field));
    }

    #[test]
    fn a_schema_error_shows_the_xml_beside_it() {
        let files = maengelanzeige();
        let mut edit = files.read().expect("files");
        edit.template = edit.template.replacen(
            "<beschreibung>{{data.beschreibung}}</beschreibung>",
            "<beschreibungx>{{data.beschreibung}}</beschreibungx>",
            1,
        );
        let preview = preview(&files, &edit, regions(), None).expect("preview");
        let fixture = &preview.fixtures[0];
        assert!(fixture.xml.contains("<beschreibungx>"), "{fixture:?}");
        assert!(!fixture.valid);
        assert!(
            fixture
                .validation
                .as_deref()
                .is_some_and(|v| v.contains("beschreibungx")),
            "{fixture:?}"
        );
        assert!(!fixture.matches && fixture.diff.is_some(), "{fixture:?}");
    }
}
