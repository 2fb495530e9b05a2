//! What the volume observer reads, counted at the emulator: creating volumes are read
//! together (one read by ids per poll interval for all of them) and without their
//! modifications, and an idle resync costs the sweep's pages plus one filtered
//! DescribeVolumesModifications for the whole Region.

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::ZONE;
use ec2_reconciler::api::EbsVolume;
use serde_json::json;

/// Volumes created at once.
const N: u64 = 30;
/// The controller's resync interval, seconds.
const RESYNC: u64 = 30;

#[tokio::test]
async fn creating_30_volumes_reads_them_together_and_an_idle_resync_costs_one_page_and_one_listed_call()
-> Result<()> {
    let bed = Bed::builder("obs-reads")
        .args(&["--resync-seconds", &RESYNC.to_string()])
        .transitions(json!({"volume-create": 1}))
        .start()
        .await?;
    bed.emu().clear_calls().await?;
    for i in 0..N {
        bed.create::<EbsVolume>(
            &format!("v{i}"),
            json!({"availabilityZone": ZONE, "sizeGiB": 1}),
        )
        .await?;
    }
    for i in 0..N {
        bed.wait_ready::<EbsVolume>(&format!("v{i}")).await?;
    }
    let created = bed.emu().calls().await?;
    ensure!(created.count("CreateVolume") == N, "{created:?}");
    ensure!(
        created.count("DescribeVolumesModifications") == 0,
        "new volumes have no modification to read: {created:?}"
    );
    // Every creating volume waits for the same paced read (one per 5 s poll interval): the
    // creates go out within a few seconds and each volume is available a second after its
    // create, so two or three reads see them all.
    ensure!(
        created.count("DescribeVolumes") <= N / 10,
        "reads by id while creating {N} volumes: {created:?}"
    );

    // Idle: the next resync sweeps the Region once (30 volumes: one page) and lists the
    // in-flight and failed modifications once, by state, without ids.
    let idle = bed.emu().calls().await?;
    bed.wait_until_within(
        "the next resync's sweep",
        Duration::from_secs(2 * RESYNC + 10),
        || async {
            let now = bed.emu().calls().await?;
            Ok((now.count("DescribeVolumesModifications")
                > idle.count("DescribeVolumesModifications"))
            .then_some(()))
        },
    )
    .await?;
    // Every object's resync pass falls within this sweep's jittered lifetime (27 s or more).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let swept = bed.emu().calls().await?;
    let delta = |action: &str| swept.count(action) - idle.count(action);
    ensure!(
        delta("DescribeVolumes") == 1 && delta("DescribeVolumesModifications") == 1,
        "an idle resync of {N} volumes: {idle:?} -> {swept:?}"
    );
    ensure!(
        swept.mutating() == idle.mutating(),
        "nothing mutating while idle: {idle:?} -> {swept:?}"
    );
    Ok(())
}
