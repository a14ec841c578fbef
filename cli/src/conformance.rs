//! `kopplung conformance`: sends a procedure's HTTP receiver the conformance battery
//! (`kopplung_pipeline::conformance`) and prints each case's grade; fails if any failed.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use kopplung_adapters::Sink;
use kopplung_adapters::http::{HttpSink, HttpSinkConfig, HttpTls};
use kopplung_pipeline::conformance::{Setup, battery, grade};
use kopplung_router::hub;
use kopplung_transformers::fixtures::fixtures_of;
use kopplung_transformers::pki::PkiLayout;

use crate::common::load_config;

#[derive(Args)]
pub struct ConformanceArgs {
    #[arg(long, default_value = "config/kopplung.toml")]
    config: PathBuf,
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The procedure whose keys, service and message type the battery uses.
    #[arg(long)]
    procedure: String,
    /// The receiver's URL (HTTP push). A plain `http://` URL is allowed here: this is
    /// a test tool for a vendor's test system.
    #[arg(long)]
    target: String,
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let loaded = hub::load(load_config(&args.config, &args.data_dir)?)?;
    let config = &loaded.config;
    let Some(route) = config
        .routing
        .routes
        .iter()
        .find(|route| route.procedure.as_str() == args.procedure)
    else {
        bail!(
            "{}: no route leads to procedure `{}`",
            args.config.display(),
            args.procedure
        );
    };
    let mappings = loaded.catalog.current();
    let mapping = mappings
        .get(route.service.as_str())
        .with_context(|| format!("no mapping for service {}", route.service.as_str()))?;
    let fixture = fixtures_of(mapping)?.into_iter().next().with_context(|| {
        format!(
            "{}: no fixture to build messages from",
            mapping.folder.display()
        )
    })?;
    let layout = PkiLayout::new(&config.pki_dir);
    let setup = Setup {
        keyring: &loaded.keyring,
        procedure: &args.procedure,
        mapping,
        fixture_input: &fixture.input,
        demo_ca: layout.ca_key().is_file().then_some(layout),
    };
    let cases = battery(&setup)?;
    let sink = HttpSink::new(
        HttpSinkConfig {
            allow_plain_http: true,
            ..HttpSinkConfig::new(args.target.clone())
        },
        HttpTls::default(),
    )?;
    println!(
        "conformance of procedure {} at {} ({} cases)",
        args.procedure,
        args.target,
        cases.len()
    );
    let mut first = None;
    let mut failed = Vec::new();
    for case in &cases {
        let outcome = sink.deliver(&case.message).await;
        let (verdict, receipt) = grade(
            &loaded.keyring,
            &args.procedure,
            case,
            &outcome,
            first.as_ref(),
        );
        if case.name == "valid" {
            first = receipt;
        }
        println!(
            "{} {:<22} {} — expected: {}; got: {}",
            if verdict.passed { "PASS" } else { "FAIL" },
            verdict.case,
            case.what,
            verdict.expected,
            verdict.got
        );
        if !verdict.passed {
            failed.push(verdict.case);
        }
    }
    let passed = cases.len() - failed.len();
    println!(
        "{passed}/{} passed ({}%)",
        cases.len(),
        passed * 100 / cases.len().max(1)
    );
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
