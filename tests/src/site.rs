//! A scratch deployment for the command-line tests: a copy of the demo configuration and
//! mappings, and the data directory the configuration names.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::{copy_dir, kopplung_bin, run_ok, workspace};

pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// The demo configuration and mappings with an empty data directory: a site as an
    /// operator starts it.
    ///
    /// Without FIT-Connect (each destination's RSA-4096 key takes a second to make, and
    /// its metadata schema comes with FIT-Connect's SDK): [`Site::with_fitconnect`]
    /// keeps it.
    pub fn new() -> Self {
        let site = Self::with_fitconnect(&[]);
        let config = site.config();
        let text = std::fs::read_to_string(&config).expect("the site's kopplung.toml");
        std::fs::write(&config, crate::fitconnect::without_section(&text)).expect("kopplung.toml");
        site
    }

    /// The demo configuration with the FIT-Connect destinations of `keep` only, and
    /// FIT-Connect's metadata schema (the SDK's copy) in the data directory.
    pub fn with_fitconnect(keep: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        copy_dir(&workspace().join("config"), &dir.path().join("config"));
        copy_dir(&workspace().join("mappings"), &dir.path().join("mappings"));
        let routing = dir.path().join("config/routing.toml");
        let text = std::fs::read_to_string(&routing).expect("the site's routing table");
        let kept = crate::fitconnect::keep_destinations(&text, keep);
        std::fs::write(&routing, kept).expect("routing table");
        if !keep.is_empty() {
            let target = dir.path().join("data/fitconnect");
            crate::private_dir(&dir.path().join("data"));
            crate::private_dir(&target);
            let schema = std::fs::read(crate::fitconnect::metadata_schema()).expect("schema");
            crate::write_private(&target.join("metadata.schema.json"), &schema);
        }
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config/kopplung.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Replaces `old` (which must be there) by `new` in a file of the site.
    pub fn edit(&self, relative: &str, old: &str, new: &str) {
        crate::replace_in(&self.path(relative), old, new);
    }

    /// Appends `text` to a file of the site.
    pub fn append(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        let all = std::fs::read_to_string(&path).expect("read the site's file") + text;
        std::fs::write(&path, all).expect("write the site's file");
    }

    /// `kopplung ARGS --config … --data-dir …` for this site.
    pub fn kopplung(&self, args: &[&str]) -> Command {
        let mut command = Command::new(kopplung_bin());
        command
            .args(args)
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.data());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.kopplung(args).output().expect("run kopplung")
    }

    /// `kopplung keys init`: the demo PKI in the data directory.
    pub fn keys_init(&self) {
        run_ok(
            Command::new(kopplung_bin())
                .args(["keys", "init", "--dir"])
                .arg(self.data().join("pki"))
                .arg("--config")
                .arg(self.config()),
            "kopplung keys init",
        );
    }
}

impl Default for Site {
    fn default() -> Self {
        Self::new()
    }
}
