//! Snapshot calls: DescribeSnapshots (this account's only) and CreateSnapshot.

use std::collections::BTreeMap;

use aws_sdk_ec2::types as ec2t;

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
