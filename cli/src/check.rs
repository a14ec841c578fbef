//! `kopplung check`: the whole configuration and the data directory, without starting.

use std::path::Path;

use anyhow::bail;
use kopplung_router::hub;

use crate::common::load_config;

pub fn run(config: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let loaded = hub::load(load_config(config, data_dir)?)?;
    let problems = loaded.keyring.problems();
    let exposed = hub::exposed_files(data_dir)?;
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    for file in &exposed {
        eprintln!("error: {file}");
    }
    // Reply queues a transport change left behind: not a mistake, but worth knowing.
    for entry in kopplung_router::reply_queues::left_behind(&loaded.config)? {
        eprintln!("warning: {entry}");
    }
    if !problems.is_empty() {
        bail!("{} procedure(s) cannot receive messages", problems.len());
    }
    if !exposed.is_empty() {
        bail!(
            "{} file(s) or folder(s) of the data directory {} are open to other users",
            exposed.len(),
            data_dir.display()
        );
    }
    println!(
        "{}: valid ({} services, {} procedures, {} routes, {} municipalities)",
        config.display(),
        loaded.catalog.current().len(),
        loaded.config.routing.procedures.len(),
        loaded.config.routing.routes.len(),
        loaded.regions.len()
    );
    Ok(())
}
