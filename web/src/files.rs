//! Private files: data directories `0700`, stores and secrets `0600` — created with these
//! modes, never widened first and narrowed afterwards (which would leave a window in
//! which others can open them).

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and missing parents with mode `0700`. Directories that exist keep
/// their mode (see [`wider_than_private`] to report them).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the empty file `path` with mode `0600` if it does not exist, so that a
/// program that opens it afterwards (SQLite, which also gives its `-wal` and `-shm`
/// files the database's mode) finds it private.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `contents` into the new file `path`, created with mode `0600` (it must not
/// exist yet: nothing is overwritten).
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A file or directory below a data directory that others may read, write or enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WideMode {
    pub path: PathBuf,
    pub mode: u32,
    pub is_dir: bool,
}

impl std::fmt::Display for WideMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, wanted) = if self.is_dir {
            ("directory", "0700")
        } else {
            ("file", "0600")
        };
        write!(
            f,
            "{kind} {} has mode {:04o}: group or others may access it; it should be {wanted} (chmod {} {})",
            self.path.display(),
            self.mode,
            &wanted[1..],
            self.path.display()
        )
    }
}

/// Every directory and file below (and including) `root` whose mode grants anything to
/// group or others, except files `public` allows (certificates) and folders it allows,
/// which are skipped with everything in them (folders shared with another account).
/// Symbolic links are not followed. A missing `root` has none.
pub fn wider_than_private(
    root: &Path,
    public: impl Fn(&Path) -> bool,
) -> io::Result<Vec<WideMode>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if metadata.file_type().is_symlink() {
            continue;
        }
        if metadata.is_dir() && path != root && public(&path) {
            continue;
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 && (metadata.is_dir() || !public(&path)) {
            found.push(WideMode {
                path: path.clone(),
                mode,
                is_dir: metadata.is_dir(),
            });
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_wide_modes_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data/portal");
        create_private_dir(&dir).unwrap();
        let file = dir.join("portal.sqlite");
        create_private_file(&file).unwrap();
        create_private_file(&file).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        assert_eq!(mode(&file), 0o600);
        let written = dir.join("mail.eml");
        write_private_file(&written, b"hello").unwrap();
        assert_eq!(mode(&written), 0o600);
        assert_eq!(std::fs::read(&written).unwrap(), b"hello");
        assert!(
            write_private_file(&written, b"again").is_err(),
            "never overwritten"
        );
        assert!(
            wider_than_private(&tmp.path().join("data"), |_| false)
                .unwrap()
                .is_empty()
        );

        let loose = dir.join("loose.txt");
        std::fs::write(&loose, "x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let certificate = dir.join("hub.crt");
        std::fs::write(&certificate, "x").unwrap();
        std::fs::set_permissions(&certificate, std::fs::Permissions::from_mode(0o644)).unwrap();
        let is_certificate = |p: &Path| p.extension().is_some_and(|e| e == "crt");
        let found = wider_than_private(&tmp.path().join("data"), is_certificate).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, loose);

        // A folder shared with another account is skipped with what is in it.
        let shared = tmp.path().join("data/exchange");
        std::fs::create_dir_all(shared.join("outgoing")).unwrap();
        std::fs::write(shared.join("outgoing/m.p7m"), "x").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        let public = |p: &Path| is_certificate(p) || p.starts_with(&shared);
        let skipped = wider_than_private(&tmp.path().join("data"), public).unwrap();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let all = wider_than_private(&tmp.path().join("data"), is_certificate).unwrap();
        assert!(all.iter().any(|w| w.path == shared), "{all:?}");
        assert_eq!(found[0].mode, 0o644);
        assert!(found[0].to_string().contains("0644"), "{}", found[0]);
        assert!(
            wider_than_private(&tmp.path().join("missing"), |_| false)
                .unwrap()
                .is_empty()
        );
    }
}
