//! The benchmark's result: one structure, written as JSON and printed as one table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::floor::Bucket;
use super::latency::Percentiles;

/// Everything one run measured. Every field is always written (absent figures as `null`),
/// so a reader can rely on the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// EbsVolume objects created (gp3, 1 GiB each).
    pub n: usize,
    /// `git describe`-like: the commit the benchmark ran at, `+changes` if the tree was dirty.
    pub commit: String,
    pub machine: Machine,
    pub controller: ControllerRun,
    pub creation: Creation,
    pub idle: Idle,
    /// The controller, the emulator, kube-apiserver and etcd, in that order.
    pub processes: Vec<ProcessFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
}

/// How the controller ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerRun {
    pub binary: String,
    /// `release` or `debug` (from the binary's directory), else `unknown`.
    pub build: String,
    pub resync_seconds: u64,
    pub aws_rate_fraction: f64,
    pub aws_rate_scale: f64,
    /// Whether fraction and scale are the controller's defaults: figures of a run with raised
    /// limits are not comparable with the default-limit run.
    pub default_limits: bool,
    /// The client-side CreateVolume bucket these limits give.
    pub create_volume_bucket: Bucket,
}

/// From the first object created until the controller was quiet again after all were Ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creation {
    /// Until the apiserver had accepted all N objects.
    pub objects_created_seconds: f64,
    /// Until every object was Ready=True at once.
    pub all_ready_seconds: f64,
    /// Objects seen Ready=True at the end of the wait (N unless the run failed).
    pub ready: usize,
    /// The least time in which the CreateVolume bucket lets N creates out.
    pub rate_floor_seconds: f64,
    /// `all_ready_seconds / rate_floor_seconds` (`null` when the floor is 0: N within the
    /// burst).
    pub ratio_to_floor: Option<f64>,
    /// When the last volume was created in AWS (its CreateTime), after the first object.
    pub last_create_volume_seconds: Option<f64>,
    /// Until all were Ready and no AWS call or status write had happened for the quiet gap.
    pub window_seconds: f64,
    /// AWS requests by action in the window.
    pub aws_calls: BTreeMap<String, u64>,
    pub reads: u64,
    pub mutating_calls: u64,
    pub status_writes: u64,
    pub status_writes_per_object: f64,
    /// Per volume: its object's Ready lastTransitionTime minus the volume's CreateTime.
    pub ready_after_create_volume_seconds: Option<Percentiles>,
}

/// An idle window: from a quiet moment after creation until two resync sweeps were over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idle {
    pub window_seconds: f64,
    /// Sweeps seen in the window (bursts of DescribeVolumes).
    pub resyncs: usize,
    /// AWS requests by action in the whole window.
    pub aws_calls: BTreeMap<String, u64>,
    /// `aws_calls` divided by `resyncs` (`null` without a resync).
    pub aws_calls_per_resync: Option<BTreeMap<String, f64>>,
    pub reads_per_resync: Option<f64>,
    pub reads_per_1000_objects_per_resync: Option<f64>,
    pub mutating_calls: u64,
    pub status_writes: u64,
}

/// One process's memory and CPU time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    pub name: String,
    /// Before any object existed (the controller started and settled).
    pub rss_empty_mib: f64,
    /// At the end of the idle window.
    pub rss_idle_mib: f64,
    /// The largest since the process started (VmHWM).
    pub rss_peak_mib: f64,
    pub cpu_seconds_creation: f64,
    pub cpu_seconds_idle: f64,
}

impl Report {
    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    /// One table, for people: a figure per row.
    pub fn table(&self) -> String {
        let c = &self.controller;
        let cr = &self.creation;
        let idle = &self.idle;
        let limits = if c.default_limits {
            "default limits".to_owned()
        } else {
            "RAISED limits, report apart from the default-limit run".to_owned()
        };
        let mut rows: Vec<(String, String)> = vec![
            ("objects".into(), format!("{} gp3 EbsVolumes", self.n)),
            (
                "controller".into(),
                format!("{} build ({})", c.build, c.binary),
            ),
            ("commit".into(), self.commit.clone()),
            (
                "machine".into(),
                format!(
                    "{} CPUs, {:.1} GiB",
                    self.machine.cpus, self.machine.memory_gib
                ),
            ),
            (
                "limits".into(),
                format!(
                    "--aws-rate-fraction {} --aws-rate-scale {} ({limits}); CreateVolume bucket {} + {}/s",
                    c.aws_rate_fraction,
                    c.aws_rate_scale,
                    c.create_volume_bucket.burst,
                    c.create_volume_bucket.refill_per_second
                ),
            ),
            ("resync".into(), format!("{} s", c.resync_seconds)),
            (
                "objects accepted by the apiserver".into(),
                secs(cr.objects_created_seconds),
            ),
            (
                "time to all Ready".into(),
                format!(
                    "{} ({} of {} Ready)",
                    secs(cr.all_ready_seconds),
                    cr.ready,
                    self.n
                ),
            ),
            (
                "rate floor (CreateVolume bucket)".into(),
                secs(cr.rate_floor_seconds),
            ),
            (
                "ratio to the floor".into(),
                opt(cr.ratio_to_floor, |r| format!("{r:.2}x")),
            ),
            (
                "last CreateVolume at".into(),
                opt(cr.last_create_volume_seconds, secs),
            ),
            (
                "Ready after CreateVolume p50/p90/max".into(),
                opt(cr.ready_after_create_volume_seconds, |p| {
                    format!("{:.1} / {:.1} / {:.1} s", p.p50, p.p90, p.max)
                }),
            ),
            (
                "creation: AWS calls".into(),
                format!(
                    "{} (window {})",
                    calls(&cr.aws_calls),
                    secs(cr.window_seconds)
                ),
            ),
            (
                "creation: reads / mutating calls".into(),
                format!("{} / {}", cr.reads, cr.mutating_calls),
            ),
            (
                "creation: status writes".into(),
                format!(
                    "{} ({:.2} per object)",
                    cr.status_writes, cr.status_writes_per_object
                ),
            ),
            (
                "idle: window, resyncs seen".into(),
                format!("{}, {}", secs(idle.window_seconds), idle.resyncs),
            ),
            (
                "idle: AWS calls per resync".into(),
                opt(idle.aws_calls_per_resync.as_ref(), |m| {
                    if m.is_empty() {
                        "none".to_owned()
                    } else {
                        m.iter()
                            .map(|(a, n)| format!("{a} {n:.1}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                }),
            ),
            (
                "idle: reads per 1,000 objects per resync".into(),
                opt(idle.reads_per_1000_objects_per_resync, |r| {
                    format!("{r:.2}")
                }),
            ),
            (
                "idle: mutating calls / status writes".into(),
                format!("{} / {}", idle.mutating_calls, idle.status_writes),
            ),
        ];
        for p in &self.processes {
            rows.push((
                format!("{}: RSS empty / idle / peak", p.name),
                format!(
                    "{:.1} / {:.1} / {:.1} MiB",
                    p.rss_empty_mib, p.rss_idle_mib, p.rss_peak_mib
                ),
            ));
            rows.push((
                format!("{}: CPU creation / idle", p.name),
                format!(
                    "{:.1} / {:.1} s",
                    p.cpu_seconds_creation, p.cpu_seconds_idle
                ),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            let _ = writeln!(out, "{key:<width$}  {value}");
        }
        out
    }
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn opt<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), show)
}

fn calls(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
