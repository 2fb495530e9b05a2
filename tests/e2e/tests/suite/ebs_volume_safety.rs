//! EbsVolume safety: deletion (issue 3, behaviour 7), bad input the schema cannot catch (8),
//! a controller killed between an AWS call and the status write after it (9), and batched
//! observation at 1,200 objects.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::bed::{ZONE, condition_message, has_condition, is_ready, tags_of, volume_id};
use e2e::{Bed, Fault, retry};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, PROGRESSING, SYNCED};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;

const CLUSTER_TAG: &str = "ec2.reconciler.dev/cluster";
const OWNER_TAG: &str = "ec2.reconciler.dev/owner";
const UID_TAG: &str = "ec2.reconciler.dev/uid";
const KIND_TAG: &str = "ec2.reconciler.dev/kind";
const STEP_TAG: &str = "ec2.reconciler.dev/step";
const RELEASED_TAG: &str = "ec2.reconciler.dev/released";

/// Counts `action` now, waits `window`, and checks it was not called again: a rejection
/// (or a problem the planner found) is re-checked at the next resync (600 s by default),
/// so the backoff allows exactly no attempt within a window shorter than that.
async fn no_retry_within(bed: &Bed, action: &str, window: Duration) -> Result<u64> {
    let before = bed.calls().await?.count(action);
    tokio::time::sleep(window).await;
    let after = bed.calls().await?.count(action);
    ensure!(
        after == before,
        "{action} went from {before} to {after} in {window:?}: retried before the resync\n{}",
        bed.dump().await
    );
    Ok(after)
}

// ---------------------------------------------------------------------------------------
// 7. Delete
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_an_attached_volume_detaches_it_waits_for_the_final_snapshot_then_deletes_it()
-> Result<()> {
    let bed = Bed::start("del-snap", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0, "volume-attach": 0, "volume-detach": 0.5 }))
        .await?;
    let instance = bed.run_instances(ZONE, 1).await?.remove(0);
    bed.create::<EbsVolume>(
        "data",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
            "finalSnapshot": true, "forceDetach": true, "tags": { "team": "storage" },
        }),
    )
    .await?;
    let ready = bed
        .wait_for::<EbsVolume>("data", "the volume to be Ready and in use", |v| {
            is_ready(v) && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("in-use")
        })
        .await?;
    let uid = ready.uid().context("no uid")?;
    let volume_id = volume_id(&ready)?;

    // Hold the snapshot pending: the volume must not be deleted before it completes.
    bed.emu()
        .set_transitions(json!({ "snapshot": 100000 }))
        .await?;
    bed.emu().clear_calls().await?;
    bed.delete::<EbsVolume>("data").await?;
    let waiting = bed
        .wait_for::<EbsVolume>(
            "data",
            "the final snapshot to be taken and waited for",
            |v| {
                v.status
                    .as_ref()
                    .is_some_and(|s| s.final_snapshot_id.is_some())
            },
        )
        .await?;
    let snapshot_id = waiting
        .status
        .as_ref()
        .and_then(|s| s.final_snapshot_id.clone())
        .context("no finalSnapshotId")?;
    // Several passes while the snapshot is pending.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.count("DetachVolume") == 1
            && calls.count("CreateSnapshot") == 1
            && calls.count("DeleteVolume") == 0,
        "{calls:?}"
    );
    ensure!(
        bed.api::<EbsVolume>()?.get_opt("data").await?.is_some(),
        "the object went away while its final snapshot was pending"
    );
    let snapshots = bed.snapshots_of("data").await?;
    ensure!(snapshots.len() == 1, "{snapshots:?}");
    let snapshot = &snapshots[0];
    ensure!(
        snapshot.snapshot_id() == Some(snapshot_id.as_str())
            && snapshot.volume_id() == Some(volume_id.as_str()),
        "{snapshot:?}"
    );
    let tags = tags_of(snapshot.tags());
    ensure!(
        tags.get(UID_TAG) == Some(&uid)
            && tags.get(OWNER_TAG) == Some(&format!("{}/data", bed.namespace()?))
            && tags.get(KIND_TAG).map(String::as_str) == Some("EbsVolume")
            && tags.get(CLUSTER_TAG).map(String::as_str) == Some("default")
            && tags.get(STEP_TAG).map(String::as_str) == Some("final-snapshot"),
        "{tags:?}"
    );

    bed.emu().set_transitions(json!({ "snapshot": 0 })).await?;
    bed.wait_gone::<EbsVolume>("data").await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.count("DetachVolume") == 1
            && calls.count("CreateSnapshot") == 1
            && calls.count("DeleteVolume") == 1,
        "{calls:?}"
    );
    let left = bed.volumes_of("data").await?;
    ensure!(
        left.iter()
            .all(|v| v.state().map(|s| s.as_str()) == Some("deleted")),
        "{left:?}"
    );
    let snapshots = bed.snapshots_of("data").await?;
    ensure!(
        snapshots.len() == 1 && snapshots[0].state().map(|s| s.as_str()) == Some("completed"),
        "{snapshots:?}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_retained_volume_leaves_it_in_aws_and_marks_our_tags_released() -> Result<()> {
    let bed = Bed::start("del-retain", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;
    bed.create::<EbsVolume>(
        "kept",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "deletionPolicy": "Retain" }),
    )
    .await?;
    let ready = bed
        .wait_for::<EbsVolume>("kept", "the volume to be Ready", is_ready)
        .await?;
    let volume_id = volume_id(&ready)?;

    bed.emu().clear_calls().await?;
    bed.delete::<EbsVolume>("kept").await?;
    bed.wait_gone::<EbsVolume>("kept").await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.count("DeleteVolume") == 0
            && calls.count("DetachVolume") == 0
            && calls.count("CreateSnapshot") == 0,
        "{calls:?}"
    );
    let volumes = bed.volumes_of("kept").await?;
    ensure!(volumes.len() == 1, "{volumes:?}");
    let volume = &volumes[0];
    ensure!(
        volume.volume_id() == Some(volume_id.as_str())
            && volume.state().map(|s| s.as_str()) == Some("available"),
        "{volume:?}"
    );
    let tags = tags_of(volume.tags());
    ensure!(
        tags.get(RELEASED_TAG).map(String::as_str) == Some("true")
            && !tags.contains_key(UID_TAG)
            && tags.get(OWNER_TAG) == Some(&format!("{}/kept", bed.namespace()?))
            && tags.get(CLUSTER_TAG).map(String::as_str) == Some("default"),
        "{tags:?}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_an_object_whose_create_aws_rejected_finishes_at_once_without_mutating_calls()
-> Result<()> {
    let bed = Bed::start("del-never", &[]).await?;
    bed.create::<EbsVolume>(
        "nowhere",
        json!({ "availabilityZone": "us-east-1z", "sizeGiB": 8 }),
    )
    .await?;
    let rejected = bed
        .wait_for::<EbsVolume>("nowhere", "Synced=False AvailabilityZoneNotFound", |v| {
            has_condition(
                v,
                SYNCED,
                ConditionStatus::False,
                "AvailabilityZoneNotFound",
            )
        })
        .await?;
    ensure!(
        condition_message(&rejected, SYNCED).contains("us-east-1z"),
        "{:?}",
        rejected.status
    );
    ensure!(bed.emu().calls().await?.count("CreateVolume") == 1);

    bed.emu().clear_calls().await?;
    bed.delete::<EbsVolume>("nowhere").await?;
    bed.wait_gone::<EbsVolume>("nowhere").await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.mutating().is_empty(), "{calls:?}");
    ensure!(bed.volumes_of("nowhere").await?.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 8. Bad input the schema cannot catch
// ---------------------------------------------------------------------------------------

/// How long a rejected object is watched for retries.
const STORM_WINDOW: Duration = Duration::from_secs(10);

/// A rejected object goes away on delete without another AWS change.
async fn deleting_it_finishes_without_mutating_calls(bed: &Bed, name: &str) -> Result<()> {
    bed.emu().clear_calls().await?;
    bed.delete::<EbsVolume>(name).await?;
    bed.wait_gone::<EbsVolume>(name).await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.mutating().is_empty(), "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_kms_key_that_does_not_exist_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-kms", &[]).await?;
    let key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    bed.create::<EbsVolume>(
        "secret",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("secret", "Synced=False KmsKeyNotFound", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "KmsKeyNotFound")
        })
        .await?;
    ensure!(
        condition_message(&v, SYNCED).contains("00000000-0000-0000-0000-000000000000"),
        "{:?}",
        v.status
    );
    let describes = no_retry_within(&bed, "kms:DescribeKey", STORM_WINDOW).await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        describes >= 1 && calls.mutating().is_empty(),
        "{calls:?}\n{}",
        bed.controller_log()
    );
    ensure!(bed.volumes_of("secret").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "secret").await
}

#[tokio::test]
async fn a_disabled_kms_key_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-kms-off", &[]).await?;
    let kms = bed.kms();
    let key = kms
        .create_key()
        .description("disabled for a test")
        .send()
        .await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("CreateKey returned no key")?;
    kms.disable_key().key_id(&key_id).send().await?;
    bed.emu().clear_calls().await?;

    bed.create::<EbsVolume>(
        "secret",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key_id }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("secret", "Synced=False KmsKeyDisabled", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "KmsKeyDisabled")
        })
        .await?;
    ensure!(
        condition_message(&v, SYNCED).contains(&key_id),
        "{:?}",
        v.status
    );
    no_retry_within(&bed, "kms:DescribeKey", STORM_WINDOW).await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.mutating().is_empty(), "{calls:?}");
    ensure!(bed.volumes_of("secret").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "secret").await
}

#[tokio::test]
async fn a_snapshot_that_does_not_exist_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-snap", &[]).await?;
    bed.create::<EbsVolume>(
        "restored",
        json!({ "availabilityZone": ZONE, "snapshotId": "snap-0123456789abcdef0" }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("restored", "Synced=False SnapshotNotFound", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "SnapshotNotFound")
        })
        .await?;
    ensure!(
        condition_message(&v, SYNCED).contains("snap-0123456789abcdef0"),
        "{:?}",
        v.status
    );
    let creates = no_retry_within(&bed, "CreateVolume", STORM_WINDOW).await?;
    ensure!(creates == 1, "{creates} CreateVolume calls");
    ensure!(bed.volumes_of("restored").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "restored").await
}

#[tokio::test]
async fn a_snapshot_in_another_region_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-snap-region", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0, "snapshot": 0 }))
        .await?;
    // A real snapshot, but in us-west-2.
    let west = bed.ec2_in("us-west-2").await;
    let vol = west
        .create_volume()
        .availability_zone("us-west-2a")
        .size(4)
        .send()
        .await?;
    let snap = west
        .create_snapshot()
        .volume_id(vol.volume_id().context("no volume id")?)
        .send()
        .await?;
    let snapshot_id = snap.snapshot_id().context("no snapshot id")?.to_owned();
    bed.emu().clear_calls().await?;

    bed.create::<EbsVolume>(
        "restored",
        json!({ "availabilityZone": ZONE, "snapshotId": snapshot_id }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("restored", "Synced=False SnapshotNotFound", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "SnapshotNotFound")
        })
        .await?;
    ensure!(
        condition_message(&v, SYNCED).contains(&snapshot_id),
        "{:?}",
        v.status
    );
    let creates = no_retry_within(&bed, "CreateVolume", STORM_WINDOW).await?;
    ensure!(creates == 1, "{creates} CreateVolume calls");
    ensure!(bed.volumes_of("restored").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "restored").await
}

#[tokio::test]
async fn an_attachment_to_an_instance_that_does_not_exist_ends_in_synced_false_without_a_retry_storm()
-> Result<()> {
    let bed = Bed::start("bad-instance", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;
    bed.create::<EbsVolume>(
        "orphan",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 8,
            "attachments": [{ "instanceId": "i-0123456789abcdef0", "device": "/dev/sdf" }],
        }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>(
            "orphan",
            "Synced=False InstanceNotFound, Progressing=False Blocked",
            |v| {
                has_condition(v, SYNCED, ConditionStatus::False, "InstanceNotFound")
                    && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("available")
                    && has_condition(v, PROGRESSING, ConditionStatus::False, "Blocked")
            },
        )
        .await?;
    ensure!(
        condition_message(&v, SYNCED).contains("i-0123456789abcdef0"),
        "{:?}",
        v.status
    );
    let describes = no_retry_within(&bed, "DescribeInstances", STORM_WINDOW).await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.count("AttachVolume") == 0 && calls.count("CreateVolume") == 1 && describes >= 1,
        "{calls:?}"
    );
    ensure!(bed.volumes_of("orphan").await?.len() == 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 9. SIGKILL between an AWS call and the status write after it
// ---------------------------------------------------------------------------------------

/// How long a slowed call stays in flight: the controller is killed inside it.
const IN_FLIGHT_MS: u64 = 3000;

/// Opens the window on `action` with `fault`, waits until the emulator has the call, then
/// SIGKILLs the controller and starts a new one.
async fn crash_inside(bed: &mut Bed, fault: Fault, action: &str) -> Result<()> {
    let before = bed.emu().calls().await?.count(action);
    bed.emu().inject(fault).await?;
    bed.wait_for_calls(action, before + 1).await?;
    bed.restart_controller()
}

fn slow(action: &str) -> Fault {
    Fault::slow(action, IN_FLIGHT_MS)
}

async fn killed_during_create_volume_converges_to_one_volume(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-create", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0.5 }))
        .await?;
    // Armed before the object exists, so the very first CreateVolume gets it.
    bed.emu().inject(fault).await?;
    bed.create::<EbsVolume>("one", json!({ "availabilityZone": ZONE, "sizeGiB": 12 }))
        .await?;
    bed.wait_for_calls("CreateVolume", 1).await?;
    bed.restart_controller()?;

    let ready = bed
        .wait_for::<EbsVolume>("one", "the volume to be Ready", is_ready)
        .await?;
    let volumes = bed.volumes_of("one").await?;
    ensure!(volumes.len() == 1, "{} volumes: {volumes:?}", volumes.len());
    let status = ready.status.clone().unwrap_or_default();
    ensure!(
        status.volume_id.as_deref() == volumes[0].volume_id()
            && status.size_gib == Some(12)
            && status.intents.is_empty(),
        "{status:?}"
    );
    let tags = tags_of(volumes[0].tags());
    ensure!(tags.get(UID_TAG) == ready.uid().as_ref(), "{tags:?}");
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_create_volume_is_in_flight_converges_to_exactly_one_volume()
-> Result<()> {
    killed_during_create_volume_converges_to_one_volume(slow("CreateVolume")).await
}

#[tokio::test]
async fn a_controller_killed_after_create_volume_lost_its_response_converges_to_exactly_one_volume()
-> Result<()> {
    killed_during_create_volume_converges_to_one_volume(Fault::drop_after("CreateVolume")).await
}

async fn killed_during_modify_volume_applies_one_modification(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-modify", &[]).await?;
    bed.emu()
        .set_transitions(
            json!({ "volume-create": 0, "volume-modify": 0.5, "volume-optimize": 0.5 }),
        )
        .await?;
    bed.create::<EbsVolume>("grow", json!({ "availabilityZone": ZONE, "sizeGiB": 10 }))
        .await?;
    let ready = bed
        .wait_for::<EbsVolume>("grow", "the volume to be Ready", is_ready)
        .await?;
    let volume_id = volume_id(&ready)?;

    bed.edit::<EbsVolume>("grow", json!({ "sizeGiB": 20 }))
        .await?;
    crash_inside(&mut bed, fault, "ModifyVolume").await?;

    let done = bed
        .wait_for::<EbsVolume>("grow", "the volume to be Ready at 20 GiB", |v| {
            is_ready(v)
                && v.status.as_ref().is_some_and(|s| {
                    s.size_gib == Some(20)
                        && s.modification.as_ref().map(|m| m.state.as_str()) == Some("completed")
                })
        })
        .await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let modifications = bed.modifications(&volume_id).await?;
    ensure!(
        modifications.len() == 1 && modifications[0].target_size() == Some(20),
        "{modifications:?}"
    );
    let status = done.status.unwrap_or_default();
    ensure!(
        status.recent_modifications.len() == 1,
        "the 24-hour history counts {} modifications: {:?}",
        status.recent_modifications.len(),
        status.recent_modifications
    );
    ensure!(bed.volumes_of("grow").await?.len() == 1);
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_modify_volume_is_in_flight_applies_exactly_one_modification()
-> Result<()> {
    killed_during_modify_volume_applies_one_modification(slow("ModifyVolume")).await
}

#[tokio::test]
async fn a_controller_killed_after_modify_volume_lost_its_response_applies_exactly_one_modification()
-> Result<()> {
    killed_during_modify_volume_applies_one_modification(Fault::drop_after("ModifyVolume")).await
}

async fn killed_during_the_final_snapshot_takes_one_snapshot(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-snap", &[]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0, "snapshot": 1, "volume-delete": 0.5 }))
        .await?;
    bed.create::<EbsVolume>(
        "last",
        json!({ "availabilityZone": ZONE, "sizeGiB": 6, "finalSnapshot": true }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("last", "the volume to be Ready", is_ready)
        .await?;

    bed.delete::<EbsVolume>("last").await?;
    crash_inside(&mut bed, fault, "CreateSnapshot").await?;
    bed.wait_gone::<EbsVolume>("last").await?;

    let snapshots = bed.snapshots_of("last").await?;
    let requests = bed.emu().calls().await?.count("CreateSnapshot");
    ensure!(requests == 1, "{requests} CreateSnapshot requests");
    ensure!(
        snapshots.len() == 1,
        "{} snapshots: {snapshots:?}",
        snapshots.len()
    );
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("DeleteVolume") == 1, "{calls:?}");
    let left = bed.volumes_of("last").await?;
    ensure!(
        left.iter()
            .all(|v| v.state().map(|s| s.as_str()) == Some("deleted")),
        "{left:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_the_final_snapshot_is_being_requested_takes_exactly_one_snapshot()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(slow("CreateSnapshot")).await
}

#[tokio::test]
async fn a_controller_killed_after_the_final_snapshot_lost_its_response_takes_exactly_one_snapshot()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(Fault::drop_after("CreateSnapshot")).await
}

/// The restarted controller looks for the snapshot by its tags while AWS has not made it
/// visible yet (the first request is still in flight): it must wait for it, not take a
/// second one.
#[tokio::test]
async fn a_restarted_controller_waits_for_a_final_snapshot_it_cannot_see_yet_instead_of_taking_another()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(Fault::slow("CreateSnapshot", 10_000)).await
}

// ---------------------------------------------------------------------------------------
// Batched observation at scale
// ---------------------------------------------------------------------------------------

const SCALE: usize = 1200;
const RESYNC_SECONDS: u64 = 20;

#[tokio::test]
async fn one_resync_of_1200_volumes_reads_them_in_three_describe_volumes_pages() -> Result<()> {
    let resync = RESYNC_SECONDS.to_string();
    let bed = Bed::start("scale", &["--resync-seconds", &resync]).await?;
    bed.emu()
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;

    // 1,200 volumes made directly, tagged with the controller's cluster (so its sweep sees
    // them), adopted by ObserveOnly objects: no mutating call from the controller.
    let ids = bed
        .outside_volumes(SCALE, &[(CLUSTER_TAG, "default")])
        .await?;
    ensure!(ids.len() == SCALE);

    let created: Vec<Result<()>> = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let bed = &bed;
            async move {
                let spec = json!({ "volumeId": id, "managementPolicy": "ObserveOnly" });
                retry("creating an EbsVolume", || async {
                    match bed
                        .create::<EbsVolume>(&format!("v{i:04}"), spec.clone())
                        .await
                    {
                        Ok(_) => Ok(()),
                        // A retry after a lost answer finds the first attempt's object.
                        Err(e) if e.to_string().contains("already exists") => Ok(()),
                        Err(e) => Err(e),
                    }
                })
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    created.into_iter().collect::<Result<Vec<()>>>()?;

    let observed = bed
        .wait_until_within(
            "every EbsVolume to have status.volumeId",
            Duration::from_secs(300),
            || async {
                let list = bed.api::<EbsVolume>()?.list(&ListParams::default()).await?;
                let done = list
                    .items
                    .iter()
                    .filter(|v| v.status.as_ref().is_some_and(|s| s.volume_id.is_some()))
                    .count();
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok((done == SCALE).then_some(done))
            },
        )
        .await?;
    ensure!(observed == SCALE);

    // One resync: from now until every object has been reconciled once more. Under load
    // those reconciles can take longer than the sweep's age (the resync interval, less up
    // to 10 % of jitter), and then a second sweep falls in the window: the reads are counted
    // per sweep period the window spans, never per wall-clock budget.
    bed.emu().clear_calls().await?;
    let window = std::time::Instant::now();
    let start = bed.successful_reconciles::<EbsVolume>().await?;
    let deadline = Duration::from_secs(RESYNC_SECONDS * 3);
    let after = bed
        .wait_until_within(
            "every object to be reconciled once more",
            deadline,
            || async {
                let n = bed.successful_reconciles::<EbsVolume>().await?;
                Ok((n >= start + SCALE as u64).then_some(n))
            },
        )
        .await?;
    let calls = bed.emu().calls().await?;
    eprintln!(
        "{} reconciles, AWS calls over the resync: {calls:?}",
        after - start
    );
    let shortest_sweep_age = Duration::from_secs(RESYNC_SECONDS).mul_f64(0.9);
    let sweeps = 1 + (window.elapsed().as_secs_f64() / shortest_sweep_age.as_secs_f64()) as u64;
    let pages = SCALE.div_ceil(500) as u64;
    ensure!(
        calls.count("DescribeVolumes") <= sweeps * pages,
        "{} DescribeVolumes for {SCALE} volumes over {sweeps} sweep period(s) (at most {pages} pages each): {calls:?}",
        calls.count("DescribeVolumes")
    );
    ensure!(
        calls.count("DescribeVolumesModifications") <= sweeps * pages,
        "{sweeps} sweep period(s): {calls:?}"
    );
    ensure!(calls.mutating().is_empty(), "{calls:?}");
    let other = calls.total()
        - calls.count("DescribeVolumes")
        - calls.count("DescribeVolumesModifications");
    ensure!(other <= 5, "{other} other AWS calls: {calls:?}");
    Ok(())
}
