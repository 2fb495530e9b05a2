//! The benchmark's result: one structure, written as JSON and printed as one table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::floor::Bucket;
use super::latency::Percentiles;

/// Everything one run measured. Every field is always written (absent figures as `null`),
/// so a reader can rely on the shape. The top-level figures are the EbsVolume stage's (as
/// before the other kinds were measured); `amis` and `migrations` are the other kinds'
/// stages, each on a bed of its own after the volumes.
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
    /// The AmiImage stage (`null` with no AMI; absent from reports older than it).
    #[serde(default)]
    pub amis: Option<KindReport>,
    /// The EncryptedVolumeMigration stage (likewise).
    #[serde(default)]
    pub migrations: Option<KindReport>,
}

/// One kind's stage on a bed of its own (a namespace, an emulator and a controller started
/// for it), so that no other kind's resyncs fall into its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// `AmiImage`, `EncryptedVolumeMigration`.
    pub kind: String,
    pub objects: usize,
    /// What each object is, and what the benchmark made in AWS for them before the stage's
    /// counters were read (so none of it is counted).
    pub setup: String,
    pub setup_seconds: f64,
    /// The controller's arguments on top of the volume stage's.
    pub controller_args: Vec<String>,
    /// How the idle window told resyncs apart.
    pub resyncs_counted_by: String,
    pub creation: KindCreation,
    pub idle: Idle,
    /// As for the volumes, over this stage (the apiserver and etcd are the same processes
    /// for every stage).
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

/// From the first object created until the controller was quiet again after all were Ready,
/// for any kind. A completed EncryptedVolumeMigration is Ready=True (reason `Completed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindCreation {
    /// Until the apiserver had accepted all the objects.
    pub objects_created_seconds: f64,
    /// Until every object was Ready=True at once.
    pub all_ready_seconds: f64,
    /// Objects seen Ready=True at the end of the wait (all unless the run failed).
    pub ready: usize,
    /// Until all were Ready and no AWS call or status write had happened for the quiet gap.
    pub window_seconds: f64,
    /// AWS requests by action in the window.
    pub aws_calls: BTreeMap<String, u64>,
    pub reads: u64,
    /// Of `reads`, the Describe requests that named their resources by id: the on-demand
    /// reads of objects waiting for AWS, as opposed to the resync sweeps (read by filter).
    #[serde(default)]
    pub reads_naming_ids: u64,
    pub mutating_calls: u64,
    pub status_writes: u64,
    pub status_writes_per_object: f64,
}

/// The EbsVolume stage's creation window: the figures of every kind, and the rate floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creation {
    /// Written at this level, as before the other kinds were measured.
    #[serde(flatten)]
    pub common: KindCreation,
    /// The least time in which the CreateVolume bucket lets N creates out.
    pub rate_floor_seconds: f64,
    /// `all_ready_seconds / rate_floor_seconds` (`null` when the floor is 0: N within the
    /// burst).
    pub ratio_to_floor: Option<f64>,
    /// When the last volume was created in AWS (its CreateTime), after the first object.
    pub last_create_volume_seconds: Option<f64>,
    /// Per volume: its object's Ready lastTransitionTime minus the volume's CreateTime.
    pub ready_after_create_volume_seconds: Option<Percentiles>,
    /// How long AWS (the emulator's `volume-create` setting) keeps a new volume `creating`.
    #[serde(default)]
    pub aws_creation_seconds: Option<f64>,
    /// Per volume: Ready after the volume became `available` (the above minus
    /// `aws_creation_seconds`): the controller's own delay, bounded by one creating poll
    /// (`--creating-poll-seconds`) plus a pass and its status write.
    #[serde(default)]
    pub ready_after_available_seconds: Option<Percentiles>,
}

/// An idle window: from a quiet moment after creation until two resyncs were over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idle {
    pub window_seconds: f64,
    /// Resyncs seen in the window (for the volumes: bursts of DescribeVolumes).
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
}
