//! What the pipeline's tests share: the repository's mappings and a preparer with a
//! demo PKI.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kopplung_core::{Clock, ProcedureId, SystemClock};
use kopplung_pipeline::{Catalog, Envelope, Keyring, KeyringConfig, Preparer, ProcedureKeys};
use kopplung_transformers::mapping::{Behoerde, MappingEnv, load_all};
use kopplung_transformers::pki::{PkiLayout, init_demo_pki, issue_rsa_recipient};

pub const MELDEBESCHEINIGUNG: &str = "99115003000000";
pub const DRESDEN: &str = "146120000000";

pub fn mappings_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

pub fn behoerde(kennung: &str) -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: kennung.into(),
        name: "Landeshauptstadt Dresden".into(),
    }
}

/// A preparer with a demo PKI: procedure `cms` (CMS), `jose` (RSA, the `jose` profile)
/// and `manual` (kept at the hub).
pub fn preparer(pki: &Path) -> Preparer {
    let layout = PkiLayout::new(pki);
    init_demo_pki(&layout, &["cms".to_owned()]).unwrap();
    issue_rsa_recipient(&layout, "jose", 3072).unwrap();
    let procedure = |id: &str, envelope: Option<Envelope>| ProcedureKeys {
        id: ProcedureId::parse(id).unwrap(),
        envelope,
        certificates: match envelope {
            Some(_) => vec![PathBuf::from(format!("procedures/{id}.crt"))],
            None => vec![],
        },
        certificate_next: None,
        receipt_certificate: None,
        receipt_certificate_next: None,
        reader: behoerde(&format!("dvdv:14612000:{id}")),
        fitconnect_subscriber: false,
        can_fetch: true,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keyring = Keyring::load(
        &KeyringConfig {
            source: pki.join("kopplung.toml"),
            pki_dir: pki.to_owned(),
            pkcs12: None,
            next_signing: None,
            procedures: vec![
                procedure("cms", Some(Envelope::Cms)),
                procedure("jose", Some(Envelope::Jose)),
                procedure("manual", None),
            ],
        },
        clock.clone(),
    )
    .unwrap();
    let regions = Arc::new(
        [(DRESDEN.to_owned(), "Dresden, Stadt".to_owned())]
            .into_iter()
            .collect(),
    );
    let env = MappingEnv::load(&mappings_root(), Arc::clone(&regions)).unwrap();
    Preparer {
        catalog: Arc::new(Catalog::new(Arc::new(
            load_all(&mappings_root(), &env).unwrap(),
        ))),
        regions,
        keyring: Arc::new(keyring),
        autor: behoerde("kopplung:test"),
        public_url: "https://hub.example".into(),
        clock,
    }
}
