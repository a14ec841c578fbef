//! `kopplung conformance`: sends a procedure's receiver the conformance battery
//! (`kopplung_pipeline::conformance`) through the procedure's own transport and prints
//! each case's grade; fails if any failed. HTTP push is graded by its answers; AMQP,
//! pull and the file drop by what comes back on the answer channels (`later.rs`), with
//! the kit playing the hub's side of them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kopplung_adapters::Sink;
use kopplung_adapters::amqp::AmqpBroker;
use kopplung_adapters::http::{HttpSink, HttpSinkConfig, HttpTls};
use kopplung_adapters::registry::{BuildContext, DeliveryConfig, Transport};
use kopplung_pipeline::conformance::{Case, Setup, Verdict, battery, grade};
use kopplung_router::hub::{self, Loaded};
use kopplung_transformers::fixtures::fixtures_of;
use kopplung_transformers::pki::PkiLayout;

use crate::common::load_config;

mod answers;
mod later;
mod pull;

#[derive(Args)]
pub struct ConformanceArgs {
    #[arg(long, default_value = "config/kopplung.toml")]
    config: PathBuf,
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The procedure whose keys, service, message type and transport the battery uses.
    #[arg(long)]
    procedure: String,
    /// HTTP push: the receiver's URL, if not the configured one. A plain `http://` URL
    /// is allowed here: this is a test tool for a vendor's test system.
    #[arg(long)]
    target: Option<String>,
    /// AMQP, pull, file drop: where the kit answers in the hub's place — the pull API and
    /// the receipts and events API (point the test system's hub URL here).
    #[arg(long, default_value = "127.0.0.1:8095")]
    listen: String,
    /// AMQP, pull, file drop: how long to wait for the receiver's answers, in seconds.
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let loaded = hub::load(load_config(&args.config, &args.data_dir)?)?;
    let config = &loaded.config;
    let Some(procedure) = config.procedure(&args.procedure) else {
        bail!(
            "{}: no procedure `{}`",
            config.source.display(),
            args.procedure
        );
    };
    let cases = cases(&loaded, &args)?;
    let delivery = &procedure.delivery;
    let verdicts = match (delivery, &args.target) {
        (DeliveryConfig::Manual(_), None) => bail!(
            "procedure `{}` is read in the clerk inbox: there is no receiver to test",
            args.procedure
        ),
        (DeliveryConfig::Http(_), _) | (_, Some(_)) => {
            let sink = match &args.target {
                Some(target) => http_sink(target)?,
                None => build_sink(&loaded, delivery, &args.procedure, None)?,
            };
            println!(
                "conformance of procedure {} at {} ({} cases)",
                args.procedure,
                sink.destination().destination,
                cases.len()
            );
            pushed(&loaded, &args.procedure, &cases, sink.as_ref()).await
        }
        _ => {
            let broker = config.file.amqp.clone().map(AmqpBroker::new);
            let sink = build_sink(&loaded, delivery, &args.procedure, broker.as_ref())?;
            println!(
                "conformance of procedure {} over {} at {} ({} cases; answers on its answer channel or to http://{}, {} s at most)",
                args.procedure,
                delivery.transport(),
                sink.destination().destination,
                cases.len(),
                args.listen,
                args.wait_secs
            );
            later::run(later::Run {
                loaded: &loaded,
                procedure: &args.procedure,
                delivery,
                sink,
                cases: &cases,
                listen: &args.listen,
                wait: std::time::Duration::from_secs(args.wait_secs),
            })
            .await?
        }
    };
    report(&cases, &verdicts)
}

/// The battery for the procedure, from the first fixture of a service routed to it.
fn cases(loaded: &Loaded, args: &ConformanceArgs) -> anyhow::Result<Vec<Case>> {
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
    Ok(battery(&setup)?)
}

fn http_sink(target: &str) -> anyhow::Result<Arc<dyn Sink>> {
    Ok(Arc::new(HttpSink::new(
        HttpSinkConfig {
            allow_plain_http: true,
            ..HttpSinkConfig::new(target.to_owned())
        },
        HttpTls::default(),
    )?))
}

/// The procedure's sink exactly as the hub builds it.
fn build_sink(
    loaded: &Loaded,
    delivery: &DeliveryConfig,
    procedure: &str,
    broker: Option<&Arc<AmqpBroker>>,
) -> anyhow::Result<Arc<dyn Sink>> {
    let config = &loaded.config;
    let context = BuildContext {
        procedure,
        pki_dir: &config.pki_dir,
        data_dir: &config.data_dir,
        broker,
    };
    delivery
        .build(&context)
        .with_context(|| format!("procedure `{procedure}`: its transport cannot be built"))
}

/// HTTP push: each answer is the receiver's verdict.
async fn pushed(loaded: &Loaded, procedure: &str, cases: &[Case], sink: &dyn Sink) -> Vec<Verdict> {
    let mut first = None;
    let mut verdicts = Vec::new();
    for case in cases {
        let outcome = sink.deliver(&case.message).await;
        let (verdict, receipt) = grade(&loaded.keyring, procedure, case, &outcome, first.as_ref());
        if case.name == "valid" {
            first = receipt;
        }
        verdicts.push(verdict);
    }
    verdicts
}

/// Prints each case's grade and the share passed; an error names every failed case.
fn report(cases: &[Case], verdicts: &[Verdict]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for (case, verdict) in cases.iter().zip(verdicts) {
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
