//! Follow-up messages (Folgenachrichten): the citizen's answer to a query, documents sent
//! later, an objection. One template and one schema (`xoev/kopplung-folgenachricht.xsd`
//! below the mappings root) for every service: what they carry is the same everywhere,
//! and a vendor validates them all with one bundle. The template is the hub's own, not
//! a mapping's: the schema is the contract, and no mapping can break it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use handlebars::Handlebars;
use serde::Serialize;

use super::{Anlage, Antrag, Behoerde, Nachricht, xml_escape};
use crate::Error;
use crate::schema_bundle::SchemaBundle;
use crate::xml::check_well_formed;

/// The schema below the mappings root.
pub const SCHEMA: &str = "xoev/kopplung-folgenachricht.xsd";
const TEMPLATE: &str = "folgenachricht";
const SOURCE: &str = include_str!("folgenachricht.xml.hbs");

/// The kinds of follow-up message: (kind, root element) as the schema declares them.
pub const ELEMENTS: [(&str, &str); 4] = [
    ("antwort", "antwort.0201"),
    ("nachreichung", "nachreichung.0202"),
    ("widerspruch", "widerspruch.0203"),
    ("zahlung", "zahlung.0204"),
];

/// The root element of follow-up `kind` (`antwort` → `antwort.0201`).
pub fn element_of(kind: &str) -> Option<&'static str> {
    ELEMENTS
        .iter()
        .find(|(code, _)| *code == kind)
        .map(|(_, element)| *element)
}

/// The message type of a follow-up `element` for a service whose application has the
/// message type `application_type` (`hundesteuer.antrag.0101`, `antwort.0201` →
/// `hundesteuer.antwort.0201`).
pub fn message_type(application_type: &str, element: &str) -> String {
    let family = application_type
        .split('.')
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or("kopplung");
    format!("{family}.{element}")
}

/// The loaded follow-up template with its schema.
pub struct FollowUpTemplate {
    pub schema_path: PathBuf,
    /// The schema with what it imports, as the hub publishes it to vendors.
    pub schemas: Arc<SchemaBundle>,
    templates: Handlebars<'static>,
}

impl std::fmt::Debug for FollowUpTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUpTemplate")
            .field("schema_path", &self.schema_path)
            .finish_non_exhaustive()
    }
}

/// What a follow-up message says: the template's vocabulary (`docs/vendors.md`).
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpContext {
    /// The root element (`antwort.0201`, …), one of [`ELEMENTS`].
    pub element: String,
    pub nachricht: Nachricht,
    pub leser: Behoerde,
    pub autor: Behoerde,
    pub bezug: Bezug,
    /// When the hub received the message (RFC 3339).
    pub eingangszeitpunkt: String,
    pub text: Option<String>,
    pub anlagen: Vec<Anlage>,
    /// A payment record's payment.
    pub zahlung: Option<Zahlung>,
}

/// A paid fee, as a payment record (`zahlung.0204`) carries it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Zahlung {
    /// Euros with two decimals, `108.00`.
    pub betrag: String,
    pub verwendungszweck: String,
    pub referenz: String,
    /// RFC 3339.
    pub zeitpunkt: String,
}

/// The application a follow-up message belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Bezug {
    /// The application as its own message named it (`eingangszeitpunkt` unused).
    pub antrag: Antrag,
    /// `lokal` for a locally assigned service key, else the LeiKa edition.
    pub leistung_liste_version: String,
    /// The nachrichtenUUID of the application's own message.
    pub nachrichten_uuid: String,
    /// The procedure's event it answers or objects to.
    pub ereignis_id: Option<String>,
}

impl FollowUpTemplate {
    /// Loads the template and compiles the schema below `root` (the mappings folder).
    pub fn load(root: &Path) -> Result<Self, Error> {
        let schema_path = root.join(SCHEMA);
        crate::schema::compile(&schema_path)?;
        let schemas = Arc::new(SchemaBundle::read(root, &schema_path)?);
        let mut templates = Handlebars::new();
        templates.set_strict_mode(true);
        templates.register_escape_fn(xml_escape);
        templates
            .register_template_string(TEMPLATE, SOURCE)
            .map_err(|e| Error::Mapping {
                file: PathBuf::from(TEMPLATE),
                message: e.to_string(),
            })?;
        Ok(Self {
            schema_path,
            schemas,
            templates,
        })
    }

    /// Renders the message and checks it: well-formed and valid against the schema.
    pub fn render(&self, context: &FollowUpContext) -> Result<String, Error> {
        if !ELEMENTS
            .iter()
            .any(|(_, element)| *element == context.element)
        {
            return Err(Error::Render {
                service: context.bezug.antrag.leistung_schluessel.clone(),
                message: format!("no follow-up message `{}`", context.element),
            });
        }
        let xml = self
            .templates
            .render(TEMPLATE, context)
            .map_err(|e| Error::Render {
                service: context.bezug.antrag.leistung_schluessel.clone(),
                message: e.to_string(),
            })?;
        check_well_formed(&xml)?;
        crate::schema::validate(&self.schema_path, &xml)?;
        Ok(xml)
    }
}
