//! The EC2 and KMS calls the controller makes: a narrow trait ([`Ec2`]) and its AWS SDK
//! implementation ([`Ec2Client`], one per Region, cached in [`AwsClients`]).
//!
//! Every call goes through the Region's [`RateLimiter`](crate::aws::rate::RateLimiter) (a
//! token of its action's class, then our retries; the SDK's own retries are off), runs in an
//! `aws` tracing span, and counts `aws_calls{action, outcome}` and
//! `aws_call_duration_seconds{action}` once per request sent. Responses are converted into
//! the plain `plan::observed` types.
//!
//! One file per resource ([`volumes`], [`snapshots`], [`images`], [`instances`], [`kms`], plus
//! [`tagging`] for the tag calls every resource shares); [`describe`] holds what every
//! Describe shares (filters, pages, the pagination loops), [`conversions`] the SDK ->
//! observed mappings, and [`sdk`] the client itself and its one call wrapper.

pub mod conversions;
pub mod describe;
pub mod images;
pub mod instances;
pub mod kms;
pub mod sdk;
pub mod snapshots;
pub mod tagging;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::actions::AwsAction;
use super::errors::AwsError;
use crate::plan::observed::{
    AttachmentState, LaunchPermissionSet, ModificationState, ObservedImage, ObservedModification,
    ObservedSnapshot, ObservedVolume,
};

pub use conversions::{
    image_from_sdk, launch_permissions_from_sdk, modification_from_sdk, snapshot_from_sdk,
    volume_from_sdk,
};
pub use describe::{
    Filter, MAX_FILTER_VALUES, MAX_IMAGE_PAGE, MAX_INSTANCE_PAGE, MAX_SNAPSHOT_PAGE,
    MAX_VOLUME_PAGE, Page, all_pages, all_pages_by_ids,
};
pub use images::{CopyImageRequest, CreateImageRequest, ImageMappingRequest, RegisterImageRequest};
pub use instances::{InstanceTypeStorage, ObservedInstance};
pub use kms::KmsKey;
pub use sdk::{AwsClients, ClientTimeouts, Ec2Client};
pub use snapshots::{CopySnapshotRequest, CreateSnapshotRequest};
pub use volumes::{
    AttachVolumeRequest, CreateVolumeRequest, DetachVolumeRequest, ModifyVolumeRequest,
};

tokio::task_local! {
    /// When the first answered request made inside [`first_answered_request`] was sent.
    static FIRST_ANSWERED: std::cell::Cell<Option<tokio::time::Instant>>;
}

/// Runs `work` and tells when the first of its requests that AWS answered was sent: after
/// its rate-limit token and on its last attempt, so a read that queued behind other calls or
/// was retried after throttling is not taken for older than it is. What `work` read is at
/// least that recent. `None`: nothing it sent was answered.
pub async fn first_answered_request<F: std::future::Future>(
    work: F,
) -> (F::Output, Option<tokio::time::Instant>) {
    FIRST_ANSWERED
        .scope(std::cell::Cell::new(None), async {
            let output = work.await;
            (output, FIRST_ANSWERED.with(std::cell::Cell::get))
        })
        .await
}

/// An [`Ec2`] implementation calls this when AWS answers a request, with the instant the
/// request was sent (for [`first_answered_request`]; outside of one it does nothing).
pub fn note_answered(sent_at: tokio::time::Instant) {
    let _ = FIRST_ANSWERED.try_with(|first| {
        if first.get().is_none() {
            first.set(Some(sent_at));
        }
    });
}

/// The EC2/KMS calls of one Region. Object safe: use it as `Arc<dyn Ec2>` (tests substitute a
/// fake).
pub trait Ec2: Send + Sync {
    /// The Region these calls go to.
    fn region(&self) -> &str;

    /// Takes the client-side rate token of `action` before the pass records its intent
    /// (see `aws::rate::deferral`): `AwsError::Deferred` when it is far off. Clients without
    /// a limiter (the tests' fakes) admit everything.
    fn admit(&self, _action: AwsAction) -> BoxFuture<'_, Result<(), AwsError>> {
        Box::pin(async { Ok(()) })
    }

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

    /// The latest modification of every volume in the Region whose modification is in one of
    /// `states`, all pages (filter `modification-state`, no volume ids).
    fn describe_volumes_modifications_in_states(
        &self,
        states: Vec<ModificationState>,
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

    /// CopySnapshot within the Region, encrypted (with `kms_key_id`, or the account's default
    /// EBS key), tagged from the start; the copy's id. No ClientToken exists: not retried after
    /// a 5xx or transport error, the caller looks for it by tags first.
    fn copy_snapshot(
        &self,
        request: CopySnapshotRequest,
    ) -> BoxFuture<'_, Result<String, AwsError>>;

    /// DeleteSnapshot; one already gone counts as deleted.
    fn delete_snapshot(&self, snapshot_id: String) -> BoxFuture<'_, Result<(), AwsError>>;

    /// StopInstances of one instance (a stopping or stopped one is left as it is).
    fn stop_instance(&self, instance_id: String) -> BoxFuture<'_, Result<(), AwsError>>;

    /// StartInstances of one instance (a pending or running one is left as it is).
    fn start_instance(&self, instance_id: String) -> BoxFuture<'_, Result<(), AwsError>>;

    /// ModifyInstanceAttribute: DeleteOnTermination of the volume mapped at `device`.
    fn set_delete_on_termination(
        &self,
        instance_id: String,
        device: String,
        delete_on_termination: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// DescribeInstanceTypes: the instance store of each of `types` (unknown types absent).
    fn describe_instance_types(
        &self,
        types: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<InstanceTypeStorage>, AwsError>>;

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

    /// One page of DescribeImages (`max_results` 5..=1000): of `owners` (`self`, account
    /// ids, `amazon`, ...; empty: every image this account can launch, its own, shared and
    /// public ones). Deprecated and disabled images are included (`deprecation_time` and
    /// `state` tell them apart).
    fn describe_images_page(
        &self,
        owners: Vec<String>,
        filters: Vec<Filter>,
        max_results: i32,
        next_token: Option<String>,
    ) -> BoxFuture<'_, Result<Page<ObservedImage>, AwsError>>;

    /// The ids of this account's images (`filters` applied) that `account` may launch
    /// (DescribeImages with ExecutableUsers, every page): one call per account finds the
    /// grants removed from any of them.
    fn images_launchable_by(
        &self,
        account: String,
        filters: Vec<Filter>,
    ) -> BoxFuture<'_, Result<Vec<String>, AwsError>>;

    /// The images among `ids` this account can see (its own, shared or public: no Owners),
    /// filtered by `image-id` so a missing id is simply absent; one call per 200 ids.
    ///
    /// Provided on top of [`Ec2::describe_images_page`], like
    /// [`Ec2::describe_snapshots_by_ids`].
    fn describe_images_by_ids(
        &self,
        ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<ObservedImage>, AwsError>> {
        Box::pin(async move {
            all_pages_by_ids(&ids, "image-id", |filters, token| {
                self.describe_images_page(Vec::new(), filters, MAX_IMAGE_PAGE, token)
            })
            .await
        })
    }

    /// CreateImage with TagSpecifications (image and snapshots); the new image's id. No
    /// ClientToken exists: the name is the key, a repeat is `AwsError::Client` with code
    /// `InvalidAMIName.Duplicate`. Not retried after a 5xx or transport error.
    fn create_image(&self, request: CreateImageRequest) -> BoxFuture<'_, Result<String, AwsError>>;

    /// RegisterImage with TagSpecifications (image); the new image's id. No ClientToken exists
    /// (the name is the key, as for CreateImage). Not retried after a 5xx or transport error.
    fn register_image(
        &self,
        request: RegisterImageRequest,
    ) -> BoxFuture<'_, Result<String, AwsError>>;

    /// CopyImage, on the DESTINATION Region's client, with a ClientToken and
    /// TagSpecifications (image and snapshots); the copy's id.
    fn copy_image(&self, request: CopyImageRequest) -> BoxFuture<'_, Result<String, AwsError>>;

    /// DeregisterImage, optionally deleting its snapshots (AWS keeps those another image uses).
    fn deregister_image(
        &self,
        image_id: String,
        delete_associated_snapshots: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// DescribeImageAttribute `launchPermission`.
    fn describe_launch_permissions(
        &self,
        image_id: String,
    ) -> BoxFuture<'_, Result<LaunchPermissionSet, AwsError>>;

    /// One ModifyImageAttribute adding `add` and removing `remove` (nothing sent when both
    /// are empty).
    fn modify_launch_permissions(
        &self,
        image_id: String,
        add: LaunchPermissionSet,
        remove: LaunchPermissionSet,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// DescribeSnapshotAttribute `createVolumePermission`: the accounts that may create
    /// volumes from the snapshot.
    fn describe_snapshot_volume_permissions(
        &self,
        snapshot_id: String,
    ) -> BoxFuture<'_, Result<BTreeSet<String>, AwsError>>;

    /// One ModifySnapshotAttribute `createVolumePermission` adding and removing accounts
    /// (nothing sent when both are empty).
    fn modify_snapshot_volume_permissions(
        &self,
        snapshot_id: String,
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// ModifyImageAttribute `Description`.
    fn modify_image_description(
        &self,
        image_id: String,
        description: String,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// EnableImageDeprecation at `at` (AWS rounds it to the minute).
    fn enable_image_deprecation(
        &self,
        image_id: String,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    fn disable_image_deprecation(&self, image_id: String) -> BoxFuture<'_, Result<(), AwsError>>;

    /// EnableImageDeregistrationProtection (with the 24-hour cooldown on disabling, or not).
    fn enable_image_deregistration_protection(
        &self,
        image_id: String,
        with_cooldown: bool,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    fn disable_image_deregistration_protection(
        &self,
        image_id: String,
    ) -> BoxFuture<'_, Result<(), AwsError>>;

    /// GetImageBlockPublicAccessState: `true` while images cannot be made public
    /// (`block-new-sharing`), `false` when `unblocked`.
    fn image_block_public_access_blocked(&self) -> BoxFuture<'_, Result<bool, AwsError>>;

    /// KMS DescribeKey: resolves an id, ARN, alias name or alias ARN. A key that does not
    /// exist is `AwsError::NotFound`.
    fn describe_key(&self, key: String) -> BoxFuture<'_, Result<KmsKey, AwsError>>;

    /// The account's default EBS KMS key in this Region (an alias or ARN as AWS stores it).
    fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>>;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{first_answered_request, note_answered};

    #[tokio::test(start_paused = true)]
    async fn the_first_answer_noted_in_a_scope_is_the_one_reported_and_nothing_leaks_out() {
        let begun = Instant::now();
        note_answered(begun);
        let ((), first) = first_answered_request(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            note_answered(Instant::now());
            tokio::time::sleep(Duration::from_secs(1)).await;
            note_answered(Instant::now());
        })
        .await;
        assert_eq!(first, Some(begun + Duration::from_secs(2)));
        let ((), none) = first_answered_request(async {}).await;
        assert_eq!(
            none, None,
            "an answer noted outside a scope is not carried in"
        );
    }
}
