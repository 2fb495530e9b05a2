//! Tenancy across namespaces: an object acts only on what it owns or what an administrator
//! granted its namespace. Every refusal is a condition with no mutating AWS call, heals once
//! granted without a spec edit, and never names another namespace's object.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use aws_sdk_ec2::types::Tag;
use e2e::Bed;
use e2e::bed::{ZONE, condition_message, has_condition, is_ready, volume_id};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
use ec2_reconciler::aws::identity::{CLUSTER_SESSION_TAG, NAMESPACE_SESSION_TAG};
use ec2_reconciler::plan::tags::UID_TAG;
use ec2_reconciler::plan::tenancy::{GRANT_TAG, TRUSTED_LABEL};
use ec2_reconciler::reconcile::tenancy::IAM_ROLE_ANNOTATION;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;

/// The emulator's mutating calls since the last clear, without the test's own.
async fn mutating(bed: &Bed) -> Result<BTreeMap<String, u64>> {
    Ok(bed.calls().await?.mutating())
}

/// The notes of every event in namespace `ns`.
async fn event_notes(bed: &Bed, ns: &str) -> Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(bed.client()?, ns);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|e| e.note)
        .collect())
}

#[tokio::test]
async fn another_namespaces_volume_is_refused_to_every_policy_and_survives_the_refused_object()
-> Result<()> {
    // Both namespaces are trusted: one owner per resource holds even so.
    let bed = Bed::builder("owned").other_namespace().start().await?;
    let owner_ns = bed.namespace()?.to_owned();
    let other_ns = bed.other_namespace()?.to_owned();
    bed.create::<EbsVolume>(
        "payroll-db",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8 }),
    )
    .await?;
    let owned = bed.wait_ready::<EbsVolume>("payroll-db").await?;
    let id = volume_id(&owned)?;
    let tags_before = bed.volume_tags(&id).await?;
    bed.clear_calls().await?;

    for (name, policy) in [("grab", "Manage"), ("peek", "ObserveOnly")] {
        bed.create_in::<EbsVolume>(
            &other_ns,
            name,
            json!({ "volumeId": id, "managementPolicy": policy, "deletionPolicy": "Delete" }),
        )
        .await?;
        let refused = bed
            .wait_for_in::<EbsVolume>(&other_ns, name, "Synced=False OwnedByAnotherObject", |v| {
                has_condition(v, SYNCED, ConditionStatus::False, "OwnedByAnotherObject")
            })
            .await?;
        let message = condition_message(&refused, SYNCED);
        ensure!(
            message.contains("another object") && !message.contains(&owner_ns),
            "{name}: the message names the owner's namespace: {message}"
        );
        ensure!(!message.contains("payroll-db"), "{name}: {message}");
    }

    // Deleting the refused adopter (deletionPolicy Delete) leaves the volume alone.
    bed.delete_in::<EbsVolume>(&other_ns, "grab").await?;
    bed.wait_gone_in::<EbsVolume>(&other_ns, "grab").await?;
    ensure!(
        mutating(&bed).await?.is_empty(),
        "mutating calls for a refused adoption: {:?}",
        mutating(&bed).await?
    );
    ensure!(
        bed.volume_tags(&id).await? == tags_before,
        "the owner's tags changed"
    );
    ensure!(is_ready(&bed.get::<EbsVolume>("payroll-db").await?));
    for note in event_notes(&bed, &other_ns).await? {
        ensure!(
            !note.contains(&owner_ns) && !note.contains("payroll-db"),
            "an event in {other_ns} names the owner: {note}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn unowned_volumes_and_instances_need_a_grant_and_heal_once_granted() -> Result<()> {
    // A resync far beyond the test: grants are seen by the recheck, not by the resync.
    let bed = Bed::builder("grants")
        .untrusted()
        .args(&["--resync-seconds", "3600", "--recheck-seconds", "2"])
        .start()
        .await?;
    let ns = bed.namespace()?.to_owned();
    let outside = bed.outside_volume(8, &[("team", "storage")]).await?;
    let instance = bed.run_instance(ZONE).await?;
    bed.clear_calls().await?;

    bed.create::<EbsVolume>("adopt", json!({ "volumeId": outside }))
        .await?;
    bed.create::<EbsVolume>(
        "watch",
        json!({ "volumeId": outside, "managementPolicy": "ObserveOnly" }),
    )
    .await?;
    bed.create::<EbsVolume>(
        "attach",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 8,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
        }),
    )
    .await?;
    bed.wait_condition::<EbsVolume>("adopt", SYNCED, ConditionStatus::False, "NotGranted")
        .await?;
    bed.wait_condition::<EbsVolume>("attach", SYNCED, ConditionStatus::False, "NotGranted")
        .await?;
    // Observing is a read: allowed by default.
    bed.wait_ready::<EbsVolume>("watch").await?;
    // The namespace's own new volume is created; only the attachment waits for a grant.
    let calls = bed.calls().await?;
    ensure!(
        calls.count("AttachVolume") == 0 && calls.count("CreateTags") == 0,
        "{:?}",
        calls.mutating()
    );
    ensure!(calls.count("CreateVolume") == 1, "{:?}", calls.mutating());
    ensure!(
        !bed.volume_tags(&outside).await?.contains_key(UID_TAG),
        "the unowned volume was tagged"
    );

    // The volume's owner in AWS grants it with a tag naming the namespace.
    bed.ec2()
        .create_tags()
        .resources(&outside)
        .tags(Tag::builder().key(GRANT_TAG).value(&ns).build())
        .send()
        .await?;
    let adopted = bed.wait_ready::<EbsVolume>("adopt").await?;
    ensure!(
        adopted.metadata.generation == Some(1),
        "the spec was edited"
    );
    ensure!(
        bed.volume_tags(&outside).await?.get(UID_TAG) == adopted.uid().as_ref(),
        "the granted volume is tagged as adopt's"
    );

    // The administrator trusts the namespace: the attachment goes ahead.
    bed.label_namespace(&ns, TRUSTED_LABEL, Some("true"))
        .await?;
    bed.wait_for::<EbsVolume>("attach", "attached once the namespace is trusted", |v| {
        is_ready(v)
            && v.status
                .as_ref()
                .is_some_and(|s| s.attachments.iter().any(|a| a.instance_id == instance))
    })
    .await?;
    ensure!(bed.calls().await?.count("AttachVolume") == 1);
    Ok(())
}

#[tokio::test]
async fn observing_unowned_volumes_can_be_turned_off_by_the_administrator() -> Result<()> {
    let bed = Bed::builder("no-reads")
        .untrusted()
        .args(&["--deny-observe-unowned"])
        .start()
        .await?;
    let outside = bed.outside_volume(8, &[]).await?;
    bed.clear_calls().await?;
    bed.create::<EbsVolume>(
        "watch",
        json!({ "volumeId": outside, "managementPolicy": "ObserveOnly" }),
    )
    .await?;
    let refused = bed
        .wait_condition::<EbsVolume>("watch", SYNCED, ConditionStatus::False, "ObserveNotAllowed")
        .await?;
    ensure!(
        refused.status.as_ref().and_then(|s| s.size_gib).is_none(),
        "nothing observed is shown"
    );
    ensure!(mutating(&bed).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn each_namespace_acts_in_aws_as_the_role_its_administrator_named() -> Result<()> {
    const ROLE_A: &str = "arn:aws:iam::123456789012:role/team-a";
    const ROLE_B: &str = "arn:aws:iam::123456789012:role/team-b";
    let bed = Bed::builder("roles")
        .other_namespace()
        .namespace_annotation(IAM_ROLE_ANNOTATION, ROLE_A)
        .other_namespace_annotation(IAM_ROLE_ANNOTATION, ROLE_B)
        .start()
        .await?;
    let ns_a = bed.namespace()?.to_owned();
    let ns_b = bed.other_namespace()?.to_owned();
    let spec = json!({ "availabilityZone": ZONE, "sizeGiB": 8 });
    bed.create::<EbsVolume>("a", spec.clone()).await?;
    bed.create_in::<EbsVolume>(&ns_b, "b", spec).await?;
    bed.wait_ready::<EbsVolume>("a").await?;
    bed.wait_for_in::<EbsVolume>(&ns_b, "b", "Ready", is_ready)
        .await?;

    // Every EC2 call of each namespace was signed by a session of its own role, tagged
    // with its namespace and the cluster; the controller's own identity made none.
    let principals = bed.emu().principals().await?;
    let mut creates_by_namespace = BTreeMap::new();
    for (key, principal) in &principals {
        let ec2_calls: u64 = principal
            .calls
            .iter()
            .filter(|(action, _)| !action.contains(':'))
            .map(|(_, n)| n)
            .sum();
        let Some(session) = &principal.session else {
            ensure!(
                ec2_calls == 0,
                "{key} (not an assumed role) made EC2 calls: {:?}",
                principal.calls
            );
            continue;
        };
        let namespace = session
            .tags
            .get(NAMESPACE_SESSION_TAG)
            .cloned()
            .unwrap_or_default();
        let expected_role = if namespace == ns_a { ROLE_A } else { ROLE_B };
        ensure!(
            (namespace == ns_a || namespace == ns_b) && session.role_arn == expected_role,
            "a session of {} tagged {:?}",
            session.role_arn,
            session.tags
        );
        ensure!(
            session.tags.get(CLUSTER_SESSION_TAG).map(String::as_str) == Some("default"),
            "{:?}",
            session.tags
        );
        *creates_by_namespace.entry(namespace).or_insert(0) +=
            principal.calls.get("CreateVolume").copied().unwrap_or(0);
    }
    ensure!(
        creates_by_namespace == BTreeMap::from([(ns_a, 1), (ns_b, 1)]),
        "CreateVolume by namespace: {creates_by_namespace:?}"
    );
    Ok(())
}
