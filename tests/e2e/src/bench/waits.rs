//! What a stage waits for: all its objects Ready, the controller quiet, two idle resyncs.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ec2_reconciler::reconcile::ManagedKind;

use super::objects::ReadyCount;
use super::stage::{Plan, Resyncs};
use super::sweeps::{self, Reading};
use crate::bed::Bed;

/// Waits until all the plan's objects are Ready=True at once; returns the time since `t0`.
/// On timeout, fails with the point reached.
pub(super) async fn wait_all_ready<K: ManagedKind>(
    bed: &Bed,
    ready: &mut ReadyCount,
    plan: &Plan,
    t0: Instant,
) -> Result<Duration> {
    let mut next_progress = t0 + plan.progress_every;
    loop {
        let count = ready.changed(Duration::from_secs(1)).await;
        if count >= plan.objects {
            return Ok(t0.elapsed());
        }
        let now = Instant::now();
        let late = t0.elapsed() > plan.ready_timeout;
        if now >= next_progress || late {
            let mutating = bed
                .calls()
                .await
                .map(|c| c.mutating().values().sum::<u64>())
                .ok();
            let point = format!(
                "{count}/{} {} Ready, {} mutating AWS calls, after {:.0} s",
                plan.objects,
                K::KIND,
                mutating.map_or_else(|| "?".to_owned(), |c| c.to_string()),
                t0.elapsed().as_secs_f64()
            );
            if late {
                bail!(
                    "not all objects Ready within {:?}: stalled at {point}",
                    plan.ready_timeout
                );
            }
            eprintln!("bench: {point}");
            next_progress = now + plan.progress_every;
        }
    }
}

/// Waits until neither an AWS call nor a status write of `K` happened for the quiet gap (at
/// most one resync interval: a controller never quiet is measured as it is).
pub(super) async fn wait_quiet<K: ManagedKind>(bed: &Bed, plan: &Plan) -> Result<()> {
    let gap = plan.quiet_gap();
    let deadline = Instant::now() + Duration::from_secs(plan.resync_seconds.max(1));
    let reading = || async {
        Ok::<_, anyhow::Error>((bed.calls().await?.total(), bed.status_writes::<K>().await?))
    };
    let mut last = reading().await?;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = reading().await?;
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

/// Idles until two resyncs are over, or two and a half resync intervals and a minute;
/// returns the resyncs seen.
pub(super) async fn idle<K: ManagedKind>(bed: &Bed, plan: &Plan) -> Result<usize> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(plan.resync_seconds as f64 * 2.5 + 60.0);
    let sweep_gap = u64::try_from(plan.sweep_gap().as_millis())?;
    // (the sweep action's calls, the kind's reconciles) over time.
    let mut sweep_readings = Vec::new();
    let mut pass_readings = Vec::new();
    loop {
        let at_ms = u64::try_from(start.elapsed().as_millis())?;
        if let Resyncs::Sweeps(action) = plan.resyncs {
            let value = bed.calls().await?.count(action);
            sweep_readings.push(Reading { at_ms, value });
        }
        let value = bed.reconciles::<K>().await?;
        pass_readings.push(Reading { at_ms, value });
        let passed = sweeps::passes(&pass_readings, plan.objects);
        let completed = match plan.resyncs {
            Resyncs::Sweeps(_) => sweeps::bursts(&sweep_readings, sweep_gap)
                .completed
                .min(passed),
            Resyncs::Passes => passed,
        };
        if completed >= 2 {
            return Ok(2);
        }
        if Instant::now() >= deadline {
            eprintln!(
                "bench: {completed} {} resync(s) over after {:.0} s of idling; stopping there",
                K::KIND,
                start.elapsed().as_secs_f64()
            );
            return Ok(completed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
