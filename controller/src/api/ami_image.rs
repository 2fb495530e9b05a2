//! The AmiImage kind: an AMI created from an instance, registered from snapshots or an S3
//! manifest, or copied from another Region; shared through launch permissions.

use kube::CustomResource;
use kube::core::Rule;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use super::common::{
    ACCOUNT_ID_PATTERN, DeletionPolicy, ManagementPolicy, Tags, add_rule, count_set, exactly_one,
    immutable, kms_key_schema, region_schema, source_region_schema, tags_schema,
};
use super::conditions::Condition;
use super::ebs_volume::VolumeType;
use super::intent::Intent;
use super::volume_rules::{VolumeFields, volume_setting_rules};

/// Most block device mappings one AMI may name here.
pub const MAX_BLOCK_DEVICE_MAPPINGS: usize = 32;

/// Most accounts, organizations or organizational units one AMI is shared with here.
pub const MAX_LAUNCH_PERMISSION_ENTRIES: usize = 100;

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum Architecture {
    #[serde(rename = "i386")]
    I386,
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
    #[serde(rename = "x86_64_mac")]
    X86_64Mac,
    #[serde(rename = "arm64_mac")]
    Arm64Mac,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VirtualizationType {
    /// Boots like bare metal (MBR or UEFI); what current instance types need.
    #[default]
    Hvm,
    /// Boots through PV-GRUB; legacy instance types only.
    Paravirtual,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum BootMode {
    #[serde(rename = "legacy-bios")]
    LegacyBios,
    #[serde(rename = "uefi")]
    Uefi,
    #[serde(rename = "uefi-preferred")]
    UefiPreferred,
}

/// Create the AMI from a running or stopped instance (CreateImage).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSource {
    /// The instance to image: running or stopped, EBS-backed; this namespace's own or granted.
    #[schemars(regex(pattern = r"^i-[0-9a-f]{8,17}$"), length(max = 32))]
    pub instance_id: String,
    /// Do not reboot the instance first (the file systems may then be inconsistent).
    #[serde(default)]
    pub no_reboot: bool,
}

/// One block device of an AMI registered from snapshots: a snapshot, or an empty volume
/// of `sizeGiB`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = mapping_rules)]
pub struct BlockDeviceMappingSpec {
    /// Where the device appears in the instance (`/dev/xvda`, `/dev/sdf`, `xvdb`).
    #[schemars(regex(pattern = r"^(/dev/)?[a-z][a-z0-9]{1,15}$"), length(max = 24))]
    pub device_name: String,
    /// A completed snapshot of this account and Region (this namespace's own or granted);
    /// omitted, the device is a new empty volume of `sizeGiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^snap-[0-9a-f]{8,17}$"), length(max = 32))]
    pub snapshot_id: Option<String>,
    /// gp3, gp2, io1, io2, st1, sc1 or standard; EC2 makes a mapping gp2 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    /// Size in GiB, within the type's range (gp2/gp3 up to 16 TiB/64 TiB, st1 and sc1 from
    /// 125 GiB); with a snapshot, at least the snapshot's size (its size when omitted).
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65536))]
    pub size_gib: Option<i64>,
    /// Provisioned IOPS: gp3 3,000-80,000 (at most 500 per GiB), io1 100-64,000 (50 per GiB),
    /// io2 100-256,000 (1,000 per GiB); required for io1 and io2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 256000))]
    pub iops: Option<i64>,
    #[serde(
        default,
        rename = "throughputMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    /// gp3 only: 125-2,000 MiB/s, at most a quarter of the IOPS.
    #[schemars(range(min = 125, max = 2000))]
    pub throughput_mibps: Option<i64>,
    /// Delete the volume when the instance launched from the image terminates (default true).
    #[serde(default = "default_true")]
    pub delete_on_termination: bool,
    /// Encrypt the empty volume of a mapping without `snapshotId` (a snapshot's volumes
    /// have the snapshot's encryption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

fn default_true() -> bool {
    true
}

/// The type, size, IOPS and throughput rules of EbsVolume (one limits table), with gp2 as
/// EC2's default type for a mapping, and what AWS asks of a mapping without a snapshot.
fn mapping_rules(schema: &mut Schema) {
    let rules = volume_setting_rules(VolumeFields {
        default_type: VolumeType::Gp2,
        iops_optional_when: None,
    });
    for rule in rules {
        add_rule(schema, rule);
    }
    add_rule(
        schema,
        Rule::new("has(self.snapshotId) || has(self.sizeGiB)")
            .message("a mapping without snapshotId is a new empty volume: it needs sizeGiB"),
    );
    add_rule(
        schema,
        Rule::new("!has(self.snapshotId) || !has(self.encrypted)")
            .message("encrypted applies only to a mapping without snapshotId: a snapshot's volumes are encrypted as the snapshot is (copy the snapshot encrypted first)")
            .field_path(".encrypted"),
    );
}

/// Register an EBS-backed AMI from snapshots (RegisterImage).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = snapshots_source_rules)]
pub struct SnapshotsSource {
    /// The image's CPU architecture (default x86_64).
    #[serde(default)]
    pub architecture: Architecture,
    /// hvm (default) or paravirtual.
    #[serde(default)]
    pub virtualization_type: VirtualizationType,
    /// legacy-bios, uefi or uefi-preferred; AWS's default for the architecture when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    /// Enhanced networking with ENA (default true; most current instance types need it).
    #[serde(default = "default_true")]
    pub ena_support: bool,
    /// The device the instance boots from; one of `blockDeviceMappings`.
    #[schemars(regex(pattern = r"^(/dev/)?[a-z][a-z0-9]{1,15}$"), length(max = 24))]
    pub root_device_name: String,
    /// The devices of the image (1 to 32), the root among them.
    #[schemars(length(min = 1, max = MAX_BLOCK_DEVICE_MAPPINGS), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["deviceName"]))]
    pub block_device_mappings: Vec<BlockDeviceMappingSpec>,
    /// `v2.0`: instances launched from the image require IMDSv2 (session tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_support: Option<AttributeVersion>,
    /// `v2.0`: instances launched from the image get a NitroTPM (needs `bootMode: uefi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_support: Option<AttributeVersion>,
    /// The instance's UEFI variable store (Secure Boot keys), base64, as
    /// `get-instance-uefi-data` prints it (needs a UEFI boot mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_UEFI_DATA_LENGTH), regex(pattern = r"^[A-Za-z0-9+/]+={0,2}$"))]
    pub uefi_data: Option<String>,
}

/// Longest `uefiData` RegisterImage accepts (64,000 characters of base64).
pub const MAX_UEFI_DATA_LENGTH: usize = 64_000;

/// The one version AWS defines for `ImdsSupport` and `TpmSupport`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AttributeVersion {
    #[serde(rename = "v2.0")]
    V2,
}

fn snapshots_source_rules(schema: &mut Schema) {
    add_rule(
        schema,
        Rule::new("self.blockDeviceMappings.exists(m, m.deviceName == self.rootDeviceName && has(m.snapshotId))")
            .message("rootDeviceName must be one of blockDeviceMappings, with a snapshotId"),
    );
    add_rule(
        schema,
        Rule::new("!has(self.tpmSupport) || (has(self.bootMode) && self.bootMode == 'uefi')")
            .message("tpmSupport needs bootMode: uefi (NitroTPM boots only with UEFI)")
            .field_path(".tpmSupport"),
    );
    add_rule(
        schema,
        Rule::new("!has(self.uefiData) || (has(self.bootMode) && self.bootMode in ['uefi', 'uefi-preferred'])")
            .message("uefiData needs bootMode uefi or uefi-preferred")
            .field_path(".uefiData"),
    );
}

/// Register an instance store-backed AMI from a bundle manifest in S3 (RegisterImage).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSource {
    /// The manifest's location: `bucket/path/image.manifest.xml`.
    #[schemars(
        regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.manifest\.xml$"),
        length(max = 1024)
    )]
    pub image_location: String,
    /// The image's CPU architecture (default x86_64).
    #[serde(default)]
    pub architecture: Architecture,
    /// hvm (default) or paravirtual.
    #[serde(default)]
    pub virtualization_type: VirtualizationType,
}

/// Choose the newest image matching a name pattern among some owners.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSelector {
    /// Account ids, or `self`, `amazon`, `aws-marketplace`.
    #[schemars(length(min = 1, max = 10))]
    pub owners: Vec<Owner>,
    /// A DescribeImages name filter; `*` and `?` are wildcards.
    #[schemars(length(min = 1, max = 128))]
    pub name_pattern: String,
}

/// An image owner as DescribeImages takes it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = owner_schema)]
pub struct Owner(pub String);

fn owner_schema(schema: &mut Schema) {
    schema.insert("maxLength".into(), 16.into());
    schema.insert(
        "pattern".into(),
        // DescribeImages' Owners: account ids and every documented alias.
        "^([0-9]{12}|self|amazon|aws-marketplace|aws-backup-vault)$".into(),
    );
}

/// Copy an AMI from another (or the same) Region (CopyImage).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = copy_source_rules)]
pub struct CopySource {
    /// The AMI to copy, in `sourceRegion` (exactly one of this and `sourceImageSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"), length(max = 32))]
    pub source_image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image_selector: Option<ImageSelector>,
    #[schemars(schema_with = "source_region_schema")]
    pub source_region: String,
    /// Encrypt the copy's snapshots.
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kms_key_schema")]
    pub kms_key_id: Option<String>,
    /// Copy the source AMI's user tags too.
    #[serde(default)]
    pub copy_image_tags: bool,
    /// A time-based copy: every snapshot of the image is copied within this many minutes
    /// (15-minute steps, up to 48 hours); unset, AWS copies as fast as it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 15, max = 2880))]
    pub completion_duration_minutes: Option<i64>,
}

fn copy_source_rules(schema: &mut Schema) {
    add_rule(
        schema,
        exactly_one(
            &["sourceImageId", "sourceImageSelector"],
            "set exactly one of sourceImageId or sourceImageSelector",
        ),
    );
    add_rule(
        schema,
        Rule::new("!has(self.kmsKeyId) || self.encrypted")
            .message("kmsKeyId needs encrypted: true"),
    );
    add_rule(
        schema,
        Rule::new(
            "!has(self.completionDurationMinutes) || self.completionDurationMinutes % 15 == 0",
        )
        .message("completionDurationMinutes goes in 15-minute steps (15, 30, ... 2880)")
        .field_path(".completionDurationMinutes"),
    );
}

/// Where the AMI comes from: exactly one of the four.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AmiSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotsSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopySource>,
}

/// An organization's ARN: `arn:<partition>:organizations::<management account>:organization/o-<id>`
/// (the id is 10 to 32 lowercase letters or digits).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = organization_arn_schema)]
pub struct OrganizationArn(pub String);

/// The pattern of [`OrganizationArn`].
pub const ORGANIZATION_ARN_PATTERN: &str =
    "^arn:aws(-[a-z]+)*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$";

fn organization_arn_schema(schema: &mut Schema) {
    schema.insert("maxLength".into(), 256.into());
    schema.insert("pattern".into(), ORGANIZATION_ARN_PATTERN.into());
}

/// An organizational unit's ARN:
/// `arn:<partition>:organizations::<management account>:ou/o-<org id>/ou-<root id>-<ou id>`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = organizational_unit_arn_schema)]
pub struct OrganizationalUnitArn(pub String);

/// The pattern of [`OrganizationalUnitArn`].
pub const ORGANIZATIONAL_UNIT_ARN_PATTERN: &str = "^arn:aws(-[a-z]+)*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$";

fn organizational_unit_arn_schema(schema: &mut Schema) {
    schema.insert("maxLength".into(), 256.into());
    schema.insert("pattern".into(), ORGANIZATIONAL_UNIT_ARN_PATTERN.into());
}

/// An account id.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[schemars(transform = account_id_schema)]
pub struct AccountId(pub String);

fn account_id_schema(schema: &mut Schema) {
    schema.insert("pattern".into(), ACCOUNT_ID_PATTERN.into());
    schema.insert("maxLength".into(), 12.into());
}

/// Protection of the AMI against deregistration (by anyone, the controller included).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeregistrationProtection {
    /// Protect the image: DeregisterImage is refused while enabled.
    pub enabled: bool,
    /// Once disabled, the image stays protected for 24 more hours.
    #[serde(default)]
    pub with_cooldown: bool,
}

/// Who may launch instances from the AMI.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPermissions {
    /// Accounts that may launch the image (up to 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub account_ids: Vec<AccountId>,
    /// Organizations (by ARN) whose accounts may launch the image (up to 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub organization_arns: Vec<OrganizationArn>,
    /// Organizational units (by ARN) whose accounts may launch the image (up to 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub organizational_unit_arns: Vec<OrganizationalUnitArn>,
    /// Share with everyone.
    #[serde(default)]
    pub public: bool,
    /// Also let `accountIds` create volumes from the image's snapshots
    /// (`createVolumePermission`), which they need to copy the image. Turned off again, the
    /// grants the controller made are removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snapshot_create_volume_permissions: bool,
}

/// The AMI the user wants.
// Each printcolumn repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ec2.reconciler.dev",
    version = "v1alpha1",
    kind = "AmiImage",
    plural = "amiimages",
    namespaced,
    status = "AmiImageStatus",
    shortname = "ami",
    category = "aws",
    printcolumn(name = "Image", type_ = "string", json_path = ".status.imageId"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Root", type_ = "string", json_path = ".status.rootDeviceType"),
    printcolumn(
        name = "Stoppable",
        type_ = "boolean",
        json_path = ".status.instancesStoppable"
    ),
    printcolumn(
        name = "Virtualization",
        type_ = "string",
        json_path = ".status.virtualizationType"
    ),
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
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = ami_image_spec_rules)]
pub struct AmiImageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "region_schema")]
    pub region: Option<String>,
    /// The AMI name, unique in the account and Region. Immutable. Not needed to adopt an
    /// image by `imageId` (the name is the image's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 128),
        regex(pattern = r"^[a-zA-Z0-9()\[\] ./'@_-]+$")
    )]
    pub name: Option<String>,
    /// The AMI's description, up to 255 characters; omitted, not managed (an adopted image
    /// keeps its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
    /// Where the AMI comes from. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AmiSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_permissions: Option<LaunchPermissions>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: Tags,
    /// Tags for every snapshot the controller makes for the image (CreateImage, CopyImage),
    /// on top of `tags` and the ownership tags; snapshots a user registers from are left as
    /// they are.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub snapshot_tags: Tags,
    /// When the AMI is deprecated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Protect the AMI from deregistration; omitted: not managed. The controller never
    /// lifts it by itself, not even to delete the AMI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistration_protection: Option<DeregistrationProtection>,
    /// Adopt this existing AMI instead of creating one. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"), length(max = 32))]
    pub image_id: Option<String>,
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Delete the AMI's snapshots when deregistering it (not those other AMIs use).
    #[serde(default = "default_true")]
    pub delete_snapshots: bool,
}

const SOURCES: [&str; 4] = [
    "source.instance",
    "source.snapshots",
    "source.manifest",
    "source.copy",
];

/// Every admission rule of the AmiImage spec.
pub fn ami_image_rules() -> Vec<Rule> {
    let sources = format!("(has(self.source) ? ({}) : 0)", count_set(&SOURCES));
    vec![
        Rule::new(format!("has(self.imageId) ? {sources} <= 1 : {sources} == 1")).message(
            "set exactly one source: source.instance, source.snapshots, source.manifest or source.copy (none is needed only when imageId adopts an AMI)",
        ),
        Rule::new("self.managementPolicy != 'ObserveOnly' || has(self.imageId)")
            .message("managementPolicy ObserveOnly needs imageId: it observes an existing AMI and creates nothing"),
        Rule::new("!(has(self.launchPermissions) && self.launchPermissions.public && has(self.source) && has(self.source.copy) && self.source.copy.encrypted)")
            .message("an encrypted image cannot be made public (AWS refuses it): share it with accounts, organizations or OUs instead"),
        Rule::new("has(self.imageId) || has(self.name)")
            .message("name is required to make an image (only adopting one by imageId goes without)"),
        immutable("name", "AMI names are fixed; create a new AmiImage"),
        immutable("source", "an AMI cannot be rebuilt in place; create a new AmiImage"),
        immutable("region", "create a new AmiImage, with source.copy to copy it there"),
        immutable("imageId", "create a new AmiImage to adopt another AMI"),
    ]
}

fn ami_image_spec_rules(schema: &mut Schema) {
    for rule in ami_image_rules() {
        add_rule(schema, rule);
    }
}

/// A block device of the AMI as AWS reports it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMappingStatus {
    pub device_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// Who may create volumes from one snapshot of the image.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotVolumePermissions {
    pub snapshot_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_ids: Vec<String>,
}

/// What the controller observed and did.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AmiImageStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// pending, available, invalid, deregistered, failed or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// ebs or instance-store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_type: Option<String>,
    /// Whether instances launched from the image can be stopped: not when it is instance
    /// store-backed (they can only reboot or terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_stoppable: Option<bool>,
    /// What the root device type means for instances launched from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_note: Option<String>,
    /// While the image is pending: how far its snapshots are (the slowest one's percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualization_type: Option<VirtualizationType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<String>,
    /// legacy-bios, uefi or uefi-preferred, as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<String>,
    /// `v2.0` when instances launched from the image require IMDSv2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_support: Option<String>,
    /// `v2.0` when instances launched from the image get a NitroTPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_support: Option<String>,
    /// When an instance was last launched from the image (AWS updates it within 24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_launched_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_device_mappings: Vec<BlockDeviceMappingStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_permissions: Option<LaunchPermissions>,
    /// The accounts each of the image's snapshots lets create volumes, as last read with
    /// `launchPermissions` or set by the controller: kept while the spec asks for them,
    /// and until the grants are removed once it no longer does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["snapshotId"]))]
    pub snapshot_volume_permissions: Vec<SnapshotVolumePermissions>,
    /// When `launchPermissions` was last read from AWS in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_permissions_read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The image a `copy.sourceImageSelector` resolved to, pinned when the copy was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image_id: Option<String>,
    /// A newer image matching the selector than the one copied: reported, never acted on
    /// (a new AmiImage copies it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_source_image_id: Option<String>,
    /// When AWS deprecates the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_time: Option<chrono::DateTime<chrono::Utc>>,
    /// `disabled`, `enabled-with-cooldown`, `enabled-without-cooldown` or
    /// `disabled-until <time>`, as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistration_protection: Option<String>,
    /// Tag keys the controller manages on the image (the spec's, and those it must still
    /// remove after the spec dropped them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    /// Calls the controller is about to make or made without seeing their result yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["step"]))]
    pub intents: Vec<Intent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
