//! The EbsVolume stage: N gp3 volumes of 1 GiB, nothing made in AWS beforehand. Besides
//! every stage's figures: the rate floor of the CreateVolume bucket, and afterwards
//! (outside both windows) how long each volume waited between its CreateVolume and Ready.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, READY};
use kube::api::ListParams;
use serde_json::json;

use super::report::{Creation, Idle, ProcessFigures};
use super::stage::{self, Plan, Resyncs};
use super::{Options, latency};
use crate::bed::{Bed, ZONE, condition};

/// What the volume stage measured.
pub struct Figures {
    pub creation: Creation,
    pub idle: Idle,
    pub processes: Vec<ProcessFigures>,
}

/// Runs the stage on `bed`.
pub async fn run(bed: &Bed, opts: &Options) -> Result<Figures> {
    let bucket = opts.bucket();
    let floor = bucket.floor_seconds(opts.n);
    eprintln!("bench: {} EbsVolumes; rate floor {floor:.0} s", opts.n);
    let plan = Plan {
        objects: opts.n,
        // An idle resync reads the volumes in one sweep of DescribeVolumes pages.
        resyncs: Resyncs::Sweeps("DescribeVolumes"),
        resync_seconds: opts.resync_seconds,
        ready_timeout: opts
            .ready_timeout
            .unwrap_or_else(|| Duration::from_secs_f64(2.0 * floor + 600.0)),
        progress_every: opts.progress_every,
    };
    let run = stage::run::<EbsVolume>(
        bed,
        &plan,
        opts.concurrency,
        |_| json!({ "availabilityZone": ZONE, "volumeType": "gp3", "sizeGiB": 1 }),
    )
    .await?;

    // After both windows: how long volumes waited between CreateVolume and Ready.
    let api = bed.api::<EbsVolume>()?;
    let (latencies, last_create) = ready_after_create(bed, &api, run.t0_wall).await?;
    let aws_creation = bed
        .emu()
        .set_transitions(json!({}))
        .await?
        .get("volume-create")
        .and_then(serde_json::Value::as_f64);
    let after_create = latency::percentiles(&latencies);
    let common = run.creation();
    Ok(Figures {
        creation: Creation {
            rate_floor_seconds: floor,
            ratio_to_floor: (floor > 0.0).then(|| common.all_ready_seconds / floor),
            last_create_volume_seconds: last_create,
            ready_after_create_volume_seconds: after_create,
            aws_creation_seconds: aws_creation,
            ready_after_available_seconds: after_create.zip(aws_creation).map(|(p, c)| p.less(c)),
            common,
        },
        idle: run.idle(),
        processes: run.processes(),
    })
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
            .filter(|c| c.status == ConditionStatus::True)
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
