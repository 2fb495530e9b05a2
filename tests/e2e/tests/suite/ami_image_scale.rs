//! 300 AmiImages, each shared with one of three accounts: what one resync costs in AWS
//! reads once they are Ready (a per-object poller would make 300 DescribeImages and 300
//! DescribeImageAttribute calls).

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, LaunchPermission,
    LaunchPermissionModifications,
};
use e2e::Bed;
use e2e::bed::is_ready;
use ec2_reconciler::api::AmiImage;
use serde_json::json;

const IMAGES: usize = 300;
const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "777788889999"];
const RESYNC_SECONDS: u64 = 20;

/// Registers one image of `snapshot` outside the controller, shared with `account`.
async fn outside_image(bed: &Bed, n: usize, snapshot: &str, account: &str) -> Result<String> {
    let id = bed
        .ec2()
        .register_image()
        .name(format!("fleet-{n:03}"))
        .architecture(ArchitectureValues::X8664)
        .virtualization_type("hvm")
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(EbsBlockDevice::builder().snapshot_id(snapshot).build())
                .build(),
        )
        .send()
        .await?
        .image_id()
        .context("no image id")?
        .to_owned();
    bed.ec2()
        .modify_image_attribute()
        .image_id(&id)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(account).build())
                .build(),
        )
        .send()
        .await?;
    Ok(id)
}

#[tokio::test]
async fn one_resync_of_300_shared_images_reads_a_sweep_and_one_call_per_account() -> Result<()> {
    let allowed = ACCOUNTS.join(",");
    let bed = Bed::start(
        "ami-300",
        &[
            "--resync-seconds",
            &RESYNC_SECONDS.to_string(),
            "--share-allow-accounts",
            &allowed,
            "--aws-rate-fraction",
            "1",
        ],
    )
    .await?;
    let volume = bed.outside_volume(8, &[]).await?;
    let snapshot = bed.completed_snapshot(&volume).await?;
    for n in 0..IMAGES {
        let account = ACCOUNTS[n % ACCOUNTS.len()];
        let id = outside_image(&bed, n, &snapshot, account).await?;
        // Adopted and managed: tagged as ours, shared exactly as before.
        bed.create::<AmiImage>(
            &format!("fleet-{n:03}"),
            json!({ "imageId": id, "launchPermissions": { "accountIds": [account] } }),
        )
        .await?;
    }
    bed.wait_until("every image to be Ready", || async {
        let ready = bed
            .api::<AmiImage>()?
            .list(&Default::default())
            .await?
            .items
            .iter()
            .filter(|i| is_ready(*i))
            .count();
        Ok((ready == IMAGES).then_some(()))
    })
    .await?;
    // One whole resync to settle (the passes after the last change), then one measured.
    let settled = bed.reconciles::<AmiImage>().await?;
    bed.wait_reconciles::<AmiImage>(settled, IMAGES as u64)
        .await?;

    let before = bed.calls().await?;
    let writes_before = bed.status_writes::<AmiImage>().await?;
    let start = bed.reconciles::<AmiImage>().await?;
    bed.wait_reconciles::<AmiImage>(start, IMAGES as u64)
        .await?;
    let after = bed.calls().await?;
    let writes = bed.status_writes::<AmiImage>().await? - writes_before;

    let delta = |action: &str| after.count(action) - before.count(action);
    let describe_images = delta("DescribeImages");
    // One sweep (one page of up to 1,000 images) and one ExecutableUsers call per account;
    // the measured stretch may straddle the moment the cache ages out, so twice that at most.
    let per_resync = 1 + ACCOUNTS.len() as u64;
    eprintln!(
        "one resync of {IMAGES} images: {describe_images} DescribeImages, {writes} status writes"
    );
    ensure!(
        (1..=2 * per_resync).contains(&describe_images),
        "{describe_images} DescribeImages for {IMAGES} images in one resync: {before:?} -> {after:?}"
    );
    for action in [
        "DescribeImageAttribute",
        "DescribeSnapshots",
        "DescribeSnapshotAttribute",
        "DescribeInstances",
    ] {
        ensure!(delta(action) == 0, "{action}: {before:?} -> {after:?}");
    }
    ensure!(
        before.mutating() == after.mutating(),
        "mutating calls in steady state: {before:?} -> {after:?}"
    );
    ensure!(writes == 0, "{writes} status writes in steady state");
    Ok(())
}
