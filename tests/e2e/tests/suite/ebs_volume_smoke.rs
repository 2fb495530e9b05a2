//! The shortest path through an EbsVolume's life: created, Ready, deleted, with exactly
//! one volume made and none left.

use anyhow::{Result, ensure};
use e2e::Bed;
use ec2_reconciler::api::EbsVolume;
use serde_json::json;

#[tokio::test]
async fn a_gp3_volume_is_created_becomes_ready_and_is_deleted() -> Result<()> {
    let bed = Bed::start("smoke", &[]).await?;
    bed.create::<EbsVolume>(
        "data",
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 20, "iops": 4000, "tags": { "team": "storage" } }),
    )
    .await?;

    let ready = bed.wait_ready::<EbsVolume>("data").await?;
    let status = ready.status.clone().unwrap_or_default();
    ensure!(status.state.as_deref() == Some("available"), "{status:?}");
    ensure!(
        status.size_gib == Some(20) && status.iops == Some(4000),
        "{status:?}"
    );
    ensure!(
        bed.calls().await?.count("CreateVolume") == 1,
        "{:?}",
        bed.calls().await?
    );

    bed.delete::<EbsVolume>("data").await?;
    bed.wait_gone::<EbsVolume>("data").await?;
    ensure!(
        bed.calls().await?.count("DeleteVolume") == 1,
        "{:?}",
        bed.calls().await?
    );
    Ok(())
}
