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
    #[schemars(regex(pattern = r"^i-[0-9a-f]{8,17}$"), length(max = 32))]
    pub instance_id: String,
    /// Do not reboot the instance first (the file systems may then be inconsistent).
    #[serde(default)]
    pub no_reboot: bool,
}

/// One block device of an AMI registered from snapshots.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMappingSpec {
    #[schemars(regex(pattern = r"^(/dev/)?[a-z][a-z0-9]{1,15}$"), length(max = 24))]
    pub device_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^snap-[0-9a-f]{8,17}$"), length(max = 32))]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65536))]
    pub size_gib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 256000))]
    pub iops: Option<i64>,
    #[serde(
        default,
        rename = "throughputMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 125, max = 2000))]
    pub throughput_mibps: Option<i64>,
    #[serde(default = "default_true")]
    pub delete_on_termination: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

fn default_true() -> bool {
    true
}

/// Register an EBS-backed AMI from snapshots (RegisterImage).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = snapshots_source_rules)]
pub struct SnapshotsSource {
    #[serde(default)]
    pub architecture: Architecture,
    #[serde(default)]
    pub virtualization_type: VirtualizationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    #[serde(default = "default_true")]
    pub ena_support: bool,
    /// The device the instance boots from; one of `blockDeviceMappings`.
    #[schemars(regex(pattern = r"^(/dev/)?[a-z][a-z0-9]{1,15}$"), length(max = 24))]
    pub root_device_name: String,
    #[schemars(length(min = 1, max = MAX_BLOCK_DEVICE_MAPPINGS), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["deviceName"]))]
    pub block_device_mappings: Vec<BlockDeviceMappingSpec>,
}

fn snapshots_source_rules(schema: &mut Schema) {
    add_rule(
        schema,
        Rule::new("self.blockDeviceMappings.exists(m, m.deviceName == self.rootDeviceName && has(m.snapshotId))")
            .message("rootDeviceName must be one of blockDeviceMappings, with a snapshotId"),
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
    #[serde(default)]
    pub architecture: Architecture,
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
    pub enabled: bool,
    /// Once disabled, the image stays protected for 24 more hours.
    #[serde(default)]
    pub with_cooldown: bool,
}

/// Who may launch instances from the AMI.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPermissions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub account_ids: Vec<AccountId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub organization_arns: Vec<OrganizationArn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LAUNCH_PERMISSION_ENTRIES), extend("x-kubernetes-list-type" = "set"))]
    pub organizational_unit_arns: Vec<OrganizationalUnitArn>,
    /// Share with everyone.
    #[serde(default)]
    pub public: bool,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualization_type: Option<VirtualizationType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_device_mappings: Vec<BlockDeviceMappingStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_permissions: Option<LaunchPermissions>,
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
