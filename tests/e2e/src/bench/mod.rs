//! The benchmark of issue 10 (`make bench`, the `bench` binary) on the test bed (a real
//! kube-apiserver and etcd, the AWS emulator, the controller binary as a child), measured
//! from the outside only: the emulator's request counters, the controller's `/metrics`, the
//! objects' conditions, and `/proc` for memory and CPU.
//!
//! It runs one stage per kind, one after the other, each on a bed of its own (namespace,
//! emulator, controller), so that no kind's resyncs fall into another's counters:
//! N gp3 EbsVolumes ([`volumes`]), then M AmiImages ([`amis`]), then K
//! EncryptedVolumeMigrations ([`migrations`]); M or K may be 0 (no stage). Each stage
//! ([`stage`]):
//!
//! 1. Whatever the objects need in AWS (snapshots, instances, a key) is made by the
//!    benchmark directly through the emulator's API, and the controller settles; then the
//!    counters are read ("empty").
//! 2. The objects are created; the stage waits until all are Ready=True at once, then until
//!    no AWS call or status write happened for a quiet gap: that is the creation window.
//! 3. The idle window runs until two resyncs are over (sweeps of the kind's Describe
//!    action; for migrations, which read nothing at rest, a pass of every object each).

pub mod amis;
pub mod floor;
pub mod latency;
pub mod migrations;
pub mod objects;
pub mod procstat;
pub mod report;
pub mod stage;
pub mod sweeps;
pub mod table;
pub mod volumes;
pub mod waits;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::bed::Bed;
use crate::paths;
use floor::Bucket;
use report::{ControllerRun, Machine, Report};
use stage::{Plan, Resyncs};

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// EbsVolume objects to create.
    pub n: usize,
    /// AmiImage objects to create (0: no AMI stage).
    pub amis: usize,
    /// EncryptedVolumeMigration objects to create (0: no migration stage).
    pub migrations: usize,
    /// The controller's `--resync-seconds`.
    pub resync_seconds: u64,
    /// The controller's `--aws-rate-fraction`.
    pub aws_rate_fraction: f64,
    /// The controller's `--aws-rate-scale`.
    pub aws_rate_scale: f64,
    /// The `ec2-reconciler` binary.
    pub controller: PathBuf,
    /// Object creations in flight at once.
    pub concurrency: usize,
    /// Give up when not all objects of a stage are Ready after this long (`None`: for the
    /// volumes twice the rate floor plus ten minutes, for the other kinds ten minutes plus
    /// two seconds an object).
    pub ready_timeout: Option<Duration>,
    /// Copy the controller's log here at the end (also when the run fails); the other
    /// stages' logs go next to it, `-amis` and `-migrations` added to the file's stem.
    pub controller_log: Option<PathBuf>,
    /// Progress lines on stderr every this often while waiting for Ready.
    pub progress_every: Duration,
}

impl Options {
    /// `n` volumes (and no other kind) with the controller's default limits and a 60 s
    /// resync.
    pub fn new(n: usize, controller: PathBuf) -> Self {
        Self {
            n,
            amis: 0,
            migrations: 0,
            resync_seconds: 60,
            aws_rate_fraction: 0.5,
            aws_rate_scale: 1.0,
            controller,
            concurrency: 32,
            ready_timeout: None,
            controller_log: None,
            progress_every: Duration::from_secs(30),
        }
    }

    fn bucket(&self) -> Bucket {
        Bucket::create_volume(self.aws_rate_fraction, self.aws_rate_scale)
    }

    /// The plan of a stage of `objects` objects of a kind other than EbsVolume.
    fn kind_plan(&self, objects: usize, resyncs: Resyncs) -> Plan {
        Plan {
            objects,
            resyncs,
            resync_seconds: self.resync_seconds,
            ready_timeout: self.ready_timeout.unwrap_or_else(|| {
                Duration::from_secs(600)
                    + Duration::from_secs(2) * u32::try_from(objects).unwrap_or(u32::MAX)
            }),
            progress_every: self.progress_every,
        }
    }
}

/// Runs the benchmark: the volume stage, then the AMI and migration stages (when asked
/// for), each on a bed of its own (the control plane is the process's shared one).
pub async fn run(opts: &Options) -> Result<Report> {
    let volumes = on_bed(opts, "", &[], async |bed| volumes::run(bed, opts).await).await?;
    let amis = match opts.amis {
        0 => None,
        _ => {
            let args = amis::controller_args();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Some(on_bed(opts, "amis", &args, async |bed| amis::run(bed, opts).await).await?)
        }
    };
    let migrations = match opts.migrations {
        0 => None,
        _ => Some(
            on_bed(opts, "migrations", &[], async |bed| {
                migrations::run(bed, opts).await
            })
            .await?,
        ),
    };
    Ok(Report {
        n: opts.n,
        commit: commit(),
        machine: machine(),
        controller: ControllerRun {
            binary: opts.controller.display().to_string(),
            build: build_of(&opts.controller),
            resync_seconds: opts.resync_seconds,
            aws_rate_fraction: opts.aws_rate_fraction,
            aws_rate_scale: opts.aws_rate_scale,
            default_limits: floor::default_limits(opts.aws_rate_fraction, opts.aws_rate_scale),
            create_volume_bucket: opts.bucket(),
        },
        creation: volumes.creation,
        idle: volumes.idle,
        processes: volumes.processes,
        amis,
        migrations,
    })
}

/// Starts a bed for stage `name` (the controller with the options' flags and `extra_args`),
/// runs `stage` on it once the controller is ready, and keeps the controller's log; the bed
/// is gone when this returns.
async fn on_bed<T>(
    opts: &Options,
    name: &str,
    extra_args: &[&str],
    stage: impl AsyncFnOnce(&Bed) -> Result<T>,
) -> Result<T> {
    let resync = opts.resync_seconds.to_string();
    let fraction = opts.aws_rate_fraction.to_string();
    let scale = opts.aws_rate_scale.to_string();
    let mut bed = Bed::builder(&format!("bench{name}"))
        .controller_binary(&opts.controller)
        // Production's level: debug lines for N objects would be the benchmark's main cost.
        .controller_env("RUST_LOG", "info")
        .args(&[
            "--resync-seconds",
            &resync,
            "--aws-rate-fraction",
            &fraction,
            "--aws-rate-scale",
            &scale,
        ])
        .args(extra_args)
        .start()
        .await?;
    let result = match bed.wait_controller_ready().await {
        Ok(()) => stage(&bed).await,
        Err(e) => Err(e),
    };
    if let Some(path) = opts.controller_log.as_deref().map(|p| log_path(p, name))
        && let Err(e) = std::fs::write(&path, bed.controller_log())
    {
        eprintln!("bench: could not write {}: {e}", path.display());
    }
    result
}

/// The log of stage `name` next to `base` (`base` itself for the volume stage, named "").
fn log_path(base: &Path, name: &str) -> PathBuf {
    if name.is_empty() {
        return base.to_owned();
    }
    let stem = base
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let file = match base.extension() {
        Some(ext) => format!("{stem}-{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{name}"),
    };
    base.with_file_name(file)
}

/// The commit of the repository, `+changes` when tracked files differ from it.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(paths::repo_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}+changes"),
        _ => head,
    }
}

fn machine() -> Machine {
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: memory_kib / 1024.0 / 1024.0,
    }
}

/// `release` or `debug`: the Cargo profile directory the binary sits in.
fn build_of(binary: &Path) -> String {
    match binary
        .parent()
        .and_then(Path::file_name)
        .and_then(|d| d.to_str())
    {
        Some(dir @ ("release" | "debug")) => dir.to_owned(),
        _ => "unknown".to_owned(),
    }
}
