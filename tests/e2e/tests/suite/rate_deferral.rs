//! Issue 10 (memory): creates queued behind the client-side rate limit do not hold their
//! reconciles open. Each object's token is reserved, its pass ends (`aws_calls_deferred`),
//! and its next pass, timed for the token, sends the call: every volume is created exactly
//! once, in the limit's pace, with no extra status write.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::{ZONE, metric_sum};
use ec2_reconciler::api::EbsVolume;
use serde_json::json;

/// At `--aws-rate-fraction 0.1` CreateVolume's bucket holds 10 tokens and refills one every
/// 2 s: 10 volumes are created at once and the other 20 queue for up to 40 s.
const VOLUMES: u64 = 30;
const BURST: u64 = 10;
/// Intent, created, ready (as in `write_budget`).
const WRITES_PER_CREATE: u64 = 3;

fn name(i: u64) -> String {
    format!("queued-{i}")
}

#[tokio::test]
async fn creates_queued_for_rate_tokens_end_their_passes_and_are_each_sent_once() -> Result<()> {
    let mut bed = Bed::start("rate-deferral", &["--aws-rate-fraction", "0.1"]).await?;
    bed.wait_controller_ready().await?;
    let writes = bed.status_writes::<EbsVolume>().await?;
    for i in 0..VOLUMES {
        bed.create::<EbsVolume>(&name(i), json!({ "availabilityZone": ZONE, "sizeGiB": 1 }))
            .await?;
    }

    // A moment when at least ten creates wait for their tokens: the passes running then
    // are the few sending or confirming a create, not one per queued object (a pass that
    // slept until its token would keep all of them open).
    let (queued, in_flight) = bed
        .wait_until("ten creates queued behind the rate limit", || async {
            let metrics = bed.metrics().await?;
            let deferred = metric_sum(
                &metrics,
                "ec2_reconciler_aws_calls_deferred_total",
                &[("action", "CreateVolume")],
            )?;
            let sent = bed.calls().await?.count("CreateVolume");
            let queued = VOLUMES.saturating_sub(sent);
            let in_flight = metric_sum(
                &metrics,
                "ec2_reconciler_reconciles_in_flight",
                &[("kind", "EbsVolume")],
            )?;
            Ok((deferred >= VOLUMES - BURST && queued >= 10).then_some((queued, in_flight)))
        })
        .await?;
    ensure!(
        in_flight < queued,
        "{in_flight} reconciles running while {queued} creates wait for tokens: queued passes are held open"
    );

    for i in 0..VOLUMES {
        bed.wait_ready::<EbsVolume>(&name(i)).await?;
    }
    let created = bed.calls().await?.count("CreateVolume");
    ensure!(
        created == VOLUMES,
        "{created} CreateVolume calls for {VOLUMES} objects (each must be sent exactly once)"
    );
    let deferred = metric_sum(
        &bed.metrics().await?,
        "ec2_reconciler_aws_calls_deferred_total",
        &[("action", "CreateVolume")],
    )?;
    ensure!(
        deferred >= VOLUMES - BURST,
        "{deferred} deferrals: every create past the burst of {BURST} waits for its token"
    );
    let written = bed.status_writes::<EbsVolume>().await? - writes;
    ensure!(
        written <= WRITES_PER_CREATE * VOLUMES,
        "{written} status writes for {VOLUMES} created volumes (at most {WRITES_PER_CREATE} each; a deferral writes nothing)"
    );
    Ok(())
}
