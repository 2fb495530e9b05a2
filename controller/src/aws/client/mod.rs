//! The EC2 and KMS calls the controller makes: a narrow trait ([`Ec2`]) and its AWS SDK
//! implementation ([`Ec2Client`], one per Region, cached in [`AwsClients`]).
//!
//! Every call goes through the Region's [`RateLimiter`](crate::aws::rate::RateLimiter) (a
//! token of its action's class, then our retries; the SDK's own retries are off), runs in an
//! `aws` tracing span, and counts `aws_calls{action, outcome}` and
//! `aws_call_duration_seconds{action}` once per request sent. Responses are converted into
//! the plain `plan::observed` types.
//!
//! One file per resource ([`volumes`], [`snapshots`], [`instances`], [`kms`], plus
//! [`tagging`] for the tag calls every resource shares); [`describe`] holds what every
//! Describe shares (filters, pages, the pagination loops), [`conversions`] the SDK ->
//! observed mappings, and [`sdk`] the client itself and its one call wrapper.

pub mod conversions;
pub mod describe;
pub mod instances;
pub mod kms;
pub mod sdk;
pub mod snapshots;
pub mod tagging;
pub mod volumes;

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::errors::AwsError;
use crate::plan::observed::{
    AttachmentState, ObservedModification, ObservedSnapshot, ObservedVolume,
};

pub use conversions::{modification_from_sdk, snapshot_from_sdk, volume_from_sdk};
pub use describe::{
    Filter, MAX_FILTER_VALUES, MAX_INSTANCE_PAGE, MAX_SNAPSHOT_PAGE, MAX_VOLUME_PAGE, Page,
    all_pages, all_pages_by_ids,
};
pub use instances::ObservedInstance;
pub use kms::KmsKey;
pub use sdk::{AwsClients, ClientTimeouts, Ec2Client};
pub use snapshots::CreateSnapshotRequest;
pub use volumes::{
    AttachVolumeRequest, CreateVolumeRequest, DetachVolumeRequest, ModifyVolumeRequest,
};

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

    /// The snapshots among `ids` that this account owns (filtered by `snapshot-id`, so a
    /// missing id is simply absent instead of failing the call); one call per 200 ids.
    ///
    /// Provided on top of [`Ec2::describe_snapshots_page`] so the chunking lives here once
    /// and every implementation (fakes included) chunks the same way.
    fn describe_snapshots_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedSnapshot>, AwsError>> {
        Box::pin(async move {
            all_pages_by_ids(&ids, "snapshot-id", |filters, token| {
                self.describe_snapshots_page(filters, MAX_SNAPSHOT_PAGE, token)
            })
            .await
        })
    }

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
