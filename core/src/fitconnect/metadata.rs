//! A submission's metadata: checked against FIT-Connect's official metadata schema
//! 1.0.0, then read for what the hub needs (the hashes of data and attachments, their
//! media types and names).

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::SubmissionError;

/// The `$id` of the metadata schema the hub checks against.
pub const METADATA_SCHEMA_URI: &str =
    "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json";

/// FIT-Connect's metadata schema, compiled once.
pub struct MetadataSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for MetadataSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataSchema")
    }
}

impl MetadataSchema {
    /// The schema from its JSON text; it must be the schema of [`METADATA_SCHEMA_URI`].
    pub fn new(text: &[u8]) -> Result<Self, String> {
        let schema: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let id = schema.get("$id").and_then(Value::as_str);
        if id != Some(METADATA_SCHEMA_URI) {
            return Err(format!(
                "its $id is {id:?}, not FIT-Connect's metadata schema {METADATA_SCHEMA_URI}"
            ));
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        Ok(Self { validator })
    }

    /// Every violation of `metadata`, each with where it is (a JSON pointer); no value
    /// is quoted, so none of the applicant's data reaches a log or an answer.
    pub fn violations(&self, metadata: &Value) -> Vec<String> {
        self.validator
            .iter_errors(metadata)
            .map(|error| {
                let at = error.instance_path().to_string();
                let rule = error.schema_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("{at} violates {rule}")
            })
            .take(20)
            .collect()
    }
}

/// What the hub reads of valid metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub content_structure: ContentStructure,
    #[serde(default)]
    pub authentication_information: Option<Value>,
    #[serde(default)]
    pub payment_information: Option<Value>,
    #[serde(default)]
    pub reply_channel: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentStructure {
    #[serde(default)]
    pub data: Option<DataInfo>,
    pub attachments: Vec<AttachmentInfo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataInfo {
    pub hash: Hash,
    pub submission_schema: SubmissionSchema,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionSchema {
    pub schema_uri: String,
    pub mime_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    pub attachment_id: Uuid,
    pub hash: Hash,
    pub mime_type: String,
    pub purpose: String,
    #[serde(default)]
    pub filename: Option<String>,
}

/// A SHA-512 hash, hex (the schema allows no other).
#[derive(Debug, Clone, Deserialize)]
pub struct Hash {
    pub content: String,
}

impl Metadata {
    /// Checks `bytes` against the schema and reads them.
    pub fn read(bytes: &[u8], schema: &MetadataSchema) -> Result<Self, SubmissionError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| {
            SubmissionError::MetadataInvalid(vec!["the metadata is not JSON".into()])
        })?;
        let violations = schema.violations(&value);
        if !violations.is_empty() {
            return Err(SubmissionError::MetadataInvalid(violations));
        }
        serde_json::from_value(value)
            .map_err(|e| SubmissionError::MetadataInvalid(vec![e.to_string()]))
    }

    /// The data's description; a submission to the hub always carries data.
    pub fn data(&self) -> Result<&DataInfo, SubmissionError> {
        self.content_structure.data.as_ref().ok_or_else(|| {
            SubmissionError::MetadataInvalid(vec![
                "/contentStructure/data is missing: the hub needs the form's data".into(),
            ])
        })
    }
}

/// The SHA-512 of `bytes`, hex, as FIT-Connect's metadata states hashes.
pub fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha512(bytes))
}
