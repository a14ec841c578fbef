//! A service's mapping folder: its description, form definition and message template.
//!
//! ```text
//! mappings/<service>/
//!   service.toml        key, name, message type, fee
//!   form.toml           fields and attachment rules (shared with the portal)
//!   nachricht.xml.hbs   Handlebars template of the XÖV message
//!   nachricht.xsd       schema of the message (imports ../xoev/*.xsd)
//!   fixtures/           <name>.input.json -> <name>.expected.xml
//! mappings/groups.toml  reusable field groups (an address, a person)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use handlebars::template::{Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
pub use crate::authentifizierung::Authentifizierung;
use crate::schema_bundle::SchemaBundle;
use crate::xml::check_well_formed;

pub mod follow_up;
mod lint;
mod references;

use kopplung_forms::form::{Field, FieldKind, FormDefinition, SharedGroups, parse_date};
pub use kopplung_forms::{Charge, Decision, DecisionDocument, Fee, TrustLevel};
pub use lint::LintFinding;

const TEMPLATE: &str = "nachricht";

/// What `service.toml` says about a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    /// 14-digit LeiKa key.
    pub key: String,
    /// `true` where no LeiKa key exists and the key was assigned locally.
    #[serde(default)]
    pub local: bool,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The fee the citizen pays, if any (shown by the portal, carried in the message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Fee>,
    /// A fee or tax the decision sets later (shown by the portal; nothing is paid online).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<Charge>,
    /// Where the service can be applied for online: ARS prefixes (`14` = all of Saxony,
    /// `14612` = Dresden). `kopplung check` demands a route for every municipality in
    /// them; the portal's Zuständigkeitsfinder says "online" there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_in: Vec<String>,
    /// The trust level (Vertrauensniveau, eIDAS/TR-03107) a citizen's account must have
    /// to submit: `basis` (default), `substanziell` or `hoch`. Checked by the portal,
    /// and by the hub at intake against the applicant's verified identification.
    #[serde(default)]
    pub trust_level: TrustLevel,
    /// Whether it may be submitted without an account (e.g. the Mängelanzeige).
    #[serde(default)]
    pub anonymous: bool,
    /// Documents the citizen needs (shown in the Leistungskatalog), German text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<String>,
    /// Search words for the portal's Leistungskatalog: synonyms and everyday words a
    /// citizen may type (`Schlagloch` for the Mängelanzeige), German.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// How citizens speak of what they send: `antrag` (default), `anmeldung`,
    /// `bestellung`, `meldung` (reported and dealt with: no Bescheid, no Widerspruch).
    #[serde(default)]
    pub wording: kopplung_forms::Wording,
    /// What the procedure's decision must carry, e.g. `document = "pdf/a"`; checked by
    /// the hub when it takes the decision.
    #[serde(default)]
    pub decision: Decision,
    pub message: MessageInfo,
}

/// The message type produced for the service, as an xoev-code `Code`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageInfo {
    /// e.g. `maengelanzeige.meldung.0101`.
    #[serde(rename = "type")]
    pub message_type: String,
    pub list_uri: String,
    pub list_version: String,
    /// The `standard` and `version` attributes of the root element.
    pub standard: String,
    pub version: String,
    #[serde(default = "default_template")]
    pub template: String,
    #[serde(default = "default_schema")]
    pub schema: String,
}

fn default_template() -> String {
    "nachricht.xml.hbs".into()
}

fn default_schema() -> String {
    "nachricht.xsd".into()
}

/// What all mappings share: code lists for the helpers and the reusable field groups.
#[derive(Debug, Clone, Default)]
pub struct MappingEnv {
    /// ARS -> municipality name, for `{{gemeindename …}}`.
    pub regions: Arc<BTreeMap<String, String>>,
    pub groups: SharedGroups,
    /// The follow-up messages' template, where the root has their schema.
    pub follow_ups: Option<Arc<follow_up::FollowUpTemplate>>,
}

impl MappingEnv {
    /// Reads `groups.toml` below the mappings root, if there is one.
    pub fn load(root: &Path, regions: Arc<BTreeMap<String, String>>) -> Result<Self, Error> {
        let path = root.join("groups.toml");
        let groups = if path.is_file() {
            read_toml(&path)?
        } else {
            SharedGroups::default()
        };
        let follow_ups = if root.join(follow_up::SCHEMA).is_file() {
            Some(Arc::new(follow_up::FollowUpTemplate::load(root)?))
        } else {
            None
        };
        Ok(Self {
            regions,
            groups,
            follow_ups,
        })
    }
}

/// A loaded, checked mapping: ready to validate input and render messages.
pub struct Mapping {
    pub info: ServiceInfo,
    pub form: FormDefinition,
    pub folder: PathBuf,
    pub template_path: PathBuf,
    pub schema_path: PathBuf,
    /// The schema with what it imports, as the hub publishes it to vendors.
    pub schemas: Arc<SchemaBundle>,
    /// Renders the service's follow-up messages; `None` where the mappings root has no
    /// follow-up schema (then none can be sent).
    pub follow_ups: Option<Arc<follow_up::FollowUpTemplate>>,
    template: Template,
    templates: Handlebars<'static>,
    regions: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("key", &self.info.key)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// Everything a template may use. Field names are the template's vocabulary and are
/// documented in `docs/mappings.md`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageContext {
    pub nachricht: Nachricht,
    pub leser: Behoerde,
    pub autor: Behoerde,
    pub antrag: Antrag,
    /// The validated form data; every declared field present, `null` if left out.
    pub data: Value,
    /// German labels of the chosen enumeration values, at the same paths as in `data`.
    pub labels: Value,
    pub anlagen: Vec<Anlage>,
    /// The service's fee, if it has one.
    pub gebuehr: Option<Fee>,
    /// How the applicant was identified; `None` (`null`) for an anonymous submission.
    pub authentifizierung: Option<Authentifizierung>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nachricht {
    pub uuid: String,
    pub typ: String,
    pub typ_list_uri: String,
    pub typ_list_version: String,
    pub standard: String,
    pub version: String,
    pub erstellungszeitpunkt: String,
    pub produkt: String,
    pub produkthersteller: String,
    pub produktversion: String,
}

impl Nachricht {
    /// The header of a message of type `info` that kopplung makes: `uuid` is its
    /// `nachrichtenUUID`, `erstellungszeitpunkt` RFC 3339, `produktversion` the hub's.
    pub fn new(
        info: &MessageInfo,
        uuid: String,
        erstellungszeitpunkt: String,
        produktversion: String,
    ) -> Self {
        Self {
            uuid,
            typ: info.message_type.clone(),
            typ_list_uri: info.list_uri.clone(),
            typ_list_version: info.list_version.clone(),
            standard: info.standard.clone(),
            version: info.version.clone(),
            erstellungszeitpunkt,
            produkt: "kopplung".into(),
            produkthersteller: "kopplung".into(),
            produktversion,
        }
    }
}

/// An authority as the XÖV `BehoerdeType` names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Behoerde {
    /// Code of the directory service (`DVDV`, …).
    pub verzeichnisdienst: String,
    pub verzeichnisdienst_list_version: String,
    pub kennung: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Antrag {
    pub id: String,
    pub antragsnummer: String,
    pub eingangszeitpunkt: String,
    pub leistung_schluessel: String,
    pub leistung_name: String,
    pub gebiet_ars: String,
    pub gebiet_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Anlage {
    pub dateiname: String,
    pub media_type: String,
    pub groesse: u64,
    pub sha512: String,
    /// The content, when it travels inside the message; empty when fetched by `abruf`.
    pub inhalt_base64: String,
    /// Where the procedure fetches the content instead (claim check).
    pub abruf: Option<Abruf>,
    /// The form's attachment slot it fills (`code` = the slot's name, `name` = its
    /// label), or `null`.
    pub art: Option<AnlageArt>,
}

/// The kind of an attachment: the form's attachment slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnlageArt {
    pub code: String,
    pub name: String,
}

impl AnlageArt {
    /// The kind of an attachment of `form` that fills `slot` (unknown slots: the name).
    pub fn of(form: &FormDefinition, slot: Option<&str>) -> Option<Self> {
        let slot = slot?;
        let name = form
            .attachments
            .slot(slot)
            .map_or_else(|| slot.to_owned(), |s| s.label.clone());
        Some(Self {
            code: slot.to_owned(),
            name,
        })
    }
}

/// A claim check: the attachment's content is fetched from the hub, in `teile`
/// fragments (`{adresse}/{n}`, n from 1), each encrypted for the procedure (`format`:
/// `CMS` or `JWE`), or by a clerk as one file (`Datei`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abruf {
    pub adresse: String,
    pub teile: u64,
    pub format: String,
}

impl Mapping {
    /// Loads and checks a mapping folder. Every problem names the file.
    pub fn load(folder: &Path, env: &MappingEnv) -> Result<Self, Error> {
        let info: ServiceInfo = read_toml(&folder.join("service.toml"))?;
        let form_path = folder.join("form.toml");
        let mut form: FormDefinition = read_toml(&form_path)?;
        form.resolve(&env.groups)
            .map_err(|message| Error::Mapping {
                file: form_path.clone(),
                message,
            })?;
        if info.key.len() != 14 || !info.key.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message: format!("key `{}` is not a 14-digit LeiKa key", info.key),
            });
        }
        if let Some(prefix) = info
            .available_in
            .iter()
            .find(|p| p.is_empty() || p.len() > 12 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message: format!(
                    "available_in: `{prefix}` is no ARS prefix (1 to 12 digits, e.g. 14 or 14612)"
                ),
            });
        }
        if info.fee.is_some() && info.charge.is_some() {
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message: "`fee` (paid online at submission) and `charge` (set by the decision) exclude each other".into(),
            });
        }
        if let Some(Err(message)) = info.fee.as_ref().map(|fee| fee.validate(&form)) {
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message,
            });
        }
        let template_path = folder.join(&info.message.template);
        let source = std::fs::read_to_string(&template_path).map_err(|source| Error::Io {
            path: template_path.clone(),
            source,
        })?;
        let template = check_template(&source).map_err(|message| Error::Mapping {
            file: template_path.clone(),
            message,
        })?;
        let mut templates = Handlebars::new();
        templates.set_strict_mode(true);
        templates.register_escape_fn(xml_escape);
        register_helpers(&mut templates, env.regions.clone());
        references::register_label(&mut templates, form.clone());
        templates
            .register_template_string(TEMPLATE, source)
            .map_err(|e| Error::Mapping {
                file: template_path.clone(),
                message: e.to_string(),
            })?;
        let schema_path = folder.join(&info.message.schema);
        // Compiled once here so that a broken schema stops the load, not the first message.
        crate::schema::compile(&schema_path)?;
        let root = folder.parent().unwrap_or(folder);
        let schemas = Arc::new(SchemaBundle::read(root, &schema_path)?);
        Ok(Self {
            schemas,
            info,
            form,
            folder: folder.to_owned(),
            template_path,
            schema_path,
            template,
            templates,
            regions: env.regions.clone(),
            follow_ups: env.follow_ups.clone(),
        })
    }

    /// The municipality's name for an ARS, from the code list the mapping was loaded with.
    pub fn region_name(&self, ars: &str) -> Option<String> {
        self.regions.get(ars).cloned()
    }

    /// Renders the message and checks that it is well-formed XML.
    pub fn render(&self, context: &MessageContext) -> Result<String, Error> {
        let xml = self.render_text(context)?;
        check_well_formed(&xml)?;
        crate::schema::validate(&self.schema_path, &xml)?;
        Ok(xml)
    }

    /// The template's output without any check: the workbench shows it beside the
    /// checks' verdict, also when it is not well-formed or breaks the schema.
    pub fn render_text(&self, context: &MessageContext) -> Result<String, Error> {
        self.templates
            .render(TEMPLATE, context)
            .map_err(|e| Error::Render {
                service: self.info.key.clone(),
                message: crate::render_failure::explain(&self.template_path, &e),
            })
    }

    /// German labels of the enumeration values chosen in `data`, mirroring its shape.
    pub fn labels(&self, data: &Value) -> Value {
        labels_of(&self.form.fields, data)
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn helper_error(name: &str, message: String) -> handlebars::RenderError {
    RenderErrorReason::Other(format!("{name}: {message}")).into()
}

/// A helper's parameter as text; `None` for `null` (an optional field left empty).
fn string_param<'a>(
    value: &'a Value,
    name: &str,
) -> Result<Option<&'a str>, handlebars::RenderError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str())),
        // The value itself is personal data: name only its kind.
        other => Err(helper_error(
            name,
            format!("expects text, got {}", json_kind(other)),
        )),
    }
}

/// Registers `name` as a helper of one parameter: `render` turns the parameter's value
/// into the text written (`None`: nothing).
fn register_one_param(
    templates: &mut Handlebars<'static>,
    name: &'static str,
    render: impl Fn(&Value) -> Result<Option<String>, handlebars::RenderError> + Send + Sync + 'static,
) {
    templates.register_helper(
        name,
        Box::new(
            move |h: &Helper,
                  _: &Handlebars,
                  _: &Context,
                  _: &mut RenderContext,
                  out: &mut dyn Output|
                  -> HelperResult {
                let value = h
                    .param(0)
                    .ok_or_else(|| helper_error(name, "needs one parameter".into()))?
                    .value();
                if let Some(text) = render(value)? {
                    out.write(&text)?;
                }
                Ok(())
            },
        ),
    );
}

/// `datum` (a date in ISO 8601 from `TT.MM.JJJJ` or ISO), `gemeindename` (ARS to the
/// municipality's name) and `betrag` (an amount with two decimals). Their output is
/// XML-escaped like everything else.
fn register_helpers(templates: &mut Handlebars<'static>, regions: Arc<BTreeMap<String, String>>) {
    register_one_param(templates, "datum", |value| {
        string_param(value, "datum")?
            .map(|text| {
                parse_date(text).ok_or_else(|| {
                    helper_error("datum", "not a date (TT.MM.JJJJ or JJJJ-MM-TT)".into())
                })
            })
            .transpose()
    });
    register_one_param(templates, "gemeindename", move |value| {
        string_param(value, "gemeindename")?
            .map(|ars| {
                regions
                    .get(ars)
                    .map(|name| xml_escape(name))
                    .ok_or_else(|| helper_error("gemeindename", format!("unknown ARS {ars}")))
            })
            .transpose()
    });
    register_one_param(templates, "betrag", |value| {
        let amount = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse::<f64>().ok(),
            _ => None,
        }
        .filter(|a| a.is_finite() && *a >= 0.0)
        .ok_or_else(|| helper_error("betrag", format!("not an amount ({})", json_kind(value))))?;
        Ok(Some(format!("{amount:.2}")))
    });
}

fn labels_of(fields: &[Field], data: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for field in fields {
        let value = data.get(&field.name).unwrap_or(&Value::Null);
        let label = match (field.kind, value) {
            (FieldKind::Group, Value::Array(entries)) => Value::Array(
                entries
                    .iter()
                    .map(|entry| labels_of(&field.fields, entry))
                    .collect(),
            ),
            (FieldKind::Group, _) if !value.is_null() => labels_of(&field.fields, value),
            (FieldKind::Enum, _) => value
                .as_str()
                .and_then(|code| field.values.iter().find(|v| v.code == code))
                .map(|v| Value::String(v.label.clone()))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        out.insert(field.name.clone(), label);
    }
    Value::Object(out)
}

/// Escapes the five XML specials; everything else passes through unchanged.
pub fn xml_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::Mapping {
        file: path.to_owned(),
        message: e.to_string(),
    })
}

/// Refuses what could let user data out of its element: raw output (`{{{x}}}`, `{{&x}}`,
/// in any spelling) and partials or decorators (which could bring raw output in).
/// Works on the compiled template, so whitespace control or line breaks cannot hide it.
fn check_template(source: &str) -> Result<Template, String> {
    let template = Template::compile(source).map_err(|e| e.to_string())?;
    check_elements(&template)?;
    Ok(template)
}

fn check_elements(template: &Template) -> Result<(), String> {
    for (index, element) in template.elements.iter().enumerate() {
        let at = template
            .mapping
            .get(index)
            .map(|m| format!("line {}, column {}", m.0, m.1))
            .unwrap_or_else(|| "template".into());
        match element {
            TemplateElement::HtmlExpression(_) => {
                return Err(format!(
                    "{at}: unescaped output ({{{{{{…}}}}}} or {{{{&…}}}}) is not allowed"
                ));
            }
            TemplateElement::DecoratorExpression(_)
            | TemplateElement::DecoratorBlock(_)
            | TemplateElement::PartialExpression(_)
            | TemplateElement::PartialBlock(_) => {
                return Err(format!("{at}: partials and decorators are not allowed"));
            }
            TemplateElement::HelperBlock(helper) | TemplateElement::Expression(helper) => {
                for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                    check_elements(inner)?;
                }
            }
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            // An element kind added by a later handlebars version: refuse until reviewed.
            _ => return Err(format!("{at}: unsupported template element")),
        }
    }
    Ok(())
}

/// All mappings below a folder, one subfolder each, keyed by service key.
pub fn load_all(root: &Path, env: &MappingEnv) -> Result<BTreeMap<String, Mapping>, Error> {
    let entries = std::fs::read_dir(root).map_err(|source| Error::Io {
        path: root.to_owned(),
        source,
    })?;
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: root.to_owned(),
            source,
        })?;
        if entry.path().join("service.toml").is_file() {
            folders.push(entry.path());
        }
    }
    folders.sort();
    let mut mappings = BTreeMap::new();
    for folder in folders {
        let mapping = Mapping::load(&folder, env)?;
        if let Some(other) = mappings.get(&mapping.info.key) {
            let other: &Mapping = other;
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message: format!(
                    "key {} is already used by {}",
                    mapping.info.key,
                    other.folder.display()
                ),
            });
        }
        mappings.insert(mapping.info.key.clone(), mapping);
    }
    Ok(mappings)
}
