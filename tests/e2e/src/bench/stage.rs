//! One stage of the benchmark, whatever the kind: with the controller settled and whatever
//! the objects need already made in AWS, the counters are read ("empty"); the objects are
//! created and the stage waits until all are Ready=True at once, then until the controller
//! is quiet ("created"); then it idles for two resyncs ("last"). Every figure of the stage
//! is a difference between two of these snapshots.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ec2_reconciler::reconcile::ManagedKind;
use serde_json::Value;

use super::objects::{self, ReadyCount};
use super::procstat;
use super::report::{Idle, KindCreation, KindReport, ProcessFigures};
use super::waits::{idle, wait_all_ready, wait_quiet};
use crate::bed::Bed;
use crate::emulator::Calls;

/// How an idle window tells one resync from the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resyncs {
    /// Each resync reads the kind's resources in one sweep, a burst of calls of this
    /// Describe action with nothing of it between two sweeps, and passes every object once:
    /// a resync is over when both are.
    Sweeps(&'static str),
    /// The kind reads nothing at rest: a resync is one pass of every object (the kind's
    /// reconciles metric).
    Passes,
}

impl Resyncs {
    /// How the report names the signal.
    pub fn describe(&self) -> String {
        match self {
            Resyncs::Sweeps(action) => {
                format!("bursts of {action}, and a pass of every object each")
            }
            Resyncs::Passes => "a pass of every object each (no AWS call at rest)".to_owned(),
        }
    }
}

/// What a stage is: how many objects, how its resyncs are told apart, how long to wait.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub objects: usize,
    pub resyncs: Resyncs,
    /// The controller's resync interval.
    pub resync_seconds: u64,
    /// Give up when not all objects are Ready after this long.
    pub ready_timeout: Duration,
    /// Progress lines on stderr every this often while waiting for Ready.
    pub progress_every: Duration,
}

impl Plan {
    /// Without a change for this long, the controller is quiet (a resync sweep is over):
    /// 5 s, less for short resyncs.
    pub(super) fn quiet_gap(&self) -> Duration {
        Duration::from_millis((self.resync_seconds * 1000 / 4).clamp(500, 5000))
    }

    /// Increases of the sweep action less than this apart are one burst: a quarter of the
    /// interval (at least the quiet gap). Two sweeps are at least 0.9 of it apart (the
    /// controller jitters by 10%), while one sweep's pages may be spread.
    pub(super) fn sweep_gap(&self) -> Duration {
        self.quiet_gap()
            .max(Duration::from_secs(self.resync_seconds) / 4)
    }
}

/// The counters at one moment.
pub struct Snapshot {
    pub at: Instant,
    pub calls: Calls,
    pub status_writes: u64,
    pub procs: Vec<procstat::Sample>,
}

/// The processes measured, by name and pid: the controller, the emulator, kube-apiserver
/// and etcd.
pub fn processes(bed: &Bed) -> Result<Vec<(&'static str, u32)>> {
    let cp = bed.control_plane()?;
    Ok(vec![
        ("controller", bed.controller_pid()?),
        ("emulator", bed.emu().pid()),
        ("kube-apiserver", cp.apiserver_pid()),
        ("etcd", cp.etcd_pid()),
    ])
}

async fn snapshot<K: ManagedKind>(bed: &Bed, pids: &[(&str, u32)]) -> Result<Snapshot> {
    let calls = bed.calls().await?;
    let status_writes = bed.status_writes::<K>().await?;
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

/// What the benchmark made in AWS for a stage before its counters were read.
pub struct Setup {
    /// What each object is, and what was made for it.
    pub what: String,
    pub seconds: f64,
}

/// A stage as measured.
pub struct Run {
    pub kind: &'static str,
    pub pids: Vec<(&'static str, u32)>,
    pub objects: usize,
    /// Before the first object.
    pub empty: Snapshot,
    /// All Ready and quiet.
    pub created: Snapshot,
    /// After the idle window.
    pub last: Snapshot,
    /// When the first object was created, and the same in Unix seconds.
    pub t0: Instant,
    pub t0_wall: f64,
    /// Until the apiserver had accepted every object.
    pub objects_created: Duration,
    /// Until all were Ready=True at once.
    pub all_ready: Duration,
    /// Objects Ready=True at the end of the wait.
    pub ready: usize,
    /// Resyncs seen in the idle window.
    pub resyncs: usize,
}

/// Runs a stage: the plan's objects, object `i` of `spec(i)`, created `concurrency` at a time
/// (the counters are read just before).
pub async fn run<K: ManagedKind>(
    bed: &Bed,
    plan: &Plan,
    concurrency: usize,
    spec: impl Fn(usize) -> Value,
) -> Result<Run> {
    let pids = processes(bed)?;
    // Startup done (CRD discovery, first lists): what the controller holds with no object.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let empty = snapshot::<K>(bed, &pids).await?;

    let api = bed.api::<K>()?;
    let mut ready = ReadyCount::start(api.clone());
    let t0 = Instant::now();
    let t0_wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    objects::create_all(&api, bed.namespace()?, plan.objects, concurrency, spec).await?;
    let objects_created = t0.elapsed();
    eprintln!(
        "bench: {} {} objects accepted in {:.1} s",
        plan.objects,
        K::KIND,
        objects_created.as_secs_f64()
    );
    let all_ready = wait_all_ready::<K>(bed, &mut ready, plan, t0).await?;
    let seen_ready = ready.now();
    drop(ready);
    wait_quiet::<K>(bed, plan).await?;
    let created = snapshot::<K>(bed, &pids).await?;

    let resyncs = idle::<K>(bed, plan).await?;
    let last = snapshot::<K>(bed, &pids).await?;
    Ok(Run {
        kind: K::KIND,
        pids,
        objects: plan.objects,
        empty,
        created,
        last,
        t0,
        t0_wall,
        objects_created,
        all_ready,
        ready: seen_ready,
        resyncs,
    })
}

impl Run {
    /// The creation window's figures.
    pub fn creation(&self) -> KindCreation {
        let calls = calls_between(&self.empty.calls, &self.created.calls);
        let (reads, mutating_calls) = reads_and_mutating(&calls);
        let status_writes = self.created.status_writes - self.empty.status_writes;
        KindCreation {
            objects_created_seconds: self.objects_created.as_secs_f64(),
            all_ready_seconds: self.all_ready.as_secs_f64(),
            ready: self.ready,
            window_seconds: (self.created.at - self.t0).as_secs_f64(),
            reads_naming_ids: calls.by_ids.values().sum(),
            aws_calls: calls.calls,
            reads,
            mutating_calls,
            status_writes,
            status_writes_per_object: status_writes as f64 / self.objects.max(1) as f64,
        }
    }

    /// The idle window's figures.
    pub fn idle(&self) -> Idle {
        let calls = calls_between(&self.created.calls, &self.last.calls);
        let (reads, mutating_calls) = reads_and_mutating(&calls);
        let resyncs = self.resyncs;
        let per_resync = |x: f64| (resyncs > 0).then(|| x / resyncs as f64);
        let reads_per_resync = per_resync(reads as f64);
        Idle {
            window_seconds: (self.last.at - self.created.at).as_secs_f64(),
            resyncs,
            aws_calls_per_resync: (resyncs > 0).then(|| {
                calls
                    .calls
                    .iter()
                    .map(|(a, n)| (a.clone(), *n as f64 / resyncs as f64))
                    .collect()
            }),
            aws_calls: calls.calls,
            reads_per_resync,
            reads_per_1000_objects_per_resync: reads_per_resync
                .map(|r| r * 1000.0 / self.objects.max(1) as f64),
            mutating_calls,
            status_writes: self.last.status_writes - self.created.status_writes,
        }
    }

    /// The report of a kind's stage.
    pub fn kind_report(
        &self,
        setup: Setup,
        controller_args: Vec<String>,
        plan: &Plan,
    ) -> KindReport {
        KindReport {
            kind: self.kind.to_owned(),
            objects: self.objects,
            setup: setup.what,
            setup_seconds: setup.seconds,
            controller_args,
            resyncs_counted_by: plan.resyncs.describe(),
            creation: self.creation(),
            idle: self.idle(),
            processes: self.processes(),
        }
    }

    /// Memory and CPU of each process, over the stage.
    pub fn processes(&self) -> Vec<ProcessFigures> {
        let (empty, created, last) = (&self.empty, &self.created, &self.last);
        self.pids
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
            .collect()
    }
}

/// Requests by action between two snapshots (actions without any left out).
fn calls_between(before: &Calls, after: &Calls) -> Calls {
    let between = |after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
        after
            .iter()
            .map(|(action, n)| {
                let earlier = before.get(action).copied().unwrap_or(0);
                (action.clone(), n.saturating_sub(earlier))
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    Calls {
        calls: between(&after.calls, &before.calls),
        faulted: BTreeMap::new(),
        by_ids: between(&after.by_ids, &before.by_ids),
    }
}

/// (reads, mutating calls) of a set of calls.
fn reads_and_mutating(calls: &Calls) -> (u64, u64) {
    let mutating: u64 = calls.mutating().values().sum();
    (calls.total() - mutating, mutating)
}
