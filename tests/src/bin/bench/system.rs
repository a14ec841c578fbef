//! CPU and memory of processes on this machine, from `/proc` (Linux).

use anyhow::Context;

/// CPU seconds of a process's threads so far, summed by thread name (Linux).
pub fn thread_cpu_seconds(pid: u32) -> anyhow::Result<Vec<(String, f64)>> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = entry?.file_name();
        let Some(tid) = tid.to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")) else {
            continue;
        };
        let Ok(seconds) = cpu_seconds_of(&format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let name = name.trim().to_owned();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += seconds,
            None => by_name.push((name, seconds)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(by_name)
}

/// The RabbitMQ node on this machine (its Erlang VM, `beam.smp`).
pub fn broker_pid() -> anyhow::Result<u32> {
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "beam.smp")
            && cmdline.contains("rabbit")
        {
            return Ok(pid);
        }
    }
    anyhow::bail!("no RabbitMQ node (beam.smp) runs on this machine")
}

/// User and system CPU seconds of a process so far (Linux).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

/// User and system CPU seconds from a `/proc/.../stat` file.
pub fn cpu_seconds_of(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // The kernel's USER_HZ is 100 on Linux.
    Ok(ticks / 100.0)
}

/// A size in KiB from `/proc/<pid>/status`: `VmRSS` now, `VmHWM` the peak.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context(field.to_owned())
}
