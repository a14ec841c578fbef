//! This instance's id: what its lease tokens carry, the same across its restarts, so that
//! a restart returns its earlier claims at once (and another instance can take over the
//! claims of one whose heartbeat stopped). Kept in the data directory (`instance-id`),
//! made at the first start; every instance on one database has a data directory of its
//! own, so the ids differ. (A copied data directory copies the id: delete `instance-id`
//! in the copy, see docs/operations.md.)

use std::path::Path;

use kopplung_core::InstanceId;

use crate::Error;

const FILE: &str = "instance-id";

/// The id kept in `data_dir`, made (`kopplung-<uuid>`) if there is none yet.
pub fn id(data_dir: &Path) -> Result<InstanceId, Error> {
    let path = data_dir.join(FILE);
    let failed = |e: std::io::Error| Error::Config {
        file: path.clone(),
        message: format!("the instance id: {e}"),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => InstanceId::parse(text.trim()).map_err(|e| Error::Config {
            file: path.clone(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = InstanceId::generate();
            kopplung_web::files::write_private_file(&path, format!("{id}\n").as_bytes())
                .map_err(failed)?;
            Ok(id)
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::id(dir.path()).unwrap();
        assert!(first.as_str().starts_with("kopplung-"));
        assert_eq!(super::id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("instance-id"), "a/b\n").unwrap();
        assert!(super::id(dir.path()).is_err());
    }
}
