//! The municipalities the hub knows (ARS and name), from `config/regions.csv`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct Regions {
    names: Arc<BTreeMap<String, String>>,
}

impl Regions {
    /// Reads `ars,name,kreis`; a bad line is reported with its number.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let invalid = |message: String| Error::Config {
            file: path.to_owned(),
            message,
        };
        let mut reader = csv::Reader::from_path(path).map_err(|e| invalid(e.to_string()))?;
        let mut names = BTreeMap::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record.map_err(|e| invalid(format!("line {line}: {e}")))?;
            let (Some(ars), Some(name)) = (record.get(0), record.get(1)) else {
                return Err(invalid(format!("line {line}: expected ars,name,kreis")));
            };
            if !is_ars(ars) {
                return Err(invalid(format!(
                    "line {line}: field ars: `{ars}` is not a 12-digit ARS"
                )));
            }
            if names.insert(ars.to_owned(), name.to_owned()).is_some() {
                return Err(invalid(format!(
                    "line {line}: field ars: {ars} is listed twice"
                )));
            }
        }
        Ok(Self {
            names: Arc::new(names),
        })
    }

    /// ARS -> name, shared with the mappings' `gemeindename` helper.
    pub fn names(&self) -> Arc<BTreeMap<String, String>> {
        self.names.clone()
    }

    pub fn name(&self, ars: &str) -> Option<&str> {
        self.names.get(ars).map(String::as_str)
    }

    /// The name to show for a region: its name, or the ARS itself if it has none.
    pub fn name_or_ars(&self, ars: &str) -> String {
        self.name(ars).unwrap_or(ars).to_owned()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names.iter().map(|(a, n)| (a.as_str(), n.as_str()))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

pub fn is_ars(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}
