//! The `aws` layer against the AWS emulator: batched observation, retries and their metrics,
//! ClientToken idempotency and KMS key resolution.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use e2e::bed::ZONE;
use e2e::{Bed, Fault};
use ec2_reconciler::api::VolumeType;
use ec2_reconciler::aws::client::{ClientTimeouts, CreateVolumeRequest, Ec2};
use ec2_reconciler::aws::rate::RateConfig;
use ec2_reconciler::aws::tags::{CLUSTER_TAG, Owner, UID_TAG, creation_tags};
use ec2_reconciler::aws::tokens::client_token;
use ec2_reconciler::aws::{
    AwsCallCounter, AwsCallLabels, AwsClients, AwsError, ObserverConfig, SnapshotObserver,
    VolumeObserver,
};
use serde_json::json;

const REGION: &str = "us-east-1";

/// The layer under test, in-process: the controller's AWS clients on the bed's emulator
/// (short backoffs) and the call counter they report to.
struct Layer {
    clients: AwsClients,
    calls: AwsCallCounter,
}

impl Layer {
    fn ec2(&self) -> Arc<dyn Ec2> {
        self.clients.ec2(REGION)
    }

    fn count(&self, action: &'static str, outcome: &'static str) -> u64 {
        self.calls
            .get_or_create(&AwsCallLabels { action, outcome })
            .get()
    }
}

/// An emulator only (volumes instant, optimizing held) and the layer on it.
async fn start() -> Result<(Bed, Layer)> {
    let bed = Bed::aws_only()
        .transitions(json!({"volume-create": 0, "volume-modify": 0, "volume-optimize": 1000}))
        .start()
        .await?;
    let calls = AwsCallCounter::default();
    let rate = RateConfig {
        base_backoff: Duration::from_millis(20),
        throttle_backoff: Duration::from_millis(50),
        ..RateConfig::default()
    };
    let clients = AwsClients::new(
        bed.emu().sdk_config(REGION).await,
        rate,
        ClientTimeouts::default(),
        calls.clone(),
    );
    Ok((bed, Layer { clients, calls }))
}

fn owner(uid: &str) -> Owner {
    Owner {
        cluster: "c1".to_owned(),
        kind: "EbsVolume".to_owned(),
        namespace: "ns".to_owned(),
        name: "data".to_owned(),
        uid: uid.to_owned(),
    }
}

#[tokio::test]
async fn one_sweep_of_1200_volumes_takes_three_pages_and_a_second_read_takes_none() -> Result<()> {
    let (bed, layer) = start().await?;
    let ids = bed.outside_volumes(1200, &[(CLUSTER_TAG, "c1")]).await?;
    bed.outside_volumes(3, &[(CLUSTER_TAG, "another-cluster")])
        .await?;
    // Two volumes get a modification, which the sweep must report.
    for id in &ids[..2] {
        bed.ec2()
            .modify_volume()
            .volume_id(id)
            .size(2)
            .send()
            .await
            .context("ModifyVolume")?;
    }
    bed.emu().clear_calls().await?;

    let observer = VolumeObserver::new(layer.ec2(), "c1", ObserverConfig::default());
    let sweep = observer.sweep().await?;
    ensure!(
        sweep.entries.len() == 1200,
        "swept {} volumes",
        sweep.entries.len()
    );
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("DescribeVolumes") == 3, "{calls:?}");
    ensure!(
        calls.count("DescribeVolumesModifications") <= 3,
        "{calls:?}"
    );
    ensure!(calls.total() <= 6, "{calls:?}");

    let first = observer
        .get(&ids[0])
        .await?
        .context("the first volume is missing")?;
    ensure!(first.modification.is_some(), "{first:?}");
    ensure!(first.volume.tags.get(CLUSTER_TAG).map(String::as_str) == Some("c1"));
    let last = observer
        .get(&ids[1199])
        .await?
        .context("the last volume is missing")?;
    ensure!(last.modification.is_none(), "{last:?}");
    let again = bed.emu().calls().await?;
    ensure!(
        again == calls,
        "a read within the resync interval made calls: {again:?}"
    );
    ensure!(layer.count("DescribeVolumes", "success") == 3);
    Ok(())
}

#[tokio::test]
async fn ten_concurrent_refreshes_in_the_window_make_one_describe_call() -> Result<()> {
    let (bed, layer) = start().await?;
    let mut ids = bed.outside_volumes(9, &[("team", "a")]).await?;
    ids.push("vol-0123456789abcdef0".to_owned()); // does not exist
    bed.emu().clear_calls().await?;

    let observer = VolumeObserver::new(layer.ec2(), "c1", ObserverConfig::default());
    let results = futures::future::join_all(ids.iter().map(|id| {
        let observer = observer.clone();
        async move { observer.refresh(id).await }
    }))
    .await;
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("DescribeVolumes") == 1, "{calls:?}");
    ensure!(
        calls.count("DescribeVolumesModifications") <= 1,
        "{calls:?}"
    );
    for (id, result) in ids.iter().zip(&results).take(9) {
        let entry = result.clone()?.with_context(|| format!("{id} not found"))?;
        ensure!(&entry.volume.volume_id == id);
    }
    ensure!(
        matches!(results[9], Ok(None)),
        "a missing volume reads as none: {:?}",
        results[9]
    );

    // A later get() is answered from what the refresh read.
    observer.get(&ids[0]).await?.context("missing")?;
    let after = bed.emu().calls().await?;
    ensure!(
        after.count("DescribeVolumes") == 2,
        "one sweep page, no second refresh: {after:?}"
    );
    Ok(())
}

fn create_request(uid: &str, attempt: u32) -> CreateVolumeRequest {
    CreateVolumeRequest {
        availability_zone: ZONE.to_owned(),
        volume_type: VolumeType::Gp3,
        size_gib: Some(10),
        client_token: client_token(uid, "create", attempt),
        tags: creation_tags(
            &owner(uid),
            None,
            &BTreeMap::from([("team".to_owned(), "a".to_owned())]),
        ),
        ..CreateVolumeRequest::default()
    }
}

#[tokio::test]
async fn a_throttled_create_is_retried_and_a_validation_error_is_not() -> Result<()> {
    let (bed, layer) = start().await?;
    bed.emu()
        .inject(Fault::throttle("CreateVolume").count(2))
        .await?;
    let volume = layer
        .ec2()
        .create_volume(create_request("uid-throttled", 0))
        .await?;
    ensure!(volume.volume_id.starts_with("vol-"), "{volume:?}");
    ensure!(
        volume.tags.get(UID_TAG).map(String::as_str) == Some("uid-throttled"),
        "{volume:?}"
    );
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.count("CreateVolume") == 3 && calls.faulted_count("CreateVolume") == 2,
        "{calls:?}"
    );
    ensure!(layer.count("CreateVolume", "throttled") == 2);
    ensure!(layer.count("CreateVolume", "success") == 1);

    bed.emu().clear_calls().await?;
    let mut bad = create_request("uid-invalid", 0);
    bad.volume_type = VolumeType::Gp2;
    bad.iops = Some(3000); // gp2 takes no iops
    match layer.ec2().create_volume(bad).await {
        Err(AwsError::Client { code, .. }) => ensure!(
            code == "InvalidParameterValue" || code.starts_with("Invalid"),
            "{code}"
        ),
        other => bail!("expected a client error, got {other:?}"),
    }
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("CreateVolume") == 1, "{calls:?}");
    ensure!(layer.count("CreateVolume", "client_error") == 1);
    Ok(())
}

#[tokio::test]
async fn a_server_error_and_a_dropped_connection_are_retried() -> Result<()> {
    let (bed, layer) = start().await?;
    bed.outside_volumes(2, &[(CLUSTER_TAG, "c1")]).await?;
    bed.emu()
        .inject(Fault::server_error("DescribeVolumes"))
        .await?;
    bed.emu().inject(Fault::drop("DescribeVolumes")).await?;
    let observer = VolumeObserver::new(layer.ec2(), "c1", ObserverConfig::default());
    let sweep = observer.sweep().await?;
    ensure!(sweep.entries.len() == 2);
    ensure!(layer.count("DescribeVolumes", "server_error") == 1);
    ensure!(layer.count("DescribeVolumes", "transport_error") == 1);
    ensure!(layer.count("DescribeVolumes", "success") == 1);
    Ok(())
}

#[tokio::test]
async fn snapshots_are_swept_by_cluster_tag_and_refreshed_in_one_batch() -> Result<()> {
    let (bed, layer) = start().await?;
    let volumes = bed
        .outside_volumes(4, &[("purpose", "snapshot-source")])
        .await?;
    let mut ours = Vec::new();
    for (i, volume_id) in volumes.iter().enumerate() {
        let cluster = if i < 3 { "c1" } else { "c2" };
        let snapshot = bed
            .ec2()
            .create_snapshot()
            .volume_id(volume_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .tags(Tag::builder().key(CLUSTER_TAG).value(cluster).build())
                    .build(),
            )
            .send()
            .await?;
        let id = snapshot.snapshot_id().context("no snapshot id")?.to_owned();
        if cluster == "c1" {
            ours.push(id);
        }
    }
    let observer = SnapshotObserver::new(layer.ec2(), "c1", ObserverConfig::default());
    let sweep = observer.sweep().await?;
    let mut swept: Vec<&String> = sweep.entries.keys().collect();
    swept.sort();
    let mut expected: Vec<&String> = ours.iter().collect();
    expected.sort();
    ensure!(swept == expected, "swept {swept:?}, expected {expected:?}");
    ensure!(layer.count("DescribeSnapshots", "success") == 1);

    // Three reads in one merge window, one of a snapshot that does not exist: one call, and
    // the missing one is an absence, not an error for the others.
    let missing = "snap-0123456789abcdef0".to_owned();
    let (a, b, gone) = tokio::join!(
        observer.refresh(&ours[0]),
        observer.refresh(&ours[1]),
        observer.refresh(&missing)
    );
    ensure!(a?.is_some() && b?.is_some(), "our snapshots are found");
    ensure!(gone?.is_none(), "a missing snapshot reads as None");
    ensure!(layer.count("DescribeSnapshots", "success") == 2);
    Ok(())
}

#[tokio::test]
async fn the_same_client_token_returns_the_same_volume() -> Result<()> {
    // The bed holds the emulator: it must live to the end of the test.
    let (_bed, layer) = start().await?;
    let ec2 = layer.ec2();
    let first = ec2.create_volume(create_request("uid-token", 0)).await?;
    let second = ec2.create_volume(create_request("uid-token", 0)).await?;
    ensure!(
        first.volume_id == second.volume_id,
        "{first:?} vs {second:?}"
    );

    let mut other = create_request("uid-token", 0);
    other.size_gib = Some(20);
    match ec2.create_volume(other).await {
        Err(AwsError::IdempotentParameterMismatch { .. }) => {}
        other => bail!("expected IdempotentParameterMismatch, got {other:?}"),
    }
    let bumped = ec2.create_volume(create_request("uid-token", 1)).await?;
    ensure!(bumped.volume_id != first.volume_id);

    let observer = VolumeObserver::new(ec2, "c1", ObserverConfig::default());
    let owned = observer.owned_by("uid-token").await?;
    ensure!(owned.len() == 2, "{owned:?}");
    Ok(())
}

#[tokio::test]
async fn kms_keys_resolve_to_their_arn_by_id_arn_alias_and_alias_arn() -> Result<()> {
    let (bed, layer) = start().await?;
    let kms = bed.kms();
    let key = kms.create_key().send().await.context("CreateKey")?;
    let meta = key.key_metadata().context("no key metadata")?;
    let arn = meta.arn().context("no arn")?.to_owned();
    let key_id = meta.key_id().to_owned();
    kms.create_alias()
        .alias_name("alias/ebs-data")
        .target_key_id(&key_id)
        .send()
        .await
        .context("CreateAlias")?;
    let alias_arn = arn.replace(&format!("key/{key_id}"), "alias/ebs-data");

    let ec2 = layer.ec2();
    for name in [
        key_id.clone(),
        arn.clone(),
        "alias/ebs-data".to_owned(),
        alias_arn,
    ] {
        let resolved = ec2
            .describe_key(name.clone())
            .await
            .with_context(|| name.clone())?;
        ensure!(resolved.arn == arn, "{name} -> {resolved:?}");
        ensure!(resolved.enabled, "{resolved:?}");
    }

    kms.disable_key()
        .key_id(&key_id)
        .send()
        .await
        .context("DisableKey")?;
    let disabled = ec2.describe_key(key_id).await?;
    ensure!(!disabled.enabled, "{disabled:?}");

    match ec2.describe_key("alias/does-not-exist".to_owned()).await {
        Err(e) if e.is_not_found() => {}
        other => bail!("expected not found, got {other:?}"),
    }
    ensure!(layer.count("kms:DescribeKey", "success") == 5);
    Ok(())
}
