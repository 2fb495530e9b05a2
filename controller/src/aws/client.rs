//! The EC2 and KMS calls the controller makes: a narrow trait ([`Ec2`]) and its AWS SDK
//! implementation ([`Ec2Client`], one per Region, cached in [`AwsClients`]).
//!
//! Every call goes through the Region's [`RateLimiter`] (a token of its action class, then our
//! retries; the SDK's own retries are off) and counts `aws_calls{action, outcome}` once per
//! request sent. Responses are converted into the plain `plan::observed` types.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::Region;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::types as ec2t;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::actions::AwsAction;
use super::errors::AwsError;
use super::metrics::{AwsCallCounter, AwsCallLabels};
use super::rate::{ActionClass, Idempotency, RateConfig, RateLimiter};
use super::tags::{from_sdk_tags, tag_specification, to_sdk_tags};
use crate::api::VolumeType;
use crate::plan::observed::{
    AttachmentState, ModificationState, ObservedAttachment, ObservedModification, ObservedSnapshot,
    ObservedVolume, VolumeState,
};

/// Most values AWS accepts in one filter.
pub const MAX_FILTER_VALUES: usize = 200;
/// Largest DescribeVolumes / DescribeVolumesModifications page.
pub const MAX_VOLUME_PAGE: i32 = 500;
/// Largest DescribeSnapshots page.
pub const MAX_SNAPSHOT_PAGE: i32 = 1000;
/// Largest DescribeInstances page.
pub const MAX_INSTANCE_PAGE: i32 = 1000;

/// A Describe filter (`tag:ec2.reconciler.dev/cluster` = [`prod`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `tag:<key>` = `value`.
    pub fn tag(key: &str, value: impl Into<String>) -> Self {
        Self::new(format!("tag:{key}"), [value.into()])
    }

    fn to_sdk(&self) -> ec2t::Filter {
        ec2t::Filter::builder()
            .name(&self.name)
            .set_values(Some(self.values.clone()))
            .build()
    }
}

fn sdk_filters(filters: &[Filter]) -> Option<Vec<ec2t::Filter>> {
    if filters.is_empty() {
        None
    } else {
        Some(filters.iter().map(Filter::to_sdk).collect())
    }
}

/// One page of a paginated Describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// CreateVolume's parameters. `tags` is the full set (see `tags::creation_tags`), sent as
/// TagSpecifications so the volume is never untagged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateVolumeRequest {
    pub availability_zone: String,
    pub volume_type: VolumeType,
    pub size_gib: Option<i64>,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub multi_attach_enabled: bool,
    pub snapshot_id: Option<String>,
    /// From `tokens::client_token`.
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
}

/// ModifyVolume's parameters: `None` leaves a field unchanged. Send iops (and gp3
/// throughput) with every type change, or AWS resets them to the type's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModifyVolumeRequest {
    pub volume_id: String,
    pub size_gib: Option<i64>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
}

/// AttachVolume's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachVolumeRequest {
    pub volume_id: String,
    pub instance_id: String,
    pub device: String,
}

/// DetachVolume's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachVolumeRequest {
    pub volume_id: String,
    pub instance_id: String,
    pub device: Option<String>,
    pub force: bool,
}

/// CreateSnapshot's parameters (no ClientToken exists: look for one by tags before retrying).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateSnapshotRequest {
    pub volume_id: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What attachment checks need to know about an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInstance {
    pub instance_id: String,
    pub availability_zone: Option<String>,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: Option<String>,
}

/// A KMS key, resolved from an id, ARN, alias name or alias ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// The key ARN: compare specs with observed volumes by this.
    pub arn: String,
    pub key_id: String,
    pub enabled: bool,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: Option<String>,
}

/// The EC2/KMS calls of one Region. Object safe: use it as `Arc<dyn Ec2>` (tests substitute a
/// fake).
pub trait Ec2: Send + Sync {
    /// The Region these calls go to.
    fn region(&self) -> &str;

    /// One page of DescribeVolumes (`max_results` 5..=500).
    fn describe_volumes_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedVolume>, AwsError>>;

    /// The volumes among `ids` that exist (filtered by `volume-id`, so a missing id is simply
    /// absent instead of failing the call); one call per 200 ids.
    fn describe_volumes_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedVolume>, AwsError>>;

    /// The latest modification of each of `ids` that has one (at most 500 ids; a missing id
    /// fails the call with `InvalidVolume.NotFound`).
    fn describe_volumes_modifications(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>>;

    /// One page of DescribeSnapshots owned by this account (`max_results` 5..=1000).
    fn describe_snapshots_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedSnapshot>, AwsError>>;

    /// CreateVolume with a ClientToken and TagSpecifications; the new volume (`creating`).
    fn create_volume(
        &self,
        request: CreateVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedVolume, AwsError>>;

    fn modify_volume(
        &self,
        request: ModifyVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedModification, AwsError>>;

    /// AttachVolume; the attachment's state.
    fn attach_volume(
        &self,
        request: AttachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>>;

    fn detach_volume(
        &self,
        request: DetachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>>;

    fn delete_volume(&self, volume_id: String) -> BoxFuture<'_, Result<(), AwsError>>;

    /// CreateSnapshot with TagSpecifications. Not retried after a 5xx or transport error
    /// (no token): the caller looks for it by tags first.
    fn create_snapshot(
        &self,
        request: CreateSnapshotRequest,
    ) -> BoxFuture<'_, Result<ObservedSnapshot, AwsError>>;

    fn create_tags(
        &self,
        resource_ids: Vec<String>,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// DeleteTags by key (whatever the value).
    fn delete_tags(
        &self,
        resource_ids: Vec<String>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// The instances among `ids` that exist (filtered by `instance-id`: a missing one is absent).
    fn describe_instances_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedInstance>, AwsError>>;

    /// KMS DescribeKey: resolves an id, ARN, alias name or alias ARN. A key that does not
    /// exist is `AwsError::NotFound`.
    fn describe_key(&self, key: String) -> BoxFuture<'_, Result<KmsKey, AwsError>>;

    /// The account's default EBS KMS key in this Region (an alias or ARN as AWS stores it).
    fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>>;
}

/// Timeouts for one request.
#[derive(Clone, Debug)]
pub struct ClientTimeouts {
    pub connect: Duration,
    /// One attempt (our retries come after).
    pub attempt: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(30),
        }
    }
}

/// The SDK clients of one Region, with its rate limiter.
pub struct Ec2Client {
    region: String,
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
    limiter: Arc<RateLimiter>,
    calls: AwsCallCounter,
}

impl std::fmt::Debug for Ec2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Client")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Ec2Client {
    /// Clients for `region` from a shared config, with the SDK's retries off (ours are per
    /// action class) and our timeouts.
    pub fn new(
        sdk_config: &SdkConfig,
        region: &str,
        rate: RateConfig,
        timeouts: &ClientTimeouts,
        calls: AwsCallCounter,
    ) -> Self {
        let timeout_config = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect)
            .operation_attempt_timeout(timeouts.attempt)
            .build();
        let ec2_config = aws_sdk_ec2::config::Builder::from(sdk_config)
            .region(Region::new(region.to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeout_config.clone())
            .build();
        let kms_config = aws_sdk_kms::config::Builder::from(sdk_config)
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeout_config)
            .build();
        Self {
            region: region.to_owned(),
            ec2: aws_sdk_ec2::Client::from_conf(ec2_config),
            kms: aws_sdk_kms::Client::from_conf(kms_config),
            limiter: Arc::new(RateLimiter::new(rate)),
            calls,
        }
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    fn record(&self, action: AwsAction, error: Option<&AwsError>) {
        let outcome = error.map_or("success", AwsError::metric_outcome);
        self.calls
            .get_or_create(&AwsCallLabels {
                action: action.as_str(),
                outcome,
            })
            .inc();
    }

    /// Runs one AWS action through the limiter and retries, counting every request.
    async fn call<T, F, Fut>(
        &self,
        action: AwsAction,
        idempotency: Idempotency,
        op: F,
    ) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        self.limiter
            .with_retries(ActionClass::of(action), idempotency, || {
                let fut = op();
                async move {
                    let result = fut.await;
                    self.record(action, result.as_ref().err());
                    result
                }
            })
            .await
    }

    async fn volumes_page(
        &self,
        filters: &[Filter],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<Page<ObservedVolume>, AwsError> {
        let out = self
            .call(AwsAction::DescribeVolumes, Idempotency::Safe, || {
                let req = self
                    .ec2
                    .describe_volumes()
                    .set_filters(sdk_filters(filters))
                    .max_results(max_results.clamp(5, MAX_VOLUME_PAGE))
                    .set_next_token(next_token.clone());
                async move { req.send().await.map_err(AwsError::from) }
            })
            .await?;
        Ok(Page {
            items: out.volumes().iter().filter_map(volume_from_sdk).collect(),
            next_token: out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }
}

impl Ec2 for Ec2Client {
    fn region(&self) -> &str {
        &self.region
    }

    fn describe_volumes_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedVolume>, AwsError>> {
        Box::pin(async move { self.volumes_page(&filters, max_results, next_token).await })
    }

    fn describe_volumes_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedVolume>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(MAX_FILTER_VALUES) {
                let filters = [Filter::new("volume-id", chunk.iter().cloned())];
                let mut token = None;
                loop {
                    let page = self.volumes_page(&filters, MAX_VOLUME_PAGE, token).await?;
                    found.extend(page.items);
                    match page.next_token {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
            }
            Ok(found)
        })
    }

    fn describe_volumes_modifications(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            if ids.is_empty() {
                return Ok(found);
            }
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .call(
                        AwsAction::DescribeVolumesModifications,
                        Idempotency::Safe,
                        || {
                            let req = self
                                .ec2
                                .describe_volumes_modifications()
                                .set_volume_ids(Some(ids.clone()))
                                .set_next_token(token.clone());
                            async move { req.send().await.map_err(AwsError::from) }
                        },
                    )
                    .await?;
                found.extend(
                    out.volumes_modifications()
                        .iter()
                        .filter_map(modification_from_sdk),
                );
                match out.next_token().filter(|t| !t.is_empty()) {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            Ok(found)
        })
    }

    fn describe_snapshots_page(
        &self,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedSnapshot>, AwsError>> {
        Box::pin(async move {
            let out = self
                .call(AwsAction::DescribeSnapshots, Idempotency::Safe, || {
                    let req = self
                        .ec2
                        .describe_snapshots()
                        .owner_ids("self")
                        .set_filters(sdk_filters(&filters))
                        .max_results(max_results.clamp(5, MAX_SNAPSHOT_PAGE))
                        .set_next_token(next_token.clone());
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(Page {
                items: out
                    .snapshots()
                    .iter()
                    .filter_map(snapshot_from_sdk)
                    .collect(),
                next_token: out
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            })
        })
    }

    fn create_volume(
        &self,
        request: CreateVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedVolume, AwsError>> {
        Box::pin(async move {
            let spec = tag_specification(ec2t::ResourceType::Volume, &request.tags);
            let r = &request;
            let out = self
                .call(AwsAction::CreateVolume, Idempotency::Safe, || {
                    let req = self
                        .ec2
                        .create_volume()
                        .availability_zone(&r.availability_zone)
                        .volume_type(ec2t::VolumeType::from(r.volume_type.as_str()))
                        .set_size(r.size_gib.map(to_i32))
                        .set_iops(r.iops.map(to_i32))
                        .set_throughput(r.throughput_mibps.map(to_i32))
                        .set_encrypted(r.encrypted)
                        .set_kms_key_id(r.kms_key_id.clone())
                        .set_snapshot_id(r.snapshot_id.clone())
                        .set_multi_attach_enabled(r.multi_attach_enabled.then_some(true))
                        .client_token(&r.client_token)
                        .tag_specifications(spec.clone());
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(ObservedVolume {
                volume_id: out.volume_id().unwrap_or_default().to_owned(),
                state: out
                    .state()
                    .and_then(|s| VolumeState::parse(s.as_str()))
                    .unwrap_or(VolumeState::Creating),
                availability_zone: out.availability_zone().unwrap_or_default().to_owned(),
                volume_type: out
                    .volume_type()
                    .and_then(|t| VolumeType::parse(t.as_str())),
                size_gib: out.size().map(i64::from).unwrap_or_default(),
                iops: out.iops().map(i64::from),
                throughput_mibps: out.throughput().map(i64::from),
                encrypted: out.encrypted().unwrap_or(false),
                kms_key_id: out.kms_key_id().map(str::to_owned),
                multi_attach_enabled: out.multi_attach_enabled().unwrap_or(false),
                snapshot_id: out
                    .snapshot_id()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                attachments: Vec::new(),
                tags: from_sdk_tags(out.tags()),
                create_time: out.create_time().and_then(to_chrono),
            })
        })
    }

    fn modify_volume(
        &self,
        request: ModifyVolumeRequest,
    ) -> BoxFuture<'_, Result<ObservedModification, AwsError>> {
        Box::pin(async move {
            let r = &request;
            let out = self
                // Not Safe: a repeat is a second modification (one more of the day's four),
                // or is rejected as `IncorrectModificationState`, hiding whether the first
                // was applied. The caller records it first and looks before trying again.
                .call(AwsAction::ModifyVolume, Idempotency::Unsafe, || {
                    let req = self
                        .ec2
                        .modify_volume()
                        .volume_id(&r.volume_id)
                        .set_size(r.size_gib.map(to_i32))
                        .set_volume_type(r.volume_type.map(|t| ec2t::VolumeType::from(t.as_str())))
                        .set_iops(r.iops.map(to_i32))
                        .set_throughput(r.throughput_mibps.map(to_i32));
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            out.volume_modification()
                .and_then(modification_from_sdk)
                .ok_or_else(|| AwsError::Client {
                    code: "EmptyResponse".to_owned(),
                    message: "ModifyVolume returned no modification".to_owned(),
                })
        })
    }

    fn attach_volume(
        &self,
        request: AttachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>> {
        Box::pin(async move {
            let r = &request;
            let out = self
                .call(AwsAction::AttachVolume, Idempotency::Safe, || {
                    let req = self
                        .ec2
                        .attach_volume()
                        .volume_id(&r.volume_id)
                        .instance_id(&r.instance_id)
                        .device(&r.device);
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(out.state().and_then(|s| AttachmentState::parse(s.as_str())))
        })
    }

    fn detach_volume(
        &self,
        request: DetachVolumeRequest,
    ) -> BoxFuture<'_, Result<Option<AttachmentState>, AwsError>> {
        Box::pin(async move {
            let r = &request;
            let out = self
                .call(AwsAction::DetachVolume, Idempotency::Safe, || {
                    let req = self
                        .ec2
                        .detach_volume()
                        .volume_id(&r.volume_id)
                        .instance_id(&r.instance_id)
                        .set_device(r.device.clone())
                        .set_force(r.force.then_some(true));
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(out.state().and_then(|s| AttachmentState::parse(s.as_str())))
        })
    }

    fn delete_volume(&self, volume_id: String) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async move {
            self.call(AwsAction::DeleteVolume, Idempotency::Safe, || {
                let req = self.ec2.delete_volume().volume_id(&volume_id);
                async move { req.send().await.map(drop).map_err(AwsError::from) }
            })
            .await
        })
    }

    fn create_snapshot(
        &self,
        request: CreateSnapshotRequest,
    ) -> BoxFuture<'_, Result<ObservedSnapshot, AwsError>> {
        Box::pin(async move {
            let spec = tag_specification(ec2t::ResourceType::Snapshot, &request.tags);
            let r = &request;
            let out = self
                .call(AwsAction::CreateSnapshot, Idempotency::Unsafe, || {
                    let req = self
                        .ec2
                        .create_snapshot()
                        .volume_id(&r.volume_id)
                        .set_description(r.description.clone())
                        .tag_specifications(spec.clone());
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(ObservedSnapshot {
                snapshot_id: out.snapshot_id().unwrap_or_default().to_owned(),
                volume_id: out.volume_id().map(str::to_owned),
                state: out
                    .state()
                    .map_or_else(|| "pending".to_owned(), |s| s.as_str().to_owned()),
                progress: out.progress().and_then(parse_progress),
                encrypted: out.encrypted().unwrap_or(false),
                kms_key_id: out.kms_key_id().map(str::to_owned),
                volume_size_gib: out.volume_size().map(i64::from),
                tags: from_sdk_tags(out.tags()),
                start_time: out.start_time().and_then(to_chrono),
            })
        })
    }

    fn create_tags(
        &self,
        resource_ids: Vec<String>,
        tags: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async move {
            if resource_ids.is_empty() || tags.is_empty() {
                return Ok(());
            }
            let sdk_tags = to_sdk_tags(&tags);
            self.call(AwsAction::CreateTags, Idempotency::Safe, || {
                let req = self
                    .ec2
                    .create_tags()
                    .set_resources(Some(resource_ids.clone()))
                    .set_tags(Some(sdk_tags.clone()));
                async move { req.send().await.map(drop).map_err(AwsError::from) }
            })
            .await
        })
    }

    fn delete_tags(
        &self,
        resource_ids: Vec<String>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async move {
            if resource_ids.is_empty() || keys.is_empty() {
                return Ok(());
            }
            let sdk_tags: Vec<ec2t::Tag> = keys
                .iter()
                .map(|k| ec2t::Tag::builder().key(k).build())
                .collect();
            self.call(AwsAction::DeleteTags, Idempotency::Safe, || {
                let req = self
                    .ec2
                    .delete_tags()
                    .set_resources(Some(resource_ids.clone()))
                    .set_tags(Some(sdk_tags.clone()));
                async move { req.send().await.map(drop).map_err(AwsError::from) }
            })
            .await
        })
    }

    fn describe_instances_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedInstance>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(MAX_FILTER_VALUES) {
                let filters = vec![Filter::new("instance-id", chunk.iter().cloned())];
                let mut token: Option<String> = None;
                loop {
                    let out = self
                        .call(AwsAction::DescribeInstances, Idempotency::Safe, || {
                            let req = self
                                .ec2
                                .describe_instances()
                                .set_filters(sdk_filters(&filters))
                                .max_results(MAX_INSTANCE_PAGE)
                                .set_next_token(token.clone());
                            async move { req.send().await.map_err(AwsError::from) }
                        })
                        .await?;
                    for reservation in out.reservations() {
                        for i in reservation.instances() {
                            let Some(id) = i.instance_id() else { continue };
                            found.push(ObservedInstance {
                                instance_id: id.to_owned(),
                                availability_zone: i
                                    .placement()
                                    .and_then(|p| p.availability_zone())
                                    .map(str::to_owned),
                                state: i
                                    .state()
                                    .and_then(|s| s.name())
                                    .map(|n| n.as_str().to_owned()),
                            });
                        }
                    }
                    match out.next_token().filter(|t| !t.is_empty()) {
                        Some(t) => token = Some(t.to_owned()),
                        None => break,
                    }
                }
            }
            Ok(found)
        })
    }

    fn describe_key(&self, key: String) -> BoxFuture<'_, Result<KmsKey, AwsError>> {
        Box::pin(async move {
            let out = self
                .call(AwsAction::KmsDescribeKey, Idempotency::Safe, || {
                    let req = self.kms.describe_key().key_id(&key);
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            let meta = out.key_metadata().ok_or_else(|| AwsError::Client {
                code: "EmptyResponse".to_owned(),
                message: "DescribeKey returned no key metadata".to_owned(),
            })?;
            Ok(KmsKey {
                arn: meta.arn().unwrap_or_default().to_owned(),
                key_id: meta.key_id().to_owned(),
                enabled: meta.enabled(),
                state: meta.key_state().map(|s| s.as_str().to_owned()),
            })
        })
    }

    fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>> {
        Box::pin(async move {
            let out = self
                .call(AwsAction::GetEbsDefaultKmsKeyId, Idempotency::Safe, || {
                    let req = self.ec2.get_ebs_default_kms_key_id();
                    async move { req.send().await.map_err(AwsError::from) }
                })
                .await?;
            Ok(out.kms_key_id().map(str::to_owned))
        })
    }
}

/// One [`Ec2Client`] per Region, built on first use from one shared `SdkConfig` (the standard
/// credential chain; `AWS_ENDPOINT_URL` is honoured by aws-config).
pub struct AwsClients {
    sdk_config: SdkConfig,
    rate: RateConfig,
    timeouts: ClientTimeouts,
    calls: AwsCallCounter,
    clients: Mutex<HashMap<String, Arc<Ec2Client>>>,
}

impl AwsClients {
    pub fn new(
        sdk_config: SdkConfig,
        rate: RateConfig,
        timeouts: ClientTimeouts,
        calls: AwsCallCounter,
    ) -> Self {
        Self {
            sdk_config,
            rate,
            timeouts,
            calls,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the standard configuration (environment, profile, IMDS, ...), once at start.
    pub async fn from_env(
        rate: RateConfig,
        timeouts: ClientTimeouts,
        calls: AwsCallCounter,
    ) -> Self {
        let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(sdk_config, rate, timeouts, calls)
    }

    /// The client of `region` (the same one every time).
    pub fn region(&self, region: &str) -> Arc<Ec2Client> {
        let build = || {
            Arc::new(Ec2Client::new(
                &self.sdk_config,
                region,
                self.rate.clone(),
                &self.timeouts,
                self.calls.clone(),
            ))
        };
        match self.clients.lock() {
            Ok(mut clients) => clients
                .entry(region.to_owned())
                .or_insert_with(build)
                .clone(),
            Err(_) => build(),
        }
    }

    /// The calls of `region` as a trait object.
    pub fn ec2(&self, region: &str) -> Arc<dyn Ec2> {
        self.region(region)
    }
}

fn to_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn to_chrono(t: &aws_sdk_ec2::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// `"42%"` -> 42.
fn parse_progress(p: &str) -> Option<i64> {
    p.trim().trim_end_matches('%').parse().ok()
}

/// A DescribeVolumes item as an [`ObservedVolume`] (`None` without an id or known state).
pub fn volume_from_sdk(v: &ec2t::Volume) -> Option<ObservedVolume> {
    Some(ObservedVolume {
        volume_id: v.volume_id()?.to_owned(),
        state: VolumeState::parse(v.state()?.as_str())?,
        availability_zone: v.availability_zone().unwrap_or_default().to_owned(),
        volume_type: v.volume_type().and_then(|t| VolumeType::parse(t.as_str())),
        size_gib: v.size().map(i64::from).unwrap_or_default(),
        iops: v.iops().map(i64::from),
        throughput_mibps: v.throughput().map(i64::from),
        encrypted: v.encrypted().unwrap_or(false),
        kms_key_id: v.kms_key_id().map(str::to_owned),
        multi_attach_enabled: v.multi_attach_enabled().unwrap_or(false),
        snapshot_id: v.snapshot_id().filter(|s| !s.is_empty()).map(str::to_owned),
        attachments: v
            .attachments()
            .iter()
            .filter_map(|a| {
                Some(ObservedAttachment {
                    instance_id: a.instance_id()?.to_owned(),
                    device: a.device().unwrap_or_default().to_owned(),
                    state: AttachmentState::parse(a.state()?.as_str())?,
                })
            })
            .collect(),
        tags: from_sdk_tags(v.tags()),
        create_time: v.create_time().and_then(to_chrono),
    })
}

/// A DescribeVolumesModifications item as an [`ObservedModification`].
pub fn modification_from_sdk(m: &ec2t::VolumeModification) -> Option<ObservedModification> {
    Some(ObservedModification {
        volume_id: m.volume_id()?.to_owned(),
        state: ModificationState::parse(m.modification_state()?.as_str())?,
        progress: m.progress(),
        start_time: m.start_time().and_then(to_chrono),
        end_time: m.end_time().and_then(to_chrono),
        status_message: m.status_message().map(str::to_owned),
        target_size_gib: m.target_size().map(i64::from),
        target_volume_type: m
            .target_volume_type()
            .and_then(|t| VolumeType::parse(t.as_str())),
        target_iops: m.target_iops().map(i64::from),
        target_throughput_mibps: m.target_throughput().map(i64::from),
    })
}

/// A DescribeSnapshots item as an [`ObservedSnapshot`].
pub fn snapshot_from_sdk(s: &ec2t::Snapshot) -> Option<ObservedSnapshot> {
    Some(ObservedSnapshot {
        snapshot_id: s.snapshot_id()?.to_owned(),
        volume_id: s.volume_id().filter(|v| !v.is_empty()).map(str::to_owned),
        state: s
            .state()
            .map_or_else(String::new, |st| st.as_str().to_owned()),
        progress: s.progress().and_then(parse_progress),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        volume_size_gib: s.volume_size().map(i64::from),
        tags: from_sdk_tags(s.tags()),
        start_time: s.start_time().and_then(to_chrono),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_volumes_convert_to_observed_volumes() {
        let v = ec2t::Volume::builder()
            .volume_id("vol-1")
            .state(ec2t::VolumeState::InUse)
            .availability_zone("us-east-1a")
            .volume_type(ec2t::VolumeType::Gp3)
            .size(100)
            .iops(3000)
            .throughput(125)
            .encrypted(true)
            .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/k")
            .attachments(
                ec2t::VolumeAttachment::builder()
                    .instance_id("i-1")
                    .device("/dev/sdf")
                    .state(ec2t::VolumeAttachmentState::Attached)
                    .build(),
            )
            .tags(ec2t::Tag::builder().key("team").value("a").build())
            .create_time(aws_sdk_ec2::primitives::DateTime::from_secs(1_700_000_000))
            .build();
        let o = volume_from_sdk(&v).unwrap_or_else(|| unreachable!());
        assert_eq!(o.volume_id, "vol-1");
        assert_eq!(o.state, VolumeState::InUse);
        assert_eq!(o.volume_type, Some(VolumeType::Gp3));
        assert_eq!(
            (o.size_gib, o.iops, o.throughput_mibps),
            (100, Some(3000), Some(125))
        );
        assert!(o.encrypted);
        assert_eq!(o.attachments.len(), 1);
        assert_eq!(o.attachments[0].state, AttachmentState::Attached);
        assert_eq!(o.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(o.create_time.map(|t| t.timestamp()), Some(1_700_000_000));
    }

    #[test]
    fn modifications_and_snapshots_convert() {
        let m = ec2t::VolumeModification::builder()
            .volume_id("vol-1")
            .modification_state(ec2t::VolumeModificationState::Optimizing)
            .progress(40)
            .target_size(200)
            .target_volume_type(ec2t::VolumeType::Io2)
            .target_iops(4000)
            .build();
        let o = modification_from_sdk(&m).unwrap_or_else(|| unreachable!());
        assert_eq!(o.state, ModificationState::Optimizing);
        assert_eq!(o.target_volume_type, Some(VolumeType::Io2));
        assert_eq!(o.target_size_gib, Some(200));

        let s = ec2t::Snapshot::builder()
            .snapshot_id("snap-1")
            .state(ec2t::SnapshotState::Pending)
            .progress("42%")
            .volume_size(8)
            .build();
        let o = snapshot_from_sdk(&s).unwrap_or_else(|| unreachable!());
        assert_eq!(o.state, "pending");
        assert_eq!(o.progress, Some(42));
        assert_eq!(o.volume_size_gib, Some(8));
    }

    #[test]
    fn items_without_an_id_or_state_are_dropped() {
        assert!(volume_from_sdk(&ec2t::Volume::builder().volume_id("vol-1").build()).is_none());
        assert!(snapshot_from_sdk(&ec2t::Snapshot::builder().build()).is_none());
    }
}
