//! `[operator]`: who runs the portal, for the pages the law asks for — Impressum
//! (§ 5 DDG, § 18 MStV), Datenschutzerklärung (Art. 13 DSGVO), Erklärung zur
//! Barrierefreiheit (§ 12b BGG and the Länder's equivalents) and Kontakt. Every key is
//! the operator's to fill; a page names what is missing instead of inventing it.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Operator {
    /// The operating body, e.g. "Staatsbetrieb Sächsische Informatik Dienste".
    pub name: String,
    /// Postal address, one line each.
    pub address: Vec<String>,
    /// Who represents it ("vertreten durch …").
    pub represented_by: String,
    pub email: String,
    pub phone: String,
    /// The operator's own website.
    pub website: String,
    /// Responsible for the content (§ 18 Abs. 2 MStV).
    pub content_responsible: String,
    /// VAT identification number, register entry or the like, where there is one.
    pub register: Vec<String>,
    /// The supervising authority (Aufsichtsbehörde), where there is one.
    pub supervisory_authority: String,
    pub privacy: Privacy,
    pub accessibility: Accessibility,
}

/// What the Datenschutzerklärung says beyond what the portal itself knows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// The data protection officer's contact (name, address, e-mail), one line each.
    pub officer: Vec<String>,
    /// The data protection supervisory authority citizens may complain to.
    pub supervisory_authority: Vec<String>,
    /// The legal basis of the processing (e.g. "Art. 6 Abs. 1 lit. e DSGVO i. V. m. § 3
    /// SächsEGovG"), one line each.
    pub legal_basis: Vec<String>,
}

/// What the Erklärung zur Barrierefreiheit says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accessibility {
    /// "vollständig", "teilweise" or "nicht" vereinbar with BITV 2.0 / EN 301 549.
    pub status: String,
    /// What is not yet accessible, one sentence each.
    pub limitations: Vec<String>,
    /// How the statement was made (self-assessment, test, date).
    pub method: String,
    /// When the statement was made or last reviewed (TT.MM.JJJJ).
    pub date: String,
    /// Where to report barriers (e-mail; phone optional).
    pub feedback_email: String,
    pub feedback_phone: String,
    /// The enforcement body (Schlichtungs- oder Durchsetzungsstelle), one line each.
    pub enforcement: Vec<String>,
}

/// A required key of `[operator]` that is not set: the key for the operator's log, the
/// words for the citizens' pages.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Missing {
    pub key: &'static str,
    pub label: &'static str,
}

impl Operator {
    /// The keys the Impressum cannot do without that are not set (`operator.name`, …).
    pub fn missing(&self) -> Vec<Missing> {
        let mut missing = Vec::new();
        for (key, label, empty) in [
            (
                "operator.name",
                "der Name des Betreibers",
                self.name.trim().is_empty(),
            ),
            (
                "operator.address",
                "seine Anschrift",
                self.address.is_empty(),
            ),
            (
                "operator.email",
                "seine E-Mail-Adresse",
                self.email.trim().is_empty(),
            ),
            (
                "operator.represented_by",
                "wer ihn vertritt",
                self.represented_by.trim().is_empty(),
            ),
            (
                "operator.accessibility.feedback_email",
                "die E-Mail-Adresse für Hinweise auf Barrieren",
                self.accessibility.feedback_email.trim().is_empty(),
            ),
        ] {
            if empty {
                missing.push(Missing { key, label });
            }
        }
        missing
    }

    /// A problem of a key that is set but wrong, if any.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let status = self.accessibility.status.as_str();
        if !["", "vollständig", "teilweise", "nicht"].contains(&status) {
            problems.push(format!(
                "[operator.accessibility] status: \"{status}\" is none of \"vollständig\", \"teilweise\", \"nicht\""
            ));
        }
        for (key, value) in [
            ("[operator] email", &self.email),
            (
                "[operator.accessibility] feedback_email",
                &self.accessibility.feedback_email,
            ),
        ] {
            if !value.is_empty() && !value.contains('@') {
                problems.push(format!("{key}: \"{value}\" is no e-mail address"));
            }
        }
        if !self.website.is_empty() && url::Url::parse(&self.website).is_err() {
            problems.push(format!(
                "[operator] website: \"{}\" is no absolute URL",
                self.website
            ));
        }
        problems
    }
}
