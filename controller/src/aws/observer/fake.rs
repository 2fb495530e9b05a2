//! An in-memory [`Ec2`] for the observers' unit tests: it serves volumes, modifications,
//! snapshots, images and instances, and counts the calls that reach it. Snapshots and images
//! by id come from the trait's provided `describe_snapshots_by_ids` /
//! `describe_images_by_ids`, so the observer tests exercise their chunking through this
//! fake's pages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::aws::client::*;
use crate::aws::errors::AwsError;
use crate::aws::observer::volumes::MODIFICATION_BATCH;
use crate::aws::tags::{CLUSTER_TAG, Tags};
use crate::plan::observed::{
    ImageState, LaunchPermissionSet, ModificationState, ObservedImage, ObservedModification,
    ObservedSnapshot, ObservedVolume,
};

/// The account the fake answers as (`self` in an owners list).
pub const FAKE_ACCOUNT: &str = "123456789012";

#[derive(Default)]
pub struct Fake {
    pub volumes: Vec<ObservedVolume>,
    /// The state of each volume's latest modification (volumes without one are absent).
    pub modified: Mutex<HashMap<String, ModificationState>>,
    pub pages: AtomicU32,
    pub by_ids: AtomicU32,
    /// DescribeVolumesModifications by volume ids.
    pub modification_calls: AtomicU32,
    /// DescribeVolumesModifications filtered on `modification-state`, without ids.
    pub listed_modification_calls: AtomicU32,
    /// Ids that "were deleted": DescribeVolumesModifications fails naming them.
    pub deleted: HashSet<String>,
    /// DescribeVolumes is throttled.
    pub throttled: AtomicBool,
    pub snapshots: Vec<ObservedSnapshot>,
    pub snapshot_calls: AtomicU32,
    /// Every image the account can see: its own (owner [`FAKE_ACCOUNT`]) and others'.
    pub images: Vec<ObservedImage>,
    pub image_calls: AtomicU32,
    pub instances: Vec<ObservedInstance>,
    pub instance_calls: AtomicU32,
    pub instance_types: Vec<InstanceTypeStorage>,
    pub instance_type_calls: AtomicU32,
    /// A DescribeVolumes page reads the volumes when it is requested and answers this much
    /// later, like a slow page of a long sweep.
    pub page_delay: Option<Duration>,
    /// A DescribeVolumes page waits this long before it is sent, like a page waiting for
    /// its rate-limit token behind other calls.
    pub token_wait: Option<Duration>,
    /// How long successive DescribeVolumes-by-id calls take to answer (read when sent,
    /// answered this much later); calls beyond the list answer at once.
    pub by_ids_delays: Mutex<std::collections::VecDeque<Duration>>,
    /// Sizes changed "by a write" since the fake was built, seen by every read after it.
    pub resized: Mutex<HashMap<String, i64>>,
    /// Volumes still `creating`.
    pub creating: Mutex<HashSet<String>>,
}

impl Fake {
    /// A write lands: every read from now on sees the volume at `size_gib`.
    pub fn resize(&self, volume_id: &str, size_gib: i64) {
        if let Ok(mut resized) = self.resized.lock() {
            resized.insert(volume_id.to_owned(), size_gib);
        }
    }

    /// The volume's latest modification is now in `state`.
    pub fn set_modification(&self, volume_id: &str, state: ModificationState) {
        if let Ok(mut modified) = self.modified.lock() {
            modified.insert(volume_id.to_owned(), state);
        }
    }

    /// The volume is `creating` (`true`) or done (`false`).
    pub fn set_creating(&self, volume_id: &str, creating: bool) {
        if let Ok(mut set) = self.creating.lock() {
            if creating {
                set.insert(volume_id.to_owned());
            } else {
                set.remove(volume_id);
            }
        }
    }

    /// The volumes as they are now.
    fn volumes_now(&self) -> impl Iterator<Item = ObservedVolume> + '_ {
        let resized = self.resized.lock().map(|r| r.clone()).unwrap_or_default();
        let creating = self.creating.lock().map(|c| c.clone()).unwrap_or_default();
        self.volumes.iter().map(move |v| {
            let mut v = v.clone();
            if let Some(size) = resized.get(&v.volume_id) {
                v.size_gib = *size;
            }
            if creating.contains(&v.volume_id) {
                v.state = crate::plan::observed::VolumeState::Creating;
            }
            v
        })
    }

    /// The latest modification of each volume that has one, in `states` when given.
    fn modifications(&self, states: Option<&[ModificationState]>) -> Vec<ObservedModification> {
        let modified = self.modified.lock().map(|m| m.clone()).unwrap_or_default();
        let mut found: Vec<_> = modified
            .into_iter()
            .filter(|(_, state)| states.is_none_or(|s| s.contains(state)))
            .map(|(id, state)| ObservedModification {
                volume_id: id,
                state,
                progress: Some(if state == ModificationState::Completed {
                    100
                } else {
                    50
                }),
                start_time: None,
                end_time: None,
                status_message: None,
                target_size_gib: Some(2),
                target_volume_type: None,
                target_iops: None,
                target_throughput_mibps: None,
            })
            .collect();
        found.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        found
    }
}

pub fn volume(n: usize, cluster: &str) -> ObservedVolume {
    ObservedVolume {
        tags: Tags::from([(CLUSTER_TAG, cluster)]),
        ..ObservedVolume::example(&format!("vol-{n:017x}"), "us-east-1a")
    }
}

pub fn unsupported<T>() -> BoxFuture<'static, Result<T, AwsError>> {
    Box::pin(async {
        Err(AwsError::Client {
            code: "Unsupported".to_owned(),
            message: String::new(),
        })
    })
}

impl Ec2 for Fake {
    fn region(&self) -> &str {
        "us-east-1"
    }
    fn describe_volumes_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedVolume>, AwsError>> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        if self.throttled.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(AwsError::Throttled {
                    code: "RequestLimitExceeded".to_owned(),
                })
            });
        }
        let cluster = filters[0].values[0].clone();
        Box::pin(async move {
            if let Some(wait) = self.token_wait {
                tokio::time::sleep(wait).await;
            }
            note_answered(tokio::time::Instant::now());
            let matching: Vec<_> = self
                .volumes_now()
                .filter(|v| v.tags.get(CLUSTER_TAG) == Some(cluster.as_str()))
                .collect();
            if let Some(delay) = self.page_delay {
                tokio::time::sleep(delay).await;
            }
            Ok(page_of(matching, max_results, next_token))
        })
    }
    fn describe_volumes_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedVolume>, AwsError>> {
        self.by_ids.fetch_add(1, Ordering::SeqCst);
        note_answered(tokio::time::Instant::now());
        let found = self
            .volumes_now()
            .filter(|v| ids.contains(&v.volume_id))
            .collect();
        let delay = self
            .by_ids_delays
            .lock()
            .ok()
            .and_then(|mut delays| delays.pop_front());
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            Ok(found)
        })
    }
    fn describe_volumes_modifications(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
        self.modification_calls.fetch_add(1, Ordering::SeqCst);
        assert!(ids.len() <= MODIFICATION_BATCH);
        if let Some(gone) = ids.iter().find(|id| self.deleted.contains(*id)) {
            let err = AwsError::NotFound {
                code: "InvalidVolume.NotFound".to_owned(),
                message: format!("The volume '{gone}' does not exist."),
            };
            return Box::pin(async move { Err(err) });
        }
        let found = self
            .modifications(None)
            .into_iter()
            .filter(|m| ids.contains(&m.volume_id))
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn describe_volumes_modifications_in_states(
        &self,
        states: Vec<ModificationState>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
        self.listed_modification_calls
            .fetch_add(1, Ordering::SeqCst);
        let found = self.modifications(Some(&states));
        Box::pin(async move { Ok(found) })
    }
    fn describe_snapshots_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedSnapshot>, AwsError>> {
        self.snapshot_calls.fetch_add(1, Ordering::SeqCst);
        // AWS refuses more values in one filter: a caller must chunk.
        assert!(filters.iter().all(|f| f.values.len() <= MAX_FILTER_VALUES));
        let cluster_filter = format!("tag:{CLUSTER_TAG}");
        let matching: Vec<_> = self
            .snapshots
            .iter()
            .filter(|snap| {
                filters.iter().all(|f| match f.name.as_str() {
                    "snapshot-id" => f.values.contains(&snap.snapshot_id),
                    name if name == cluster_filter => snap
                        .tags
                        .get(CLUSTER_TAG)
                        .is_some_and(|v| f.values.iter().any(|f| f == v)),
                    _ => false,
                })
            })
            .cloned()
            .collect();
        Box::pin(async move { Ok(page_of(matching, max_results, next_token)) })
    }
    fn images_launchable_by(
        &self,
        _: String,
        _: Vec<Filter>,
    ) -> BoxFuture<'_, Result<Vec<String>, AwsError>> {
        unsupported()
    }
    fn describe_images_page(
        &self,
        owners: Vec<String>,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedImage>, AwsError>> {
        self.image_calls.fetch_add(1, Ordering::SeqCst);
        assert!(filters.iter().all(|f| f.values.len() <= MAX_FILTER_VALUES));
        let cluster_filter = format!("tag:{CLUSTER_TAG}");
        let matching: Vec<_> = self
            .images
            .iter()
            .filter(|image| {
                owners.is_empty()
                    || owners.iter().any(|o| {
                        *o == image.owner_id || (o == "self" && image.owner_id == FAKE_ACCOUNT)
                    })
            })
            .filter(|image| {
                filters.iter().all(|f| match f.name.as_str() {
                    "image-id" => f.values.contains(&image.image_id),
                    "name" => f.values.contains(&image.name),
                    name if name == cluster_filter => image
                        .tags
                        .get(CLUSTER_TAG)
                        .is_some_and(|v| f.values.iter().any(|f| f == v)),
                    _ => false,
                })
            })
            .cloned()
            .collect();
        Box::pin(async move { Ok(page_of(matching, max_results, next_token)) })
    }
    fn create_image(&self, _: CreateImageRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        unsupported()
    }
    fn register_image(&self, _: RegisterImageRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        unsupported()
    }
    fn copy_image(&self, _: CopyImageRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        unsupported()
    }
    fn deregister_image(&self, _: String, _: bool) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn describe_launch_permissions(
        &self,
        _: String,
    ) -> BoxFuture<'_, Result<LaunchPermissionSet, AwsError>> {
        unsupported()
    }
    fn modify_launch_permissions(
        &self,
        _: String,
        _: LaunchPermissionSet,
        _: LaunchPermissionSet,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn describe_snapshot_volume_permissions(
        &self,
        _: String,
    ) -> BoxFuture<'_, Result<BTreeSet<String>, AwsError>> {
        unsupported()
    }
    fn modify_snapshot_volume_permissions(
        &self,
        _: String,
        _: BTreeSet<String>,
        _: BTreeSet<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn modify_image_description(
        &self,
        _: String,
        _: String,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn enable_image_deprecation(
        &self,
        _: String,
        _: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn disable_image_deprecation(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn image_block_public_access_blocked(&self) -> BoxFuture<'_, Result<bool, AwsError>> {
        unsupported()
    }
    fn enable_image_deregistration_protection(
        &self,
        _: String,
        _: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn disable_image_deregistration_protection(
        &self,
        _: String,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn create_volume(
        &self,
        _: CreateVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedVolume, AwsError>> {
        unsupported()
    }
    fn modify_volume(
        &self,
        _: ModifyVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedModification, AwsError>> {
        unsupported()
    }
    fn attach_volume(
        &self,
        _: AttachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<crate::plan::observed::AttachmentState>, AwsError>> {
        unsupported()
    }
    fn detach_volume(
        &self,
        _: DetachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<crate::plan::observed::AttachmentState>, AwsError>> {
        unsupported()
    }
    fn delete_volume(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn create_snapshot(
        &self,
        _: CreateSnapshotRequest,
    ) -> BoxFuture<'_, Result<crate::plan::observed::ObservedSnapshot, AwsError>> {
        unsupported()
    }
    fn copy_snapshot(&self, _: CopySnapshotRequest) -> BoxFuture<'_, Result<String, AwsError>> {
        unsupported()
    }
    fn delete_snapshot(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn stop_instance(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn start_instance(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn set_delete_on_termination(
        &self,
        _: String,
        _: String,
        _: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn describe_instance_types(
        &self,
        types: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<InstanceTypeStorage>, AwsError>> {
        self.instance_type_calls.fetch_add(1, Ordering::SeqCst);
        let found = self
            .instance_types
            .iter()
            .filter(|t| types.contains(&t.instance_type))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn create_tags(
        &self,
        _: Vec<String>,
        _: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn delete_tags(&self, _: Vec<String>, _: Vec<String>) -> BoxFuture<'_, Result<(), AwsError>> {
        unsupported()
    }
    fn describe_instances_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedInstance>, AwsError>> {
        self.instance_calls.fetch_add(1, Ordering::SeqCst);
        let found = self
            .instances
            .iter()
            .filter(|i| ids.contains(&i.instance_id))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn describe_key(&self, _: String) -> BoxFuture<'_, Result<KmsKey, AwsError>> {
        unsupported()
    }
    fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>> {
        unsupported()
    }
}

pub fn fake(n: usize) -> Fake {
    let mut volumes: Vec<_> = (0..n).map(|i| volume(i, "prod")).collect();
    volumes.push(volume(n, "other-cluster"));
    let modified = volumes
        .iter()
        .take(3)
        .map(|v| (v.volume_id.clone(), ModificationState::Optimizing))
        .collect();
    Fake {
        volumes,
        modified: Mutex::new(modified),
        ..Fake::default()
    }
}

pub fn snapshot(n: usize, cluster: &str) -> ObservedSnapshot {
    ObservedSnapshot {
        snapshot_id: format!("snap-{n:017x}"),
        volume_id: None,
        state: "completed".to_owned(),
        progress: Some(100),
        encrypted: false,
        kms_key_id: None,
        volume_size_gib: Some(1),
        tags: Tags::from([(CLUSTER_TAG, cluster)]),
        start_time: None,
    }
}

/// An `available` image of this account ([`FAKE_ACCOUNT`]) tagged for `cluster`.
pub fn image(n: usize, cluster: &str) -> ObservedImage {
    ObservedImage {
        image_id: format!("ami-{n:017x}"),
        name: format!("image-{n}"),
        state: Some(ImageState::Available),
        owner_id: FAKE_ACCOUNT.to_owned(),
        root_device_type: Some("ebs".to_owned()),
        root_device_name: Some("/dev/xvda".to_owned()),
        virtualization_type: Some("hvm".to_owned()),
        architecture: Some("x86_64".to_owned()),
        block_device_mappings: vec![crate::plan::observed::ObservedImageMapping {
            device_name: "/dev/xvda".to_owned(),
            snapshot_id: Some(format!("snap-{n:017x}")),
            size_gib: Some(8),
            ..Default::default()
        }],
        tags: Tags::from([(CLUSTER_TAG, cluster)]),
        ..ObservedImage::default()
    }
}

pub fn instance(n: usize) -> ObservedInstance {
    ObservedInstance {
        instance_id: format!("i-{n:017x}"),
        availability_zone: Some("us-east-1a".to_owned()),
        state: Some("running".to_owned()),
        ..ObservedInstance::default()
    }
}

/// The page of `items` that `next_token` (an offset) and `max_results` select.
fn page_of<T: Clone>(items: Vec<T>, max_results: i32, next_token: Option<String>) -> Page<T> {
    let start: usize = next_token.map_or(0, |t| t.parse().unwrap_or(0));
    let end = (start + usize::try_from(max_results).unwrap_or(0)).min(items.len());
    Page {
        next_token: (end < items.len()).then(|| end.to_string()),
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
    }
}
