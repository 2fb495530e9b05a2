//! AmiImage end to end, the parts beyond making and sharing one image: what the status says
//! about an image (boot attributes, last launch, what instance store means), a slow copy's
//! progress, keys that cannot be shared or used, the snapshots' volume permissions, and a
//! SIGKILL in the middle of each permission change.

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{
    CreateVolumePermissionModifications, ImageAttributeName, Placement, SnapshotAttributeName,
};
use e2e::bed::{ZONE, condition_message, is};
use e2e::{Bed, Fault};
use ec2_reconciler::api::AmiImage;
use ec2_reconciler::api::ami_image::AmiImageStatus;
use ec2_reconciler::api::conditions::{ConditionStatus, PROGRESSING, SYNCED};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::ami_image::{SHARED_WITH, image_id, images_of, shared_with};

fn status(image: &AmiImage) -> Result<&AmiImageStatus> {
    image.status.as_ref().context("no status")
}

/// The snapshot ids of the image's mappings, as its status lists them.
fn snapshot_ids(image: &AmiImage) -> Result<Vec<String>> {
    let ids: Vec<String> = status(image)?
        .block_device_mappings
        .iter()
        .filter_map(|m| m.snapshot_id.clone())
        .collect();
    ensure!(!ids.is_empty(), "no snapshot in the status's mappings");
    Ok(ids)
}

/// A public image of `amazon` in us-west-2, seeded in the emulator.
async fn public_source(bed: &Bed, name: &str) -> Result<String> {
    let seeded = bed
        .emu()
        .seed_image(json!({ "owner": "amazon", "name": name, "region": "us-west-2" }))
        .await?;
    Ok(seeded["image_id"]
        .as_str()
        .context("no image_id")?
        .to_owned())
}

/// The accounts that may create volumes from `snapshot`.
async fn volume_accounts(bed: &Bed, snapshot: &str) -> Result<Vec<String>> {
    let out = bed
        .ec2()
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await?;
    Ok(out
        .create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn a_registered_image_reports_its_boot_attributes_and_when_it_was_last_launched() -> Result<()>
{
    let bed = Bed::start("ami-attrs", &["--resync-seconds", "3"]).await?;
    let volume = bed.outside_volume(8, &[]).await?;
    let snapshot = bed.completed_snapshot(&volume).await?;
    bed.create::<AmiImage>(
        "uefi",
        json!({
            "name": "uefi-1",
            "source": { "snapshots": {
                "architecture": "x86_64",
                "bootMode": "uefi",
                "imdsSupport": "v2.0",
                "tpmSupport": "v2.0",
                "uefiData": "QUJDRA==",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMappings": [
                    { "deviceName": "/dev/xvda", "snapshotId": snapshot },
                    { "deviceName": "/dev/xvdb", "volumeType": "gp3", "sizeGiB": 20, "iops": 4000 },
                ],
            } },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("uefi").await?;
    let s = status(&ready)?;
    ensure!(
        s.boot_mode.as_deref() == Some("uefi")
            && s.imds_support.as_deref() == Some("v2.0")
            && s.tpm_support.as_deref() == Some("v2.0")
            && s.root_device_type.as_deref() == Some("ebs")
            && s.instances_stoppable == Some(true)
            && s.last_launched_time.is_none(),
        "{s:?}"
    );
    let mappings: Vec<(&str, Option<i64>)> = s
        .block_device_mappings
        .iter()
        .map(|m| (m.device_name.as_str(), m.size_gib))
        .collect();
    ensure!(
        mappings == vec![("/dev/xvda", Some(8)), ("/dev/xvdb", Some(20))],
        "{mappings:?}"
    );
    let id = image_id(&ready)?;
    let uefi = bed
        .ec2()
        .describe_image_attribute()
        .image_id(&id)
        .attribute(ImageAttributeName::UefiData)
        .send()
        .await?;
    ensure!(
        uefi.uefi_data().and_then(|d| d.value()) == Some("QUJDRA=="),
        "{uefi:?}"
    );

    // An instance launched from it: the next observation reports when.
    bed.ec2()
        .run_instances()
        .image_id(&id)
        .min_count(1)
        .max_count(1)
        .placement(Placement::builder().availability_zone(ZONE).build())
        .send()
        .await?;
    bed.wait_for::<AmiImage>("uefi", "status.lastLaunchedTime", |i| {
        i.status
            .as_ref()
            .is_some_and(|s| s.last_launched_time.is_some())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_instance_store_image_says_its_instances_cannot_stop() -> Result<()> {
    let bed = Bed::start("ami-store", &[]).await?;
    bed.create::<AmiImage>(
        "store",
        json!({
            "name": "store-1",
            "source": { "manifest": {
                "imageLocation": "images-bucket/store/image.manifest.xml",
                "architecture": "x86_64",
                "virtualizationType": "hvm",
            } },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("store").await?;
    let s = status(&ready)?;
    ensure!(
        s.root_device_type.as_deref() == Some("instance-store")
            && s.instances_stoppable == Some(false)
            && s.block_device_mappings.is_empty(),
        "{s:?}"
    );
    let note = s.root_device_note.as_deref().unwrap_or_default();
    ensure!(
        note.contains("cannot be stopped") && note.contains("lost"),
        "{note}"
    );
    // `kubectl get amiimages` shows it: the served CRD's printer columns.
    let crd = Api::<CustomResourceDefinition>::all(bed.client()?)
        .get("amiimages.ec2.reconciler.dev")
        .await?;
    let columns: Vec<(String, String)> = crd
        .spec
        .versions
        .iter()
        .flat_map(|v| v.additional_printer_columns.iter().flatten())
        .map(|c| (c.name.clone(), c.json_path.clone()))
        .collect();
    for wanted in [
        ("Root", ".status.rootDeviceType"),
        ("Stoppable", ".status.instancesStoppable"),
        ("Virtualization", ".status.virtualizationType"),
    ] {
        ensure!(
            columns.contains(&(wanted.0.to_owned(), wanted.1.to_owned())),
            "{columns:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_slow_time_based_copy_shows_its_progress_until_it_is_available() -> Result<()> {
    let bed = Bed::builder("ami-progress")
        .transitions(json!({ "copy-image": 24 }))
        .start()
        .await?;
    let source = public_source(&bed, "base-linux-slow").await?;
    bed.create::<AmiImage>(
        "slow",
        json!({
            "name": "slow-copy",
            "source": { "copy": {
                "sourceImageId": source,
                "sourceRegion": "us-west-2",
                "completionDurationMinutes": 15,
            } },
        }),
    )
    .await?;
    let midway = bed
        .wait_for::<AmiImage>("slow", "a progress between 0% and 100%", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.progress_percent)
                .is_some_and(|p| p > 0 && p < 100)
                && is(i, PROGRESSING, ConditionStatus::True)
        })
        .await?;
    ensure!(
        condition_message(&midway, PROGRESSING).contains("% done"),
        "{}",
        condition_message(&midway, PROGRESSING)
    );
    let ready = bed.wait_ready::<AmiImage>("slow").await?;
    ensure!(status(&ready)?.progress_percent.is_none());
    // Each snapshot of the copy was asked for within 15 minutes.
    for snapshot in snapshot_ids(&ready)? {
        let out = bed
            .ec2()
            .describe_snapshots()
            .snapshot_ids(&snapshot)
            .send()
            .await?;
        let minutes = out
            .snapshots()
            .first()
            .and_then(|s| s.completion_duration_minutes());
        ensure!(minutes == Some(15), "{snapshot}: {out:?}");
    }
    ensure!(bed.calls().await?.count("CopyImage") == 1);
    Ok(())
}

#[tokio::test]
async fn a_failed_copy_is_reported_with_awss_reason_and_not_retried() -> Result<()> {
    let bed = Bed::start("ami-copyfail", &["--resync-seconds", "2"]).await?;
    let source = public_source(&bed, "base-linux-failing").await?;
    let reason = "Server.InternalError: the snapshot copy stopped";
    bed.emu()
        .fail_next_image_copy("Server.InternalError", reason)
        .await?;
    bed.create::<AmiImage>(
        "failing",
        json!({
            "name": "failing-copy",
            "source": { "copy": { "sourceImageId": source, "sourceRegion": "us-west-2" } },
        }),
    )
    .await?;
    let failed = bed
        .wait_condition::<AmiImage>("failing", SYNCED, ConditionStatus::False, "ImageFailed")
        .await?;
    let message = condition_message(&failed, SYNCED);
    ensure!(message.contains(reason), "{message}");
    ensure!(status(&failed)?.state.as_deref() == Some("failed"));
    // Reported, not retried: later passes copy nothing again by themselves.
    let passes = bed.reconciles::<AmiImage>().await?;
    bed.wait_reconciles::<AmiImage>(passes, 2).await?;
    ensure!(bed.calls().await?.count("CopyImage") == 1);
    Ok(())
}

#[tokio::test]
async fn a_copy_under_the_aws_managed_key_is_not_made_to_be_shared_and_a_customer_key_is()
-> Result<()> {
    let bed = Bed::start("ami-awskey", &["--share-allow-accounts", SHARED_WITH]).await?;
    let source = public_source(&bed, "base-linux-keys").await?;
    let copy = |name: &str, key: Option<&str>| {
        let mut copy =
            json!({ "sourceImageId": source, "sourceRegion": "us-west-2", "encrypted": true });
        if let Some(key) = key {
            copy["kmsKeyId"] = json!(key);
        }
        json!({
            "name": name,
            "source": { "copy": copy },
            "launchPermissions": { "accountIds": [SHARED_WITH] },
        })
    };

    // No key: the account's EBS default, aws/ebs, which no other account may use.
    bed.create::<AmiImage>("default-key", copy("default-key-copy", None))
        .await?;
    let refused = bed
        .wait_condition::<AmiImage>(
            "default-key",
            SYNCED,
            ConditionStatus::False,
            "AwsManagedKeyNotShareable",
        )
        .await?;
    ensure!(
        condition_message(&refused, SYNCED).contains("customer managed kmsKeyId"),
        "{}",
        condition_message(&refused, SYNCED)
    );

    // A key that does not exist yet: a clear condition, nothing copied.
    bed.create::<AmiImage>(
        "missing-key",
        copy("missing-key-copy", Some("alias/images-not-yet")),
    )
    .await?;
    bed.wait_condition::<AmiImage>(
        "missing-key",
        SYNCED,
        ConditionStatus::False,
        "KmsKeyNotFound",
    )
    .await?;
    ensure!(bed.calls().await?.count("CopyImage") == 0);

    // The alias created outside: the copy goes ahead with it and is shared.
    let key = bed.kms().create_key().send().await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("no key id")?;
    bed.kms()
        .create_alias()
        .alias_name("alias/images-not-yet")
        .target_key_id(&key_id)
        .send()
        .await?;
    let ready = bed.wait_ready::<AmiImage>("missing-key").await?;
    let id = image_id(&ready)?;
    bed.wait_until("the launch permission", || async {
        Ok((shared_with(&bed, &id).await? == vec![SHARED_WITH.to_owned()]).then_some(()))
    })
    .await?;
    let calls = bed.calls().await?;
    ensure!(calls.count("CopyImage") == 1, "{calls:?}");
    ensure!(
        is(
            &bed.get::<AmiImage>("default-key").await?,
            SYNCED,
            ConditionStatus::False
        ),
        "the default-key copy must stay refused"
    );
    Ok(())
}

#[tokio::test]
async fn snapshots_under_the_aws_managed_key_are_not_registered_into_a_shared_image() -> Result<()>
{
    let bed = Bed::start("ami-awssnap", &["--share-allow-accounts", SHARED_WITH]).await?;
    // Encrypted without a key: the account's default, aws/ebs.
    let volume = bed
        .outside_volume_from(bed.volume_request(8, &[]).encrypted(true))
        .await?;
    let snapshot = bed.completed_snapshot(&volume).await?;
    bed.create::<AmiImage>(
        "managed",
        json!({
            "name": "managed-1",
            "source": { "snapshots": {
                "architecture": "x86_64",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMappings": [{ "deviceName": "/dev/xvda", "snapshotId": snapshot }],
            } },
            "launchPermissions": { "accountIds": [SHARED_WITH] },
        }),
    )
    .await?;
    bed.wait_condition::<AmiImage>(
        "managed",
        SYNCED,
        ConditionStatus::False,
        "AwsManagedKeyNotShareable",
    )
    .await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("RegisterImage") == 0 && calls.count("ModifyImageAttribute") == 0,
        "{calls:?}"
    );
    Ok(())
}

#[tokio::test]
async fn snapshot_volume_permissions_follow_the_accounts_and_go_when_turned_off() -> Result<()> {
    let bed = Bed::start("ami-snapperm", &["--share-allow-accounts", SHARED_WITH]).await?;
    let instance = bed.run_instance(ZONE).await?;
    bed.create::<AmiImage>(
        "shared",
        json!({
            "name": "shared-snapshots",
            "source": { "instance": { "instanceId": instance } },
            "launchPermissions": {
                "accountIds": [SHARED_WITH],
                "snapshotCreateVolumePermissions": true,
            },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("shared").await?;
    let snapshots = snapshot_ids(&ready)?;
    for snapshot in &snapshots {
        bed.wait_until("the volume permission", || async {
            Ok(
                (volume_accounts(&bed, snapshot).await? == vec![SHARED_WITH.to_owned()])
                    .then_some(()),
            )
        })
        .await?;
    }
    // An account nobody asked for, added outside, goes with the next read (the spec edit).
    bed.ec2()
        .modify_snapshot_attribute()
        .snapshot_id(&snapshots[0])
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .create_volume_permission(
            CreateVolumePermissionModifications::builder()
                .add(
                    aws_sdk_ec2::types::CreateVolumePermission::builder()
                        .user_id("444455556666")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    bed.edit::<AmiImage>(
        "shared",
        json!({ "launchPermissions": { "snapshotCreateVolumePermissions": false } }),
    )
    .await?;
    for snapshot in &snapshots {
        bed.wait_until("the volume permissions to go", || async {
            Ok(volume_accounts(&bed, snapshot)
                .await?
                .is_empty()
                .then_some(()))
        })
        .await?;
    }
    let after = bed
        .wait_for::<AmiImage>("shared", "no recorded volume permissions", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.snapshot_volume_permissions.is_empty())
        })
        .await?;
    // The image itself stays shared.
    ensure!(shared_with(&bed, &image_id(&after)?).await? == vec![SHARED_WITH.to_owned()]);
    Ok(())
}

/// The one image tagged with this object's UID, and its snapshots, as AWS lists them.
async fn image_in_aws(bed: &Bed, uid: &str) -> Result<(String, Vec<String>)> {
    let ids = images_of(bed, uid, None).await?;
    ensure!(ids.len() == 1, "images of {uid}: {ids:?}");
    let out = bed
        .ec2()
        .describe_images()
        .image_ids(&ids[0])
        .send()
        .await?;
    let snapshots = out
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    Ok((ids[0].clone(), snapshots))
}

/// The permission calls a SIGKILL lands in.
const PERMISSION_CALLS: [&str; 2] = ["ModifySnapshotAttribute", "ModifyImageAttribute"];

#[tokio::test]
async fn sigkill_in_each_permission_change_leaves_one_image_shared_exactly_as_asked() -> Result<()>
{
    let mut bed = Bed::start("ami-kill", &["--share-allow-accounts", SHARED_WITH]).await?;
    let instance = bed.run_instance(ZONE).await?;
    let wanted = vec![SHARED_WITH.to_owned()];
    // Each permission call lingers in the emulator, long enough to kill the controller
    // while it waits for the answer; the emulator applies it all the same.
    for action in PERMISSION_CALLS {
        bed.emu().inject(Fault::slow(action, 3_000)).await?;
    }
    bed.create::<AmiImage>(
        "killed",
        json!({
            "name": "killed-1",
            "source": { "instance": { "instanceId": instance } },
            "launchPermissions": {
                "accountIds": [SHARED_WITH],
                "snapshotCreateVolumePermissions": true,
            },
        }),
    )
    .await?;
    for _ in PERMISSION_CALLS {
        let before = bed.calls().await?;
        let in_flight = bed
            .wait_until("a permission change in flight", || async {
                let now = bed.calls().await?;
                Ok(PERMISSION_CALLS
                    .into_iter()
                    .find(|a| now.count(a) > before.count(a)))
            })
            .await?;
        bed.kill_controller()?;
        let uid = bed
            .get::<AmiImage>("killed")
            .await?
            .uid()
            .context("no uid")?;
        let (id, snapshots) = image_in_aws(&bed, &uid).await?;
        bed.wait_until(&format!("{in_flight} to land"), || async {
            let landed = match in_flight {
                "ModifyImageAttribute" => shared_with(&bed, &id).await? == wanted,
                _ => {
                    let mut any = false;
                    for snapshot in &snapshots {
                        any |= volume_accounts(&bed, snapshot).await? == wanted;
                    }
                    any
                }
            };
            Ok(landed.then_some(()))
        })
        .await?;
        bed.restart_controller()?;
    }

    let ready = bed.wait_ready::<AmiImage>("killed").await?;
    let id = image_id(&ready)?;
    let uid = ready.uid().context("no uid")?;
    ensure!(images_of(&bed, &uid, None).await? == vec![id.clone()]);
    let snapshots = snapshot_ids(&ready)?;
    bed.wait_until("every grant", || async {
        let mut all = shared_with(&bed, &id).await? == wanted;
        for snapshot in &snapshots {
            all &= volume_accounts(&bed, snapshot).await? == wanted;
        }
        Ok(all.then_some(()))
    })
    .await?;
    let calls = bed.calls().await?;
    ensure!(calls.count("CreateImage") == 1, "{calls:?}");
    // Beyond the calls the kills interrupted, at most each is sent once more (both are
    // idempotent: a grant that exists is granted again without change).
    let snapshot_count = u64::try_from(snapshots.len())?;
    ensure!(
        calls.count("ModifyImageAttribute") <= 2
            && calls.count("ModifySnapshotAttribute") <= 2 * snapshot_count,
        "{calls:?}"
    );
    Ok(())
}
