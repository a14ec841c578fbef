//! A message type's schema with every schema it imports or includes, as files below the
//! mappings root: what the hub publishes so that a vendor validates with exactly the
//! schemas the hub validates with. The bundle's version is a hash over all its files.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::Error;

/// One schema file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// Relative to the mappings root, with `/`: `maengelanzeige/nachricht.xsd`.
    pub path: String,
    pub content: Vec<u8>,
    /// SHA-256 (hex) of `content`.
    pub sha256: String,
}

/// A message type's schema and what it imports, read when its mapping was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaBundle {
    /// The message's own schema (the first of `files`).
    pub schema: String,
    /// Every file, the message's schema first, then by path.
    pub files: Vec<SchemaFile>,
    /// SHA-256 (hex) over the paths and hashes of all files: changes with any of them.
    pub version: String,
}

impl SchemaBundle {
    /// Reads `schema` (below `root`) and, transitively, every `xs:import` and
    /// `xs:include` with a relative `schemaLocation`. A location outside `root` or a file
    /// that cannot be read is an error naming the file.
    pub fn read(root: &Path, schema: &Path) -> Result<Self, Error> {
        let first = relative(root, schema)?;
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut pending = vec![first.clone()];
        while let Some(path) = pending.pop() {
            if files.contains_key(&path) {
                continue;
            }
            let file = root.join(&path);
            let content = std::fs::read(&file).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            for location in locations(&content).map_err(|message| Error::Mapping {
                file: file.clone(),
                message,
            })? {
                let target = file.parent().unwrap_or(root).join(&location);
                pending.push(relative(root, &target).map_err(|_| Error::Mapping {
                    file: file.clone(),
                    message: format!(
                        "schemaLocation `{}` lies outside the mappings folder",
                        location.display()
                    ),
                })?);
            }
            files.insert(path, content);
        }
        let mut ordered: Vec<SchemaFile> = files
            .into_iter()
            .map(|(path, content)| SchemaFile {
                sha256: hex::encode(openssl::sha::sha256(&content)),
                path,
                content,
            })
            .collect();
        ordered.sort_by_key(|file| file.path != first);
        let mut listing = String::new();
        for file in &ordered {
            listing.push_str(&format!("{} {}\n", file.sha256, file.path));
        }
        Ok(Self {
            schema: first,
            version: hex::encode(openssl::sha::sha256(listing.as_bytes())),
            files: ordered,
        })
    }

    /// The file at `path` (relative to the mappings root), if it is part of the bundle.
    pub fn file(&self, path: &str) -> Option<&SchemaFile> {
        self.files.iter().find(|file| file.path == path)
    }
}

/// `path` relative to `root`, normalised (`a/../b` → `b`), with `/`; an error if it
/// leaves `root`.
fn relative(root: &Path, path: &Path) -> Result<String, Error> {
    let outside = || Error::Mapping {
        file: path.to_owned(),
        message: "lies outside the mappings folder".into(),
    };
    let inner = path.strip_prefix(root).map_err(|_| outside())?;
    let mut parts: Vec<String> = Vec::new();
    for component in inner.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    // Published as `/api/v1/schemas/{folder}/{file}`: a schema lies in a folder of the
    // root, as every mapping's and the shared `xoev/` ones do.
    if parts.len() != 2 {
        return Err(Error::Mapping {
            file: path.to_owned(),
            message: "a schema must lie directly in a folder of the mappings folder (e.g. xoev/basis.xsd)".into(),
        });
    }
    Ok(parts.join("/"))
}

/// The relative `schemaLocation`s of a schema's `xs:import` and `xs:include` elements.
fn locations(schema: &[u8]) -> Result<Vec<PathBuf>, String> {
    let mut reader = Reader::from_reader(schema);
    let mut found = Vec::new();
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                let name = element.local_name();
                if !matches!(name.into_inner(), "import" | "include") {
                    buffer.clear();
                    continue;
                }
                for attribute in element.attributes() {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    if attribute.key.local_name().into_inner() == "schemaLocation" {
                        let value = attribute
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .map_err(|e| e.to_string())?
                            .into_owned();
                        // Absolute URLs are the vendor's to fetch; only files travel.
                        if !value.contains(':') {
                            found.push(PathBuf::from(value));
                        }
                    }
                }
            }
            Ok(Event::Eof) => return Ok(found),
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML: {e}")),
        }
        buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_holds_the_schema_and_what_it_imports_once() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let file = root.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        let xs = r#"xmlns:xs="http://www.w3.org/2001/XMLSchema""#;
        write(
            "a/nachricht.xsd",
            &format!(
                r#"<xs:schema {xs}><xs:import namespace="b" schemaLocation="../shared/b.xsd"/><xs:include schemaLocation="./c.xsd"/><xs:import namespace="w" schemaLocation="https://example.org/w.xsd"/></xs:schema>"#
            ),
        );
        write(
            "shared/b.xsd",
            &format!(r#"<xs:schema {xs}><xs:include schemaLocation="../a/c.xsd"/></xs:schema>"#),
        );
        write("a/c.xsd", &format!("<xs:schema {xs}/>"));
        let bundle = SchemaBundle::read(root.path(), &root.path().join("a/nachricht.xsd")).unwrap();
        let paths: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a/nachricht.xsd", "a/c.xsd", "shared/b.xsd"]);
        assert_eq!(bundle.schema, "a/nachricht.xsd");
        assert!(bundle.file("shared/b.xsd").is_some());
        assert!(bundle.file("../etc/passwd").is_none());

        // Any change of any file changes the version.
        let before = bundle.version.clone();
        write(
            "a/c.xsd",
            &format!("<xs:schema {xs}><!-- x --></xs:schema>"),
        );
        let after = SchemaBundle::read(root.path(), &root.path().join("a/nachricht.xsd")).unwrap();
        assert_ne!(before, after.version);

        // A location that leaves the mappings folder is refused, naming the file.
        write(
            "a/nachricht.xsd",
            &format!(r#"<xs:schema {xs}><xs:include schemaLocation="../../x.xsd"/></xs:schema>"#),
        );
        let error = SchemaBundle::read(root.path(), &root.path().join("a/nachricht.xsd"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("nachricht.xsd") && error.contains("outside"),
            "{error}"
        );
    }
}
