//! Issue 10: what creating a volume costs in status writes and events. A create is written
//! three times at most (the intent before CreateVolume, the volume id after it, Ready once
//! AWS shows the volume available), and no event repeats what the one before it said.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::{ZONE, is_ready};
use ec2_reconciler::api::EbsVolume;
use serde_json::json;

const VOLUMES: u64 = 10;
/// Intent, created, ready.
const WRITES_PER_CREATE: u64 = 3;

fn name(i: u64) -> String {
    format!("budget-{i}")
}

#[tokio::test]
async fn creating_volumes_costs_at_most_three_status_writes_each_and_no_repeated_event()
-> Result<()> {
    // The emulator's default pending states (a volume is `creating` for a while), and a short
    // resync so idle passes after Ready are counted too.
    let mut bed = Bed::start("write-budget", &["--resync-seconds", "4"]).await?;
    bed.wait_controller_ready().await?;
    let writes = bed.status_writes::<EbsVolume>().await?;
    for i in 0..VOLUMES {
        bed.create::<EbsVolume>(&name(i), json!({ "availabilityZone": ZONE, "sizeGiB": 4 }))
            .await?;
    }
    bed.wait_until("every volume to be Ready", || async {
        for i in 0..VOLUMES {
            if !is_ready(&bed.get::<EbsVolume>(&name(i)).await?) {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    // Two idle passes per object (4 s resync) after Ready: a pass that rewrites what did
    // not change (a transition time, a progress tick) would be counted here.
    let after_ready = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(after_ready, 2 * VOLUMES)
        .await?;

    let written = bed.status_writes::<EbsVolume>().await? - writes;
    ensure!(
        written <= WRITES_PER_CREATE * VOLUMES,
        "{written} status writes for {VOLUMES} created volumes (at most {WRITES_PER_CREATE} each)"
    );
    for i in 0..VOLUMES {
        let events = bed.events_of::<EbsVolume>(&name(i)).await?;
        ensure!(!events.is_empty(), "{}: no event at all", name(i));
        ensure!(
            events.iter().all(|(_, _, occurrences)| *occurrences == 1),
            "{}: an event repeated in a series: {events:?}",
            name(i)
        );
        ensure!(
            events
                .windows(2)
                .all(|w| (&w[0].0, &w[0].1) != (&w[1].0, &w[1].1)),
            "{}: two consecutive events say the same: {events:?}",
            name(i)
        );
    }
    Ok(())
}
