//! A process's memory and CPU time, read from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// What `/proc` says about one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Resident set size now (VmRSS), MiB.
    pub rss_mib: f64,
    /// The largest resident set size so far (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// User plus system CPU time so far (utime + stime), seconds.
    pub cpu_seconds: f64,
}

/// Reads `pid`'s memory and CPU time.
pub fn sample(pid: u32) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(Sample {
        rss_mib: status_kib(&status, "VmRSS")? / 1024.0,
        peak_rss_mib: status_kib(&status, "VmHWM")? / 1024.0,
        cpu_seconds: cpu_ticks(&stat)? as f64 / ticks_per_second(),
    })
}

/// The value of a `Name:   1234 kB` line of `/proc/<pid>/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Result<f64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .with_context(|| format!("no {name} line in /proc/<pid>/status"))?;
    let value = line
        .split_whitespace()
        .next()
        .with_context(|| format!("{name} has no value"))?;
    value
        .parse()
        .with_context(|| format!("{name} value {value:?}"))
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks: fields 14 and 15, counted after the
/// parenthesised command name (which may hold spaces) as fields 12 and 13 from the state.
fn cpu_ticks(stat: &str) -> Result<u64> {
    let (_, rest) = stat
        .rsplit_once(')')
        .context("no command name in /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("/proc/<pid>/stat has only {} fields", fields.len() + 2))?
            .parse()
            .with_context(|| format!("field {} of /proc/<pid>/stat", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// `getconf CLK_TCK` (100 on every Linux this runs on; asked once, 100 if it cannot say).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_lines_are_read_in_kib() -> Result<()> {
        let status = "Name:\tec2-reconciler\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(status_kib(status, "VmRSS")?, 20480.0);
        assert_eq!(status_kib(status, "VmHWM")?, 40960.0);
        assert!(status_kib(status, "VmSwap").is_err());
        Ok(())
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime_past_a_command_name_with_spaces() -> Result<()> {
        let stat = "4242 (tokio rt) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat)?, 325);
        assert!(cpu_ticks("4242 (short) S 1").is_err());
        Ok(())
    }

    #[test]
    fn this_process_can_be_sampled() -> Result<()> {
        let me = sample(std::process::id())?;
        assert!(me.rss_mib > 0.0 && me.peak_rss_mib >= me.rss_mib, "{me:?}");
        Ok(())
    }
}
