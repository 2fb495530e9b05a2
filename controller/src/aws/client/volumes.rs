//! Volume calls: DescribeVolumes, DescribeVolumesModifications, Create/Modify/Attach/Detach/
//! DeleteVolume, and their parameters.

use std::collections::BTreeMap;

use aws_sdk_ec2::types as ec2t;

use super::conversions::{modification_from_sdk, volume_from_create, volume_from_sdk};
use super::describe::{MAX_VOLUME_PAGE, all_pages, all_pages_by_ids, sdk_filters};
use super::sdk::{Ec2Client, i32_param};
use super::{Filter, Page};
use crate::api::VolumeType;
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;
use crate::aws::tags::tag_specification;
use crate::plan::observed::{
    AttachmentState, ModificationState, ObservedModification, ObservedVolume,
};

/// The largest DescribeVolumesModifications page (API reference: MaxResults "up to a limit of
/// 500").
pub const MAX_MODIFICATION_PAGE: i32 = 500;

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
    /// Enable or disable Multi-Attach (io2 only, once created).
    pub multi_attach_enabled: Option<bool>,
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

pub(super) async fn describe_page(
    client: &Ec2Client,
    filters: Vec<Filter>,
    max_results: i32,
    next_token: Option<String>,
) -> Result<Page<ObservedVolume>, AwsError> {
    let out = client
        .call(AwsAction::DescribeVolumes, Idempotency::Safe, || {
            client
                .ec2
                .describe_volumes()
                .set_filters(sdk_filters(&filters))
                .max_results(max_results.clamp(5, MAX_VOLUME_PAGE))
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
    let items = out.volumes().iter().filter_map(volume_from_sdk).collect();
    Ok(Page::new(items, out.next_token()))
}

pub(super) async fn describe_by_ids(
    client: &Ec2Client,
    ids: Vec<String>,
) -> Result<Vec<ObservedVolume>, AwsError> {
    all_pages_by_ids(&ids, "volume-id", |filters, token| {
        describe_page(client, filters, MAX_VOLUME_PAGE, token)
    })
    .await
}

pub(super) async fn describe_modifications(
    client: &Ec2Client,
    ids: Vec<String>,
) -> Result<Vec<ObservedModification>, AwsError> {
    // An empty id list would not mean "none": AWS would answer every modification.
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = Some(ids);
    all_pages(|token| modifications_page(client, &ids, &None, token)).await
}

/// The latest modification of every volume in the Region whose modification is in one of
/// `states` (filter `modification-state`, 500 per page): no volume ids, so one call answers
/// for every volume however many there are.
pub(super) async fn describe_modifications_in_states(
    client: &Ec2Client,
    states: Vec<ModificationState>,
) -> Result<Vec<ObservedModification>, AwsError> {
    let filters = Some(vec![Filter::new(
        "modification-state",
        states.iter().map(|s| s.as_str()),
    )]);
    all_pages(|token| modifications_page(client, &None, &filters, token)).await
}

/// One page of DescribeVolumesModifications, by volume ids or by filters. A page size is
/// given only with filters: with ids AWS answers every id in one page.
async fn modifications_page(
    client: &Ec2Client,
    ids: &Option<Vec<String>>,
    filters: &Option<Vec<Filter>>,
    token: Option<String>,
) -> Result<Page<ObservedModification>, AwsError> {
    let max_results = filters.as_ref().map(|_| MAX_MODIFICATION_PAGE);
    let out = client
        .call(
            AwsAction::DescribeVolumesModifications,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .describe_volumes_modifications()
                    .set_volume_ids(ids.clone())
                    .set_filters(filters.as_deref().and_then(sdk_filters))
                    .set_max_results(max_results)
                    .set_next_token(token.clone())
                    .send()
            },
        )
        .await?;
    let items = out
        .volumes_modifications()
        .iter()
        .filter_map(modification_from_sdk)
        .collect();
    Ok(Page::new(items, out.next_token()))
}

pub(super) async fn create(
    client: &Ec2Client,
    r: CreateVolumeRequest,
) -> Result<ObservedVolume, AwsError> {
    let size = i32_param("size_gib", r.size_gib)?;
    let iops = i32_param("iops", r.iops)?;
    let throughput = i32_param("throughput_mibps", r.throughput_mibps)?;
    let spec = tag_specification(ec2t::ResourceType::Volume, &r.tags);
    let out = client
        .call(AwsAction::CreateVolume, Idempotency::Safe, || {
            client
                .ec2
                .create_volume()
                .availability_zone(&r.availability_zone)
                .volume_type(ec2t::VolumeType::from(r.volume_type.as_str()))
                .set_size(size)
                .set_iops(iops)
                .set_throughput(throughput)
                .set_encrypted(r.encrypted)
                .set_kms_key_id(r.kms_key_id.clone())
                .set_snapshot_id(r.snapshot_id.clone())
                .set_multi_attach_enabled(r.multi_attach_enabled.then_some(true))
                .client_token(&r.client_token)
                .tag_specifications(spec.clone())
                .send()
        })
        .await?;
    Ok(volume_from_create(&out))
}

pub(super) async fn modify(
    client: &Ec2Client,
    r: ModifyVolumeRequest,
) -> Result<ObservedModification, AwsError> {
    let size = i32_param("size_gib", r.size_gib)?;
    let iops = i32_param("iops", r.iops)?;
    let throughput = i32_param("throughput_mibps", r.throughput_mibps)?;
    let out = client
        // Not Safe: a repeat is a second modification (one more of the day's four), or is
        // rejected as `IncorrectModificationState`, hiding whether the first was applied.
        // The caller records it first and looks before trying again.
        .call(AwsAction::ModifyVolume, Idempotency::Unsafe, || {
            client
                .ec2
                .modify_volume()
                .volume_id(&r.volume_id)
                .set_size(size)
                .set_volume_type(r.volume_type.map(|t| ec2t::VolumeType::from(t.as_str())))
                .set_iops(iops)
                .set_throughput(throughput)
                .set_multi_attach_enabled(r.multi_attach_enabled)
                .send()
        })
        .await?;
    out.volume_modification()
        .and_then(modification_from_sdk)
        .ok_or_else(|| AwsError::Client {
            code: "EmptyResponse".to_owned(),
            message: "ModifyVolume returned no modification".to_owned(),
        })
}

pub(super) async fn attach(
    client: &Ec2Client,
    r: AttachVolumeRequest,
) -> Result<Option<AttachmentState>, AwsError> {
    let out = client
        .call(AwsAction::AttachVolume, Idempotency::Safe, || {
            client
                .ec2
                .attach_volume()
                .volume_id(&r.volume_id)
                .instance_id(&r.instance_id)
                .device(&r.device)
                .send()
        })
        .await?;
    Ok(out.state().and_then(|s| AttachmentState::parse(s.as_str())))
}

pub(super) async fn detach(
    client: &Ec2Client,
    r: DetachVolumeRequest,
) -> Result<Option<AttachmentState>, AwsError> {
    let out = client
        .call(AwsAction::DetachVolume, Idempotency::Safe, || {
            client
                .ec2
                .detach_volume()
                .volume_id(&r.volume_id)
                .instance_id(&r.instance_id)
                .set_device(r.device.clone())
                .set_force(r.force.then_some(true))
                .send()
        })
        .await?;
    Ok(out.state().and_then(|s| AttachmentState::parse(s.as_str())))
}

pub(super) async fn delete(client: &Ec2Client, volume_id: String) -> Result<(), AwsError> {
    client
        .call(AwsAction::DeleteVolume, Idempotency::Safe, || {
            client.ec2.delete_volume().volume_id(&volume_id).send()
        })
        .await
        .map(drop)
}
