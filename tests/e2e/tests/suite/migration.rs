//! EncryptedVolumeMigration end to end (issue 8): the real controller against the real
//! kube-apiserver and the emulator whose instances stop, start and swap volumes like EC2's.
//! Instances, volumes and keys are made by the test through the SDK, as a user's would be.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{Instance, InstanceType, VolumeType};
use e2e::bed::{ZONE, condition, has_condition, tags_of, volume_id};
use e2e::migration_setup::{
    DEVICE, MIGRATION_STEPS, attach, instance_with_volume, key, running_instance,
};
use e2e::{Bed, Fault};
use ec2_reconciler::api::conditions::{ConditionStatus, READY, SYNCED};
use ec2_reconciler::api::migration::EncryptedVolumeMigrationStatus;
use ec2_reconciler::api::{EbsVolume, EncryptedVolumeMigration};
use ec2_reconciler::plan::tenancy::GRANT_TAG;
use ec2_reconciler::reconcile::ManagedKind;
use kube::Resource;
use serde_json::{Value, json};

const NAME: &str = "encrypt";

/// Actions that change something in AWS.
const INSTANCE_CALLS: [&str; 4] = [
    "StopInstances",
    "StartInstances",
    "AttachVolume",
    "DetachVolume",
];

fn status(m: &EncryptedVolumeMigration) -> Result<&EncryptedVolumeMigrationStatus> {
    m.status.as_ref().context("no status")
}

fn phase(m: &EncryptedVolumeMigration) -> &str {
    m.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

async fn describe_instance(bed: &Bed, id: &str) -> Result<Instance> {
    bed.ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await?
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned()
        .context("instance not found")
}

/// The instance's state and the volume (and DeleteOnTermination) at `device`.
async fn at_device(
    bed: &Bed,
    instance: &str,
    device: &str,
) -> Result<(String, Option<(String, bool)>)> {
    let i = describe_instance(bed, instance).await?;
    let state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let mapped = i
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(device))
        .and_then(|m| m.ebs())
        .map(|e| {
            (
                e.volume_id().unwrap_or_default().to_owned(),
                e.delete_on_termination().unwrap_or(false),
            )
        });
    Ok((state, mapped))
}

/// The volumes whose `name` filter matches `value` (`volume-id`, `tag:...`).
async fn volumes_where(
    bed: &Bed,
    name: &str,
    value: &str,
) -> Result<Vec<aws_sdk_ec2::types::Volume>> {
    Ok(bed
        .ec2()
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(name)
                .values(value)
                .build(),
        )
        .send()
        .await?
        .volumes()
        .to_vec())
}

async fn wait_phase(bed: &Bed, phase_word: &str) -> Result<EncryptedVolumeMigration> {
    bed.wait_for::<EncryptedVolumeMigration>(NAME, &format!("phase {phase_word}"), |m| {
        phase(m) == phase_word && m.observed_generation() == m.meta().generation
    })
    .await
}

fn spec(source_volume: &str, key_alias: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": { "volumeId": source_volume },
        "kmsKeyId": key_alias,
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    spec
}

#[tokio::test]
async fn a_data_volume_on_a_running_instance_is_encrypted_in_place_and_loses_nothing() -> Result<()>
{
    // A short resync, so the test sees one at rest.
    let bed = Bed::start("evm-data", &["--resync-seconds", "10"]).await?;
    let instance = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let source = bed
        .outside_volume_from(
            bed.volume_request(20, &[("team", "web"), ("Name", "data")])
                .iops(4000)
                .throughput(250),
        )
        .await?;
    attach(&bed, &source, &instance).await?;
    let arn = key(&bed, "alias/data").await?;
    bed.clear_calls().await?;

    bed.create::<EncryptedVolumeMigration>(NAME, spec(&source, "alias/data", json!({})))
        .await?;
    let done = wait_phase(&bed, "Completed").await?;
    let s = status(&done)?;
    ensure!(
        has_condition(&done, READY, ConditionStatus::True, "Completed"),
        "{:?}",
        done.status
    );
    let target = s.target_volume_id.clone().context("no target volume")?;
    ensure!(
        s.source_volume_id.as_deref() == Some(source.as_str()) && target != source,
        "{s:?}"
    );

    // The new volume: same shape, the source's tags, encrypted with the key, in place.
    let v = bed.describe_volume(&target).await?;
    ensure!(
        v.encrypted() == Some(true)
            && v.kms_key_id() == Some(arn.as_str())
            && v.size() == Some(20)
            && v.volume_type() == Some(&VolumeType::Gp3)
            && v.iops() == Some(4000)
            && v.throughput() == Some(250)
            && v.availability_zone() == Some(ZONE),
        "{v:?}"
    );
    let tags = tags_of(v.tags());
    ensure!(
        tags.get("team").map(String::as_str) == Some("web")
            && tags.get("Name").map(String::as_str) == Some("data"),
        "{tags:?}"
    );
    let (state, mapped) = at_device(&bed, &instance, DEVICE).await?;
    ensure!(state == "running", "the instance is {state}");
    ensure!(mapped == Some((target.clone(), true)), "{mapped:?}");

    // The original is kept (sourceVolumePolicy Retain), detached; the snapshots are gone.
    let old = bed.describe_volume(&source).await?;
    ensure!(
        old.state().map(|s| s.as_str()) == Some("available"),
        "{old:?}"
    );
    ensure!(bed.snapshots_of(NAME).await?.is_empty(), "snapshots kept");

    // One call of each, and the steps it went through.
    let calls = bed.calls().await?;
    for action in [
        "StopInstances",
        "StartInstances",
        "CreateSnapshot",
        "CopySnapshot",
        "CreateVolume",
        "DetachVolume",
        "AttachVolume",
        "ModifyInstanceAttribute",
    ] {
        ensure!(calls.count(action) == 1, "{action}: {calls:?}");
    }
    let steps: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
    ensure!(
        steps
            == [
                "Stopping",
                "Snapshotting",
                "Copying",
                "CreatingVolume",
                "Swapping",
                "Starting",
                "Verifying",
                "HandingOver",
                "CleaningUp"
            ],
        "{steps:?}"
    );
    ensure!(
        s.steps
            .iter()
            .all(|st| st.state == "Succeeded" && st.end_time.is_some()),
        "{:?}",
        s.steps
    );

    // At rest: a resync reads nothing and writes nothing.
    bed.clear_calls().await?;
    let writes = bed.status_writes::<EncryptedVolumeMigration>().await?;
    let since = bed.reconciles::<EncryptedVolumeMigration>().await?;
    bed.wait_reconciles::<EncryptedVolumeMigration>(since, 1)
        .await?;
    ensure!(bed.calls().await?.total() == 0, "{:?}", bed.calls().await?);
    ensure!(
        bed.status_writes::<EncryptedVolumeMigration>().await? == writes,
        "status written at rest"
    );
    Ok(())
}

#[tokio::test]
async fn a_root_volume_is_swapped_while_stopped_and_the_instance_boots_from_it() -> Result<()> {
    let bed = Bed::start("evm-root", &[]).await?;
    let instance = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let i = describe_instance(&bed, &instance).await?;
    let root_device = i.root_device_name().context("no root device")?.to_owned();
    let (_, mapped) = at_device(&bed, &instance, &root_device).await?;
    let (root, _) = mapped.context("no root volume")?;
    let arn = key(&bed, "alias/root").await?;

    bed.create::<EncryptedVolumeMigration>(
        NAME,
        spec(
            &root,
            "alias/root",
            json!({ "sourceVolumePolicy": "Delete", "keepSnapshots": true }),
        ),
    )
    .await?;
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;
    let (state, mapped) = at_device(&bed, &instance, &root_device).await?;
    ensure!(state == "running", "the instance is {state}");
    // A root volume is deleted with its instance by default: kept so.
    ensure!(mapped == Some((target.clone(), true)), "{mapped:?}");
    let v = bed.describe_volume(&target).await?;
    ensure!(
        v.encrypted() == Some(true) && v.kms_key_id() == Some(arn.as_str()),
        "{v:?}"
    );
    // The original is deleted (Delete), the two snapshots kept (keepSnapshots).
    let old = volumes_where(&bed, "volume-id", &root).await?;
    ensure!(old.is_empty(), "{old:?}");
    ensure!(
        bed.snapshots_of(NAME).await?.len() == 2,
        "snapshots not kept"
    );
    Ok(())
}

#[tokio::test]
async fn an_unattached_volume_is_re_keyed_without_touching_any_instance() -> Result<()> {
    let bed = Bed::start("evm-rekey", &[]).await?;
    let old_arn = key(&bed, "alias/old").await?;
    let new_arn = key(&bed, "alias/new").await?;
    let source = bed
        .outside_volume_from(
            bed.volume_request(8, &[])
                .encrypted(true)
                .kms_key_id(&old_arn),
        )
        .await?;
    bed.create::<EncryptedVolumeMigration>(NAME, spec(&source, "alias/new", json!({})))
        .await?;
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;
    let v = bed.describe_volume(&target).await?;
    ensure!(
        v.kms_key_id() == Some(new_arn.as_str())
            && v.state().map(|s| s.as_str()) == Some("available"),
        "{v:?}"
    );
    let calls = bed.calls().await?;
    for action in INSTANCE_CALLS {
        ensure!(calls.count(action) == 0, "{action}: {calls:?}");
    }
    Ok(())
}

/// Refused before any change: the condition says why, and AWS saw no mutating call.
async fn refused(bed: &Bed, spec: Value, reason: &str) -> Result<()> {
    bed.clear_calls().await?;
    bed.create::<EncryptedVolumeMigration>(NAME, spec).await?;
    let refused = bed
        .wait_for::<EncryptedVolumeMigration>(NAME, &format!("Synced=False {reason}"), |m| {
            has_condition(m, SYNCED, ConditionStatus::False, reason)
        })
        .await?;
    // Nothing started: no phase past Pending (a pass that failed records none at all).
    ensure!(
        matches!(phase(&refused), "" | "Pending"),
        "{:?}",
        refused.status
    );
    let message = condition(&refused, SYNCED)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ensure!(!message.is_empty(), "no message");
    let mutating = bed.calls().await?.mutating();
    ensure!(mutating.is_empty(), "{reason}: {mutating:?}");
    bed.delete::<EncryptedVolumeMigration>(NAME).await?;
    bed.wait_gone::<EncryptedVolumeMigration>(NAME).await?;
    Ok(())
}

#[tokio::test]
async fn guards_refuse_before_any_change() -> Result<()> {
    let bed = Bed::start("evm-guards", &[]).await?;
    key(&bed, "alias/data").await?;

    // Multi-Attach volume on two instances: refused up front (documented choice).
    let a = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let b = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let shared = bed
        .outside_volume_from(
            bed.volume_request(10, &[])
                .volume_type(VolumeType::Io2)
                .iops(1000)
                .throughput(0)
                .multi_attach_enabled(true),
        )
        .await;
    let shared = match shared {
        Ok(id) => id,
        Err(_) => {
            // gp3 throughput does not apply to io2: build the request without it.
            let req = bed
                .ec2()
                .create_volume()
                .availability_zone(ZONE)
                .size(10)
                .volume_type(VolumeType::Io2)
                .iops(1000)
                .multi_attach_enabled(true);
            bed.outside_volume_from(req).await?
        }
    };
    for instance in [&a, &b] {
        attach(&bed, &shared, instance).await?;
    }
    refused(
        &bed,
        spec(&shared, "alias/data", json!({})),
        "AttachedToSeveralInstances",
    )
    .await?;

    // An instance with instance store: stopping it loses that data.
    let store = running_instance(&bed, InstanceType::M5dLarge, e2e::bed::IMAGE).await?;
    let volume = bed.outside_volume(8, &[]).await?;
    attach(&bed, &volume, &store).await?;
    refused(
        &bed,
        spec(&volume, "alias/data", json!({})),
        "InstanceStoreDataLoss",
    )
    .await?;

    // An instance store-backed instance cannot be stopped at all.
    let image = bed
        .ec2()
        .register_image()
        .name("store-backed")
        .image_location("bucket/store/image.manifest.xml")
        .architecture(aws_sdk_ec2::types::ArchitectureValues::X8664)
        .virtualization_type("hvm")
        .send()
        .await
        .context("RegisterImage")?
        .image_id()
        .context("no image id")?
        .to_owned();
    let store_backed = running_instance(&bed, InstanceType::T3Micro, &image).await?;
    let data = bed.outside_volume(8, &[]).await?;
    attach(&bed, &data, &store_backed).await?;
    refused(
        &bed,
        spec(&data, "alias/data", json!({})),
        "InstanceStoreBacked",
    )
    .await?;

    // A disabled key: refused before anything changes.
    let disabled = key(&bed, "alias/disabled").await?;
    let key_id = disabled.rsplit('/').next().unwrap_or_default();
    bed.kms().disable_key().key_id(key_id).send().await?;
    let lone = bed.outside_volume(8, &[]).await?;
    refused(
        &bed,
        spec(&lone, "alias/disabled", json!({})),
        "KmsKeyDisabled",
    )
    .await?;

    // A key pending deletion: refused the same way.
    let doomed = key(&bed, "alias/doomed").await?;
    let doomed_id = doomed.rsplit('/').next().unwrap_or_default();
    bed.kms()
        .schedule_key_deletion()
        .key_id(doomed_id)
        .pending_window_in_days(7)
        .send()
        .await?;
    refused(
        &bed,
        spec(&lone, "alias/doomed", json!({})),
        "KmsKeyDisabled",
    )
    .await?;

    // Already under the key: nothing to do.
    let arn = key(&bed, "alias/same").await?;
    let same = bed
        .outside_volume_from(bed.volume_request(8, &[]).encrypted(true).kms_key_id(&arn))
        .await?;
    refused(
        &bed,
        spec(&same, "alias/same", json!({})),
        "AlreadyEncrypted",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_refused_attach_rolls_the_original_volume_back_and_cleans_up() -> Result<()> {
    let bed = Bed::start("evm-rollback", &[]).await?;
    let (instance, source) = instance_with_volume(&bed, &[]).await?;
    key(&bed, "alias/data").await?;
    bed.clear_calls().await?;
    // The new volume's attach is refused for good; the original's, after it, goes through.
    bed.emu()
        .inject(Fault::error("AttachVolume", "InvalidParameterValue"))
        .await?;

    bed.create::<EncryptedVolumeMigration>(NAME, spec(&source, "alias/data", json!({})))
        .await?;
    let back = wait_phase(&bed, "RolledBack").await?;
    let s = status(&back)?;
    ensure!(
        has_condition(&back, SYNCED, ConditionStatus::False, "RolledBack")
            && s.failure
                .as_deref()
                .is_some_and(|f| f.contains("InvalidParameterValue")),
        "{s:?}"
    );
    let (state, mapped) = at_device(&bed, &instance, DEVICE).await?;
    ensure!(state == "running", "the instance is {state}");
    ensure!(mapped == Some((source.clone(), true)), "{mapped:?}");
    let target = s.target_volume_id.clone().context("no target recorded")?;
    let gone = volumes_where(&bed, "volume-id", &target).await?;
    ensure!(gone.is_empty(), "the new volume was kept: {gone:?}");
    ensure!(bed.snapshots_of(NAME).await?.is_empty(), "snapshots kept");
    ensure!(
        bed.events::<EncryptedVolumeMigration>(NAME, "MigrationFailed")
            .await?
            >= 1,
        "no event"
    );
    let calls = bed.calls().await?;
    ensure!(
        calls.count("AttachVolume") == 2 && calls.count("CreateVolume") == 1,
        "{calls:?}"
    );
    Ok(())
}

/// SIGKILL while each call without a client token is in flight, and while the swap's
/// calls are: one snapshot of each kind, one new volume, every call at most once more.
#[tokio::test]
async fn a_controller_killed_at_each_step_resumes_without_leaking_or_repeating() -> Result<()> {
    let mut bed = Bed::start("evm-crash", &[]).await?;
    let (instance, source) = instance_with_volume(&bed, &[("team", "web")]).await?;
    key(&bed, "alias/data").await?;
    bed.clear_calls().await?;
    let steps = MIGRATION_STEPS;
    // The emulator holds each first call 3 s, then applies it: the kill lands in between.
    for action in steps {
        bed.emu().inject(Fault::slow(action, 3000)).await?;
    }
    bed.create::<EncryptedVolumeMigration>(NAME, spec(&source, "alias/data", json!({})))
        .await?;
    for action in steps {
        bed.wait_for_calls(action, 1).await?;
        bed.restart_controller()?;
    }
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;
    let (state, mapped) = at_device(&bed, &instance, DEVICE).await?;
    ensure!(
        state == "running" && mapped == Some((target, true)),
        "{state} {mapped:?}"
    );
    let calls = bed.calls().await?;
    for action in ["CreateSnapshot", "CopySnapshot"] {
        ensure!(calls.count(action) == 1, "{action} repeated: {calls:?}");
    }
    let created = volumes_where(&bed, "tag:ec2.reconciler.dev/migrated-from", &source).await?;
    ensure!(created.len() == 1, "volumes made: {created:?}");
    let mut counts = BTreeMap::new();
    for action in INSTANCE_CALLS {
        counts.insert(action, calls.count(action));
    }
    ensure!(counts.values().all(|n| *n <= 2), "{counts:?}");
    Ok(())
}

/// Behaviour 7: the EbsVolume holds still during the swap, then tracks the new volume,
/// reports `encrypted: false` in its spec without acting, and nothing is re-created or
/// deleted because of the swap.
#[tokio::test]
async fn an_ebs_volume_holds_still_during_the_swap_and_then_tracks_the_encrypted_volume()
-> Result<()> {
    let bed = Bed::start("evm-handoff", &[]).await?;
    let instance = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let arn = key(&bed, "alias/data").await?;
    let volume_spec = json!({
        "availabilityZone": ZONE,
        "sizeGiB": 8,
        "volumeType": "gp3",
        "tags": { "team": "web" },
        "attachments": [{ "instanceId": instance, "device": DEVICE }],
    });
    bed.create::<EbsVolume>("data", volume_spec.clone()).await?;
    let ready = bed.wait_ready::<EbsVolume>("data").await?;
    let old = volume_id(&ready)?;
    bed.clear_calls().await?;

    bed.create::<EncryptedVolumeMigration>(
        NAME,
        json!({ "source": { "volumeRef": { "name": "data" } }, "kmsKeyId": "alias/data" }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("data", "Synced=False MigrationInProgress", |v| {
        has_condition(v, SYNCED, ConditionStatus::False, "MigrationInProgress")
    })
    .await?;
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;

    // It tracks the new volume, and says its spec's `encrypted: false` is not what AWS has.
    let moved = bed
        .wait_for::<EbsVolume>("data", "status.volumeId on the new volume", |v| {
            volume_id(v).ok().as_deref() == Some(target.as_str())
                && has_condition(v, SYNCED, ConditionStatus::False, "EncryptionMismatch")
        })
        .await?;
    ensure!(
        condition(&moved, SYNCED).is_some_and(|c| c.message.contains("never decrypts")),
        "{:?}",
        moved.status
    );
    // The old volume is the migration's now, marked as replaced.
    let old_tags = bed.volume_tags(&old).await?;
    ensure!(
        old_tags.get("ec2.reconciler.dev/replaced-by") == Some(&target)
            && old_tags.get("ec2.reconciler.dev/kind").map(String::as_str)
                == Some("EncryptedVolumeMigration"),
        "{old_tags:?}"
    );
    let new_tags = bed.volume_tags(&target).await?;
    ensure!(
        !new_tags.contains_key("ec2.reconciler.dev/migrating"),
        "{new_tags:?}"
    );

    // The spec catches up: Ready, and nothing to do.
    let mut encrypted = volume_spec;
    encrypted["encrypted"] = json!(true);
    encrypted["kmsKeyId"] = json!("alias/data");
    bed.apply::<EbsVolume>("data", encrypted).await?;
    let ready = bed.wait_ready::<EbsVolume>("data").await?;
    ensure!(volume_id(&ready)? == target, "{:?}", ready.status);
    let v = bed.describe_volume(&target).await?;
    ensure!(v.kms_key_id() == Some(arn.as_str()), "{v:?}");

    // Only the migration's own calls: one new volume, no delete, no re-attach of the old.
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateVolume") == 1
            && calls.count("DeleteVolume") == 0
            && calls.count("AttachVolume") == 1
            && calls.count("DetachVolume") == 1,
        "{calls:?}"
    );
    Ok(())
}

#[tokio::test]
async fn wait_for_stopped_leaves_the_stop_to_someone_else_and_says_so() -> Result<()> {
    let bed = Bed::start("evm-wait", &[]).await?;
    let (instance, source) = instance_with_volume(&bed, &[]).await?;
    key(&bed, "alias/data").await?;
    bed.clear_calls().await?;
    bed.create::<EncryptedVolumeMigration>(
        NAME,
        spec(
            &source,
            "alias/data",
            json!({ "instanceStopPolicy": "WaitForStopped" }),
        ),
    )
    .await?;
    bed.wait_condition::<EncryptedVolumeMigration>(
        NAME,
        READY,
        ConditionStatus::False,
        "WaitingForInstanceStop",
    )
    .await?;
    ensure!(
        bed.calls().await?.mutating().is_empty(),
        "{:?}",
        bed.calls().await?
    );

    // Its owner stops it: the migration goes on, and leaves it stopped as it found it.
    bed.ec2()
        .stop_instances()
        .instance_ids(&instance)
        .send()
        .await?;
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;
    let (state, mapped) = at_device(&bed, &instance, DEVICE).await?;
    ensure!(
        state == "stopped" && mapped == Some((target, true)),
        "{state} {mapped:?}"
    );
    let calls = bed.calls().await?;
    ensure!(
        calls.count("StopInstances") == 1 && calls.count("StartInstances") == 0,
        "only the owner's stop: {calls:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_root_volume_whose_key_is_disabled_before_the_start_is_rolled_back() -> Result<()> {
    let bed = Bed::start("evm-badstart", &[]).await?;
    let instance = running_instance(&bed, InstanceType::T3Micro, e2e::bed::IMAGE).await?;
    let root_device = describe_instance(&bed, &instance)
        .await?
        .root_device_name()
        .context("no root device")?
        .to_owned();
    let (_, mapped) = at_device(&bed, &instance, &root_device).await?;
    let (root, _) = mapped.context("no root volume")?;
    let arn = key(&bed, "alias/root").await?;
    // The new root's attach is held: the key is disabled before the instance starts on it.
    bed.emu().inject(Fault::slow("AttachVolume", 3000)).await?;
    bed.create::<EncryptedVolumeMigration>(NAME, spec(&root, "alias/root", json!({})))
        .await?;
    bed.wait_for_calls("AttachVolume", 1).await?;
    let key_id = arn.rsplit('/').next().unwrap_or_default();
    bed.kms().disable_key().key_id(key_id).send().await?;

    let back = wait_phase(&bed, "RolledBack").await?;
    let failure = status(&back)?.failure.clone().unwrap_or_default();
    ensure!(failure.contains("InvalidKMSKey"), "{failure}");
    let (state, mapped) = at_device(&bed, &instance, &root_device).await?;
    ensure!(state == "running", "the instance is {state}");
    ensure!(
        mapped == Some((root, true)),
        "the original root is back: {mapped:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_namespace_migrates_only_what_it_owns_or_was_granted() -> Result<()> {
    let bed = Bed::builder("evm-tenancy")
        .untrusted()
        .other_namespace()
        .args(&["--recheck-seconds", "2"])
        .start()
        .await?;
    let (instance, source) = instance_with_volume(&bed, &[]).await?;
    key(&bed, "alias/data").await?;

    // Another namespace's volume: refused, without naming it.
    let other = bed.other_namespace()?.to_owned();
    bed.create_in::<EbsVolume>(
        &other,
        "secret",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8 }),
    )
    .await?;
    let theirs = bed
        .wait_for_in::<EbsVolume>(&other, "secret", "a volume", |v| volume_id(v).is_ok())
        .await?;
    let theirs = volume_id(&theirs)?;
    bed.clear_calls().await?;
    bed.create::<EncryptedVolumeMigration>("grab", spec(&theirs, "alias/data", json!({})))
        .await?;
    let refused = bed
        .wait_condition::<EncryptedVolumeMigration>(
            "grab",
            SYNCED,
            ConditionStatus::False,
            "OwnedByAnotherObject",
        )
        .await?;
    let message = condition(&refused, SYNCED)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ensure!(
        !message.contains(&other) && !message.contains("secret"),
        "{message}"
    );

    // An unowned volume and instance: each needs a grant, and the migration heals as soon
    // as their owner tags them for this namespace.
    bed.create::<EncryptedVolumeMigration>(NAME, spec(&source, "alias/data", json!({})))
        .await?;
    bed.wait_condition::<EncryptedVolumeMigration>(
        NAME,
        SYNCED,
        ConditionStatus::False,
        "NotGranted",
    )
    .await?;
    ensure!(
        bed.calls().await?.mutating().is_empty(),
        "{:?}",
        bed.calls().await?
    );
    for resource in [&source, &instance] {
        bed.ec2()
            .create_tags()
            .resources(resource)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(GRANT_TAG)
                    .value(bed.namespace()?)
                    .build(),
            )
            .send()
            .await?;
    }
    let done = wait_phase(&bed, "Completed").await?;
    let target = status(&done)?
        .target_volume_id
        .clone()
        .context("no target")?;
    // The grant travels to the new volume: the namespace keeps what it was granted.
    let tags = bed.volume_tags(&target).await?;
    ensure!(
        tags.get(GRANT_TAG).map(String::as_str) == Some(bed.namespace()?),
        "{tags:?}"
    );
    Ok(())
}
