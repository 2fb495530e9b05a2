//! Snapshot calls: DescribeSnapshots (this account's only), CreateSnapshot, and the
//! `createVolumePermission` attribute (who may create volumes from a snapshot).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types as ec2t;
use aws_sdk_ec2::types::CreateVolumePermissionModifications;

use super::conversions::{snapshot_from_create, snapshot_from_sdk};
use super::describe::{MAX_SNAPSHOT_PAGE, sdk_filters};
use super::sdk::Ec2Client;
use super::{Filter, Page};
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;
use crate::aws::tags::tag_specification;
use crate::plan::observed::ObservedSnapshot;

/// CreateSnapshot's parameters (no ClientToken exists: look for one by tags before retrying).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateSnapshotRequest {
    pub volume_id: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// CopySnapshot's parameters, within one Region (no ClientToken is sent: look for the copy
/// by its tags before trying again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopySnapshotRequest {
    pub source_snapshot_id: String,
    pub description: Option<String>,
    /// The key to encrypt the copy with; the account's default EBS key when `None`.
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub(super) async fn copy(client: &Ec2Client, r: CopySnapshotRequest) -> Result<String, AwsError> {
    let spec = tag_specification(ec2t::ResourceType::Snapshot, &r.tags);
    let region = client.region.clone();
    let out = client
        .call(AwsAction::CopySnapshot, Idempotency::Unsafe, || {
            client
                .ec2
                .copy_snapshot()
                .source_snapshot_id(&r.source_snapshot_id)
                .source_region(&region)
                .encrypted(true)
                .set_kms_key_id(r.kms_key_id.clone())
                .set_description(r.description.clone())
                .tag_specifications(spec.clone())
                .send()
        })
        .await?;
    out.snapshot_id()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::Client {
            code: "MissingSnapshotId".to_owned(),
            message: "CopySnapshot answered without a SnapshotId".to_owned(),
        })
}

/// DeleteSnapshot: one already gone counts as deleted.
pub(super) async fn delete(client: &Ec2Client, snapshot_id: String) -> Result<(), AwsError> {
    match client
        .call(AwsAction::DeleteSnapshot, Idempotency::Safe, || {
            client
                .ec2
                .delete_snapshot()
                .snapshot_id(&snapshot_id)
                .send()
        })
        .await
    {
        Ok(_) | Err(AwsError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) async fn describe_page(
    client: &Ec2Client,
    filters: Vec<Filter>,
    max_results: i32,
    next_token: Option<String>,
) -> Result<Page<ObservedSnapshot>, AwsError> {
    let out = client
        .call(AwsAction::DescribeSnapshots, Idempotency::Safe, || {
            client
                .ec2
                .describe_snapshots()
                // Without it AWS lists every public snapshot too.
                .owner_ids("self")
                .set_filters(sdk_filters(&filters))
                .max_results(max_results.clamp(5, MAX_SNAPSHOT_PAGE))
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
    let items = out
        .snapshots()
        .iter()
        .filter_map(snapshot_from_sdk)
        .collect();
    Ok(Page::new(items, out.next_token()))
}

pub(super) async fn create(
    client: &Ec2Client,
    r: CreateSnapshotRequest,
) -> Result<ObservedSnapshot, AwsError> {
    let spec = tag_specification(ec2t::ResourceType::Snapshot, &r.tags);
    let out = client
        .call(AwsAction::CreateSnapshot, Idempotency::Unsafe, || {
            client
                .ec2
                .create_snapshot()
                .volume_id(&r.volume_id)
                .set_description(r.description.clone())
                .tag_specifications(spec.clone())
                .send()
        })
        .await?;
    Ok(snapshot_from_create(&out))
}

pub(super) async fn describe_volume_permissions(
    client: &Ec2Client,
    snapshot_id: String,
) -> Result<BTreeSet<String>, AwsError> {
    let out = client
        .call(
            AwsAction::DescribeSnapshotAttribute,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .describe_snapshot_attribute()
                    .snapshot_id(&snapshot_id)
                    .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
                    .send()
            },
        )
        .await?;
    Ok(out
        .create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect())
}

/// The SDK permissions of some accounts (`None` for none: AWS refuses an empty list).
fn sdk_volume_permissions(
    accounts: &BTreeSet<String>,
) -> Option<Vec<ec2t::CreateVolumePermission>> {
    (!accounts.is_empty()).then(|| {
        accounts
            .iter()
            .map(|id| ec2t::CreateVolumePermission::builder().user_id(id).build())
            .collect()
    })
}

pub(super) async fn modify_volume_permissions(
    client: &Ec2Client,
    snapshot_id: String,
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
) -> Result<(), AwsError> {
    // One call adds or removes, never both (ModifySnapshotAttribute API reference).
    let changes = [
        CreateVolumePermissionModifications::builder()
            .set_remove(sdk_volume_permissions(&remove))
            .build(),
        CreateVolumePermissionModifications::builder()
            .set_add(sdk_volume_permissions(&add))
            .build(),
    ];
    for change in changes
        .into_iter()
        .filter(|c| c.add().len() + c.remove().len() > 0)
    {
        client
            // Adding a grant that exists or removing one that does not changes nothing.
            .call(
                AwsAction::ModifySnapshotAttribute,
                Idempotency::Safe,
                || {
                    client
                        .ec2
                        .modify_snapshot_attribute()
                        .snapshot_id(&snapshot_id)
                        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
                        .create_volume_permission(change.clone())
                        .send()
                },
            )
            .await?;
    }
    Ok(())
}
