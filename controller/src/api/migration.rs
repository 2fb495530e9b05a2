//! The EncryptedVolumeMigration kind: encrypt an unencrypted volume in place by snapshot,
//! encrypted copy, new volume and a swap at the same device on the same instance.

use kube::CustomResource;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use super::common::{add_rule, exactly_one, kms_key_schema, region_schema};
use super::conditions::Condition;
use super::intent::Intent;

/// An EbsVolume in the same namespace.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct VolumeRef {
    /// The EbsVolume's name; the migration encrypts the volume it tracks.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The volume to encrypt: exactly one of the two.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = migration_source_rules)]
pub struct MigrationSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_ref: Option<VolumeRef>,
    /// A volume no EbsVolume tracks, by id (this namespace's own or granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^vol-[0-9a-f]{8,17}$"), length(max = 32))]
    pub volume_id: Option<String>,
}

fn migration_source_rules(schema: &mut Schema) {
    add_rule(
        schema,
        exactly_one(
            &["volumeRef", "volumeId"],
            "set exactly one of source.volumeRef or source.volumeId",
        ),
    );
}

/// What to do with an instance that is running when the swap needs it stopped.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum InstanceStopPolicy {
    /// Stop the instance for the swap.
    #[default]
    StopIfRunning,
    /// Wait until someone else stops it.
    WaitForStopped,
}

/// What happens to the unencrypted volume after a successful swap.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum SourceVolumePolicy {
    #[default]
    Retain,
    Delete,
}

fn default_true() -> bool {
    true
}

/// The migration the user wants.
// Each printcolumn repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ec2.reconciler.dev",
    version = "v1alpha1",
    kind = "EncryptedVolumeMigration",
    plural = "encryptedvolumemigrations",
    namespaced,
    status = "EncryptedVolumeMigrationStatus",
    shortname = "evm",
    category = "aws",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Source", type_ = "string", json_path = ".status.sourceVolumeId"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.targetVolumeId"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Synced", type_ = "string", json_path = r#".status.conditions[?(@.type=="Synced")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'Pending' || self.spec == oldSelf.spec").message("the spec of a migration cannot change once it has started: delete it and create a new one")
)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedVolumeMigrationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "region_schema")]
    pub region: Option<String>,
    pub source: MigrationSource,
    /// The key to encrypt with; the account's default EBS key when omitted. A key id, key
    /// ARN, alias name (alias/...) or alias ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kms_key_schema")]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub instance_stop_policy: InstanceStopPolicy,
    /// Start the instance again after the swap if the migration stopped it.
    #[serde(default = "default_true")]
    pub restart_instance: bool,
    /// Stopping an instance loses its instance store data: allow it explicitly.
    #[serde(default)]
    pub allow_instance_store_data_loss: bool,
    #[serde(default)]
    pub source_volume_policy: SourceVolumePolicy,
    /// Keep the intermediate snapshots after success.
    #[serde(default)]
    pub keep_snapshots: bool,
    /// Put the original volume back when a step fails.
    #[serde(default = "default_true")]
    pub rollback_on_failure: bool,
}

/// One step of the migration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStep {
    pub name: String,
    /// Pending, Running, Succeeded, Failed or RolledBack.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The AWS resource the step made or acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_id: Option<String>,
}

/// What the controller observed and did.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedVolumeMigrationStatus {
    /// Pending, Stopping, Snapshotting, Copying, CreatingVolume, Swapping, Starting,
    /// Verifying, CleaningUp, Completed, RollingBack, RolledBack or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<MigrationStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_volume_id: Option<String>,
    /// The ARN of the key the new volume is encrypted with (the spec's key, or the
    /// account's default EBS key), resolved before anything changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The migration stopped the instance (recorded before StopInstances), so it starts it
    /// again afterwards, and on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_stopped_by_migration: Option<bool>,
    /// StartInstances was sent (recorded before the call): an instance found stopped again
    /// with a failure reason did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_start_requested: Option<bool>,
    /// The EbsVolume `source.volumeRef` named, and its UID, resolved before the start: it
    /// holds still during the swap and tracks the new volume afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_volume_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_volume_uid: Option<String>,
    /// What failed, when the migration is rolling back, rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Progress of the snapshot being taken or copied, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_progress: Option<i64>,
    /// The steps the controller would take next, in words.
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
