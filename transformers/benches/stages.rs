//! The stages one application passes in the transformers, one by one (`cargo bench -p
//! kopplung-transformers`): form validation, rendering (with the well-formedness and
//! schema checks), the XSD check alone, and the CMS seal (ECDSA P-256 signature, ECDH
//! key agreement, AES-256-GCM) of the Mängelanzeige of the fixture `vollstaendig`.
//! The whole pipeline with ratios is the bench binary of `kopplung-tests`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use kopplung_transformers::Sealer;
use kopplung_transformers::mapping::{
    Antrag, Behoerde, Mapping, MappingEnv, MessageContext, Nachricht,
};
use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
use kopplung_transformers::seal::load_certificate;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

fn behoerde(name: &str) -> Behoerde {
    Behoerde {
        verzeichnisdienst: "DVDV".into(),
        verzeichnisdienst_list_version: "2".into(),
        kennung: "psw:14612000".into(),
        name: name.into(),
    }
}

fn context(mapping: &Mapping, data: Value) -> MessageContext {
    MessageContext {
        nachricht: Nachricht {
            uuid: "0b3d9c59-2f3c-4a8e-9a51-6f1f7f0b8f11".into(),
            typ: mapping.info.message.message_type.clone(),
            typ_list_uri: mapping.info.message.list_uri.clone(),
            typ_list_version: mapping.info.message.list_version.clone(),
            standard: mapping.info.message.standard.clone(),
            version: mapping.info.message.version.clone(),
            erstellungszeitpunkt: "2026-11-30T10:00:00Z".into(),
            produkt: "kopplung".into(),
            produkthersteller: "kopplung".into(),
            produktversion: "bench".into(),
        },
        leser: behoerde("Landeshauptstadt Dresden"),
        autor: behoerde("kopplung"),
        antrag: Antrag {
            id: "6d1c3a0e-0000-4000-8000-000000000001".into(),
            antragsnummer: "K7QX-2M4P".into(),
            eingangszeitpunkt: "2026-11-30T09:59:59Z".into(),
            leistung_schluessel: mapping.info.key.clone(),
            leistung_name: mapping.info.name.clone(),
            gebiet_ars: "146120000000".into(),
            gebiet_name: "Dresden, Stadt".into(),
        },
        labels: mapping.labels(&data),
        data,
        anlagen: Vec::new(),
        gebuehr: None,
    }
}

fn stages(c: &mut Criterion) {
    let regions = [("146120000000".to_owned(), "Dresden, Stadt".to_owned())];
    let env = MappingEnv::load(&root(), Arc::new(regions.into_iter().collect()))
        .expect("mapping environment");
    let mapping = Mapping::load(&root().join("maengelanzeige"), &env).expect("mapping");
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("maengelanzeige/fixtures/vollstaendig.input.json"))
            .expect("fixture"),
    )
    .expect("fixture JSON");
    let submitted = input["data"].clone();
    let data = mapping.form.validate(&submitted).expect("valid fixture");
    let message = context(&mapping, data);
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
