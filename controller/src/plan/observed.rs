//! What the controller observed in AWS, as plain values.
//!
//! The `aws` layer turns SDK responses into these; the planner reads them. Nothing here
//! depends on the AWS SDK, so planner tests build them by hand.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::api::VolumeType;
use crate::plan::observed_tags::Tags;

/// A volume's lifecycle state as DescribeVolumes reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeState {
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
}

impl VolumeState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "creating" => Self::Creating,
            "available" => Self::Available,
            "in-use" => Self::InUse,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            "error" => Self::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::InUse => "in-use",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Error => "error",
        }
    }
}

/// An attachment's state as DescribeVolumes reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentState {
    Attaching,
    Attached,
    Detaching,
    Detached,
    Busy,
}

impl AttachmentState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "attaching" => Self::Attaching,
            "attached" => Self::Attached,
            "detaching" => Self::Detaching,
            "detached" => Self::Detached,
            "busy" => Self::Busy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attaching => "attaching",
            Self::Attached => "attached",
            Self::Detaching => "detaching",
            Self::Detached => "detached",
            Self::Busy => "busy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAttachment {
    pub instance_id: String,
    pub device: String,
    pub state: AttachmentState,
}

/// One EBS volume as AWS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedVolume {
    pub volume_id: String,
    pub state: VolumeState,
    pub availability_zone: String,
    /// `None` for a type this controller does not know (AWS added one).
    pub volume_type: Option<VolumeType>,
    pub size_gib: i64,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub encrypted: bool,
    /// The key ARN, as AWS reports it.
    pub kms_key_id: Option<String>,
    pub multi_attach_enabled: bool,
    pub snapshot_id: Option<String>,
    pub attachments: Vec<ObservedAttachment>,
    /// Every tag, ours and others'.
    pub tags: Tags,
    pub create_time: Option<DateTime<Utc>>,
}

#[cfg(test)]
impl ObservedVolume {
    /// An available, unattached 100 GiB gp3 volume at its defaults, untagged: the fixture
    /// tests of every layer start from (overriding what they are about).
    pub fn example(volume_id: &str, availability_zone: &str) -> Self {
        Self {
            volume_id: volume_id.to_owned(),
            state: VolumeState::Available,
            availability_zone: availability_zone.to_owned(),
            volume_type: Some(VolumeType::Gp3),
            size_gib: 100,
            iops: Some(3000),
            throughput_mibps: Some(125),
            encrypted: false,
            kms_key_id: None,
            multi_attach_enabled: false,
            snapshot_id: None,
            attachments: Vec::new(),
            tags: Tags::default(),
            create_time: None,
        }
    }
}

/// A volume modification's state as DescribeVolumesModifications reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModificationState {
    Modifying,
    Optimizing,
    Completed,
    Failed,
}

impl ModificationState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "modifying" => Self::Modifying,
            "optimizing" => Self::Optimizing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modifying => "modifying",
            Self::Optimizing => "optimizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// The latest modification of one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedModification {
    pub volume_id: String,
    pub state: ModificationState,
    pub progress: Option<i64>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub status_message: Option<String>,
    pub target_size_gib: Option<i64>,
    pub target_volume_type: Option<VolumeType>,
    pub target_iops: Option<i64>,
    pub target_throughput_mibps: Option<i64>,
}

/// A snapshot as DescribeSnapshots reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedSnapshot {
    pub snapshot_id: String,
    pub volume_id: Option<String>,
    /// pending, completed, error, recoverable or recovering.
    pub state: String,
    pub progress: Option<i64>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub volume_size_gib: Option<i64>,
    pub tags: Tags,
    pub start_time: Option<DateTime<Utc>>,
}

/// What attachment, tenancy and migration checks need to know about an instance (never
/// ours: the controller does not make instances).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedInstance {
    pub instance_id: String,
    pub availability_zone: Option<String>,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: Option<String>,
    /// Why it last changed state (`Client.InvalidKMSKey.InvalidState` for a start that
    /// failed on its root volume's key), as AWS's code.
    pub state_reason: Option<String>,
    /// Its tags: the administrator's grant tag among them.
    pub tags: Tags,
    pub instance_type: Option<String>,
    /// `ebs` or `instance-store`.
    pub root_device_type: Option<String>,
    pub root_device_name: Option<String>,
    /// Its EBS volumes by device (instance store volumes are never listed here).
    pub devices: Vec<InstanceDevice>,
}

/// One EBS volume of an instance's block device mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceDevice {
    pub device_name: String,
    pub volume_id: String,
    pub delete_on_termination: bool,
}

impl ObservedInstance {
    /// The EBS volume mapped at `device`, if any.
    pub fn device(&self, device: &str) -> Option<&InstanceDevice> {
        self.devices.iter().find(|d| d.device_name == device)
    }
}

/// An AMI's state as DescribeImages reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageState {
    Pending,
    Available,
    Invalid,
    Deregistered,
    Transient,
    Failed,
    Error,
    Disabled,
}

impl ImageState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "available" => Self::Available,
            "invalid" => Self::Invalid,
            "deregistered" => Self::Deregistered,
            "transient" => Self::Transient,
            "failed" => Self::Failed,
            "error" => Self::Error,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Invalid => "invalid",
            Self::Deregistered => "deregistered",
            Self::Transient => "transient",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Disabled => "disabled",
        }
    }
}

/// One block device of an AMI as AWS reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedImageMapping {
    pub device_name: String,
    /// `ephemeralN` for an instance store volume.
    pub virtual_name: Option<String>,
    pub snapshot_id: Option<String>,
    pub size_gib: Option<i64>,
    pub volume_type: Option<VolumeType>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub delete_on_termination: Option<bool>,
}

/// One AMI as AWS reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedImage {
    pub image_id: String,
    pub name: String,
    /// `None` when AWS reported a state this controller does not know.
    pub state: Option<ImageState>,
    /// Why a `failed` (or `error`) image failed, in AWS's words.
    pub state_reason: Option<String>,
    pub owner_id: String,
    /// Launchable by everyone.
    pub public: bool,
    pub description: Option<String>,
    /// `ebs` or `instance-store`.
    pub root_device_type: Option<String>,
    pub root_device_name: Option<String>,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: Option<String>,
    /// `i386`, `x86_64`, `arm64`, `x86_64_mac`, `arm64_mac`.
    pub architecture: Option<String>,
    /// `legacy-bios`, `uefi` or `uefi-preferred`.
    pub boot_mode: Option<String>,
    /// `v2.0` when launched instances require IMDSv2.
    pub imds_support: Option<String>,
    /// `v2.0` when launched instances get a NitroTPM.
    pub tpm_support: Option<String>,
    pub last_launched_time: Option<DateTime<Utc>>,
    pub creation_date: Option<DateTime<Utc>>,
    pub deprecation_time: Option<DateTime<Utc>>,
    /// `disabled`, `enabled-with-cooldown`, `enabled-without-cooldown`, or
    /// `disabled-until <time>` (a cooldown running); `None` when AWS did not say.
    pub deregistration_protection: Option<String>,
    pub block_device_mappings: Vec<ObservedImageMapping>,
    pub tags: Tags,
}

impl ObservedImage {
    /// The snapshots its EBS mappings use.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.block_device_mappings
            .iter()
            .filter_map(|m| m.snapshot_id.clone())
            .collect()
    }
}

/// Who may launch an AMI, as its `launchPermission` attribute lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchPermissionSet {
    pub account_ids: BTreeSet<String>,
    pub organization_arns: BTreeSet<String>,
    pub organizational_unit_arns: BTreeSet<String>,
    /// The `all` group.
    pub public: bool,
}

impl LaunchPermissionSet {
    pub fn is_empty(&self) -> bool {
        self.account_ids.is_empty()
            && self.organization_arns.is_empty()
            && self.organizational_unit_arns.is_empty()
            && !self.public
    }

    /// Whether it grants other accounts anything (accounts, organizations or OUs).
    pub fn grants_accounts(&self) -> bool {
        !self.account_ids.is_empty()
            || !self.organization_arns.is_empty()
            || !self.organizational_unit_arns.is_empty()
    }
}
