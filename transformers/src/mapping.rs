//! A service's mapping folder: its description, form definition and message template.
//!
//! ```text
//! mappings/<service>/
//!   service.toml        key, name, message type
//!   form.toml           fields and attachment rules (shared with the portal)
//!   nachricht.xml.hbs   Handlebars template of the XÖV message
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use handlebars::template::{Template, TemplateElement};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::form::{Field, FieldKind, FormDefinition};
use crate::xml::check_well_formed;

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
}

fn default_template() -> String {
    "nachricht.xml.hbs".into()
}

/// A loaded, checked mapping: ready to validate input and render messages.
pub struct Mapping {
    pub info: ServiceInfo,
    pub form: FormDefinition,
    pub folder: PathBuf,
    templates: Handlebars<'static>,
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
    pub groesse: usize,
    pub sha512: String,
    pub inhalt_base64: String,
}

impl Mapping {
    /// Loads and checks a mapping folder. Every problem names the file.
    pub fn load(folder: &Path) -> Result<Self, Error> {
        let info: ServiceInfo = read_toml(&folder.join("service.toml"))?;
        let form_path = folder.join("form.toml");
        let form: FormDefinition = read_toml(&form_path)?;
        form.check().map_err(|message| Error::Mapping {
            file: form_path.clone(),
            message,
        })?;
        if info.key.len() != 14 || !info.key.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Mapping {
                file: folder.join("service.toml"),
                message: format!("key `{}` is not a 14-digit LeiKa key", info.key),
            });
        }
        let template_path = folder.join(&info.message.template);
        let source = std::fs::read_to_string(&template_path).map_err(|source| Error::Io {
            path: template_path.clone(),
            source,
        })?;
        check_template(&source).map_err(|message| Error::Mapping {
            file: template_path.clone(),
            message,
        })?;
        let mut templates = Handlebars::new();
        templates.set_strict_mode(true);
        templates.register_escape_fn(xml_escape);
        templates
            .register_template_string(TEMPLATE, source)
            .map_err(|e| Error::Mapping {
                file: template_path.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            info,
            form,
            folder: folder.to_owned(),
            templates,
        })
    }

    /// Renders the message and checks that it is well-formed XML.
    pub fn render(&self, context: &MessageContext) -> Result<String, Error> {
        let xml = self
            .templates
            .render(TEMPLATE, context)
            .map_err(|e| Error::Render {
                service: self.info.key.clone(),
                message: e.to_string(),
            })?;
        check_well_formed(&xml)?;
        Ok(xml)
    }

    /// German labels of the enumeration values chosen in `data`, mirroring its shape.
    pub fn labels(&self, data: &Value) -> Value {
        labels_of(&self.form.fields, data)
    }
}

fn labels_of(fields: &[Field], data: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for field in fields {
        let value = data.get(&field.name).unwrap_or(&Value::Null);
        let label = match field.kind {
            FieldKind::Group if !value.is_null() => labels_of(&field.fields, value),
            FieldKind::Enum => value
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
fn check_template(source: &str) -> Result<(), String> {
    let template = Template::compile(source).map_err(|e| e.to_string())?;
    check_elements(&template)
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
pub fn load_all(root: &Path) -> Result<BTreeMap<String, Mapping>, Error> {
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
        let mapping = Mapping::load(&folder)?;
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
