//! AmiImage end to end on the corrected emulator: an image of an instance (tagged, with its
//! snapshots, once), a copy, launch permissions within the administrator's allowlist,
//! tenancy, crash safety and deletion.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{Filter, Tag};
use e2e::bed::{ZONE, condition_message, has_condition, is_ready, tags_of};
use e2e::{Bed, Fault, FaultKind};
use ec2_reconciler::api::AmiImage;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
use ec2_reconciler::plan::tags::UID_TAG;
use ec2_reconciler::plan::tenancy::GRANT_TAG;
use kube::ResourceExt;
use serde_json::json;

pub(crate) const SHARED_WITH: &str = "111122223333";

pub(crate) fn image_id(image: &AmiImage) -> Result<String> {
    image
        .status
        .as_ref()
        .and_then(|s| s.image_id.clone())
        .context("no status.imageId")
}

/// The snapshots carrying this object's UID tag, by id -> tags.
async fn snapshots_of(bed: &Bed, uid: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let out = bed
        .ec2()
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{UID_TAG}"))
                .values(uid)
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .snapshots()
        .iter()
        .map(|s| {
            (
                s.snapshot_id().unwrap_or_default().to_owned(),
                tags_of(s.tags()),
            )
        })
        .collect())
}

async fn instance(bed: &Bed) -> Result<String> {
    bed.run_instance(ZONE).await
}

#[tokio::test]
async fn an_image_of_an_instance_is_made_once_tagged_with_its_snapshots_and_deregistered_with_them()
-> Result<()> {
    let bed = Bed::builder("ami-instance")
        .transitions(json!({ "image": 2 }))
        .start()
        .await?;
    let instance = instance(&bed).await?;
    bed.create::<AmiImage>(
        "web",
        json!({
            "name": "web-1",
            "description": "web server",
            "source": { "instance": { "instanceId": instance, "noReboot": true } },
            "tags": { "team": "web" },
            "snapshotTags": { "cost-center": "42" },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("web").await?;
    let id = image_id(&ready)?;
    let uid = ready.uid().context("no uid")?;
    let status = ready.status.as_ref().context("no status")?;
    ensure!(status.state.as_deref() == Some("available"), "{status:?}");
    ensure!(
        status.root_device_type.as_deref() == Some("ebs"),
        "{status:?}"
    );
    ensure!(
        status
            .block_device_mappings
            .iter()
            .any(|m| m.snapshot_id.is_some()),
        "no mapping with a snapshot: {status:?}"
    );
    let calls = bed.calls().await?;
    ensure!(calls.count("CreateImage") == 1, "{:?}", calls.mutating());

    // The image and every snapshot AWS made for it carry our tags and the user's.
    let image = bed
        .ec2()
        .describe_images()
        .image_ids(&id)
        .send()
        .await?
        .images()
        .first()
        .cloned()
        .context("the image is not visible")?;
    let tags = tags_of(image.tags());
    ensure!(
        tags.get(UID_TAG) == Some(&uid)
            && tags.get("team").map(String::as_str) == Some("web")
            && !tags.contains_key("cost-center"),
        "{tags:?}"
    );
    let snapshots = snapshots_of(&bed, &uid).await?;
    let in_image: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    ensure!(!in_image.is_empty());
    for snapshot in &in_image {
        let tags = snapshots
            .get(snapshot)
            .with_context(|| format!("{snapshot} is not tagged as ours: {snapshots:?}"))?;
        ensure!(
            tags.get("team").map(String::as_str) == Some("web")
                && tags.get("cost-center").map(String::as_str) == Some("42"),
            "{tags:?}"
        );
    }

    // Deleting deregisters it, and its snapshots go with it.
    bed.delete::<AmiImage>("web").await?;
    bed.wait_gone::<AmiImage>("web").await?;
    ensure!(bed.calls().await?.count("DeregisterImage") == 1);
    ensure!(
        snapshots_of(&bed, &uid).await?.is_empty(),
        "snapshots left behind: {:?}",
        snapshots_of(&bed, &uid).await?
    );
    Ok(())
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_by_its_tags_not_made_twice() -> Result<()> {
    let bed = Bed::start("ami-lost", &[]).await?;
    let instance = instance(&bed).await?;
    // CreateImage is applied, then the connection drops before the answer.
    bed.emu()
        .inject(Fault::new("CreateImage", FaultKind::DropAfter))
        .await?;
    bed.create::<AmiImage>(
        "lost",
        json!({ "name": "lost-1", "source": { "instance": { "instanceId": instance } } }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("lost").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.faulted_count("CreateImage") == 1,
        "the answer was not lost: {calls:?}"
    );
    ensure!(calls.count("CreateImage") == 1, "{:?}", calls.mutating());
    let named = bed
        .ec2()
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values("lost-1").build())
        .send()
        .await?;
    ensure!(named.images().len() == 1);
    ensure!(named.images().first().and_then(|i| i.image_id()) == Some(image_id(&ready)?.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_copy_is_shared_only_with_allowed_accounts_and_never_made_public_without_leave()
-> Result<()> {
    let bed = Bed::builder("ami-copy")
        .args(&["--share-allow-accounts", SHARED_WITH])
        .start()
        .await?;
    let source = bed
        .emu()
        .seed_image(json!({ "owner": "amazon", "name": "base-linux", "region": "us-west-2" }))
        .await?;
    let source_id = source["image_id"]
        .as_str()
        .context("no image_id")?
        .to_owned();
    let copy = |permissions: serde_json::Value| {
        json!({
            "name": "base-copy",
            "source": { "copy": { "sourceImageId": source_id, "sourceRegion": "us-west-2" } },
            "launchPermissions": permissions,
        })
    };

    // Outside the allowlist, or public: refused before anything is copied.
    bed.create::<AmiImage>(
        "too-wide",
        copy(json!({ "accountIds": [SHARED_WITH, "444455556666"] })),
    )
    .await?;
    bed.create::<AmiImage>("public", copy(json!({ "public": true })))
        .await?;
    let too_wide = bed
        .wait_condition::<AmiImage>(
            "too-wide",
            SYNCED,
            ConditionStatus::False,
            "SharingNotAllowed",
        )
        .await?;
    ensure!(condition_message(&too_wide, SYNCED).contains("444455556666"));
    bed.wait_condition::<AmiImage>(
        "public",
        SYNCED,
        ConditionStatus::False,
        "PublicSharingRefused",
    )
    .await?;
    ensure!(bed.calls().await?.count("CopyImage") == 0);

    // Within it: copied once, shared exactly as asked.
    bed.create::<AmiImage>("shared", copy(json!({ "accountIds": [SHARED_WITH] })))
        .await?;
    let ready = bed.wait_ready::<AmiImage>("shared").await?;
    let id = image_id(&ready)?;
    ensure!(bed.calls().await?.count("CopyImage") == 1);
    let granted = bed
        .wait_until("the launch permission", || async {
            let users = shared_with(&bed, &id).await?;
            Ok((!users.is_empty()).then_some(users))
        })
        .await?;
    ensure!(granted == vec![SHARED_WITH.to_owned()], "{granted:?}");
    Ok(())
}

#[tokio::test]
async fn imaging_an_instance_needs_a_grant_and_heals_once_the_instance_is_tagged() -> Result<()> {
    let bed = Bed::builder("ami-grant")
        .untrusted()
        .args(&["--recheck-seconds", "2"])
        .start()
        .await?;
    let instance = instance(&bed).await?;
    bed.clear_calls().await?;
    bed.create::<AmiImage>(
        "theirs",
        json!({ "name": "theirs-1", "source": { "instance": { "instanceId": instance } } }),
    )
    .await?;
    let refused = bed
        .wait_condition::<AmiImage>("theirs", SYNCED, ConditionStatus::False, "NotGranted")
        .await?;
    ensure!(!is_ready(&refused));
    ensure!(
        bed.calls().await?.mutating().is_empty(),
        "{:?}",
        bed.calls().await?.mutating()
    );

    // Whoever owns the instance in AWS grants it to this namespace.
    bed.ec2()
        .create_tags()
        .resources(&instance)
        .tags(
            Tag::builder()
                .key(GRANT_TAG)
                .value(bed.namespace()?)
                .build(),
        )
        .send()
        .await?;
    let ready = bed.wait_ready::<AmiImage>("theirs").await?;
    ensure!(ready.metadata.generation == Some(1), "the spec was edited");
    ensure!(bed.calls().await?.count("CreateImage") == 1);
    Ok(())
}

#[tokio::test]
async fn another_namespaces_image_cannot_be_adopted_and_survives_the_attempt() -> Result<()> {
    let bed = Bed::builder("ami-owned").other_namespace().start().await?;
    let instance = instance(&bed).await?;
    bed.create::<AmiImage>(
        "golden",
        json!({ "name": "golden-1", "source": { "instance": { "instanceId": instance } } }),
    )
    .await?;
    let id = image_id(&bed.wait_ready::<AmiImage>("golden").await?)?;
    let other = bed.other_namespace()?.to_owned();
    bed.clear_calls().await?;

    bed.create_in::<AmiImage>(
        &other,
        "grab",
        json!({ "name": "golden-1", "imageId": id, "deletionPolicy": "Delete" }),
    )
    .await?;
    let refused = bed
        .wait_for_in::<AmiImage>(&other, "grab", "Synced=False OwnedByAnotherObject", |i| {
            has_condition(i, SYNCED, ConditionStatus::False, "OwnedByAnotherObject")
        })
        .await?;
    let message = condition_message(&refused, SYNCED);
    ensure!(
        !message.contains(bed.namespace()?) && !message.contains("golden\""),
        "{message}"
    );
    ensure!(
        refused
            .status
            .as_ref()
            .and_then(|s| s.state.clone())
            .is_none(),
        "the other namespace's image shows in status: {:?}",
        refused.status
    );
    bed.delete_in::<AmiImage>(&other, "grab").await?;
    bed.wait_gone_in::<AmiImage>(&other, "grab").await?;
    ensure!(
        bed.calls().await?.mutating().is_empty(),
        "{:?}",
        bed.calls().await?.mutating()
    );
    ensure!(is_ready(&bed.get::<AmiImage>("golden").await?));
    Ok(())
}

#[tokio::test]
async fn a_selector_copies_its_newest_match_once_and_only_reports_a_newer_one() -> Result<()> {
    let bed = Bed::start("ami-selector", &["--resync-seconds", "4"]).await?;
    let seed = |name: &str, created: &str| {
        json!({
            "owner": "amazon", "name": name, "region": "us-west-2", "creation_date": created,
        })
    };
    bed.emu()
        .seed_image(seed("base-2026-01", "2026-01-05T00:00:00Z"))
        .await?;
    let newest = bed
        .emu()
        .seed_image(seed("base-2026-02", "2026-02-05T00:00:00Z"))
        .await?["image_id"]
        .as_str()
        .context("no image_id")?
        .to_owned();
    bed.create::<AmiImage>(
        "base",
        json!({
            "name": "base-copy",
            "source": { "copy": {
                "sourceRegion": "us-west-2",
                "sourceImageSelector": { "owners": ["amazon"], "namePattern": "base-*" },
            } },
        }),
    )
    .await?;
    let ready = bed.wait_ready::<AmiImage>("base").await?;
    let status = ready.status.as_ref().context("no status")?;
    ensure!(
        status.source_image_id.as_deref() == Some(newest.as_str()),
        "pinned {:?}, the newest is {newest}",
        status.source_image_id
    );

    // A newer match appears: reported at the next look, never copied by itself.
    let newer = bed
        .emu()
        .seed_image(seed("base-2026-03", "2026-03-05T00:00:00Z"))
        .await?["image_id"]
        .as_str()
        .context("no image_id")?
        .to_owned();
    let reported = bed
        .wait_for::<AmiImage>("base", "the newer match to be reported", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.newer_source_image_id.as_deref() == Some(newer.as_str()))
        })
        .await?;
    ensure!(is_ready(&reported));
    ensure!(
        reported
            .status
            .as_ref()
            .and_then(|s| s.source_image_id.as_deref())
            == Some(newest.as_str())
    );
    ensure!(bed.calls().await?.count("CopyImage") == 1);
    Ok(())
}

#[tokio::test]
async fn a_protected_image_stays_until_the_spec_lifts_the_protection() -> Result<()> {
    let bed = Bed::start("ami-protected", &[]).await?;
    let instance = instance(&bed).await?;
    bed.create::<AmiImage>(
        "kept",
        json!({
            "name": "kept-1",
            "source": { "instance": { "instanceId": instance } },
            "deregistrationProtection": { "enabled": true },
        }),
    )
    .await?;
    let ready = bed
        .wait_for::<AmiImage>("kept", "Ready and protected", |i| {
            is_ready(i)
                && i.status
                    .as_ref()
                    .and_then(|s| s.deregistration_protection.as_deref())
                    == Some("enabled-without-cooldown")
        })
        .await?;
    let id = image_id(&ready)?;

    bed.delete::<AmiImage>("kept").await?;
    let held = bed
        .wait_condition::<AmiImage>(
            "kept",
            SYNCED,
            ConditionStatus::False,
            "DeregistrationProtected",
        )
        .await?;
    ensure!(condition_message(&held, SYNCED).contains("deregistrationProtection.enabled"));
    ensure!(bed.calls().await?.count("DeregisterImage") == 0);
    ensure!(
        bed.calls()
            .await?
            .count("DisableImageDeregistrationProtection")
            == 0
    );

    bed.edit::<AmiImage>(
        "kept",
        json!({ "deregistrationProtection": { "enabled": false } }),
    )
    .await?;
    bed.wait_gone::<AmiImage>("kept").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("DisableImageDeregistrationProtection") == 1
            && calls.count("DeregisterImage") == 1,
        "{:?}",
        calls.mutating()
    );
    let left = bed.ec2().describe_images().image_ids(&id).send().await;
    ensure!(
        left.map(|out| out.images().is_empty()).unwrap_or(true),
        "{id} is still registered"
    );
    Ok(())
}

/// The images carrying this object's UID tag.
pub(crate) async fn images_of(bed: &Bed, uid: &str, region: Option<&str>) -> Result<Vec<String>> {
    let ec2 = match region {
        Some(region) => bed.ec2_in(region).await,
        None => bed.ec2().clone(),
    };
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{UID_TAG}"))
                .values(uid)
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn lost_register_and_copy_answers_leave_exactly_one_image_each() -> Result<()> {
    let bed = Bed::start("ami-lost-more", &[]).await?;
    // A completed snapshot to register from, made outside the controller.
    let volume = bed.outside_volume(8, &[]).await?;
    let snapshot = bed.completed_snapshot(&volume).await?;
    let source = bed
        .emu()
        .seed_image(json!({ "owner": "amazon", "name": "base-linux", "region": "us-west-2" }))
        .await?["image_id"]
        .as_str()
        .context("no image_id")?
        .to_owned();

    // Each call is applied, then its answer is lost.
    for action in ["RegisterImage", "CopyImage"] {
        bed.emu()
            .inject(Fault::new(action, FaultKind::DropAfter))
            .await?;
    }
    bed.create::<AmiImage>(
        "registered",
        json!({
            "name": "registered-1",
            "source": { "snapshots": {
                "architecture": "x86_64",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMappings": [{ "deviceName": "/dev/xvda", "snapshotId": snapshot }],
            } },
        }),
    )
    .await?;
    bed.create::<AmiImage>(
        "copied",
        json!({
            "name": "copied-1",
            "source": { "copy": { "sourceImageId": source, "sourceRegion": "us-west-2" } },
        }),
    )
    .await?;
    for name in ["registered", "copied"] {
        let ready = bed.wait_ready::<AmiImage>(name).await?;
        let uid = ready.uid().context("no uid")?;
        let images = images_of(&bed, &uid, None).await?;
        ensure!(
            images == vec![image_id(&ready)?],
            "{name}: images tagged as its own: {images:?}"
        );
    }
    // RegisterImage has no token: never sent again. CopyImage carries one, so the client's
    // own retry of the lost call is safe: AWS answers it with the same image (checked above).
    let calls = bed.calls().await?;
    ensure!(
        calls.faulted_count("RegisterImage") == 1 && calls.count("RegisterImage") == 1,
        "{calls:?}"
    );
    ensure!(calls.faulted_count("CopyImage") == 1, "{calls:?}");
    Ok(())
}

/// The accounts `id` is shared with, read by the test.
pub(crate) async fn shared_with(bed: &Bed, id: &str) -> Result<Vec<String>> {
    let attribute = bed
        .ec2()
        .describe_image_attribute()
        .image_id(id)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await?;
    Ok(attribute
        .launch_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn a_grant_removed_outside_is_found_by_one_call_per_account_and_put_back() -> Result<()> {
    let bed = Bed::start(
        "ami-drift",
        &[
            "--resync-seconds",
            "4",
            "--share-allow-accounts",
            SHARED_WITH,
        ],
    )
    .await?;
    let instance = instance(&bed).await?;
    bed.create::<AmiImage>(
        "shared",
        json!({
            "name": "shared-1",
            "source": { "instance": { "instanceId": instance } },
            "launchPermissions": { "accountIds": [SHARED_WITH] },
        }),
    )
    .await?;
    let id = image_id(&bed.wait_ready::<AmiImage>("shared").await?)?;
    bed.wait_until("the grant", || async {
        Ok((shared_with(&bed, &id).await? == vec![SHARED_WITH.to_owned()]).then_some(()))
    })
    .await?;

    // Removed outside the controller.
    bed.ec2()
        .modify_image_attribute()
        .image_id(&id)
        .launch_permission(
            aws_sdk_ec2::types::LaunchPermissionModifications::builder()
                .remove(
                    aws_sdk_ec2::types::LaunchPermission::builder()
                        .user_id(SHARED_WITH)
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    bed.clear_calls().await?;
    bed.wait_until("the grant to be put back", || async {
        Ok((shared_with(&bed, &id).await? == vec![SHARED_WITH.to_owned()]).then_some(()))
    })
    .await?;
    let calls = bed.calls().await?;
    // The test's own reads are DescribeImageAttribute too: the controller's are the rest.
    ensure!(calls.count("ModifyImageAttribute") == 1, "{calls:?}");
    Ok(())
}
