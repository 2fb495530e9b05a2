//! The EbsVolume kind: one EBS volume, created or adopted, modified in place and deleted.

use std::fmt;

use kube::CustomResource;
use kube::core::Rule;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use super::common::{
    DeletionPolicy, ManagementPolicy, Tags, add_rule, availability_zone_schema, immutable,
    kms_key_schema, region_schema, tags_schema,
};
use super::conditions::Condition;
use super::intent::Intent;
use super::limits::MAX_MULTI_ATTACH_INSTANCES;
use super::volume_rules::{VolumeFields, volume_setting_rules};

/// An EBS volume type.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    #[default]
    Gp3,
    Gp2,
    Io1,
    Io2,
    St1,
    Sc1,
    Standard,
}

impl VolumeType {
    pub const ALL: [VolumeType; 7] = [
        VolumeType::Gp3,
        VolumeType::Gp2,
        VolumeType::Io1,
        VolumeType::Io2,
        VolumeType::St1,
        VolumeType::Sc1,
        VolumeType::Standard,
    ];

    /// The name AWS and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Gp3 => "gp3",
            VolumeType::Gp2 => "gp2",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
            VolumeType::Standard => "standard",
        }
    }

    pub fn parse(name: &str) -> Option<VolumeType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// io1 and io2 have no default IOPS: they must be provisioned.
    pub fn requires_iops(self) -> bool {
        matches!(self, VolumeType::Io1 | VolumeType::Io2)
    }
}

impl fmt::Display for VolumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the volume should be attached.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachmentSpec {
    /// The EC2 instance, in the volume's Availability Zone.
    #[schemars(regex(pattern = r"^i-[0-9a-f]{8,17}$"), length(max = 32))]
    pub instance_id: String,
    /// The device name on the instance, such as /dev/sdf or xvdf.
    #[schemars(regex(pattern = r"^(/dev/)?[a-z][a-z0-9]{1,15}$"), length(max = 24))]
    pub device: String,
}

/// The EBS volume the user wants.
// Each printcolumn repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ec2.reconciler.dev",
    version = "v1alpha1",
    kind = "EbsVolume",
    plural = "ebsvolumes",
    namespaced,
    status = "EbsVolumeStatus",
    shortname = "ebs",
    category = "aws",
    printcolumn(name = "Volume", type_ = "string", json_path = ".status.volumeId"),
    printcolumn(name = "Type", type_ = "string", json_path = ".status.volumeType"),
    printcolumn(
        name = "Size",
        type_ = "integer",
        json_path = ".spec.sizeGiB",
        description = "GiB"
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Synced")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    // On the whole object, so they can see the status: encryption cannot change in place,
    // but once an EncryptedVolumeMigration encrypted the volume (the status says so), an
    // unencrypted spec may catch up with it.
    validation = Rule::new(format!("self.spec.encrypted == oldSelf.spec.encrypted || {MIGRATED}"))
        .message("encrypted cannot change after creation: use an EncryptedVolumeMigration to encrypt a volume (once it has, the spec may say encrypted: true)")
        .field_path(".spec.encrypted"),
    validation = Rule::new(format!("(has(self.spec.kmsKeyId) == has(oldSelf.spec.kmsKeyId) && (!has(self.spec.kmsKeyId) || self.spec.kmsKeyId == oldSelf.spec.kmsKeyId)) || {MIGRATED}"))
        .message("kmsKeyId cannot change after creation: encryption keys cannot change in place; use an EncryptedVolumeMigration")
        .field_path(".spec.kmsKeyId")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = ebs_volume_spec_rules)]
pub struct EbsVolumeSpec {
    /// AWS Region. Defaults to the controller's configured Region. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "region_schema")]
    pub region: Option<String>,
    /// The zone to create the volume in, by name: an Availability Zone (us-east-1a), Local
    /// Zone (us-west-2-lax-1a) or Wavelength Zone (us-east-1-wl1-bos-wlz-1), not a zone id
    /// (use1-az1). Required unless `volumeId` adopts an existing volume. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "availability_zone_schema")]
    pub availability_zone: Option<String>,
    /// The volume type: gp3 when a volume is created without one; when adopting, leaving it
    /// out keeps the volume's own type (it is not managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    /// Size in GiB; may only grow. Defaults to the snapshot's size when `snapshotId` is set.
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<i64>,
    /// Provisioned IOPS: gp3 (default 3000), io1 and io2 (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    /// Throughput in MiB/s, gp3 only (default 125).
    #[serde(
        default,
        rename = "throughputMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    pub throughput_mibps: Option<i64>,
    /// Encrypt the volume. Immutable: use an EncryptedVolumeMigration to encrypt an existing volume.
    #[serde(default)]
    pub encrypted: bool,
    /// The KMS key to encrypt with (needs `encrypted: true`); the account's default EBS key
    /// when omitted. A key id, key ARN, alias name (alias/...) or alias ARN. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kms_key_schema")]
    pub kms_key_id: Option<String>,
    /// Allow attaching to up to 16 instances in the same Availability Zone (io1 and io2
    /// only). The data is only safe with a cluster-aware file system.
    #[serde(default)]
    pub multi_attach_enabled: bool,
    /// Create the volume from this snapshot. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^snap-[0-9a-f]{8,17}$"), length(max = 32))]
    pub snapshot_id: Option<String>,
    /// Instances to attach the volume to; more than one needs `multiAttachEnabled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_MULTI_ATTACH_INSTANCES), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["instanceId"]))]
    pub attachments: Vec<VolumeAttachmentSpec>,
    /// Tags on the volume. Tags others add, and `aws:` tags, are left alone.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: Tags,
    /// Adopt this existing volume instead of creating one. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^vol-[0-9a-f]{8,17}$"), length(max = 32))]
    pub volume_id: Option<String>,
    /// `Manage` converges the volume to this spec; `ObserveOnly` only reports differences.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// `Delete` deletes the volume with this object; `Retain` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Take a snapshot before deleting the volume, and wait for it to complete.
    #[serde(default)]
    pub final_snapshot: bool,
    /// Force detaching (the instance gets no chance to flush: data may be lost).
    #[serde(default)]
    pub force_detach: bool,
}

/// A spec that said unencrypted, on a volume the status shows encrypted: what an
/// EncryptedVolumeMigration leaves behind.
const MIGRATED: &str = "(!oldSelf.spec.encrypted && has(self.status) && has(self.status.encrypted) && self.status.encrypted)";

/// Every admission rule of the EbsVolume spec.
pub fn ebs_volume_rules() -> Vec<Rule> {
    let mut rules = vec![
        Rule::new("has(self.volumeId) || has(self.availabilityZone)")
            .message("availabilityZone is required to create a volume (or set volumeId to adopt an existing one)"),
        Rule::new("has(self.volumeId) || has(self.sizeGiB) || has(self.snapshotId)")
            .message("sizeGiB is required to create a volume unless snapshotId gives the size"),
        Rule::new("self.managementPolicy != 'ObserveOnly' || has(self.volumeId)")
            .message("managementPolicy ObserveOnly needs volumeId: it observes an existing volume and creates nothing"),
        Rule::new(format!("!self.multiAttachEnabled || {TYPE} in ['io1', 'io2']"))
            .message("multiAttachEnabled is only possible for io1 and io2 volumes")
            .field_path(".multiAttachEnabled"),
        Rule::new("self.multiAttachEnabled || !has(self.attachments) || size(self.attachments) <= 1")
            .message("attaching to more than one instance needs multiAttachEnabled (io1 or io2)")
            .field_path(".attachments"),
        Rule::new("!has(self.kmsKeyId) || self.encrypted")
            .message("kmsKeyId needs encrypted: true")
            .field_path(".kmsKeyId"),
        // A zone of a Region is the Region and one letter (us-east-1a), or the Region, a dash
        // and more (us-east-1-bos-1a): `us-east-11a` is not in us-east-1.
        Rule::new("!has(self.region) || !has(self.availabilityZone) || self.availabilityZone.startsWith(self.region + '-') || (self.availabilityZone.startsWith(self.region) && size(self.availabilityZone) == size(self.region) + 1)")
            .message("availabilityZone must be in region")
            .field_path(".availabilityZone"),
        // Transition rules: what AWS cannot change on an existing volume.
        Rule::new("!has(oldSelf.sizeGiB) || !has(self.sizeGiB) || self.sizeGiB >= oldSelf.sizeGiB")
            .message("sizeGiB can only grow: EBS volumes cannot shrink")
            .field_path(".sizeGiB"),
        immutable("availabilityZone", "a volume cannot move; create a new EbsVolume from a snapshot instead"),
        immutable("region", "create a new EbsVolume in the other Region"),
        immutable("snapshotId", "it only matters when the volume is created"),
        immutable("volumeId", "create a new EbsVolume to adopt another volume"),
    ];
    rules.extend(volume_setting_rules(VolumeFields {
        default_type: VolumeType::Gp3,
        iops_optional_when: Some("has(self.volumeId)"),
    }));
    rules
}

/// The volume type a rule checks: the spec's, or gp3 (what CreateVolume gets) when unset.
const TYPE: &str = "(has(self.volumeType) ? self.volumeType : 'gp3')";

fn ebs_volume_spec_rules(schema: &mut Schema) {
    for rule in ebs_volume_rules() {
        add_rule(schema, rule);
    }
}

/// An attachment as AWS reports it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachmentStatus {
    pub instance_id: String,
    pub device: String,
    /// attaching, attached, detaching or busy.
    pub state: String,
}

/// A volume modification as AWS reports it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeModificationStatus {
    /// modifying, optimizing, completed or failed.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// What the controller observed and did.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EbsVolumeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    /// creating, available, in-use, deleting, deleted or error; `NotFound` when the volume
    /// disappeared outside the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(
        default,
        rename = "throughputMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    pub throughput_mibps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// The key ARN, resolved from whatever form the spec names it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_attach_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<VolumeAttachmentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification: Option<VolumeModificationStatus>,
    /// Start times of the modifications of the last 24 hours (AWS allows 4), kept so a
    /// restarted controller still knows when the next one may start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_modifications: Vec<chrono::DateTime<chrono::Utc>>,
    /// The actions the controller would take next, in words; empty when in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    /// Tag keys the controller set from the spec, so that a key dropped from the spec is
    /// still known as ours and removed (and tags others added are never touched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    /// The snapshot taken before deleting the volume (`finalSnapshot: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_snapshot_id: Option<String>,
    /// Calls the controller is about to make or made without seeing their result yet,
    /// recorded before they are sent: a restart replays a create with the same client token
    /// and finds a snapshot by its tags instead of taking a second one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["step"]))]
    pub intents: Vec<Intent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
