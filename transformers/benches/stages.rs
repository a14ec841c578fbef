//! The stages one application passes in the transformers, one by one (`cargo bench -p
//! kopplung-transformers`): form validation, rendering (with the well-formedness and
//! schema checks), the XSD check alone, and the CMS seal (ECDSA P-256 signature, ECDH
//! key agreement, AES-256-GCM) of the Mängelanzeige of the fixture `vollstaendig`.
//! The whole pipeline with ratios is the bench binary of `kopplung-tests`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use kopplung_transformers::Sealer;
use kopplung_transformers::fixtures::fixture_context;
use kopplung_transformers::mapping::{Mapping, MappingEnv};
use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
use kopplung_transformers::seal::load_certificate;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

fn stages(c: &mut Criterion) {
    let regions = [("146120000000".to_owned(), "Dresden, Stadt".to_owned())];
    let env = MappingEnv::load(&root(), Arc::new(regions.into_iter().collect()))
        .expect("mapping environment");
    let mapping = Mapping::load(&root().join("maengelanzeige"), &env).expect("mapping");
    let fixture = root().join("maengelanzeige/fixtures/vollstaendig.input.json");
    let input: Value = serde_json::from_str(&std::fs::read_to_string(&fixture).expect("fixture"))
        .expect("fixture JSON");
    let submitted = input["data"].clone();
    let message = fixture_context(&mapping, &fixture).expect("a valid fixture");
    let xml = mapping.render(&message).expect("renders");

    let dir = tempfile::tempdir().expect("temp dir");
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &["dresden-maengel".into()]).expect("demo PKI");
    let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).expect("hub key");
    let recipient = load_certificate(&pki.procedure_cert("dresden-maengel")).expect("recipient");

    let mut group = c.benchmark_group("maengelanzeige");
    group.bench_function("validate form", |b| {
        b.iter(|| mapping.form.validate(&submitted))
    });
    group.bench_function("render (with well-formedness and XSD check)", |b| {
        b.iter(|| mapping.render(&message))
    });
    group.bench_function("XSD check alone", |b| {
        b.iter(|| kopplung_transformers::schema::validate(&mapping.schema_path, &xml))
    });
    group.bench_function("seal (CMS, EC P-256)", |b| {
        b.iter(|| sealer.seal(xml.as_bytes(), &recipient))
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
