//! The benchmark of issue 10 (`make bench`, the `bench` binary): N gp3 EbsVolumes on the test
//! bed (a real kube-apiserver and etcd, the AWS emulator, the controller binary as a child),
//! measured from the outside only: the emulator's request counters, the controller's
//! `/metrics`, the objects' conditions, and `/proc` for memory and CPU.
//!
//! 1. The controller starts with no object; once it settled, memory is read ("empty").
//! 2. N objects are created; the run waits until all are Ready=True at once, then until no
//!    AWS call or status write happened for a quiet gap: that is the creation window.
//! 3. The idle window runs until two resync sweeps (bursts of DescribeVolumes) are over.
//! 4. Afterwards (outside both windows) the volumes' CreateTimes are read, for how long each
//!    waited between its CreateVolume and Ready.

pub mod floor;
pub mod latency;
pub mod objects;
pub mod procstat;
pub mod report;
pub mod sweeps;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::READY;
use kube::api::ListParams;

use crate::bed::{Bed, condition};
use crate::emulator::Calls;
use crate::paths;
use floor::Bucket;
use objects::ReadyCount;
use report::{ControllerRun, Creation, Idle, Machine, ProcessFigures, Report};
use sweeps::Reading;

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Objects to create.
    pub n: usize,
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
    /// Give up when not all objects are Ready after this long (`None`: twice the rate floor
    /// plus ten minutes).
    pub ready_timeout: Option<Duration>,
    /// Copy the controller's log here at the end (also when the run fails).
    pub controller_log: Option<PathBuf>,
    /// Progress lines on stderr every this often while waiting for Ready.
    pub progress_every: Duration,
}

impl Options {
    /// `n` objects with the controller's default limits and a 60 s resync.
    pub fn new(n: usize, controller: PathBuf) -> Self {
        Self {
            n,
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

    /// Without a change for this long, the controller is quiet (a resync sweep is over):
    /// 5 s, less for short resyncs.
    fn quiet_gap(&self) -> Duration {
        Duration::from_millis((self.resync_seconds * 1000 / 4).clamp(500, 5000))
    }
}

/// Runs the benchmark on a bed of its own (namespace, emulator, controller; the control
/// plane is the process's shared one).
pub async fn run(opts: &Options) -> Result<Report> {
    let resync = opts.resync_seconds.to_string();
    let fraction = opts.aws_rate_fraction.to_string();
    let scale = opts.aws_rate_scale.to_string();
    let mut bed = Bed::builder("bench")
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
        .start()
        .await?;
    let result = match bed.wait_controller_ready().await {
        Ok(()) => measure(&bed, opts).await,
        Err(e) => Err(e),
    };
    if let Some(path) = &opts.controller_log
        && let Err(e) = std::fs::write(path, bed.controller_log())
    {
        eprintln!("bench: could not write {}: {e}", path.display());
    }
    result
}

/// The processes measured, by name and pid.
fn processes(bed: &Bed) -> Result<Vec<(&'static str, u32)>> {
    let cp = bed.control_plane()?;
    Ok(vec![
        ("controller", bed.controller_pid()?),
        ("emulator", bed.emu().pid()),
        ("kube-apiserver", cp.apiserver_pid()),
        ("etcd", cp.etcd_pid()),
    ])
}

/// The counters at one moment.
struct Snapshot {
    at: Instant,
    calls: Calls,
    status_writes: u64,
    procs: Vec<procstat::Sample>,
}

async fn snapshot(bed: &Bed, pids: &[(&str, u32)]) -> Result<Snapshot> {
    let calls = bed.calls().await?;
    let status_writes = bed.status_writes::<EbsVolume>().await?;
    let procs = pids
        .iter()
        .map(|(name, pid)| procstat::sample(*pid).with_context(|| format!("sampling {name}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Snapshot {
        at: Instant::now(),
        calls,
        status_writes,
        procs,
    })
}

/// Requests by action between two snapshots (actions without any left out).
fn calls_between(before: &Calls, after: &Calls) -> Calls {
    let calls = after
        .calls
        .iter()
        .map(|(action, n)| (action.clone(), n.saturating_sub(before.count(action))))
        .filter(|(_, n)| *n > 0)
        .collect();
    Calls {
        calls,
        faulted: BTreeMap::new(),
    }
}

/// (reads, mutating calls) of a set of calls.
fn reads_and_mutating(calls: &Calls) -> (u64, u64) {
    let mutating: u64 = calls.mutating().values().sum();
    (calls.total() - mutating, mutating)
}

async fn measure(bed: &Bed, opts: &Options) -> Result<Report> {
    let pids = processes(bed)?;
    let api = bed.api::<EbsVolume>()?;
    let ns = bed.namespace()?.to_owned();
    let bucket = opts.bucket();
    let floor = bucket.floor_seconds(opts.n);
    let ready_timeout = opts
        .ready_timeout
        .unwrap_or_else(|| Duration::from_secs_f64(2.0 * floor + 600.0));

    // Startup done (CRD discovery, first lists): what the controller holds with no object.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let empty = snapshot(bed, &pids).await?;

    // Creation.
    let mut ready = ReadyCount::start(api.clone());
    let t0 = Instant::now();
    let t0_wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    objects::create_all(&api, &ns, opts.n, opts.concurrency).await?;
    let objects_created = t0.elapsed();
    eprintln!(
        "bench: {} objects accepted in {:.1} s; rate floor {floor:.0} s",
        opts.n,
        objects_created.as_secs_f64()
    );
    let all_ready = wait_all_ready(bed, &mut ready, opts, t0, ready_timeout).await?;
    let seen_ready = ready.now();
    drop(ready);
    wait_quiet(bed, opts).await?;
    let created = snapshot(bed, &pids).await?;

    // Idle.
    let idle_end = idle(bed, opts).await?;
    let last = snapshot(bed, &pids).await?;

    // After both windows: how long volumes waited between CreateVolume and Ready.
    let (latencies, last_create) = ready_after_create(bed, &api, t0_wall).await?;

    let creation_calls = calls_between(&empty.calls, &created.calls);
    let (creation_reads, creation_mutating) = reads_and_mutating(&creation_calls);
    let creation_writes = created.status_writes - empty.status_writes;
    let idle_calls = calls_between(&created.calls, &last.calls);
    let (idle_reads, idle_mutating) = reads_and_mutating(&idle_calls);
    let per_resync = |x: f64| (idle_end.resyncs > 0).then(|| x / idle_end.resyncs as f64);
    let reads_per_resync = per_resync(idle_reads as f64);

    let processes = pids
        .iter()
        .enumerate()
        .map(|(i, (name, _))| ProcessFigures {
            name: (*name).to_owned(),
            rss_empty_mib: empty.procs[i].rss_mib,
            rss_idle_mib: last.procs[i].rss_mib,
            rss_peak_mib: last.procs[i].peak_rss_mib,
            cpu_seconds_creation: created.procs[i].cpu_seconds - empty.procs[i].cpu_seconds,
            cpu_seconds_idle: last.procs[i].cpu_seconds - created.procs[i].cpu_seconds,
        })
        .collect();

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
            create_volume_bucket: bucket,
        },
        creation: Creation {
            objects_created_seconds: objects_created.as_secs_f64(),
            all_ready_seconds: all_ready.as_secs_f64(),
            ready: seen_ready,
            rate_floor_seconds: floor,
            ratio_to_floor: (floor > 0.0).then(|| all_ready.as_secs_f64() / floor),
            last_create_volume_seconds: last_create,
            window_seconds: (created.at - t0).as_secs_f64(),
            aws_calls: creation_calls.calls.clone(),
            reads: creation_reads,
            mutating_calls: creation_mutating,
            status_writes: creation_writes,
            status_writes_per_object: creation_writes as f64 / opts.n.max(1) as f64,
            ready_after_create_volume_seconds: latency::percentiles(&latencies),
        },
        idle: Idle {
            window_seconds: (last.at - created.at).as_secs_f64(),
            resyncs: idle_end.resyncs,
            aws_calls_per_resync: (idle_end.resyncs > 0).then(|| {
                idle_calls
                    .calls
                    .iter()
                    .map(|(a, n)| (a.clone(), *n as f64 / idle_end.resyncs as f64))
                    .collect()
            }),
            aws_calls: idle_calls.calls.clone(),
            reads_per_resync,
            reads_per_1000_objects_per_resync: reads_per_resync
                .map(|r| r * 1000.0 / opts.n.max(1) as f64),
            mutating_calls: idle_mutating,
            status_writes: last.status_writes - created.status_writes,
        },
        processes,
    })
}

/// Waits until all `opts.n` objects are Ready=True at once; returns the time since `t0`.
/// On timeout, fails with the point reached.
async fn wait_all_ready(
    bed: &Bed,
    ready: &mut ReadyCount,
    opts: &Options,
    t0: Instant,
    timeout: Duration,
) -> Result<Duration> {
    let mut next_progress = t0 + opts.progress_every;
    loop {
        let count = ready.changed(Duration::from_secs(1)).await;
        if count >= opts.n {
            return Ok(t0.elapsed());
        }
        let now = Instant::now();
        if now >= next_progress || t0.elapsed() > timeout {
            let creates = bed.calls().await.map(|c| c.count("CreateVolume")).ok();
            let point = format!(
                "{count}/{} Ready, {} CreateVolume, after {:.0} s",
                opts.n,
                creates.map_or_else(|| "?".to_owned(), |c| c.to_string()),
                t0.elapsed().as_secs_f64()
            );
            if t0.elapsed() > timeout {
                bail!("not all objects Ready within {timeout:?}: stalled at {point}");
            }
            eprintln!("bench: {point}");
            next_progress = now + opts.progress_every;
        }
    }
}

/// Waits until neither an AWS call nor a status write happened for the quiet gap (at most
/// one resync interval: a controller never quiet is measured as it is).
async fn wait_quiet(bed: &Bed, opts: &Options) -> Result<()> {
    let gap = opts.quiet_gap();
    let deadline = Instant::now() + Duration::from_secs(opts.resync_seconds.max(1));
    let mut last = (
        bed.calls().await?.total(),
        bed.status_writes::<EbsVolume>().await?,
    );
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = (
            bed.calls().await?.total(),
            bed.status_writes::<EbsVolume>().await?,
        );
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= gap {
            return Ok(());
        }
    }
    eprintln!("bench: the controller was not quiet for {gap:?} within a resync interval");
    Ok(())
}

/// How an idle window ended.
struct IdleEnd {
    resyncs: usize,
}

/// Idles until two resync sweeps are over, or two and a half resync intervals and a minute.
async fn idle(bed: &Bed, opts: &Options) -> Result<IdleEnd> {
    let gap = opts.quiet_gap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.resync_seconds as f64 * 2.5 + 60.0);
    let mut readings = vec![Reading {
        at_ms: 0,
        value: bed.calls().await?.count("DescribeVolumes"),
    }];
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        readings.push(Reading {
            at_ms: u64::try_from(start.elapsed().as_millis())?,
            value: bed.calls().await?.count("DescribeVolumes"),
        });
        let bursts = sweeps::bursts(&readings, u64::try_from(gap.as_millis())?);
        if bursts.completed >= 2 {
            return Ok(IdleEnd { resyncs: 2 });
        }
        if Instant::now() >= deadline {
            eprintln!(
                "bench: {} resync sweep(s) over after {:.0} s of idling; stopping there",
                bursts.completed,
                start.elapsed().as_secs_f64()
            );
            return Ok(IdleEnd {
                resyncs: bursts.completed,
            });
        }
    }
}

/// Per Ready object: its Ready lastTransitionTime minus its volume's CreateTime, in seconds;
/// and the last CreateTime, in seconds after `t0_wall` (Unix seconds).
async fn ready_after_create(
    bed: &Bed,
    api: &kube::Api<EbsVolume>,
    t0_wall: f64,
) -> Result<(Vec<f64>, Option<f64>)> {
    let mut created: HashMap<String, f64> = HashMap::new();
    let mut volumes = bed
        .ec2()
        .describe_volumes()
        .max_results(500)
        .into_paginator()
        .items()
        .send();
    while let Some(v) = volumes.try_next().await.context("DescribeVolumes")? {
        if let (Some(id), Some(t)) = (v.volume_id(), v.create_time()) {
            created.insert(
                id.to_owned(),
                t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9,
            );
        }
    }
    let mut latencies = Vec::new();
    for obj in api.list(&ListParams::default()).await?.items {
        let id = obj.status.as_ref().and_then(|s| s.volume_id.as_deref());
        let ready_at = condition(&obj, READY)
            .filter(|c| c.status == ec2_reconciler::api::conditions::ConditionStatus::True)
            .map(|c| c.last_transition_time.timestamp_micros() as f64 / 1e6);
        if let (Some(id), Some(ready_at)) = (id, ready_at)
            && let Some(create) = created.get(id)
        {
            latencies.push(ready_at - create);
        }
    }
    let last_create = created
        .values()
        .copied()
        .reduce(f64::max)
        .map(|t| t - t0_wall);
    Ok((latencies, last_create))
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
