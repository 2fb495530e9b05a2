//! The EbsVolume planner: (spec, status, observed AWS state, now) -> an ordered plan.
//!
//! Pure: no I/O, no async, no clock reads. The reconciler observes AWS, calls
//! [`plan_volume`], records intent in status, runs [`VolumePlan::executable`] in order, and
//! writes [`VolumePlan::conditions`] and [`VolumePlan::in_words`] to status.
//!
//! Contract with the caller (what the planner assumes about the inputs):
//! - The `create` intent (`status.intents`) stays recorded until the volume has been
//!   observed once by a Describe; a Create is replayed with the same client token until
//!   then (it returns the same volume), and a volume id recorded from a create response but
//!   not yet visible is waited for instead of being declared lost (Describe is eventually
//!   consistent).
//! - The `final-snapshot` intent is recorded before CreateSnapshot, which takes no token:
//!   while it is recorded and the snapshot is not found (by id or by its tags), the plan
//!   waits and never asks for a second snapshot.
//! - Before running a `Modify`, the caller appends `now` to `status.recent_modifications`
//!   (starting from [`VolumePlan::recent_modifications`]); a synchronous ModifyVolume
//!   failure removes it again, since AWS did not count it.
//! - [`VolumePlan::managed_tag_keys`] is persisted before tag actions run, so a key dropped
//!   from the spec is still known as ours on the next pass and gets removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use std::ops::{Deref, DerefMut};

use crate::api::{EbsVolumeSpec, EbsVolumeStatus, VolumeType};
use crate::plan::core::{Plan, PlannedAction, PlannedWait};
use crate::plan::observed::{
    ModificationState, ObservedInstance, ObservedModification, ObservedSnapshot, ObservedVolume,
    VolumeState,
};
use crate::plan::tags::{MIGRATED_FROM_TAG, MIGRATING_TAG, Owner};
use crate::plan::tenancy::{self, Grants, Use};

mod attach;
mod builder;
mod create;
mod delete;
mod modify;
mod tags;
#[cfg(test)]
mod tests;
mod words;

pub use crate::plan::core::{Problem, Summary, waiting_delay};
pub use modify::{MODIFICATION_WINDOW, modifications_in_window, next_modification_slot};
pub use words::describe;

use builder::Builder;

/// The step of a volume's create: its intent and its client token.
pub const CREATE_STEP: &str = "create";
/// The step of the snapshot taken before a delete: its intent and its step tag.
pub const FINAL_SNAPSHOT_STEP: &str = "final-snapshot";

/// Everything the planner looks at. Borrowed, so building one costs nothing.
#[derive(Clone, Copy, Debug)]
pub struct VolumeInput<'a> {
    pub spec: &'a EbsVolumeSpec,
    /// The status as last written: recorded intents and `volume_id`, modification
    /// history, and the `Progressing` condition (when waiting began).
    pub status: &'a EbsVolumeStatus,
    /// Whose volume this is: the ownership tags new resources carry and drift repairs.
    pub owner: &'a Owner,
    /// The volume as AWS reports it; `None` when AWS does not know it.
    pub observed: Option<&'a ObservedVolume>,
    /// The latest modification of the observed volume, if AWS reports one.
    pub modification: Option<&'a ObservedModification>,
    /// `spec.kmsKeyId` resolved to a key ARN by the caller (DescribeKey), so that an alias
    /// and the ARN AWS reports compare equal.
    pub kms_key_arn: Option<&'a str>,
    /// Tag keys the spec asked for on earlier passes: ours to remove once the spec drops them.
    pub managed_tag_keys: &'a BTreeSet<String>,
    /// Each instance named in `spec.attachments` (and not attached yet) that exists, by
    /// id; `None` when the caller did not look instances up (then nothing is checked).
    pub instances: Option<&'a BTreeMap<String, ObservedInstance>>,
    /// What the administrator granted the object's namespace (see [`crate::plan::tenancy`]).
    pub grants: Grants,
    /// The final snapshot found in AWS (by the id in status or by its tags), when deleting.
    pub final_snapshot: Option<&'a ObservedSnapshot>,
    /// The object has a deletion timestamp: plan the clean-up instead of convergence.
    pub deleting: bool,
    pub now: DateTime<Utc>,
}

/// One AWS change, with every parameter the executor needs (the client token of a create
/// is its recorded intent's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeAction {
    Create(CreateVolume),
    Modify(ModifyVolume),
    Attach {
        volume_id: String,
        instance_id: String,
        device: String,
    },
    Detach {
        volume_id: String,
        instance_id: String,
        device: String,
        force: bool,
    },
    /// CreateTags with these keys and values (adds or overwrites).
    SetTags {
        volume_id: String,
        tags: BTreeMap<String, String>,
    },
    /// DeleteTags with these keys.
    RemoveTags {
        volume_id: String,
        keys: BTreeSet<String>,
    },
    /// CreateSnapshot before deleting (no client token: the executor records the intent
    /// with these tags, and the planner looks for the snapshot by them instead of ever
    /// asking twice).
    CreateFinalSnapshot {
        volume_id: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    Delete {
        volume_id: String,
    },
}

/// CreateVolume parameters, straight from the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateVolume {
    pub availability_zone: String,
    pub volume_type: VolumeType,
    /// `None`: the snapshot's size.
    pub size_gib: Option<i64>,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub encrypted: bool,
    /// The resolved key ARN when known, else the spec's reference (AWS accepts every form).
    pub kms_key_id: Option<String>,
    pub multi_attach_enabled: bool,
    pub snapshot_id: Option<String>,
    /// The user's tags and ours, on the volume from its first instant.
    pub tags: BTreeMap<String, String>,
}

/// A value as observed and as it will be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<T> {
    pub from: Option<T>,
    pub to: T,
}

/// ModifyVolume parameters: only what changes, except that iops and gp3 throughput always
/// travel with a type change (AWS resets them to the type's defaults otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModifyVolume {
    pub volume_id: String,
    pub size_gib: Option<Change<i64>>,
    pub volume_type: Option<Change<VolumeType>>,
    pub iops: Option<Change<i64>>,
    pub throughput_mibps: Option<Change<i64>>,
    /// Multi-Attach turned on or off (io2 only, under the conditions AWS sets).
    pub multi_attach_enabled: Option<Change<bool>>,
}

/// AWS is still working; the plan resumes when it is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The volume is `creating`.
    Creating {
        volume_id: String,
    },
    /// A create returned a volume that Describe does not show yet.
    VolumeNotVisibleYet {
        volume_id: String,
    },
    /// A modification is `modifying` or `optimizing`.
    Modification {
        volume_id: String,
        state: ModificationState,
        progress: Option<i64>,
        since: Option<DateTime<Utc>>,
        /// The spec changed since it started: another modification follows.
        more_to_do: bool,
    },
    /// A modification was recorded in status but AWS does not report it yet.
    ModificationNotVisibleYet {
        since: DateTime<Utc>,
    },
    /// Four modifications in the last 24 hours: the next may start at `until`.
    ModificationQuota {
        until: DateTime<Utc>,
        count: usize,
    },
    Attaching {
        instance_id: String,
    },
    Detaching {
        instance_id: String,
    },
    /// The volume is `deleting`.
    Deleting {
        volume_id: String,
    },
    /// The final snapshot was requested, and AWS does not show it yet.
    FinalSnapshotRequested {
        volume_id: String,
    },
    /// The final snapshot is `pending`.
    FinalSnapshot {
        snapshot_id: String,
        progress: Option<i64>,
        since: Option<DateTime<Utc>>,
    },
}

impl PlannedWait for Wait {
    fn reason(&self) -> &'static str {
        match self {
            Wait::Creating { .. } => "Creating",
            Wait::VolumeNotVisibleYet { .. } => "WaitingForVolume",
            Wait::Modification {
                state: ModificationState::Optimizing,
                ..
            } => "Optimizing",
            Wait::Modification { .. } | Wait::ModificationNotVisibleYet { .. } => "Modifying",
            Wait::ModificationQuota { .. } => "ModificationQuotaReached",
            Wait::Attaching { .. } => "Attaching",
            Wait::Detaching { .. } => "Detaching",
            Wait::Deleting { .. } => "Deleting",
            Wait::FinalSnapshotRequested { .. } | Wait::FinalSnapshot { .. } => "SnapshotPending",
        }
    }

    fn message(&self) -> String {
        match self {
            Wait::Creating { volume_id } => format!("{volume_id} is being created"),
            Wait::VolumeNotVisibleYet { volume_id } => {
                format!("{volume_id} was created; waiting for AWS to report it")
            }
            Wait::Modification {
                volume_id,
                state,
                progress,
                more_to_do,
                ..
            } => {
                let mut m = format!("{volume_id} modification is {}", state.as_str());
                if let Some(p) = progress {
                    let _ = write!(m, " ({p}%)");
                }
                if *more_to_do {
                    m.push_str("; the spec changed since it started: the next modification follows when it completes");
                }
                m
            }
            Wait::ModificationNotVisibleYet { since } => format!(
                "a modification was started at {}; waiting for AWS to report it",
                since.to_rfc3339()
            ),
            Wait::ModificationQuota { until, count } => format!(
                "{count} modifications in the last 24 hours (AWS allows {}): the next may start at {}",
                crate::api::limits::MAX_MODIFICATIONS_PER_DAY,
                until.to_rfc3339()
            ),
            Wait::Attaching { instance_id } => format!("attaching to {instance_id}"),
            Wait::Detaching { instance_id } => format!("detaching from {instance_id}"),
            Wait::Deleting { volume_id } => format!("{volume_id} is being deleted"),
            Wait::FinalSnapshotRequested { volume_id } => format!(
                "the final snapshot of {volume_id} was requested; waiting for AWS to report it"
            ),
            Wait::FinalSnapshot {
                snapshot_id,
                progress,
                ..
            } => match progress {
                Some(p) => format!("final snapshot {snapshot_id} is pending ({p}%)"),
                None => format!("final snapshot {snapshot_id} is pending"),
            },
        }
    }

    fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            Wait::Modification { since, .. } | Wait::FinalSnapshot { since, .. } => *since,
            Wait::ModificationNotVisibleYet { since } => Some(*since),
            _ => None,
        }
    }

    fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Wait::ModificationQuota { until, .. } => Some(*until),
            _ => None,
        }
    }

    fn ends_soon(&self) -> bool {
        match self {
            // A new volume is usually available within seconds of its create, however long
            // the create waited for its rate token: looked at in every poll of the Region's
            // creating volumes (`Observer::poll`), Ready follows availability by at most one
            // poll interval instead of a sixth of the time waited. Each look is one id in a
            // read shared by every creating object in the Region, and a look that finds it
            // still creating writes nothing.
            Wait::Creating { .. } => true,
            // A create AWS does not show yet is usually seen at the next look too, but it
            // may never be (a create that failed after answering): the growing delay keeps
            // a lost volume from costing a read every merge window until it is reported.
            Wait::VolumeNotVisibleYet { .. } => false,
            // Modifying, and above all optimizing, takes minutes to hours; a final snapshot
            // and a deletion minutes; the quota wait has its own end. Attaching and
            // detaching take seconds, but an instance that is stopping or stuck can hold
            // them far longer: the growing delay (from 5 s) is cheap and fast enough.
            Wait::Modification { .. }
            | Wait::ModificationNotVisibleYet { .. }
            | Wait::ModificationQuota { .. }
            | Wait::Attaching { .. }
            | Wait::Detaching { .. }
            | Wait::Deleting { .. }
            | Wait::FinalSnapshotRequested { .. }
            | Wait::FinalSnapshot { .. } => false,
        }
    }
}

impl PlannedAction for VolumeAction {
    fn describe(&self) -> String {
        describe(self)
    }

    fn event_reason(&self) -> &'static str {
        match self {
            VolumeAction::Create(_) => "CreatedVolume",
            VolumeAction::Modify(_) => "ModifyingVolume",
            VolumeAction::Attach { .. } => "AttachingVolume",
            VolumeAction::Detach { .. } => "DetachingVolume",
            VolumeAction::SetTags { .. } => "TaggedVolume",
            VolumeAction::RemoveTags { .. } => "UntaggedVolume",
            VolumeAction::CreateFinalSnapshot { .. } => "TookFinalSnapshot",
            VolumeAction::Delete { .. } => "DeletingVolume",
        }
    }

    fn idempotent(&self) -> bool {
        // A create replays its client token; tags, attachments and deletes land once. A
        // modification counts toward AWS's four a day, and a snapshot has no token.
        !matches!(
            self,
            VolumeAction::Modify(_) | VolumeAction::CreateFinalSnapshot { .. }
        )
    }
}

/// The plan of one EbsVolume: the shared plan, plus what the volume's status keeps for the
/// next pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumePlan {
    pub plan: Plan<VolumeAction, Wait>,
    /// Modification start times in the last 24 hours (status ∪ observed), for status.
    pub recent_modifications: Vec<DateTime<Utc>>,
    /// Tag keys that are ours after this plan: to persist for the next pass.
    pub managed_tag_keys: BTreeSet<String>,
    /// The observed volume is not this object's to see (another object's, or unowned where
    /// the administrator turned reads off): nothing of it goes into status.
    pub volume_hidden: bool,
}

impl Deref for VolumePlan {
    type Target = Plan<VolumeAction, Wait>;

    fn deref(&self) -> &Self::Target {
        &self.plan
    }
}

impl std::borrow::Borrow<Plan<VolumeAction, Wait>> for VolumePlan {
    fn borrow(&self) -> &Plan<VolumeAction, Wait> {
        &self.plan
    }
}

impl DerefMut for VolumePlan {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.plan
    }
}

/// Plans one EbsVolume. See the module documentation for the caller's side of the contract.
pub fn plan_volume(input: &VolumeInput<'_>) -> VolumePlan {
    let mut b = Builder::new(input);
    // A volume AWS reports as `deleted` is gone as far as planning goes.
    let volume = input.observed.filter(|v| v.state != VolumeState::Deleted);
    if let Some(migration) = volume.and_then(|v| v.tags.get(MIGRATING_TAG)) {
        // An EncryptedVolumeMigration is swapping the volume: nothing is changed, deleted
        // or re-attached under it; it hands the new volume over when it is done.
        b.problem(
            reason::MIGRATION_IN_PROGRESS,
            format!(
                "EncryptedVolumeMigration {} is encrypting this volume; the EbsVolume acts again once it hands over the new volume",
                migration.rsplit('/').next().unwrap_or(migration)
            ),
        );
        return b.finish(input);
    }
    if input.deleting {
        delete::plan(input, volume, &mut b);
    } else {
        match volume {
            None => create::plan_missing(input, &mut b),
            Some(v) => plan_existing(input, v, &mut b),
        }
    }
    b.finish(input)
}

/// Ownership tags removed or altered outside are put back first, so the batched sweep
/// keeps finding the volume. Only for a volume this object manages and keeps.
fn repair_ownership(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    if input.spec.management_policy != crate::api::common::ManagementPolicy::Manage {
        return;
    }
    let repairs = crate::plan::tags::ownership_repairs(input.owner, None, &v.tags).to_set;
    if !repairs.is_empty() {
        b.act(VolumeAction::SetTags {
            volume_id: v.volume_id.clone(),
            tags: repairs,
        });
    }
}

fn plan_existing(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    b.volume_state = Some(v.state);
    match v.state {
        VolumeState::Deleting | VolumeState::Deleted => {
            b.problem(
                reason::VOLUME_NOT_FOUND,
                format!(
                    "{} is being deleted outside the controller; it will not be re-created (it held data)",
                    v.volume_id
                ),
            );
            return;
        }
        VolumeState::Error => {
            b.problem(
                reason::VOLUME_ERROR,
                format!("AWS reports {} in state error", v.volume_id),
            );
            return;
        }
        VolumeState::Creating | VolumeState::Available | VolumeState::InUse => {}
    }
    if let Some(refused) = adoption_refused(input, v, input.spec.management_policy.into()) {
        // Adopting it would act on a volume this namespace does not own and was not
        // granted: nothing is done, not even a tag.
        b.volume_hidden = adoption_refused(input, v, Use::Observe).is_some();
        b.add_problem(refused);
        return;
    }
    check_immutable(input, v, b);
    // Tags travel with the create (TagSpecifications), so they need no look while creating.
    if v.state == VolumeState::Creating {
        b.wait(Wait::Creating {
            volume_id: v.volume_id.clone(),
        });
        return;
    }
    repair_ownership(input, v, b);
    tags::plan(input, v, b);
    attach::plan(input, v, b);
    modify::plan(input, v, b);
}

/// Why this object may not use the volume it tracks this way (see [`crate::plan::tenancy`]):
/// another object owns it, or nobody does and the namespace has no grant for this use. A
/// volume this object created carries its ownership tags from its first instant, so only
/// tags count: a `volumeId` cleared from the spec after an adoption proves nothing.
fn adoption_refused(input: &VolumeInput<'_>, v: &ObservedVolume, usage: Use) -> Option<Problem> {
    let volume = tenancy::Resource {
        noun: "volume",
        id: &v.volume_id,
        tags: &v.tags,
    };
    tenancy::refusal(input.owner, input.grants, volume, usage)
}

/// Whether the controller may change or delete the volume for this object on its way out:
/// only one tagged as this object's (created by it, or adopted and tagged). A volume whose
/// adoption was refused, never completed or was only observed is left exactly as it is.
pub(crate) fn is_this_objects(input: &VolumeInput<'_>, v: &ObservedVolume) -> bool {
    tenancy::standing(input.owner, &v.tags) == tenancy::Standing::Ours
}

/// What ModifyVolume cannot change: reported, never acted on.
fn check_immutable(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    let spec = input.spec;
    if let Some(az) = &spec.availability_zone
        && *az != v.availability_zone
    {
        b.problem(
            reason::AVAILABILITY_ZONE_MISMATCH,
            format!(
                "{} is in {}, not {az}: a volume cannot move (create a new EbsVolume from a snapshot instead)",
                v.volume_id, v.availability_zone
            ),
        );
    }
    if spec.encrypted && !v.encrypted {
        b.problem(
            reason::ENCRYPTION_MISMATCH,
            format!(
                "{} is not encrypted and encryption cannot be added in place: use an EncryptedVolumeMigration",
                v.volume_id
            ),
        );
    }
    if !spec.encrypted
        && v.encrypted
        && let Some(from) = v.tags.get(MIGRATED_FROM_TAG)
    {
        b.problem(
            reason::ENCRYPTION_MISMATCH,
            format!(
                "{} was encrypted by an EncryptedVolumeMigration (it replaced {from}), but the spec says encrypted: false; the controller never decrypts: set encrypted: true",
                v.volume_id
            ),
        );
    }
    if let Some(arn) = input.kms_key_arn
        && v.kms_key_id.as_deref() != Some(arn)
    {
        b.problem(
            reason::KMS_KEY_MISMATCH,
            format!(
                "{} is encrypted with {}, not {arn}: keys cannot change in place (use an EncryptedVolumeMigration)",
                v.volume_id,
                v.kms_key_id.as_deref().unwrap_or("no key")
            ),
        );
    }
}

/// The PascalCase reasons of [`Problem`]s.
pub mod reason {
    pub const VOLUME_NOT_FOUND: &str = "VolumeNotFound";
    pub const VOLUME_ERROR: &str = "VolumeError";
    pub const AVAILABILITY_ZONE_REQUIRED: &str = "AvailabilityZoneRequired";
    pub const AVAILABILITY_ZONE_MISMATCH: &str = "AvailabilityZoneMismatch";
    pub const ENCRYPTION_MISMATCH: &str = "EncryptionMismatch";
    pub const KMS_KEY_MISMATCH: &str = "KmsKeyMismatch";
    pub const MULTI_ATTACH_MISMATCH: &str = "MultiAttachMismatch";
    pub const MULTI_ATTACH_REQUIRED: &str = "MultiAttachRequired";
    pub const TOO_MANY_ATTACHMENTS: &str = "TooManyAttachments";
    pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
    pub const INSTANCE_IN_OTHER_ZONE: &str = "InstanceInOtherZone";
    pub const SHRINK_NOT_ALLOWED: &str = "ShrinkNotAllowed";
    pub const OUTSIDE_VOLUME_LIMITS: &str = "OutsideVolumeLimits";
    pub const UNSUPPORTED_VOLUME_TYPE: &str = "UnsupportedVolumeType";
    pub const MODIFICATION_FAILED: &str = "ModificationFailed";
    pub const FINAL_SNAPSHOT_FAILED: &str = "FinalSnapshotFailed";
    pub const MIGRATION_IN_PROGRESS: &str = "MigrationInProgress";
    pub use crate::plan::tenancy::reason::{
        NOT_GRANTED, OBSERVE_NOT_ALLOWED, OWNED_BY_ANOTHER_OBJECT,
    };
}
