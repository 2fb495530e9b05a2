//! AMI calls: DescribeImages, Create/Register/Copy/DeregisterImage, the image attributes we
//! manage (launch permissions, description, deprecation) and the account's image block
//! public access state.

use std::collections::BTreeMap;

use aws_sdk_ec2::types as ec2t;
use chrono::{DateTime, Utc};

use super::conversions::{image_from_sdk, launch_permissions_from_sdk};
use super::describe::{MAX_IMAGE_PAGE, all_pages, sdk_filters};
use super::sdk::{Ec2Client, i32_param};
use super::{Filter, Page};
use crate::api::VolumeType;
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;
use crate::aws::tags::tag_specification;
use crate::plan::observed::{LaunchPermissionSet, ObservedImage};

/// CreateImage's parameters. No ClientToken exists: the name (unique per account and Region)
/// is the idempotency key, and a repeat fails with `InvalidAMIName.Duplicate`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateImageRequest {
    pub instance_id: String,
    pub name: String,
    pub description: Option<String>,
    pub no_reboot: bool,
    /// On the image (TagSpecifications image); on its snapshots too when `snapshot_tags`
    /// is empty.
    pub tags: BTreeMap<String, String>,
    /// On every snapshot it creates (TagSpecifications snapshot).
    pub snapshot_tags: BTreeMap<String, String>,
}

/// One block device mapping of a RegisterImage request: an instance store volume
/// (`virtual_name`), or an EBS volume (from `snapshot_id`, or a new empty one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageMappingRequest {
    pub device_name: String,
    /// `ephemeralN` for an instance store volume (then every EBS field is ignored).
    pub virtual_name: Option<String>,
    pub snapshot_id: Option<String>,
    pub volume_type: Option<VolumeType>,
    pub size_gib: Option<i64>,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub delete_on_termination: bool,
    /// Must be `None` for a mapping from a snapshot: AWS refuses it (the snapshot decides).
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
}

/// RegisterImage's parameters. No ClientToken exists in the API: the name is the
/// idempotency key, as for CreateImage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterImageRequest {
    pub name: String,
    pub description: Option<String>,
    /// `i386`, `x86_64`, `arm64`, `x86_64_mac`, `arm64_mac`.
    pub architecture: String,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: String,
    /// `legacy-bios`, `uefi`, `uefi-preferred`.
    pub boot_mode: Option<String>,
    pub ena_support: bool,
    /// `v2.0` or nothing.
    pub imds_support: Option<String>,
    /// `v2.0` or nothing.
    pub tpm_support: Option<String>,
    /// Base64 UEFI variable store.
    pub uefi_data: Option<String>,
    pub root_device_name: Option<String>,
    pub mappings: Vec<ImageMappingRequest>,
    /// An S3 manifest (instance store-backed).
    pub image_location: Option<String>,
    /// On the image (TagSpecifications image).
    pub tags: BTreeMap<String, String>,
}

/// CopyImage's parameters, sent to the DESTINATION Region's client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyImageRequest {
    pub source_image_id: String,
    pub source_region: String,
    pub name: String,
    pub description: Option<String>,
    /// `true` encrypts the copy's snapshots; `false` sends nothing (the copy is encrypted as
    /// its source is: AWS cannot decrypt through a copy, and refuses `Encrypted=false` for an
    /// encrypted source).
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub copy_image_tags: bool,
    /// A time-based copy: minutes each snapshot's copy may take (15-minute steps).
    pub completion_duration_minutes: Option<i64>,
    /// From `tokens::client_token`.
    pub client_token: String,
    /// On the copy (TagSpecifications image); on its snapshots too when `snapshot_tags` is
    /// empty.
    pub tags: BTreeMap<String, String>,
    /// On every snapshot of the copy (TagSpecifications snapshot).
    pub snapshot_tags: BTreeMap<String, String>,
}

/// The image's and its snapshots' TagSpecifications: the snapshots' own tags when given,
/// the image's otherwise.
fn image_and_snapshot_specs(
    image_tags: &BTreeMap<String, String>,
    snapshot_tags: &BTreeMap<String, String>,
) -> Option<Vec<ec2t::TagSpecification>> {
    if snapshot_tags.is_empty() {
        return tag_specifications(
            &[ec2t::ResourceType::Image, ec2t::ResourceType::Snapshot],
            image_tags,
        );
    }
    let specs: Vec<ec2t::TagSpecification> = [
        tag_specifications(&[ec2t::ResourceType::Image], image_tags),
        tag_specifications(&[ec2t::ResourceType::Snapshot], snapshot_tags),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .collect();
    Some(specs)
}

/// TagSpecifications for `types`, none at all without tags (AWS refuses an empty list).
fn tag_specifications(
    types: &[ec2t::ResourceType],
    tags: &BTreeMap<String, String>,
) -> Option<Vec<ec2t::TagSpecification>> {
    (!tags.is_empty()).then(|| {
        types
            .iter()
            .map(|t| tag_specification(t.clone(), tags))
            .collect()
    })
}

fn no_image_id(action: AwsAction) -> AwsError {
    AwsError::Client {
        code: "EmptyResponse".to_owned(),
        message: format!("{action} returned no image id"),
    }
}

pub(super) async fn describe_page(
    client: &Ec2Client,
    owners: Vec<String>,
    filters: Vec<Filter>,
    max_results: i32,
    next_token: Option<String>,
) -> Result<Page<ObservedImage>, AwsError> {
    let owners = (!owners.is_empty()).then_some(owners);
    let out = client
        .call(AwsAction::DescribeImages, Idempotency::Safe, || {
            client
                .ec2
                .describe_images()
                .set_owners(owners.clone())
                .set_filters(sdk_filters(&filters))
                // An owner always sees its deprecated images; for the others AWS hides them
                // unless asked, even when named by an `image-id` filter. `deprecation_time`
                // tells them apart.
                .include_deprecated(true)
                // Disabled images are hidden unless asked, from their owner too.
                .include_disabled(true)
                .max_results(max_results.clamp(5, MAX_IMAGE_PAGE))
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
    let items = out.images().iter().filter_map(image_from_sdk).collect();
    Ok(Page::new(items, out.next_token()))
}

pub(super) async fn launchable_by(
    client: &Ec2Client,
    account: String,
    filters: Vec<Filter>,
) -> Result<Vec<String>, AwsError> {
    let page = |next_token: Option<String>| {
        let account = account.clone();
        let filters = filters.clone();
        async move {
            let out = client
                .call(AwsAction::DescribeImages, Idempotency::Safe, || {
                    client
                        .ec2
                        .describe_images()
                        .owners("self")
                        .executable_users(&account)
                        .set_filters(sdk_filters(&filters))
                        .include_deprecated(true)
                        .include_disabled(true)
                        .max_results(MAX_IMAGE_PAGE)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            let ids = out
                .images()
                .iter()
                .filter_map(|i| i.image_id().map(str::to_owned))
                .collect();
            Ok(Page::new(ids, out.next_token()))
        }
    };
    all_pages(page).await
}

pub(super) async fn create(client: &Ec2Client, r: CreateImageRequest) -> Result<String, AwsError> {
    let specs = image_and_snapshot_specs(&r.tags, &r.snapshot_tags);
    let out = client
        // No token: after a 5xx or a transport error the caller looks for the name first.
        .call(AwsAction::CreateImage, Idempotency::Unsafe, || {
            client
                .ec2
                .create_image()
                .instance_id(&r.instance_id)
                .name(&r.name)
                .set_description(r.description.clone())
                .no_reboot(r.no_reboot)
                .set_tag_specifications(specs.clone())
                .send()
        })
        .await?;
    out.image_id()
        .map(str::to_owned)
        .ok_or_else(|| no_image_id(AwsAction::CreateImage))
}

fn sdk_mapping(m: &ImageMappingRequest) -> Result<ec2t::BlockDeviceMapping, AwsError> {
    let builder = ec2t::BlockDeviceMapping::builder().device_name(&m.device_name);
    if let Some(virtual_name) = &m.virtual_name {
        return Ok(builder.virtual_name(virtual_name).build());
    }
    let ebs = ec2t::EbsBlockDevice::builder()
        .set_snapshot_id(m.snapshot_id.clone())
        .set_volume_type(m.volume_type.map(|t| ec2t::VolumeType::from(t.as_str())))
        .set_volume_size(i32_param("size_gib", m.size_gib)?)
        .set_iops(i32_param("iops", m.iops)?)
        .set_throughput(i32_param("throughput_mibps", m.throughput_mibps)?)
        .delete_on_termination(m.delete_on_termination)
        .set_encrypted(m.encrypted)
        .set_kms_key_id(m.kms_key_id.clone())
        .build();
    Ok(builder.ebs(ebs).build())
}

pub(super) async fn register(
    client: &Ec2Client,
    r: RegisterImageRequest,
) -> Result<String, AwsError> {
    let mappings = r
        .mappings
        .iter()
        .map(sdk_mapping)
        .collect::<Result<Vec<_>, _>>()?;
    let mappings = (!mappings.is_empty()).then_some(mappings);
    let specs = tag_specifications(&[ec2t::ResourceType::Image], &r.tags);
    let out = client
        // No token either: the name is the key (`InvalidAMIName.Duplicate` on a repeat).
        .call(AwsAction::RegisterImage, Idempotency::Unsafe, || {
            client
                .ec2
                .register_image()
                .name(&r.name)
                .set_description(r.description.clone())
                .architecture(ec2t::ArchitectureValues::from(r.architecture.as_str()))
                .virtualization_type(&r.virtualization_type)
                .set_boot_mode(r.boot_mode.as_deref().map(ec2t::BootModeValues::from))
                .ena_support(r.ena_support)
                .set_imds_support(r.imds_support.as_deref().map(ec2t::ImdsSupportValues::from))
                .set_tpm_support(r.tpm_support.as_deref().map(ec2t::TpmSupportValues::from))
                .set_uefi_data(r.uefi_data.clone())
                .set_root_device_name(r.root_device_name.clone())
                .set_block_device_mappings(mappings.clone())
                .set_image_location(r.image_location.clone())
                .set_tag_specifications(specs.clone())
                .send()
        })
        .await?;
    out.image_id()
        .map(str::to_owned)
        .ok_or_else(|| no_image_id(AwsAction::RegisterImage))
}

pub(super) async fn copy(client: &Ec2Client, r: CopyImageRequest) -> Result<String, AwsError> {
    let specs = image_and_snapshot_specs(&r.tags, &r.snapshot_tags);
    let out = client
        .call(AwsAction::CopyImage, Idempotency::Safe, || {
            client
                .ec2
                .copy_image()
                .source_image_id(&r.source_image_id)
                .source_region(&r.source_region)
                .name(&r.name)
                .set_description(r.description.clone())
                .set_encrypted(r.encrypted.then_some(true))
                .set_kms_key_id(r.kms_key_id.clone())
                .set_copy_image_tags(r.copy_image_tags.then_some(true))
                .set_snapshot_copy_completion_duration_minutes(r.completion_duration_minutes)
                .client_token(&r.client_token)
                .set_tag_specifications(specs.clone())
                .send()
        })
        .await?;
    out.image_id()
        .map(str::to_owned)
        .ok_or_else(|| no_image_id(AwsAction::CopyImage))
}

pub(super) async fn deregister(
    client: &Ec2Client,
    image_id: String,
    delete_associated_snapshots: bool,
) -> Result<(), AwsError> {
    client
        .call(AwsAction::DeregisterImage, Idempotency::Safe, || {
            client
                .ec2
                .deregister_image()
                .image_id(&image_id)
                .set_delete_associated_snapshots(delete_associated_snapshots.then_some(true))
                .send()
        })
        .await
        .map(drop)
}

pub(super) async fn describe_launch_permissions(
    client: &Ec2Client,
    image_id: String,
) -> Result<LaunchPermissionSet, AwsError> {
    let out = client
        .call(AwsAction::DescribeImageAttribute, Idempotency::Safe, || {
            client
                .ec2
                .describe_image_attribute()
                .image_id(&image_id)
                .attribute(ec2t::ImageAttributeName::LaunchPermission)
                .send()
        })
        .await?;
    Ok(launch_permissions_from_sdk(out.launch_permissions()))
}

/// The SDK launch permissions of a set (one per account, organization, OU, and `all`).
fn sdk_launch_permissions(set: &LaunchPermissionSet) -> Option<Vec<ec2t::LaunchPermission>> {
    if set.is_empty() {
        return None;
    }
    let accounts = set
        .account_ids
        .iter()
        .map(|id| ec2t::LaunchPermission::builder().user_id(id).build());
    let orgs = set.organization_arns.iter().map(|arn| {
        ec2t::LaunchPermission::builder()
            .organization_arn(arn)
            .build()
    });
    let units = set.organizational_unit_arns.iter().map(|arn| {
        ec2t::LaunchPermission::builder()
            .organizational_unit_arn(arn)
            .build()
    });
    let public = set.public.then(|| {
        ec2t::LaunchPermission::builder()
            .group(ec2t::PermissionGroup::All)
            .build()
    });
    Some(accounts.chain(orgs).chain(units).chain(public).collect())
}

pub(super) async fn modify_launch_permissions(
    client: &Ec2Client,
    image_id: String,
    add: LaunchPermissionSet,
    remove: LaunchPermissionSet,
) -> Result<(), AwsError> {
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let modifications = ec2t::LaunchPermissionModifications::builder()
        .set_add(sdk_launch_permissions(&add))
        .set_remove(sdk_launch_permissions(&remove))
        .build();
    client
        // Adding a grant that exists or removing one that does not changes nothing.
        .call(AwsAction::ModifyImageAttribute, Idempotency::Safe, || {
            client
                .ec2
                .modify_image_attribute()
                .image_id(&image_id)
                .launch_permission(modifications.clone())
                .send()
        })
        .await
        .map(drop)
}

pub(super) async fn modify_description(
    client: &Ec2Client,
    image_id: String,
    description: String,
) -> Result<(), AwsError> {
    let value = ec2t::AttributeValue::builder().value(description).build();
    client
        .call(AwsAction::ModifyImageAttribute, Idempotency::Safe, || {
            client
                .ec2
                .modify_image_attribute()
                .image_id(&image_id)
                .description(value.clone())
                .send()
        })
        .await
        .map(drop)
}

pub(super) async fn enable_deprecation(
    client: &Ec2Client,
    image_id: String,
    at: DateTime<Utc>,
) -> Result<(), AwsError> {
    let at = aws_sdk_ec2::primitives::DateTime::from_secs_and_nanos(
        at.timestamp(),
        at.timestamp_subsec_nanos(),
    );
    client
        .call(AwsAction::EnableImageDeprecation, Idempotency::Safe, || {
            client
                .ec2
                .enable_image_deprecation()
                .image_id(&image_id)
                .deprecate_at(at)
                .send()
        })
        .await
        .map(drop)
}

pub(super) async fn disable_deprecation(
    client: &Ec2Client,
    image_id: String,
) -> Result<(), AwsError> {
    client
        .call(
            AwsAction::DisableImageDeprecation,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .disable_image_deprecation()
                    .image_id(&image_id)
                    .send()
            },
        )
        .await
        .map(drop)
}

pub(super) async fn enable_protection(
    client: &Ec2Client,
    image_id: String,
    with_cooldown: bool,
) -> Result<(), AwsError> {
    client
        .call(
            AwsAction::EnableImageDeregistrationProtection,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .enable_image_deregistration_protection()
                    .image_id(&image_id)
                    .with_cooldown(with_cooldown)
                    .send()
            },
        )
        .await
        .map(drop)
}

pub(super) async fn disable_protection(
    client: &Ec2Client,
    image_id: String,
) -> Result<(), AwsError> {
    client
        .call(
            AwsAction::DisableImageDeregistrationProtection,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .disable_image_deregistration_protection()
                    .image_id(&image_id)
                    .send()
            },
        )
        .await
        .map(drop)
}

/// Whether making an image public is blocked in this Region: anything but `unblocked`
/// (`block-new-sharing` today; a state added later, or none, is taken as blocked, so the
/// controller refuses to publish rather than fails against AWS).
pub(super) async fn block_public_access_blocked(client: &Ec2Client) -> Result<bool, AwsError> {
    let out = client
        .call(
            AwsAction::GetImageBlockPublicAccessState,
            Idempotency::Safe,
            || client.ec2.get_image_block_public_access_state().send(),
        )
        .await?;
    Ok(public_access_blocked(out.image_block_public_access_state()))
}

fn public_access_blocked(state: Option<&str>) -> bool {
    state != Some("unblocked")
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn only_unblocked_allows_public_images() {
        assert!(public_access_blocked(Some("block-new-sharing")));
        assert!(!public_access_blocked(Some("unblocked")));
        assert!(public_access_blocked(Some("block-all-sharing")));
        assert!(public_access_blocked(None));
    }

    #[test]
    fn launch_permission_sets_become_one_grant_each_and_none_when_empty() {
        assert_eq!(
            sdk_launch_permissions(&LaunchPermissionSet::default()),
            None
        );
        let set = LaunchPermissionSet {
            account_ids: BTreeSet::from(["111122223333".to_owned(), "444455556666".to_owned()]),
            organization_arns: BTreeSet::from([
                "arn:aws:organizations::1:organization/o-1".to_owned()
            ]),
            organizational_unit_arns: BTreeSet::from([
                "arn:aws:organizations::1:ou/o-1/ou-1".to_owned()
            ]),
            public: true,
        };
        let grants = sdk_launch_permissions(&set).unwrap_or_else(|| panic!("not empty"));
        assert_eq!(grants.len(), 5);
        assert_eq!(launch_permissions_from_sdk(&grants), set);
    }

    #[test]
    fn instance_store_mappings_carry_no_ebs_and_ebs_mappings_every_field() {
        let store = sdk_mapping(&ImageMappingRequest {
            device_name: "/dev/sdb".to_owned(),
            virtual_name: Some("ephemeral0".to_owned()),
            size_gib: Some(10),
            ..ImageMappingRequest::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.virtual_name(), Some("ephemeral0"));
        assert!(store.ebs().is_none());

        let root = sdk_mapping(&ImageMappingRequest {
            device_name: "/dev/xvda".to_owned(),
            snapshot_id: Some("snap-1".to_owned()),
            volume_type: Some(VolumeType::Gp3),
            size_gib: Some(12),
            iops: Some(4000),
            throughput_mibps: Some(250),
            delete_on_termination: true,
            ..ImageMappingRequest::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let ebs = root.ebs().unwrap_or_else(|| panic!("an EBS mapping"));
        assert_eq!(ebs.snapshot_id(), Some("snap-1"));
        assert_eq!(ebs.volume_type(), Some(&ec2t::VolumeType::Gp3));
        assert_eq!(
            (ebs.volume_size(), ebs.iops(), ebs.throughput()),
            (Some(12), Some(4000), Some(250))
        );
        assert_eq!(ebs.delete_on_termination(), Some(true));
        assert_eq!(ebs.encrypted(), None, "never sent unless asked");

        let too_big = sdk_mapping(&ImageMappingRequest {
            size_gib: Some(i64::MAX),
            ..ImageMappingRequest::default()
        });
        assert!(too_big.is_err());
    }

    #[test]
    fn no_tags_no_tag_specifications() {
        assert_eq!(
            tag_specifications(&[ec2t::ResourceType::Image], &BTreeMap::new()),
            None
        );
        let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        let specs = tag_specifications(
            &[ec2t::ResourceType::Image, ec2t::ResourceType::Snapshot],
            &tags,
        )
        .unwrap_or_default();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            specs[1].resource_type(),
            Some(&ec2t::ResourceType::Snapshot)
        );
    }
}
