//! EbsVolume attachments, tags and drift (issue 3, behaviours 4, 5 and 6), end to end: the
//! real controller binary against a real kube-apiserver and the EC2 emulator. Instances are
//! made with RunInstances through the SDK; changes "made outside" are SDK calls by the test.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ec2::types::Tag;
use e2e::bed::{condition, has_condition, is_ready, volume_id};
use e2e::{Bed, Calls};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, PROGRESSING, READY, SYNCED};
use serde_json::{Value, json};

/// How long a test watches for retries that must not happen.
const QUIET: Duration = Duration::from_secs(10);
/// Every test's EbsVolume.
const NAME: &str = "data";

/// The state of the volume's latest modification, as AWS reports it.
async fn modification_state(bed: &Bed, volume_id: &str) -> Result<Option<String>> {
    Ok(bed
        .modifications(volume_id)
        .await?
        .last()
        .and_then(|m| m.modification_state())
        .map(|s| s.as_str().to_owned()))
}

/// The attachments in status as (instance, device, state).
fn attachments(v: &EbsVolume) -> Vec<(String, String, String)> {
    v.status
        .as_ref()
        .map(|s| {
            s.attachments
                .iter()
                .map(|a| (a.instance_id.clone(), a.device.clone(), a.state.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn plan(v: &EbsVolume) -> Vec<String> {
    v.status
        .as_ref()
        .map(|s| s.plan.clone())
        .unwrap_or_default()
}

/// Ready, in use, attached to exactly `instance` as `device`.
fn attached_only_to(v: &EbsVolume, instance: &str, device: &str) -> bool {
    is_ready(v)
        && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("in-use")
        && attachments(v)
            == [(
                instance.to_owned(),
                device.to_owned(),
                "attached".to_owned(),
            )]
}

/// Ready, available, attached nowhere.
fn available_and_detached(v: &EbsVolume) -> bool {
    is_ready(v)
        && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("available")
        && attachments(v).is_empty()
}

/// The difference in `action`'s count between two snapshots of the counters.
fn delta(before: &Calls, after: &Calls, action: &str) -> u64 {
    after.count(action) - before.count(action)
}

fn ensure_counts(calls: &Calls, expected: &[(&str, u64)]) -> Result<()> {
    for (action, count) in expected {
        if calls.count(action) != *count {
            bail!(
                "expected {count} {action}, saw {}; all calls: {calls:?}",
                calls.count(action)
            );
        }
    }
    Ok(())
}

// ---- 4. Attachments ---------------------------------------------------------------------

#[tokio::test]
async fn a_volume_is_attached_as_specified_and_a_removed_attachment_is_detached_only_once_aws_has_finished()
-> Result<()> {
    let bed = Bed::start("attach", &[]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "attached as specified and Ready", |v| {
            attached_only_to(v, &instance, "/dev/sdf")
        })
        .await?;
    ensure!(
        has_condition(&v, READY, ConditionStatus::True, "InUse"),
        "{:?}",
        v.status
    );
    ensure_counts(
        &bed.calls().await?,
        &[("AttachVolume", 1), ("DetachVolume", 0)],
    )?;
    let id = volume_id(&v)?;

    // Hold the detach in `detaching`: the controller must wait, not call again.
    bed.emu()
        .set_transitions(json!({ "volume-detach": 3600 }))
        .await?;
    bed.edit::<EbsVolume>(NAME, json!({ "attachments": null }))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "the detach to be waited for", |v| {
            attachments(v)
                == [(
                    instance.clone(),
                    "/dev/sdf".to_owned(),
                    "detaching".to_owned(),
                )]
                && has_condition(v, READY, ConditionStatus::False, "Detaching")
                && has_condition(v, PROGRESSING, ConditionStatus::True, "Detaching")
        })
        .await?;
    ensure!(
        plan(&v).is_empty(),
        "nothing more to do while detaching: {:?}",
        v.status
    );
    let held = bed.calls().await?;
    tokio::time::sleep(QUIET).await;
    let later = bed.calls().await?;
    ensure_counts(&later, &[("DetachVolume", 1), ("AttachVolume", 1)])?;
    ensure!(
        delta(&held, &later, "DetachVolume") == 0,
        "{held:?} -> {later:?}"
    );
    ensure!(
        bed.describe_volume(&id).await?.attachments().len() == 1,
        "still detaching in AWS"
    );

    // AWS finishes: the volume is available and Ready again, with no further call.
    bed.emu()
        .set_transitions(json!({ "volume-detach": 0 }))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>(
            NAME,
            "the volume to be available and Ready",
            available_and_detached,
        )
        .await?;
    ensure!(
        has_condition(&v, READY, ConditionStatus::True, "Available"),
        "{:?}",
        v.status
    );
    ensure!(
        has_condition(&v, PROGRESSING, ConditionStatus::False, "UpToDate"),
        "{:?}",
        v.status
    );
    ensure_counts(
        &bed.calls().await?,
        &[("DetachVolume", 1), ("AttachVolume", 1)],
    )?;
    Ok(())
}

#[tokio::test]
async fn an_attachment_moved_to_another_device_is_detached_then_attached_there_once() -> Result<()>
{
    let bed = Bed::start("move-device", &[]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    bed.wait_for::<EbsVolume>(NAME, "attached at /dev/sdf", |v| {
        attached_only_to(v, &instance, "/dev/sdf")
    })
    .await?;
    let before = bed.calls().await?;

    bed.edit::<EbsVolume>(
        NAME,
        json!({ "attachments": [{ "instanceId": instance, "device": "/dev/sdg" }] }),
    )
    .await?;
    bed.wait_for::<EbsVolume>(NAME, "attached at /dev/sdg and Ready", |v| {
        attached_only_to(v, &instance, "/dev/sdg")
    })
    .await?;
    let after = bed.calls().await?;
    ensure!(
        delta(&before, &after, "DetachVolume") == 1 && delta(&before, &after, "AttachVolume") == 1,
        "expected one detach and one attach: {before:?} -> {after:?}"
    );
    Ok(())
}

#[tokio::test]
async fn multi_attach_is_enabled_in_place_on_an_io2_volume_then_it_attaches_to_two_instances()
-> Result<()> {
    let bed = Bed::start("multi-in-place", &[]).await?;
    let ids = bed.run_instances("us-east-1a", 2).await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 10, "volumeType": "io2", "iops": 1000 }),
    )
    .await?;
    bed.wait_ready::<EbsVolume>(NAME).await?;
    let before = bed.calls().await?;

    bed.edit::<EbsVolume>(
        NAME,
        json!({
            "multiAttachEnabled": true,
            "attachments": [
                { "instanceId": ids[0], "device": "/dev/sdf" },
                { "instanceId": ids[1], "device": "/dev/sdf" },
            ],
        }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "Multi-Attach on and attached to both", |v| {
            is_ready(v)
                && v.status.as_ref().and_then(|s| s.multi_attach_enabled) == Some(true)
                && attachments(v).len() == 2
                && attachments(v)
                    .iter()
                    .all(|(_, _, state)| state == "attached")
        })
        .await?;
    let after = bed.calls().await?;
    ensure!(
        delta(&before, &after, "ModifyVolume") == 1 && delta(&before, &after, "AttachVolume") == 2,
        "expected one ModifyVolume and two AttachVolume: {before:?} -> {after:?}"
    );
    ensure!(
        has_condition(&v, SYNCED, ConditionStatus::True, "Synced"),
        "{:?}",
        v.status
    );
    Ok(())
}

#[tokio::test]
async fn force_detach_sends_a_forced_detach_that_completes_at_once() -> Result<()> {
    let bed = Bed::start("force", &[]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10, "forceDetach": true,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    bed.wait_for::<EbsVolume>(NAME, "attached as specified and Ready", |v| {
        attached_only_to(v, &instance, "/dev/sdf")
    })
    .await?;

    // A detach without Force would stay `detaching` for an hour; only a forced one is over
    // at once (the emulator applies Force immediately, as AWS does).
    bed.emu()
        .set_transitions(json!({ "volume-detach": 3600 }))
        .await?;
    bed.edit::<EbsVolume>(NAME, json!({ "attachments": [] }))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>(
            NAME,
            "the volume to be available and Ready",
            available_and_detached,
        )
        .await?;
    ensure!(
        has_condition(&v, READY, ConditionStatus::True, "Available"),
        "{:?}",
        v.status
    );
    let id = volume_id(&v)?;
    ensure!(
        bed.describe_volume(&id).await?.attachments().is_empty(),
        "AWS still shows an attachment"
    );
    ensure_counts(
        &bed.calls().await?,
        &[("DetachVolume", 1), ("AttachVolume", 1)],
    )?;
    Ok(())
}

#[tokio::test]
async fn a_multi_attach_io2_volume_is_attached_to_sixteen_instances_in_its_zone() -> Result<()> {
    let bed = Bed::start("multi", &[]).await?;
    let instances = bed.run_instances("us-east-1a", 16).await?;
    let wanted: Vec<Value> = instances
        .iter()
        .map(|i| json!({ "instanceId": i, "device": "/dev/sdf" }))
        .collect();
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "volumeType": "io2", "sizeGiB": 10, "iops": 1000,
            "multiAttachEnabled": true, "attachments": wanted,
        }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "attached to all 16 instances and Ready", |v| {
            let seen = attachments(v);
            is_ready(v)
                && seen.len() == 16
                && seen
                    .iter()
                    .all(|(_, device, state)| device == "/dev/sdf" && state == "attached")
        })
        .await?;
    let mut seen: Vec<String> = attachments(&v).into_iter().map(|(i, _, _)| i).collect();
    seen.sort();
    let mut expected = instances.clone();
    expected.sort();
    ensure!(seen == expected, "{seen:?} != {expected:?}");
    ensure!(
        has_condition(&v, READY, ConditionStatus::True, "InUse"),
        "{:?}",
        v.status
    );
    let aws = bed.describe_volume(&volume_id(&v)?).await?;
    ensure!(aws.attachments().len() == 16, "{aws:?}");
    ensure_counts(
        &bed.calls().await?,
        &[("AttachVolume", 16), ("CreateVolume", 1)],
    )?;
    Ok(())
}

/// Creates a volume in us-east-1a wanting `instance` as `device`, waits for Synced=False
/// with `reason` (the volume itself created and available), then watches for [`QUIET`]:
/// no AttachVolume during the watch, and the condition stays.
async fn unattachable(bed: &Bed, instance: &str, device: &str, reason: &str) -> Result<EbsVolume> {
    let start = bed.calls().await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": device }],
        }),
    )
    .await?;
    bed.wait_for::<EbsVolume>(NAME, &format!("Synced=False with reason {reason}"), |v| {
        v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("available")
            && has_condition(v, SYNCED, ConditionStatus::False, reason)
    })
    .await?;
    let first = bed.calls().await?;
    tokio::time::sleep(QUIET).await;
    let later = bed.calls().await?;
    ensure!(
        delta(&first, &later, "AttachVolume") == 0,
        "AttachVolume retried: {first:?} -> {later:?}\n{}",
        bed.controller_log()
    );
    // Not even the reads loop: the next look is at the resync (600 s), and an instance
    // already known missing is not asked about again before it.
    ensure!(
        delta(&first, &later, "DescribeInstances") == 0,
        "the object is reconciled in a loop: {first:?} -> {later:?}"
    );
    let v = bed.get::<EbsVolume>(NAME).await?;
    ensure!(
        has_condition(&v, SYNCED, ConditionStatus::False, reason) && !is_ready(&v),
        "{:?}",
        v.status
    );
    ensure!(attachments(&v).is_empty(), "{:?}", v.status);
    ensure!(
        delta(&start, &later, "CreateVolume") == 1,
        "{start:?} -> {later:?}"
    );
    Ok(v)
}

#[tokio::test]
async fn an_instance_in_another_zone_is_reported_on_synced_and_never_attached() -> Result<()> {
    let bed = Bed::start("otherzone", &[]).await?;
    let instance = bed.run_instances("us-east-1b", 1).await?.remove(0);
    let v = unattachable(&bed, &instance, "/dev/sdf", "InstanceInOtherZone").await?;
    let synced = condition(&v, SYNCED).context("no Synced")?;
    ensure!(
        synced.message.contains(&instance) && synced.message.contains("us-east-1b"),
        "{synced:?}"
    );
    ensure_counts(&bed.calls().await?, &[("AttachVolume", 0)])?;
    Ok(())
}

#[tokio::test]
async fn a_missing_instance_is_reported_on_synced_and_never_attached() -> Result<()> {
    let bed = Bed::start("noinstance", &[]).await?;
    let missing = "i-0123456789abcdef0";
    let v = unattachable(&bed, missing, "/dev/sdf", "InstanceNotFound").await?;
    let synced = condition(&v, SYNCED).context("no Synced")?;
    ensure!(synced.message.contains(missing), "{synced:?}");
    ensure_counts(&bed.calls().await?, &[("AttachVolume", 0)])?;
    Ok(())
}

#[tokio::test]
async fn a_device_already_in_use_on_the_instance_is_reported_on_synced_and_not_retried()
-> Result<()> {
    let bed = Bed::start("devinuse", &[]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    // Someone else's volume already sits at /dev/sdf on that instance.
    let other = bed.outside_volume(5, &[]).await?;
    bed.ec2()
        .attach_volume()
        .volume_id(&other)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await?;
    let v = unattachable(&bed, &instance, "/dev/sdf", "AttachmentPointInUse").await?;
    let synced = condition(&v, SYNCED).context("no Synced")?;
    ensure!(synced.message.contains("already in use"), "{synced:?}");
    // One AttachVolume by the test, one by the controller, which AWS rejected.
    ensure_counts(&bed.calls().await?, &[("AttachVolume", 2)])?;
    Ok(())
}

// ---- 5. Tags ------------------------------------------------------------------------------

#[tokio::test]
async fn only_the_tags_the_spec_manages_are_added_changed_and_removed() -> Result<()> {
    let bed = Bed::start("tags", &["--resync-seconds", "3"]).await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10,
            "tags": { "team": "storage", "env": "dev", "scratch": "yes" },
        }),
    )
    .await?;
    let v = bed.wait_for::<EbsVolume>(NAME, "Ready", is_ready).await?;
    let id = volume_id(&v)?;
    // Tags travel with the create: no separate CreateTags.
    ensure_counts(&bed.calls().await?, &[("CreateTags", 0), ("DeleteTags", 0)])?;

    // Someone else tags the volume.
    bed.ec2()
        .create_tags()
        .resources(&id)
        .tags(Tag::builder().key("backup").value("nightly").build())
        .send()
        .await?;
    let before = bed.calls().await?;

    // Change one, drop one, add one.
    bed.edit::<EbsVolume>(NAME,
        json!({ "tags": { "team": "storage", "env": "prod", "scratch": null, "cost-center": "42" } }),
    )
    .await?;
    let tags = bed
        .wait_until("the spec's tags on the volume", || async {
            let tags = bed.volume_tags(&id).await?;
            let done = tags.get("env").map(String::as_str) == Some("prod")
                && tags.get("cost-center").map(String::as_str) == Some("42")
                && !tags.contains_key("scratch");
            Ok(done.then_some(tags))
        })
        .await?;
    ensure!(
        tags.get("team").map(String::as_str) == Some("storage"),
        "{tags:?}"
    );
    ensure!(
        tags.get("backup").map(String::as_str) == Some("nightly"),
        "the foreign tag is gone: {tags:?}"
    );
    bed.wait_for::<EbsVolume>(NAME, "Ready after the tag change", |v| {
        is_ready(v) && plan(v).is_empty()
    })
    .await?;

    // Several resyncs later: the foreign tag is still there and nothing more was sent.
    tokio::time::sleep(QUIET).await;
    let after = bed.calls().await?;
    ensure!(
        delta(&before, &after, "CreateTags") == 1 && delta(&before, &after, "DeleteTags") == 1,
        "one CreateTags (env, cost-center) and one DeleteTags (scratch): {before:?} -> {after:?}"
    );
    ensure!(
        after.count("DescribeVolumes") > before.count("DescribeVolumes"),
        "no resync happened: {before:?} -> {after:?}"
    );
    let tags = bed.volume_tags(&id).await?;
    ensure!(
        tags.get("backup").map(String::as_str) == Some("nightly") && !tags.contains_key("scratch"),
        "{tags:?}"
    );
    let v = bed.get::<EbsVolume>(NAME).await?;
    let managed = v
        .status
        .as_ref()
        .map(|s| s.managed_tag_keys.clone())
        .unwrap_or_default();
    ensure!(
        managed == ["cost-center", "env", "team"],
        "managed keys: {managed:?}"
    );
    Ok(())
}

// ---- 6. Drift -----------------------------------------------------------------------------

#[tokio::test]
async fn a_managed_tag_removed_outside_comes_back_at_the_next_resync() -> Result<()> {
    let bed = Bed::start("drifttag", &["--resync-seconds", "3"]).await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 10, "tags": { "team": "storage" } }),
    )
    .await?;
    let id = volume_id(&bed.wait_for::<EbsVolume>(NAME, "Ready", is_ready).await?)?;
    bed.ec2()
        .delete_tags()
        .resources(&id)
        .tags(Tag::builder().key("team").build())
        .send()
        .await?;
    bed.wait_until("the tag to come back", || async {
        let tags = bed.volume_tags(&id).await?;
        Ok((tags.get("team").map(String::as_str) == Some("storage")).then_some(()))
    })
    .await?;
    // One DeleteTags (the test's), one CreateTags (the controller's repair).
    ensure_counts(&bed.calls().await?, &[("CreateTags", 1), ("DeleteTags", 1)])?;
    bed.wait_for::<EbsVolume>(NAME, "Ready", |v| is_ready(v) && plan(v).is_empty())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_volume_detached_outside_is_reattached_at_the_next_resync() -> Result<()> {
    let bed = Bed::start("driftdetach", &["--resync-seconds", "3"]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    bed.create::<EbsVolume>(
        NAME,
        json!({
            "availabilityZone": "us-east-1a", "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "attached as specified and Ready", |v| {
            attached_only_to(v, &instance, "/dev/sdf")
        })
        .await?;
    let id = volume_id(&v)?;
    bed.ec2()
        .detach_volume()
        .volume_id(&id)
        .instance_id(&instance)
        .send()
        .await?;
    bed.wait_until("AWS to show the volume detached", || async {
        Ok(bed
            .describe_volume(&id)
            .await?
            .attachments()
            .is_empty()
            .then_some(()))
    })
    .await?;
    bed.wait_until("the volume to be attached again in AWS", || async {
        let v = bed.describe_volume(&id).await?;
        let back = v.attachments().iter().any(|a| {
            a.instance_id() == Some(instance.as_str())
                && a.device() == Some("/dev/sdf")
                && a.state().map(|s| s.as_str()) == Some("attached")
        });
        Ok(back.then_some(()))
    })
    .await?;
    bed.wait_for::<EbsVolume>(NAME, "attached and Ready again", |v| {
        attached_only_to(v, &instance, "/dev/sdf")
    })
    .await?;
    // The controller's first attach and its re-attach; the test's detach.
    ensure_counts(
        &bed.calls().await?,
        &[("AttachVolume", 2), ("DetachVolume", 1)],
    )?;
    Ok(())
}

#[tokio::test]
async fn a_volume_modified_outside_is_modified_back_at_the_next_resync() -> Result<()> {
    let bed = Bed::start("driftmodify", &["--resync-seconds", "3"]).await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 10, "iops": 4000 }),
    )
    .await?;
    let id = volume_id(&bed.wait_for::<EbsVolume>(NAME, "Ready", is_ready).await?)?;
    bed.ec2()
        .modify_volume()
        .volume_id(&id)
        .iops(5000)
        .send()
        .await?;
    // The controller lets the outside modification finish, then modifies back.
    let v = bed
        .wait_for::<EbsVolume>(NAME, "iops back to 4000 and Ready", |v| {
            is_ready(v)
                && v.status.as_ref().and_then(|s| s.iops) == Some(4000)
                && v.status.as_ref().map(|s| s.recent_modifications.len()) == Some(2)
        })
        .await?;
    ensure!(plan(&v).is_empty(), "{:?}", v.status);
    bed.wait_until(
        "AWS to report iops 4000, modification completed",
        || async {
            let iops = bed.describe_volume(&id).await?.iops();
            let state = modification_state(&bed, &id).await?;
            Ok((iops == Some(4000) && state.as_deref() == Some("completed")).then_some(()))
        },
    )
    .await?;
    // The test's ModifyVolume and the controller's.
    ensure_counts(&bed.calls().await?, &[("ModifyVolume", 2)])?;
    Ok(())
}

#[tokio::test]
async fn under_observe_only_drift_is_reported_in_the_plan_and_nothing_is_changed() -> Result<()> {
    let bed = Bed::start("driftobserve", &["--resync-seconds", "3"]).await?;
    let instance = bed.run_instances("us-east-1a", 1).await?.remove(0);
    // A volume made outside, exactly as the spec will describe it.
    let id = bed
        .outside_volume_from(bed.volume_request(10, &[("team", "storage")]).iops(4000))
        .await?;
    bed.ec2()
        .attach_volume()
        .volume_id(&id)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await?;
    bed.wait_until("the volume to be attached", || async {
        let v = bed.describe_volume(&id).await?;
        let attached = v
            .attachments()
            .iter()
            .any(|a| a.state().map(|s| s.as_str()) == Some("attached"));
        Ok(attached.then_some(()))
    })
    .await?;

    bed.create::<EbsVolume>(
        NAME,
        json!({
            "volumeId": id, "managementPolicy": "ObserveOnly",
            "sizeGiB": 10, "iops": 4000, "tags": { "team": "storage" },
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    bed.wait_for::<EbsVolume>(NAME, "observed in use", |v| {
        v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("in-use")
            && attachments(v).len() == 1
    })
    .await?;

    // Drift: a tag removed, iops changed, the volume detached, all outside.
    bed.ec2()
        .delete_tags()
        .resources(&id)
        .tags(Tag::builder().key("team").build())
        .send()
        .await?;
    bed.ec2()
        .modify_volume()
        .volume_id(&id)
        .iops(5000)
        .send()
        .await?;
    bed.ec2()
        .detach_volume()
        .volume_id(&id)
        .instance_id(&instance)
        .send()
        .await?;
    let before = bed.calls().await?;

    let tag_words = format!("tag {id}: team=storage");
    let attach_words = format!("attach {id} to {instance} as /dev/sdf");
    let modify_words = format!("modify {id}: iops 5000 -> 4000");
    let v = bed
        .wait_for::<EbsVolume>(NAME, "the drift to be reported in status.plan", |v| {
            let plan = plan(v);
            v.status.as_ref().and_then(|s| s.iops) == Some(5000)
                && plan.contains(&tag_words)
                && plan.contains(&attach_words)
                && plan.contains(&modify_words)
        })
        .await?;
    ensure!(
        has_condition(&v, READY, ConditionStatus::False, "OutOfSync"),
        "{:?}",
        v.status
    );
    ensure!(
        has_condition(&v, PROGRESSING, ConditionStatus::False, "ObserveOnly"),
        "{:?}",
        v.status
    );

    // Several resyncs later, nothing was changed in AWS.
    tokio::time::sleep(QUIET).await;
    let after = bed.calls().await?;
    for action in [
        "CreateTags",
        "DeleteTags",
        "AttachVolume",
        "DetachVolume",
        "ModifyVolume",
        "CreateVolume",
        "DeleteVolume",
    ] {
        ensure!(
            delta(&before, &after, action) == 0,
            "{action} under ObserveOnly: {before:?} -> {after:?}"
        );
    }
    ensure!(
        after.count("DescribeVolumes") > before.count("DescribeVolumes"),
        "no resync happened: {before:?} -> {after:?}"
    );
    // Only the test's own calls, ever.
    ensure_counts(
        &after,
        &[
            ("CreateVolume", 1),
            ("AttachVolume", 1),
            ("DetachVolume", 1),
            ("ModifyVolume", 1),
            ("DeleteTags", 1),
            ("CreateTags", 0),
        ],
    )?;
    let aws = bed.describe_volume(&id).await?;
    ensure!(
        aws.iops() == Some(5000) && aws.attachments().is_empty() && aws.tags().is_empty(),
        "{aws:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_volume_deleted_outside_is_reported_and_never_re_created() -> Result<()> {
    let bed = Bed::start("driftdelete", &["--resync-seconds", "3"]).await?;
    bed.create::<EbsVolume>(
        NAME,
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 10 }),
    )
    .await?;
    let id = volume_id(&bed.wait_for::<EbsVolume>(NAME, "Ready", is_ready).await?)?;
    bed.ec2().delete_volume().volume_id(&id).send().await?;
    let v = bed
        .wait_for::<EbsVolume>(NAME, "Synced=False with reason VolumeNotFound", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "VolumeNotFound")
                && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("NotFound")
        })
        .await?;
    ensure!(
        has_condition(&v, READY, ConditionStatus::False, "VolumeNotFound"),
        "{:?}",
        v.status
    );
    let synced = condition(&v, SYNCED).context("no Synced")?;
    ensure!(
        synced.message.contains(&id) && synced.message.contains("not re-created"),
        "{synced:?}"
    );
    let before = bed.calls().await?;
    tokio::time::sleep(QUIET).await;
    let after = bed.calls().await?;
    ensure!(
        after.count("DescribeVolumes") > before.count("DescribeVolumes"),
        "no resync happened: {before:?} -> {after:?}"
    );
    ensure_counts(&after, &[("CreateVolume", 1), ("DeleteVolume", 1)])?;
    let v = bed.get::<EbsVolume>(NAME).await?;
    ensure!(
        v.status.as_ref().and_then(|s| s.volume_id.as_deref()) == Some(id.as_str()),
        "{:?}",
        v.status
    );
    Ok(())
}
