//! The `aws` layer against the AWS emulator: batched observation, retries and their metrics,
//! ClientToken idempotency, KMS key resolution, and the AMI calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use e2e::bed::ZONE;
use e2e::{Bed, Fault};
use ec2_reconciler::api::VolumeType;
use ec2_reconciler::aws::client::{
    ClientTimeouts, CopyImageRequest, CreateImageRequest, CreateVolumeRequest, Ec2, Filter,
    ImageMappingRequest, RegisterImageRequest,
};
use ec2_reconciler::aws::rate::RateConfig;
use ec2_reconciler::aws::tags::{CLUSTER_TAG, Owner, Tags, UID_TAG, creation_tags};
use ec2_reconciler::aws::tokens::client_token;
use ec2_reconciler::aws::{
    AwsCallCounter, AwsCallLabels, AwsClients, AwsError, ImageObserver, ObserverConfig,
    SnapshotObserver, VolumeObserver,
};
use ec2_reconciler::plan::observed::{ImageState, LaunchPermissionSet, ObservedImage};
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

    fn ec2_in(&self, region: &str) -> Arc<dyn Ec2> {
        self.clients.ec2(region)
    }

    fn count(&self, action: &'static str, outcome: &'static str) -> u64 {
        self.calls
            .get_or_create(&AwsCallLabels { action, outcome })
            .get()
    }
}

/// An emulator only (volumes instant, optimizing held) and the layer on it.
async fn start() -> Result<(Bed, Layer)> {
    start_with(json!({"volume-create": 0, "volume-modify": 0, "volume-optimize": 1000})).await
}

/// An emulator with these pending-state durations and the layer on it.
async fn start_with(transitions: serde_json::Value) -> Result<(Bed, Layer)> {
    let bed = Bed::aws_only().transitions(transitions).start().await?;
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
async fn one_sweep_of_1200_volumes_takes_three_pages_and_a_second_read_takes_none_and_the_next_sweep_one_listed_modifications_call()
-> Result<()> {
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
    // The first sweep knows no volume: one call listing the Region's modifications in
    // flight, and each volume's latest by id (500 per call), once.
    ensure!(
        calls.count("DescribeVolumesModifications") == 1 + 3,
        "{calls:?}"
    );
    ensure!(calls.total() == 7, "{calls:?}");

    let first = observer
        .get(&ids[0])
        .await?
        .context("the first volume is missing")?;
    ensure!(first.modification.is_some(), "{first:?}");
    ensure!(first.volume.tags.get(CLUSTER_TAG) == Some("c1"));
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

    // The next sweep knows every volume: its pages and one filtered call, nothing by id.
    observer.invalidate().await;
    let resync = observer.sweep().await?;
    ensure!(resync.entries.len() == 1200);
    let idle = bed.emu().calls().await?;
    ensure!(
        idle.count("DescribeVolumes") == 3 + 3
            && idle.count("DescribeVolumesModifications") == 4 + 1
            && idle.total() == 7 + 4,
        "{idle:?}"
    );
    let first = resync.entries.get(&ids[0]).context("the first volume")?;
    ensure!(first.modification.is_some(), "carried over: {first:?}");
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
        volume.tags.get(UID_TAG) == Some("uid-throttled"),
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

// ---- AMIs --------------------------------------------------------------------------------

const OTHER_REGION: &str = "us-west-2";

/// An emulator whose images, copies and snapshots finish at once.
async fn start_images() -> Result<(Bed, Layer)> {
    start_with(json!({
        "volume-create": 0,
        "snapshot": 0,
        "image": 0,
        "copy-image": 0,
        "deregister": 0,
    }))
    .await
}

fn image_owner(name: &str, uid: &str) -> Owner {
    Owner {
        kind: "AmiImage".to_owned(),
        name: name.to_owned(),
        ..owner(uid)
    }
}

fn image_tags(uid: &str, cluster: &str) -> BTreeMap<String, String> {
    let mut tags = creation_tags(
        &image_owner("web", uid),
        None,
        &BTreeMap::from([("team".to_owned(), "a".to_owned())]),
    );
    tags.insert(CLUSTER_TAG.to_owned(), cluster.to_owned());
    tags
}

/// An image of a fresh instance, made through the layer, tagged for `cluster`.
async fn image_of_new_instance(
    bed: &Bed,
    layer: &Layer,
    name: &str,
    cluster: &str,
) -> Result<String> {
    let instance = bed.run_instances(ZONE, 1).await?;
    let id = layer
        .ec2()
        .create_image(CreateImageRequest {
            instance_id: instance[0].clone(),
            name: name.to_owned(),
            description: Some(format!("{name} for the aws layer tests")),
            no_reboot: true,
            tags: image_tags(&format!("uid-{name}"), cluster),
            snapshot_tags: BTreeMap::new(),
        })
        .await
        .with_context(|| format!("CreateImage {name}"))?;
    ensure!(id.starts_with("ami-"), "{id}");
    Ok(id)
}

/// The one image `id` as the layer reads it by id in `ec2`'s Region.
async fn image_by_id(ec2: &dyn Ec2, id: &str) -> Result<ObservedImage> {
    let found = ec2.describe_images_by_ids(vec![id.to_owned()]).await?;
    ensure!(found.len() == 1, "{id}: {found:?}");
    found.into_iter().next().context("no image")
}

/// Snapshots `ids` as the test's own client reads them in `region`.
async fn sdk_snapshots(
    bed: &Bed,
    region: &str,
    ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::Snapshot>> {
    let out = bed
        .ec2_in(region)
        .await
        .describe_snapshots()
        .set_snapshot_ids(Some(ids.to_vec()))
        .send()
        .await
        .context("DescribeSnapshots")?;
    Ok(out.snapshots().to_vec())
}

/// The tags of snapshots `ids`, read with the test's own client in `region`.
async fn snapshot_tags(
    bed: &Bed,
    region: &str,
    ids: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    Ok(sdk_snapshots(bed, region, ids)
        .await?
        .iter()
        .filter_map(|s| Some((s.snapshot_id()?.to_owned(), e2e::bed::tags_of(s.tags()))))
        .collect())
}

fn client_error_code<T: std::fmt::Debug>(result: Result<T, AwsError>) -> Result<String> {
    match result {
        Err(AwsError::Client { code, .. }) => Ok(code),
        other => bail!("expected an AwsError::Client, got {other:?}"),
    }
}

#[tokio::test]
async fn create_image_tags_image_and_snapshots_and_is_found_by_tag_and_by_id() -> Result<()> {
    let (bed, layer) = start_images().await?;
    let ec2 = layer.ec2();
    let id = image_of_new_instance(&bed, &layer, "c1-web-1", "c1").await?;
    let other_cluster = image_of_new_instance(&bed, &layer, "c2-web-1", "c2").await?;
    let expected = image_tags("uid-c1-web-1", "c1");

    // The test's own view: the image and every snapshot it made carry every tag.
    let out = bed
        .ec2()
        .describe_images()
        .image_ids(&id)
        .send()
        .await
        .context("DescribeImages")?;
    let sdk_image = out.images().first().context("image not found")?;
    ensure!(
        e2e::bed::tags_of(sdk_image.tags()) == expected,
        "{sdk_image:?}"
    );
    let snapshots: Vec<String> = sdk_image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
        .collect();
    ensure!(!snapshots.is_empty(), "{sdk_image:?}");
    let tags = snapshot_tags(&bed, REGION, &snapshots).await?;
    ensure!(tags.len() == snapshots.len(), "{tags:?}");
    for (snapshot, t) in &tags {
        ensure!(*t == expected, "{snapshot}: {t:?}");
    }

    // The name is CreateImage's idempotency key.
    let instance = bed.run_instances(ZONE, 1).await?;
    let again = ec2
        .create_image(CreateImageRequest {
            instance_id: instance[0].clone(),
            name: "c1-web-1".to_owned(),
            tags: expected.clone(),
            ..CreateImageRequest::default()
        })
        .await;
    let code = client_error_code(again)?;
    ensure!(code == "InvalidAMIName.Duplicate", "{code}");

    // Our cluster's own images, by tag, in pages of the smallest size.
    let page = ec2
        .describe_images_page(
            vec!["self".to_owned()],
            vec![Filter::tag(CLUSTER_TAG, "c1")],
            5,
            None,
        )
        .await?;
    let listed: Vec<&str> = page.items.iter().map(|i| i.image_id.as_str()).collect();
    ensure!(listed == [id.as_str()], "{listed:?}");
    ensure!(page.next_token.is_none(), "{page:?}");

    // By id: ours, a public image of another account, and one that does not exist.
    let public = bed
        .emu()
        .seed_image(json!({"owner": "amazon", "name": "al2023-x86_64", "region": REGION}))
        .await?;
    let public_id = public["image_id"]
        .as_str()
        .context("seeded image id")?
        .to_owned();
    let missing = "ami-0123456789abcdef0".to_owned();
    let mut found = ec2
        .describe_images_by_ids(vec![id.clone(), public_id.clone(), missing])
        .await?;
    found.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    let mut found_ids: Vec<&str> = found.iter().map(|i| i.image_id.as_str()).collect();
    found_ids.sort_unstable();
    let mut expected_ids = vec![id.as_str(), public_id.as_str()];
    expected_ids.sort_unstable();
    ensure!(found_ids == expected_ids, "{found:?}");
    let ours = found
        .iter()
        .find(|i| i.image_id == id)
        .context("ours missing")?;
    ensure!(ours.name == "c1-web-1", "{ours:?}");
    ensure!(ours.state == Some(ImageState::Available), "{ours:?}");
    ensure!(!ours.public && !ours.owner_id.is_empty(), "{ours:?}");
    ensure!(ours.root_device_type.as_deref() == Some("ebs"), "{ours:?}");
    ensure!(ours.creation_date.is_some(), "{ours:?}");
    ensure!(ours.deprecation_time.is_none(), "{ours:?}");
    ensure!(ours.tags == Tags::from(&expected), "{ours:?}");
    let mut observed_snapshots = ours.snapshot_ids();
    observed_snapshots.sort();
    let mut sdk_snapshots = snapshots.clone();
    sdk_snapshots.sort();
    ensure!(observed_snapshots == sdk_snapshots, "{ours:?}");
    let theirs = found
        .iter()
        .find(|i| i.image_id == public_id)
        .context("public missing")?;
    ensure!(
        theirs.public && theirs.owner_id != ours.owner_id,
        "{theirs:?}"
    );

    // The observer sweeps our cluster's images only (not the other cluster's, not the
    // public one).
    let observer = ImageObserver::new(ec2.clone(), "c1", ObserverConfig::default());
    let sweep = observer.sweep().await?;
    let swept: Vec<&String> = sweep.entries.keys().collect();
    ensure!(swept == [&id], "{swept:?} (other cluster: {other_cluster})");
    ensure!(observer.refresh(&public_id).await?.is_some());
    ensure!(layer.count("CreateImage", "client_error") == 1);
    Ok(())
}

#[tokio::test]
async fn copy_image_is_idempotent_by_token_encrypts_and_deregister_removes_its_snapshots()
-> Result<()> {
    let (bed, layer) = start_images().await?;
    let source = image_of_new_instance(&bed, &layer, "c1-src", "c1").await?;

    // A customer key in the destination Region.
    let kms = aws_sdk_kms::Client::new(&bed.emu().sdk_config(OTHER_REGION).await);
    let key = kms.create_key().send().await.context("CreateKey")?;
    let key_arn = key
        .key_metadata()
        .and_then(|m| m.arn())
        .context("no key arn")?
        .to_owned();

    let dest = layer.ec2_in(OTHER_REGION);
    let tags = image_tags("uid-copy", "c1");
    let request = CopyImageRequest {
        source_image_id: source.clone(),
        source_region: REGION.to_owned(),
        name: "c1-copy".to_owned(),
        description: Some("an encrypted copy".to_owned()),
        encrypted: true,
        kms_key_id: Some(key_arn.clone()),
        copy_image_tags: false,
        completion_duration_minutes: Some(30),
        client_token: client_token("uid-copy", "copy", 0),
        tags: tags.clone(),
        snapshot_tags: BTreeMap::new(),
    };
    let first = dest.copy_image(request.clone()).await?;
    let second = dest.copy_image(request.clone()).await?;
    ensure!(
        first == second,
        "same token, same copy: {first} vs {second}"
    );
    let mut other = request.clone();
    other.name = "c1-copy-2".to_owned();
    match dest.copy_image(other).await {
        Err(AwsError::IdempotentParameterMismatch { .. }) => {}
        other => bail!("expected IdempotentParameterMismatch, got {other:?}"),
    }
    ensure!(layer.count("CopyImage", "success") == 2);

    let copy = image_by_id(dest.as_ref(), &first).await?;
    ensure!(copy.state == Some(ImageState::Available), "{copy:?}");
    ensure!(copy.tags == Tags::from(&tags), "{copy:?}");
    ensure!(!copy.block_device_mappings.is_empty(), "{copy:?}");
    for m in copy
        .block_device_mappings
        .iter()
        .filter(|m| m.snapshot_id.is_some())
    {
        ensure!(m.encrypted == Some(true), "{m:?}");
    }
    // DescribeImages does not name a mapping's key (EbsBlockDevice.KmsKeyId is only for
    // launches): the snapshots do.
    let snapshots = copy.snapshot_ids();
    let copies = sdk_snapshots(&bed, OTHER_REGION, &snapshots).await?;
    ensure!(copies.len() == snapshots.len(), "{copies:?}");
    for snapshot in &copies {
        ensure!(snapshot.encrypted() == Some(true), "{snapshot:?}");
        ensure!(
            snapshot.kms_key_id() == Some(key_arn.as_str()),
            "{snapshot:?}"
        );
        ensure!(e2e::bed::tags_of(snapshot.tags()) == tags, "{snapshot:?}");
        // A time-based copy: each snapshot within the requested minutes.
        ensure!(
            snapshot.completion_duration_minutes() == Some(30),
            "{snapshot:?}"
        );
    }
    // Not in the source Region.
    ensure!(
        layer
            .ec2()
            .describe_images_by_ids(vec![first.clone()])
            .await?
            .is_empty()
    );

    dest.deregister_image(first.clone(), true).await?;
    let left = bed
        .ec2_in(OTHER_REGION)
        .await
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("snapshot-id")
                .set_values(Some(snapshots.clone()))
                .build(),
        )
        .send()
        .await
        .context("DescribeSnapshots")?;
    ensure!(left.snapshots().is_empty(), "{left:?}");
    let after = dest.describe_images_by_ids(vec![first.clone()]).await?;
    ensure!(
        after
            .iter()
            .all(|i| i.state == Some(ImageState::Deregistered)),
        "{after:?}"
    );
    // The source and its snapshots are untouched.
    let source_image = image_by_id(layer.ec2().as_ref(), &source).await?;
    ensure!(source_image.state == Some(ImageState::Available));
    Ok(())
}

#[tokio::test]
async fn launch_permissions_are_added_and_removed_and_public_is_refused_while_blocked() -> Result<()>
{
    let (bed, layer) = start_images().await?;
    let ec2 = layer.ec2();
    let id = image_of_new_instance(&bed, &layer, "c1-shared", "c1").await?;
    ensure!(
        ec2.describe_launch_permissions(id.clone())
            .await?
            .is_empty()
    );

    let accounts = |ids: &[&str]| LaunchPermissionSet {
        account_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..LaunchPermissionSet::default()
    };
    let org = "arn:aws:organizations::123456789012:organization/o-abcdefghij";
    let mut first = accounts(&["111122223333"]);
    first.organization_arns.insert(org.to_owned());
    ec2.modify_launch_permissions(id.clone(), first.clone(), LaunchPermissionSet::default())
        .await?;
    ensure!(ec2.describe_launch_permissions(id.clone()).await? == first);

    // One call adds one account and removes another.
    ec2.modify_launch_permissions(
        id.clone(),
        accounts(&["444455556666"]),
        accounts(&["111122223333"]),
    )
    .await?;
    let mut second = accounts(&["444455556666"]);
    second.organization_arns.insert(org.to_owned());
    ensure!(ec2.describe_launch_permissions(id.clone()).await? == second);

    // Nothing to change sends nothing.
    bed.emu().clear_calls().await?;
    ec2.modify_launch_permissions(
        id.clone(),
        LaunchPermissionSet::default(),
        LaunchPermissionSet::default(),
    )
    .await?;
    ensure!(bed.emu().calls().await?.count("ModifyImageAttribute") == 0);

    // Public is refused while image block public access is on (the default).
    ensure!(ec2.image_block_public_access_blocked().await?);
    let public = LaunchPermissionSet {
        public: true,
        ..LaunchPermissionSet::default()
    };
    let code = client_error_code(
        ec2.modify_launch_permissions(id.clone(), public.clone(), LaunchPermissionSet::default())
            .await,
    )?;
    ensure!(code == "OperationNotPermitted", "{code}");
    ensure!(!image_by_id(ec2.as_ref(), &id).await?.public);

    // ... and granted once it is off.
    bed.ec2()
        .disable_image_block_public_access()
        .send()
        .await
        .context("DisableImageBlockPublicAccess")?;
    ensure!(!ec2.image_block_public_access_blocked().await?);
    ec2.modify_launch_permissions(id.clone(), public.clone(), LaunchPermissionSet::default())
        .await?;
    ensure!(ec2.describe_launch_permissions(id.clone()).await?.public);
    ensure!(image_by_id(ec2.as_ref(), &id).await?.public);

    ec2.modify_launch_permissions(id.clone(), LaunchPermissionSet::default(), {
        let mut all = second.clone();
        all.public = true;
        all
    })
    .await?;
    ensure!(
        ec2.describe_launch_permissions(id.clone())
            .await?
            .is_empty()
    );
    ensure!(layer.count("ModifyImageAttribute", "client_error") == 1);
    Ok(())
}

#[tokio::test]
async fn description_and_deprecation_are_set_and_cleared() -> Result<()> {
    let (bed, layer) = start_images().await?;
    let ec2 = layer.ec2();
    let id = image_of_new_instance(&bed, &layer, "c1-old", "c1").await?;

    ec2.modify_image_description(id.clone(), "superseded".to_owned())
        .await?;
    let image = image_by_id(ec2.as_ref(), &id).await?;
    ensure!(
        image.description.as_deref() == Some("superseded"),
        "{image:?}"
    );

    // 30 days and 30 seconds after its creation: AWS rounds to the minute.
    let created = image.creation_date.context("no creation date")?;
    let at = created + Duration::from_secs(30 * 86_400 + 30);
    ec2.enable_image_deprecation(id.clone(), at).await?;
    let image = image_by_id(ec2.as_ref(), &id).await?;
    let deprecation = image.deprecation_time.context("no deprecation time")?;
    let off = (deprecation - at).num_seconds().abs();
    ensure!(off <= 60, "deprecation {deprecation} for {at}");

    ec2.disable_image_deprecation(id.clone()).await?;
    let image = image_by_id(ec2.as_ref(), &id).await?;
    ensure!(image.deprecation_time.is_none(), "{image:?}");
    Ok(())
}

#[tokio::test]
async fn register_image_from_a_completed_snapshot() -> Result<()> {
    let (bed, layer) = start_images().await?;
    let ec2 = layer.ec2();
    let volume = bed.outside_volume(4, &[("purpose", "register")]).await?;
    let snapshot = bed.completed_snapshot(&volume).await?;

    let tags = image_tags("uid-register", "c1");
    let root = ImageMappingRequest {
        device_name: "/dev/xvda".to_owned(),
        snapshot_id: Some(snapshot.clone()),
        volume_type: Some(VolumeType::Gp3),
        size_gib: Some(8),
        iops: Some(3000),
        throughput_mibps: Some(125),
        delete_on_termination: true,
        ..ImageMappingRequest::default()
    };
    let request = RegisterImageRequest {
        name: "c1-registered".to_owned(),
        description: Some("from a snapshot".to_owned()),
        architecture: "x86_64".to_owned(),
        virtualization_type: "hvm".to_owned(),
        boot_mode: Some("uefi".to_owned()),
        ena_support: true,
        imds_support: Some("v2.0".to_owned()),
        tpm_support: Some("v2.0".to_owned()),
        uefi_data: None,
        root_device_name: Some("/dev/xvda".to_owned()),
        mappings: vec![
            root.clone(),
            ImageMappingRequest {
                device_name: "/dev/sdf".to_owned(),
                volume_type: Some(VolumeType::Gp3),
                size_gib: Some(20),
                ..ImageMappingRequest::default()
            },
        ],
        image_location: None,
        tags: tags.clone(),
    };
    let id = ec2.register_image(request.clone()).await?;
    let image = image_by_id(ec2.as_ref(), &id).await?;
    ensure!(image.name == "c1-registered", "{image:?}");
    ensure!(image.state == Some(ImageState::Available), "{image:?}");
    ensure!(image.architecture.as_deref() == Some("x86_64"), "{image:?}");
    ensure!(
        image.virtualization_type.as_deref() == Some("hvm"),
        "{image:?}"
    );
    ensure!(
        image.root_device_name.as_deref() == Some("/dev/xvda"),
        "{image:?}"
    );
    ensure!(image.tags == Tags::from(&tags), "{image:?}");
    ensure!(
        (
            image.boot_mode.as_deref(),
            image.imds_support.as_deref(),
            image.tpm_support.as_deref()
        ) == (Some("uefi"), Some("v2.0"), Some("v2.0")),
        "{image:?}"
    );
    let mapped = image
        .block_device_mappings
        .iter()
        .find(|m| m.device_name == "/dev/xvda")
        .context("no root mapping")?;
    ensure!(
        mapped.snapshot_id.as_deref() == Some(snapshot.as_str()),
        "{mapped:?}"
    );
    ensure!(
        (
            mapped.size_gib,
            mapped.volume_type,
            mapped.delete_on_termination
        ) == (Some(8), Some(VolumeType::Gp3), Some(true)),
        "{mapped:?}"
    );
    let data = image
        .block_device_mappings
        .iter()
        .find(|m| m.device_name == "/dev/sdf")
        .context("no data mapping")?;
    ensure!(
        data.snapshot_id.is_none() && data.size_gib == Some(20),
        "{data:?}"
    );

    // AWS refuses `Encrypted` on a mapping from a snapshot: the error surfaces as is.
    let mut encrypted = request.clone();
    encrypted.name = "c1-registered-encrypted".to_owned();
    encrypted.mappings = vec![ImageMappingRequest {
        encrypted: Some(true),
        ..root
    }];
    let code = client_error_code(ec2.register_image(encrypted).await)?;
    ensure!(
        code == "InvalidBlockDeviceMapping" || code == "InvalidParameterCombination",
        "{code}"
    );
    Ok(())
}
