//! An OpenAPI document kept true by a test: every real answer checked against it
//! (status, content type, headers, JSON body with the `jsonschema` crate, formats
//! checked), and at the end every documented status, content type and problem type seen.
//! Used by `tests/tests/openapi.rs` (the hub's API) and `tests/tests/fitconnect_openapi.rs`
//! (the FIT-Connect edge).

use std::collections::BTreeSet;
use std::sync::Mutex;

use jsonschema::{Draft, Registry, Validator};
use reqwest::RequestBuilder;
use serde_json::{Value, json};

/// One real answer of the hub, checked against the document.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// The JSON body; `Null` for other bodies.
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The array `key` of the JSON body.
    pub fn list(&self, key: &str) -> &[Value] {
        self.json[key]
            .as_array()
            .unwrap_or_else(|| panic!("no array `{key}` in {}", self.json))
    }

    /// The `id` of the JSON body.
    pub fn id(&self) -> String {
        self.json["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.json))
            .to_owned()
    }
}

/// What was seen of each operation: `("GET /path/{x}", status)` and so on.
#[derive(Default)]
struct Seen {
    statuses: BTreeSet<(String, u16)>,
    media_types: BTreeSet<(String, u16, String)>,
    problem_types: BTreeSet<(String, u16, String)>,
}

/// The document with what is needed to check answers against it.
pub struct Contract {
    pub doc: Value,
    /// The URI the document is registered under, for resolving `$ref`s.
    uri: &'static str,
    /// Documented answers a test does not provoke: (operation or `*`, status, why).
    excused: &'static [(&'static str, u16, &'static str)],
    registry: Registry<'static>,
    pub client: reqwest::Client,
    seen: Mutex<Seen>,
}

impl Contract {
    pub fn new(
        doc: Value,
        uri: &'static str,
        excused: &'static [(&'static str, u16, &'static str)],
    ) -> Self {
        let registry = Registry::new()
            .add(uri, Draft::Draft202012.create_resource(doc.clone()))
            .expect("register the document")
            .prepare()
            .expect("prepare the registry");
        Self {
            doc,
            uri,
            excused,
            registry,
            client: reqwest::Client::new(),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// A validator for a schema of the document (its `$ref`s resolved in the document).
    pub fn validator(&self, schema: &Value) -> Validator {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .with_registry(&self.registry)
            .build(&absolute_refs(schema, self.uri))
            .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema:#}"))
    }

    pub fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not match the document:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    /// The path template of the document that `path` falls under.
    pub fn template(&self, path: &str) -> String {
        // The query is no part of the path template.
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &str)> = None;
        for template in self.doc["paths"].as_object().expect("paths").keys() {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(part, segment)| {
                if part.starts_with('{') && part.ends_with('}') {
                    !segment.is_empty()
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if fits && best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, template));
            }
        }
        best.unwrap_or_else(|| panic!("{path} is not in the document"))
            .1
            .to_owned()
    }

    /// Sends the request and checks the answer against the document.
    pub async fn send(&self, request: RequestBuilder) -> Answer {
        let request = request.build().expect("request");
        let method = request.method().as_str().to_ascii_lowercase();
        let path = request.url().path().to_owned();
        let response = self.client.execute(request).await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body").to_vec();
        self.check(&method, &path, status, headers, body)
    }

    /// Checks one answer to `method` (lower case) `path` against the document.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> Answer {
        let template = self.template(path);
        let operation_name = format!("{} {template}", method.to_ascii_uppercase());
        let operation = &self.doc["paths"][&template][method];
        assert!(
            operation.is_object(),
            "{operation_name} is not in the document"
        );
        let Some(response_doc) = operation["responses"].get(status.to_string()) else {
            panic!(
                "{operation_name} answered {status}, which is not documented: {}",
                String::from_utf8_lossy(&body)
            );
        };
        let response_doc = resolve(&self.doc, response_doc);
        let what = format!("{operation_name} → {status}");

        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut json = Value::Null;
        match response_doc.get("content").and_then(Value::as_object) {
            None => assert!(body.is_empty(), "{what}: a body where none is documented"),
            Some(content) => {
                let (media_type, media) = content
                    .iter()
                    .filter(|(documented, _)| media_matches(documented, &content_type))
                    .max_by_key(|(documented, _)| documented.len())
                    .unwrap_or_else(|| {
                        panic!("{what}: content type `{content_type}` is not documented")
                    });
                let essence = essence(media_type);
                if let Some(schema) = media.get("schema") {
                    if essence == "application/json" || essence.ends_with("+json") {
                        json = serde_json::from_slice(&body).unwrap_or_else(|e| {
                            panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&body))
                        });
                        self.validate(schema, &json, &format!("{what} body"));
                    } else if essence.starts_with("text/") {
                        let text = String::from_utf8(body.clone()).expect("UTF-8 text");
                        self.validate(schema, &Value::String(text), &format!("{what} body"));
                    }
                }
                let mut seen = self.seen.lock().unwrap();
                seen.media_types
                    .insert((operation_name.clone(), status, media_type.clone()));
                if essence == "application/problem+json" {
                    seen.problem_types.insert((
                        operation_name.clone(),
                        status,
                        json["type"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
        for (name, header) in response_doc
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let header = resolve(&self.doc, header);
            match headers.get(name.as_str()) {
                None => assert!(
                    header["required"] != true,
                    "{what}: the required header {name} is missing"
                ),
                Some(value) => {
                    let value = value.to_str().expect("an ASCII header").to_owned();
                    if let Some(schema) = header.get("schema") {
                        self.validate(schema, &json!(value), &format!("{what} header {name}"));
                    }
                }
            }
        }
        self.seen
            .lock()
            .unwrap()
            .statuses
            .insert((operation_name, status));
        Answer {
            status,
            headers,
            body,
            json,
        }
    }

    /// Every documented status, content type and problem type was seen.
    pub fn assert_all_seen(&self) {
        let seen = self.seen.lock().unwrap();
        let mut missing = Vec::new();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let name = format!("{} {template}", method.to_ascii_uppercase());
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let status: u16 = status.parse().expect("numeric status codes");
                    let excused = self
                        .excused
                        .iter()
                        .any(|(op, code, _)| (*op == "*" || *op == name) && *code == status);
                    if excused {
                        continue;
                    }
                    if !seen.statuses.contains(&(name.clone(), status)) {
                        missing.push(format!("{name} → {status}"));
                        continue;
                    }
                    let response = resolve(&self.doc, response);
                    // A response without content (204) has no media types to see.
                    let content = response["content"].as_object().into_iter().flatten();
                    for (media_type, media) in content {
                        if !seen
                            .media_types
                            .contains(&(name.clone(), status, media_type.clone()))
                        {
                            missing.push(format!("{name} → {status} as {media_type}"));
                        }
                        if media_type != "application/problem+json" {
                            continue;
                        }
                        for kind in problem_types(&self.doc, &media["schema"]) {
                            if !seen
                                .problem_types
                                .contains(&(name.clone(), status, kind.clone()))
                            {
                                missing.push(format!("{name} → {status} {kind}"));
                            }
                        }
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "documented but never answered in this test:\n{}",
            missing.join("\n")
        );
    }
}

/// Follows an OpenAPI-level `$ref` (`#/components/responses/…` and so on).
pub fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not local"));
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve")),
            )
        }
        None => value,
    }
}

/// The schema with its local `$ref`s made absolute, so that they resolve in the document.
fn absolute_refs(schema: &Value, uri: &str) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| match (key.as_str(), value.as_str()) {
                    ("$ref", Some(r)) if r.starts_with('#') => {
                        (key.clone(), json!(format!("{uri}{r}")))
                    }
                    _ => (key.clone(), absolute_refs(value, uri)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| absolute_refs(v, uri)).collect()),
        other => other.clone(),
    }
}

/// The problem types a problem schema allows (`properties.type.const` or `.enum`, beside
/// its `$ref` to the general problem schema or in the schema it refers to).
pub fn problem_types(doc: &Value, schema: &Value) -> Vec<String> {
    let kind = match &schema["properties"]["type"] {
        Value::Null if schema.get("$ref").is_some() => {
            return problem_types(doc, resolve(doc, schema));
        }
        kind => kind,
    };
    if let Some(kind) = kind["const"].as_str() {
        return vec![kind.to_owned()];
    }
    kind["enum"]
        .as_array()
        .map(|kinds| {
            kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether an answer's content type fits a documented media type (its parameters, if
/// the document names any, included).
pub fn media_matches(documented: &str, actual: &str) -> bool {
    let parameters = |s: &str| -> Vec<String> {
        s.split(';')
            .skip(1)
            .map(|p| p.trim().to_ascii_lowercase())
            .collect()
    };
    let documented_essence = essence(documented);
    if documented_essence == "*/*" {
        return true;
    }
    let actual_parameters = parameters(actual);
    documented_essence == essence(actual)
        && parameters(documented)
            .iter()
            .all(|p| actual_parameters.contains(p))
}
