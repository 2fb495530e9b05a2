//! The AmiImage stage: M AMIs, each registered from a snapshot of its own and shared with
//! one account, so an idle resync exercises what the controller reads about images: the
//! DescribeImages sweep, the per-account launch-permission check (DescribeImages with
//! ExecutableUsers) and, when due, each image's full launch-permission read
//! (DescribeImageAttribute, at most once per `--launch-permission-read-seconds`).

use std::time::Instant;

use anyhow::Result;
use ec2_reconciler::api::AmiImage;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use super::Options;
use super::report::KindReport;
use super::stage::{self, Resyncs, Setup};
use crate::bed::Bed;
use crate::wait::retry;

/// The account every AMI is shared with.
pub const SHARED_WITH: &str = "111122223333";

/// The controller's arguments for this stage: sharing with [`SHARED_WITH`] is allowed.
pub fn controller_args() -> Vec<String> {
    vec!["--share-allow-accounts".to_owned(), SHARED_WITH.to_owned()]
}

/// Runs the stage on `bed` (started with [`controller_args`]).
pub async fn run(bed: &Bed, opts: &Options) -> Result<KindReport> {
    let m = opts.amis;
    let started = Instant::now();
    let snapshots = snapshots(bed, m).await?;
    let volumes = source_volumes(m);
    let setup = Setup {
        what: format!(
            "each registered from a snapshot of its own, shared with account {SHARED_WITH}; \
             the bench first made {m} completed {} of {volumes} {}",
            if m == 1 { "snapshot" } else { "snapshots" },
            if volumes == 1 { "volume" } else { "volumes" },
        ),
        seconds: started.elapsed().as_secs_f64(),
    };
    // An idle resync reads the images in one sweep of DescribeImages pages, and asks once
    // per account which of them it may launch (DescribeImages too).
    let plan = opts.kind_plan(m, Resyncs::Sweeps("DescribeImages"));
    let run = stage::run::<AmiImage>(bed, &plan, opts.concurrency, |i| {
        json!({
            "name": super::objects::name(i),
            "source": { "snapshots": {
                "architecture": "x86_64",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMappings": [
                    { "deviceName": "/dev/xvda", "snapshotId": snapshots[i] }
                ],
            } },
            "launchPermissions": { "accountIds": [SHARED_WITH] },
        })
    })
    .await?;
    Ok(run.kind_report(setup, controller_args(), &plan))
}

/// Snapshots made at once.
const SNAPSHOTS_IN_FLIGHT: usize = 16;
/// Of those, at most this many of one volume: EC2 allows 5 in progress per volume
/// (ConcurrentSnapshotLimitExceeded), and so does the emulator.
const SNAPSHOTS_PER_VOLUME: usize = 4;

/// Volumes the snapshots are taken of.
fn source_volumes(m: usize) -> usize {
    m.min(SNAPSHOTS_IN_FLIGHT).div_ceil(SNAPSHOTS_PER_VOLUME)
}

/// `m` completed snapshots, made outside the controller: snapshot `i` of volume `i` modulo
/// [`source_volumes`], so that any run of consecutive snapshots in flight holds at most
/// [`SNAPSHOTS_PER_VOLUME`] of one volume.
async fn snapshots(bed: &Bed, m: usize) -> Result<Vec<String>> {
    let mut volumes = Vec::new();
    for _ in 0..source_volumes(m) {
        volumes.push(bed.outside_volume(1, &[]).await?);
    }
    let volumes = &volumes;
    futures::stream::iter(0..m)
        .map(|i| async move {
            let volume = &volumes[i % volumes.len()];
            retry("a completed snapshot", || bed.completed_snapshot(volume)).await
        })
        .buffered(SNAPSHOTS_IN_FLIGHT)
        .try_collect()
        .await
}
