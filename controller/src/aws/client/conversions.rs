//! SDK answers as our own types (`plan::observed`, [`ObservedInstance`], [`KmsKey`]), so no
//! SDK type leaves the client. Listed items without an id (and volumes or modifications in a
//! state we do not know) are dropped: the plan cannot act on them, and an unknown state must
//! not be mistaken for a known one. Images in a state we do not know are kept with
//! `state: None` (their type says so): an existing image must not look deleted.

use aws_sdk_ec2::operation::create_snapshot::CreateSnapshotOutput;
use aws_sdk_ec2::operation::create_volume::CreateVolumeOutput;
use aws_sdk_ec2::types as ec2t;
use chrono::{DateTime, Utc};

use super::instances::ObservedInstance;
use super::kms::KmsKey;
use crate::api::VolumeType;
use crate::aws::tags::from_sdk_tags;
use crate::plan::observed::{
    AttachmentState, ImageState, InstanceDevice, LaunchPermissionSet, ModificationState,
    ObservedAttachment, ObservedImage, ObservedImageMapping, ObservedModification,
    ObservedSnapshot, ObservedVolume, VolumeState,
};

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

/// CreateVolume's answer as an [`ObservedVolume`]. Unlike a listing it is kept whatever it
/// lacks: the call succeeded, and the caller needs the id to record it.
pub(super) fn volume_from_create(out: &CreateVolumeOutput) -> ObservedVolume {
    ObservedVolume {
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
    }
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

/// CreateSnapshot's answer as an [`ObservedSnapshot`] (kept whatever it lacks, as for
/// [`volume_from_create`]).
pub(super) fn snapshot_from_create(out: &CreateSnapshotOutput) -> ObservedSnapshot {
    ObservedSnapshot {
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
    }
}

/// An RFC 3339 time as AWS writes it in image attributes (`2026-12-02T10:11:12.000Z`);
/// `None` when absent or unparsable.
fn parse_rfc3339(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A DescribeImages item as an [`ObservedImage`] (`None` without an id). A state this
/// controller does not know is kept as `state: None`, not dropped: the image exists.
pub fn image_from_sdk(i: &ec2t::Image) -> Option<ObservedImage> {
    Some(ObservedImage {
        image_id: i.image_id()?.to_owned(),
        name: i.name().unwrap_or_default().to_owned(),
        state: i.state().and_then(|s| ImageState::parse(s.as_str())),
        state_reason: i
            .state_reason()
            .and_then(|r| r.message().or(r.code()))
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        owner_id: i.owner_id().unwrap_or_default().to_owned(),
        public: i.public().unwrap_or(false),
        description: i.description().map(str::to_owned),
        root_device_type: i.root_device_type().map(|t| t.as_str().to_owned()),
        root_device_name: i.root_device_name().map(str::to_owned),
        virtualization_type: i.virtualization_type().map(|t| t.as_str().to_owned()),
        architecture: i.architecture().map(|a| a.as_str().to_owned()),
        boot_mode: i.boot_mode().map(|m| m.as_str().to_owned()),
        imds_support: i.imds_support().map(|v| v.as_str().to_owned()),
        tpm_support: i.tpm_support().map(|v| v.as_str().to_owned()),
        last_launched_time: parse_rfc3339(i.last_launched_time()),
        creation_date: parse_rfc3339(i.creation_date()),
        deprecation_time: parse_rfc3339(i.deprecation_time()),
        deregistration_protection: i.deregistration_protection().map(str::to_owned),
        block_device_mappings: i
            .block_device_mappings()
            .iter()
            .filter_map(image_mapping_from_sdk)
            .collect(),
        tags: from_sdk_tags(i.tags()),
    })
}

/// One mapping of an image (`None` without a device name, or for a `NoDevice` entry, which
/// removes a device rather than maps one).
fn image_mapping_from_sdk(m: &ec2t::BlockDeviceMapping) -> Option<ObservedImageMapping> {
    if m.no_device().is_some() {
        return None;
    }
    let ebs = m.ebs();
    Some(ObservedImageMapping {
        device_name: m.device_name()?.to_owned(),
        virtual_name: m.virtual_name().map(str::to_owned),
        snapshot_id: ebs
            .and_then(|e| e.snapshot_id())
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        size_gib: ebs.and_then(|e| e.volume_size()).map(i64::from),
        volume_type: ebs
            .and_then(|e| e.volume_type())
            .and_then(|t| VolumeType::parse(t.as_str())),
        encrypted: ebs.and_then(|e| e.encrypted()),
        kms_key_id: ebs.and_then(|e| e.kms_key_id()).map(str::to_owned),
        delete_on_termination: ebs.and_then(|e| e.delete_on_termination()),
    })
}

/// DescribeImageAttribute's `launchPermission` list as a [`LaunchPermissionSet`].
pub fn launch_permissions_from_sdk(grants: &[ec2t::LaunchPermission]) -> LaunchPermissionSet {
    let mut set = LaunchPermissionSet::default();
    for g in grants {
        if let Some(id) = g.user_id() {
            set.account_ids.insert(id.to_owned());
        }
        if let Some(arn) = g.organization_arn() {
            set.organization_arns.insert(arn.to_owned());
        }
        if let Some(arn) = g.organizational_unit_arn() {
            set.organizational_unit_arns.insert(arn.to_owned());
        }
        if g.group() == Some(&ec2t::PermissionGroup::All) {
            set.public = true;
        }
    }
    set
}

/// The instances of DescribeInstances' reservations (those without an id are dropped).
pub(super) fn instances_from_sdk(reservations: &[ec2t::Reservation]) -> Vec<ObservedInstance> {
    reservations
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            Some(ObservedInstance {
                instance_id: i.instance_id()?.to_owned(),
                availability_zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .map(str::to_owned),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned()),
                state_reason: i.state_reason().and_then(|r| r.code()).map(str::to_owned),
                tags: from_sdk_tags(i.tags()),
                instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
                root_device_type: i.root_device_type().map(|t| t.as_str().to_owned()),
                root_device_name: i.root_device_name().map(str::to_owned),
                devices: i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| {
                        let ebs = m.ebs()?;
                        Some(InstanceDevice {
                            device_name: m.device_name()?.to_owned(),
                            volume_id: ebs.volume_id()?.to_owned(),
                            delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}

/// KMS DescribeKey's metadata as a [`KmsKey`].
pub(super) fn key_from_sdk(meta: &aws_sdk_kms::types::KeyMetadata) -> KmsKey {
    KmsKey {
        arn: meta.arn().unwrap_or_default().to_owned(),
        key_id: meta.key_id().to_owned(),
        enabled: meta.enabled(),
        state: meta.key_state().map(|s| s.as_str().to_owned()),
        aws_managed: meta.key_manager() == Some(&aws_sdk_kms::types::KeyManagerType::Aws),
    }
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
        assert_eq!(o.tags.get("team"), Some("a"));
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
    fn sdk_images_convert_with_their_mappings_dates_and_reason() {
        let i = ec2t::Image::builder()
            .image_id("ami-1")
            .name("web-1")
            .state(ec2t::ImageState::Failed)
            .state_reason(
                ec2t::StateReason::builder()
                    .code("Server.InternalError")
                    .message("Server.InternalError: copy failed")
                    .build(),
            )
            .owner_id("123456789012")
            .public(true)
            .root_device_type(ec2t::DeviceType::Ebs)
            .root_device_name("/dev/xvda")
            .virtualization_type(ec2t::VirtualizationType::Hvm)
            .architecture(ec2t::ArchitectureValues::Arm64)
            .creation_date("2026-12-02T10:11:12.000Z")
            .deprecation_time("not a time")
            .block_device_mappings(
                ec2t::BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        ec2t::EbsBlockDevice::builder()
                            .snapshot_id("snap-1")
                            .volume_size(12)
                            .volume_type(ec2t::VolumeType::Gp3)
                            .encrypted(true)
                            .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/k")
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                ec2t::BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .block_device_mappings(
                ec2t::BlockDeviceMapping::builder()
                    .device_name("/dev/sdc")
                    .no_device("")
                    .build(),
            )
            .tags(ec2t::Tag::builder().key("team").value("a").build())
            .build();
        let o = image_from_sdk(&i).unwrap_or_else(|| unreachable!());
        assert_eq!((o.image_id.as_str(), o.name.as_str()), ("ami-1", "web-1"));
        assert_eq!(o.state, Some(ImageState::Failed));
        assert_eq!(
            o.state_reason.as_deref(),
            Some("Server.InternalError: copy failed")
        );
        assert!(o.public);
        assert_eq!(o.owner_id, "123456789012");
        assert_eq!(o.root_device_type.as_deref(), Some("ebs"));
        assert_eq!(o.virtualization_type.as_deref(), Some("hvm"));
        assert_eq!(o.architecture.as_deref(), Some("arm64"));
        assert_eq!(
            o.creation_date.map(|t| t.to_rfc3339()),
            Some("2026-12-02T10:11:12+00:00".to_owned())
        );
        assert_eq!(o.deprecation_time, None, "unparsable is None");
        assert_eq!(o.block_device_mappings.len(), 2, "NoDevice is no mapping");
        let root = &o.block_device_mappings[0];
        assert_eq!(root.snapshot_id.as_deref(), Some("snap-1"));
        assert_eq!(
            (root.size_gib, root.volume_type, root.encrypted),
            (Some(12), Some(VolumeType::Gp3), Some(true))
        );
        assert_eq!(root.delete_on_termination, Some(true));
        let store = &o.block_device_mappings[1];
        assert_eq!(store.virtual_name.as_deref(), Some("ephemeral0"));
        assert_eq!(store.snapshot_id, None);
        assert_eq!(o.snapshot_ids(), vec!["snap-1".to_owned()]);
        assert_eq!(o.tags.get("team"), Some("a"));

        let unknown = ec2t::Image::builder()
            .image_id("ami-2")
            .state(ec2t::ImageState::from("frozen"))
            .build();
        let o = image_from_sdk(&unknown).unwrap_or_else(|| unreachable!());
        assert_eq!(o.state, None, "an unknown state is kept as None");
        assert!(image_from_sdk(&ec2t::Image::builder().build()).is_none());
    }

    #[test]
    fn launch_permissions_convert() {
        let set = launch_permissions_from_sdk(&[
            ec2t::LaunchPermission::builder()
                .user_id("111122223333")
                .build(),
            ec2t::LaunchPermission::builder()
                .group(ec2t::PermissionGroup::All)
                .build(),
            ec2t::LaunchPermission::builder()
                .organization_arn("arn:aws:organizations::1:organization/o-1")
                .build(),
            ec2t::LaunchPermission::builder()
                .organizational_unit_arn("arn:aws:organizations::1:ou/o-1/ou-1")
                .build(),
        ]);
        assert!(set.public);
        assert_eq!(set.account_ids.len(), 1);
        assert_eq!(set.organization_arns.len(), 1);
        assert_eq!(set.organizational_unit_arns.len(), 1);
        assert!(launch_permissions_from_sdk(&[]).is_empty());
    }

    #[test]
    fn items_without_an_id_or_state_are_dropped() {
        assert!(volume_from_sdk(&ec2t::Volume::builder().volume_id("vol-1").build()).is_none());
        assert!(snapshot_from_sdk(&ec2t::Snapshot::builder().build()).is_none());
    }
}
