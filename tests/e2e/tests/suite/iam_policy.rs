//! The IAM policy the project ships (`deploy/iam-policy.json`) is enough, and no more than
//! enough: the controller signs as an IAM user whose only permissions are that policy, on an
//! emulator that evaluates it (resources, tag conditions, tag-on-create; see
//! `tests/emulator/ec2emu/iam.py`), and each kind lives its whole life without one refused
//! call; with one action taken out, the call surfaces as `Synced=False` `AccessDenied`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{InstanceType, Placement, ResourceType, Tag, TagSpecification};
use e2e::Bed;
use e2e::bed::{ZONE, condition_message, volume_id};
use ec2_reconciler::api::conditions::{ConditionStatus, READY, SYNCED};
use ec2_reconciler::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use ec2_reconciler::plan::tenancy::GRANT_TAG;
use serde_json::{Value, json};

/// The committed policy, as an operator would attach it.
fn shipped_policy() -> Result<Value> {
    let path = e2e::paths::repo_root().join("deploy/iam-policy.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The shipped policy with `action` taken out of every statement.
fn policy_without(action: &str) -> Result<Value> {
    let mut policy = shipped_policy()?;
    let statements = policy["Statement"]
        .as_array_mut()
        .context("no Statement list")?;
    let mut removed = 0;
    for statement in statements.iter_mut() {
        if let Some(actions) = statement["Action"].as_array_mut() {
            let before = actions.len();
            actions.retain(|a| a != action);
            removed += before - actions.len();
        }
    }
    statements.retain(|s| s["Action"].as_array().is_some_and(|a| !a.is_empty()));
    ensure!(removed > 0, "{action} is in no statement");
    Ok(policy)
}

/// A bed whose controller has only `policy`; the namespace gets no grant from a label, so
/// what it acts on without owning must carry the grant tag (as the policy requires).
async fn bed(prefix: &str, policy: Value) -> Result<Bed> {
    bed_with(prefix, policy, &[]).await
}

async fn bed_with(prefix: &str, policy: Value, args: &[&str]) -> Result<Bed> {
    Bed::builder(prefix)
        .untrusted()
        .args(args)
        .iam_policy(policy)
        .start()
        .await
}

/// Nothing was refused, and the controller's IAM user made every call of `actions`.
async fn only_the_policy_was_used(bed: &Bed, actions: &[&str]) -> Result<()> {
    let refusals = bed.emu().iam_refusals().await?;
    ensure!(refusals.is_empty(), "refused: {refusals:?}");
    let user = bed.iam_user().context("no IAM user")?;
    let principals = bed.emu().principals().await?;
    let by_user: BTreeMap<String, u64> = principals
        .get(&user.access_key_id)
        .map(|p| p.calls.clone())
        .unwrap_or_default();
    for action in actions {
        ensure!(
            by_user.get(*action).copied().unwrap_or(0) > 0,
            "{action} was not called by the controller's IAM user: {by_user:?}"
        );
    }
    Ok(())
}

/// Tags `id` (as its owner in AWS would) with the grant for the bed's namespace.
async fn grant(bed: &Bed, id: &str) -> Result<()> {
    bed.ec2()
        .create_tags()
        .resources(id)
        .tags(
            Tag::builder()
                .key(GRANT_TAG)
                .value(bed.namespace()?)
                .build(),
        )
        .send()
        .await
        .context("CreateTags")?;
    Ok(())
}

#[tokio::test]
async fn an_ebs_volume_is_created_modified_and_deleted_with_only_the_shipped_policy() -> Result<()>
{
    let bed = bed("iam-ebs", shipped_policy()?).await?;
    bed.create::<EbsVolume>(
        "data",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "tags": { "team": "storage" } }),
    )
    .await?;
    bed.wait_ready::<EbsVolume>("data").await?;
    bed.edit::<EbsVolume>("data", json!({ "sizeGiB": 10, "tags": { "team": "db" } }))
        .await?;
    let grown = bed
        .wait_for::<EbsVolume>("data", "10 GiB and Ready", |v| {
            v.status.as_ref().and_then(|s| s.size_gib) == Some(10) && e2e::bed::is_ready(v)
        })
        .await?;
    let id = volume_id(&grown)?;
    let tags = bed.volume_tags(&id).await?;
    ensure!(
        tags.get("team").map(String::as_str) == Some("db"),
        "{tags:?}"
    );

    bed.delete::<EbsVolume>("data").await?;
    bed.wait_gone::<EbsVolume>("data").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateVolume") == 1
            && calls.count("ModifyVolume") == 1
            && calls.count("DeleteVolume") == 1,
        "{:?}",
        calls.mutating()
    );
    only_the_policy_was_used(
        &bed,
        &[
            "DescribeVolumes",
            "CreateVolume",
            "ModifyVolume",
            "CreateTags",
            "DeleteVolume",
        ],
    )
    .await
}

#[tokio::test]
async fn an_image_of_a_granted_instance_is_made_and_deregistered_with_only_the_shipped_policy()
-> Result<()> {
    let bed = bed("iam-ami", shipped_policy()?).await?;
    let instance = bed.run_instance(ZONE).await?;
    grant(&bed, &instance).await?;
    bed.create::<AmiImage>(
        "web",
        json!({
            "name": "web-1",
            "source": { "instance": { "instanceId": instance, "noReboot": true } },
            "tags": { "team": "web" },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("web").await?;
    ensure!(
        ready.status.as_ref().and_then(|s| s.state.as_deref()) == Some("available"),
        "{:?}",
        ready.status
    );
    bed.delete::<AmiImage>("web").await?;
    bed.wait_gone::<AmiImage>("web").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateImage") == 1 && calls.count("DeregisterImage") == 1,
        "{:?}",
        calls.mutating()
    );
    only_the_policy_was_used(&bed, &["CreateImage", "DescribeImages", "DeregisterImage"]).await
}

#[tokio::test]
async fn a_shared_deprecated_copy_is_made_and_deregistered_with_only_the_shipped_policy()
-> Result<()> {
    const SHARED_WITH: &str = "111122223333";
    let bed = bed_with(
        "iam-ami-copy",
        shipped_policy()?,
        &["--share-allow-accounts", SHARED_WITH],
    )
    .await?;
    let source = bed
        .emu()
        .seed_image(json!({ "owner": "amazon", "name": "base-linux", "region": "us-west-2" }))
        .await?;
    let source_id = source["image_id"].as_str().context("no image_id")?;
    bed.create::<AmiImage>(
        "base",
        json!({
            "name": "base-copy",
            "source": { "copy": { "sourceImageId": source_id, "sourceRegion": "us-west-2" } },
            "launchPermissions": { "accountIds": [SHARED_WITH], "snapshotCreateVolumePermissions": true },
            // Within AWS's ten years for a private image.
            "deprecationTime": "2031-01-01T00:00:00Z",
        }),
    )
    .await?;
    bed.wait_ready::<AmiImage>("base").await?;
    bed.wait_until("the launch permission and the deprecation", || async {
        let calls = bed.calls().await?;
        Ok((calls.count("ModifyImageAttribute") > 0
            && calls.count("ModifySnapshotAttribute") > 0
            && calls.count("EnableImageDeprecation") > 0)
            .then_some(()))
    })
    .await?;
    bed.delete::<AmiImage>("base").await?;
    bed.wait_gone::<AmiImage>("base").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CopyImage") == 1 && calls.count("DeregisterImage") == 1,
        "{:?}",
        calls.mutating()
    );
    only_the_policy_was_used(
        &bed,
        &[
            "CopyImage",
            "ModifyImageAttribute",
            "ModifySnapshotAttribute",
            "EnableImageDeprecation",
            "DeregisterImage",
        ],
    )
    .await
}

#[tokio::test]
async fn an_image_registered_from_a_granted_snapshot_is_made_and_deregistered_with_only_the_shipped_policy()
-> Result<()> {
    let bed = bed("iam-ami-reg", shipped_policy()?).await?;
    let volume = bed.outside_volume(8, &[]).await?;
    let snapshot = bed.completed_snapshot(&volume).await?;
    grant(&bed, &snapshot).await?;
    bed.create::<AmiImage>(
        "root",
        json!({
            "name": "from-snapshot",
            "source": { "snapshots": {
                "architecture": "x86_64",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMappings": [{ "deviceName": "/dev/xvda", "snapshotId": snapshot }],
            } },
        }),
    )
    .await?;
    bed.wait_ready::<AmiImage>("root").await?;
    bed.delete::<AmiImage>("root").await?;
    bed.wait_gone::<AmiImage>("root").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("RegisterImage") == 1 && calls.count("DeregisterImage") == 1,
        "{:?}",
        calls.mutating()
    );
    // The user's snapshot is not the controller's to delete.
    let left = bed
        .ec2()
        .describe_snapshots()
        .snapshot_ids(&snapshot)
        .send()
        .await?;
    ensure!(left.snapshots().len() == 1, "{left:?}");
    only_the_policy_was_used(&bed, &["RegisterImage", "DeregisterImage"]).await
}

#[tokio::test]
async fn a_granted_volume_is_migrated_to_completed_with_only_the_shipped_policy() -> Result<()> {
    let bed = bed("iam-evm", shipped_policy()?).await?;
    // A type without instance store: stopping it loses nothing.
    let instance = bed
        .ec2()
        .run_instances()
        .image_id(e2e::bed::IMAGE)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .placement(Placement::builder().availability_zone(ZONE).build())
        .send()
        .await
        .context("RunInstances")?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("no instance")?;
    let source = bed
        .outside_volume_from(
            bed.volume_request(8, &[]).tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(
                        Tag::builder()
                            .key(GRANT_TAG)
                            .value(bed.namespace()?)
                            .build(),
                    )
                    .build(),
            ),
        )
        .await?;
    grant(&bed, &instance).await?;
    bed.ec2()
        .attach_volume()
        .volume_id(&source)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await
        .context("AttachVolume")?;
    bed.wait_until("the attachment", || async {
        let v = bed.describe_volume(&source).await?;
        Ok((v.state().map(|s| s.as_str()) == Some("in-use")).then_some(()))
    })
    .await?;
    let key = bed.kms().create_key().send().await.context("CreateKey")?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("no key")?;
    bed.kms()
        .create_alias()
        .alias_name("alias/data")
        .target_key_id(&key_id)
        .send()
        .await
        .context("CreateAlias")?;
    bed.clear_calls().await?;

    bed.create::<EncryptedVolumeMigration>(
        "encrypt",
        json!({ "source": { "volumeId": source }, "kmsKeyId": "alias/data" }),
    )
    .await?;
    let done = bed
        .wait_condition::<EncryptedVolumeMigration>(
            "encrypt",
            READY,
            ConditionStatus::True,
            "Completed",
        )
        .await?;
    let target = done
        .status
        .as_ref()
        .and_then(|s| s.target_volume_id.clone())
        .context("no target volume")?;
    let v = bed.describe_volume(&target).await?;
    ensure!(v.encrypted() == Some(true), "{v:?}");
    only_the_policy_was_used(
        &bed,
        &[
            "kms:DescribeKey",
            "CreateSnapshot",
            "CopySnapshot",
            "CreateVolume",
            "StopInstances",
            "DetachVolume",
            "AttachVolume",
            "StartInstances",
            "DeleteSnapshot",
        ],
    )
    .await
}

#[tokio::test]
async fn a_call_the_policy_does_not_allow_is_synced_false_access_denied_naming_it_until_granted()
-> Result<()> {
    // A short resync: a rejection is looked at again at each one.
    let bed = bed_with(
        "iam-denied",
        policy_without("ec2:ModifyVolume")?,
        &["--resync-seconds", "3"],
    )
    .await?;
    bed.create::<EbsVolume>("data", json!({ "availabilityZone": ZONE, "sizeGiB": 8 }))
        .await?;
    bed.wait_ready::<EbsVolume>("data").await?;
    bed.edit::<EbsVolume>("data", json!({ "sizeGiB": 10 }))
        .await?;
    let denied = bed
        .wait_condition::<EbsVolume>("data", SYNCED, ConditionStatus::False, "AccessDenied")
        .await?;
    let message = condition_message(&denied, SYNCED);
    ensure!(message.contains("ec2:ModifyVolume"), "{message}");
    let refusals = bed.emu().iam_refusals().await?;
    ensure!(
        refusals.keys().collect::<Vec<_>>() == ["ec2:ModifyVolume"],
        "{refusals:?}"
    );
    let id = volume_id(&denied)?;
    ensure!(
        bed.describe_volume(&id).await?.size() == Some(8),
        "the volume changed"
    );

    // The permission granted in IAM heals the object without a spec edit.
    let user = bed.iam_user().context("no IAM user")?;
    bed.emu()
        .put_iam_policy(&user.name, &shipped_policy()?)
        .await?;
    bed.wait_for::<EbsVolume>("data", "10 GiB and Synced", |v| {
        v.status.as_ref().and_then(|s| s.size_gib) == Some(10)
            && e2e::bed::is(v, SYNCED, ConditionStatus::True)
    })
    .await?;
    // Refused calls count too: exactly one went through.
    let refused = bed
        .emu()
        .iam_refusals()
        .await?
        .get("ec2:ModifyVolume")
        .copied()
        .unwrap_or(0);
    let calls = bed.calls().await?;
    ensure!(
        refused >= 1 && calls.count("ModifyVolume") == refused + 1,
        "{refused} refused; {:?}",
        calls.mutating()
    );
    Ok(())
}
