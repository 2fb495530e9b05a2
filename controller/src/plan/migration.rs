//! The EncryptedVolumeMigration planner: (spec, status, observed AWS state, grants) -> the
//! next step of a persisted state machine.
//!
//! Pure: no I/O, no clock reads. The migration moves through [`Phase`]s in order; each pass
//! plans at most one AWS call, decided from what AWS shows now and what the status recorded
//! (the ids of everything made, the instance's device, whether the migration stopped it), so
//! a process killed at any instant resumes at the same step without repeating a call:
//! stops, starts, attaches and detaches are decided from the instance's and volumes' state;
//! CreateSnapshot and CopySnapshot (no client token) record an intent with their tags first
//! and are looked for by those tags; CreateVolume carries a client token.
//!
//! A step that fails for good (AWS refuses, the instance does not start, the new volume is
//! not what was asked) records `failure` and turns the migration back ([`rollback`]): the
//! original volume goes back at its device, the instance is started again if the migration
//! stopped it, and what the migration made is deleted. With `rollbackOnFailure: false` it
//! stops where it failed and says so.
//!
//! Contract with the caller: [`MigrationPlan::record`] is applied to the status before any
//! action runs; the executor writes it (and an action's intent) before each call.

mod forward;
mod hand_over;
mod preflight;
mod rollback;
#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests;

use std::collections::BTreeMap;
use std::ops::Deref;

use chrono::{DateTime, Utc};

use crate::api::VolumeType;
use crate::api::common::ManagementPolicy;
use crate::api::migration::{EncryptedVolumeMigrationSpec, EncryptedVolumeMigrationStatus};
use crate::plan::core::{Builder, Finish, Plan, PlannedAction, PlannedWait, Summary};
use crate::plan::observed::{ObservedInstance, ObservedSnapshot, ObservedVolume};
use crate::plan::tags::Owner;
use crate::plan::tenancy::Grants;

/// The step tag (and intent step) of the snapshot of the unencrypted volume.
pub const SNAPSHOT_STEP: &str = "snapshot";
/// The step tag (and intent step) of its encrypted copy.
pub const COPY_STEP: &str = "encrypted-snapshot";
/// The step tag and client token step of the new volume.
pub const VOLUME_STEP: &str = "volume";

/// Where a migration is. Forward phases run in declaration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    #[default]
    Pending,
    Stopping,
    Snapshotting,
    Copying,
    CreatingVolume,
    Swapping,
    Starting,
    Verifying,
    HandingOver,
    CleaningUp,
    Completed,
    RollingBack,
    RolledBack,
    Failed,
}

impl Phase {
    pub const FORWARD: [Phase; 11] = [
        Phase::Pending,
        Phase::Stopping,
        Phase::Snapshotting,
        Phase::Copying,
        Phase::CreatingVolume,
        Phase::Swapping,
        Phase::Starting,
        Phase::Verifying,
        Phase::HandingOver,
        Phase::CleaningUp,
        Phase::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Stopping => "Stopping",
            Phase::Snapshotting => "Snapshotting",
            Phase::Copying => "Copying",
            Phase::CreatingVolume => "CreatingVolume",
            Phase::Swapping => "Swapping",
            Phase::Starting => "Starting",
            Phase::Verifying => "Verifying",
            Phase::HandingOver => "HandingOver",
            Phase::CleaningUp => "CleaningUp",
            Phase::Completed => "Completed",
            Phase::RollingBack => "RollingBack",
            Phase::RolledBack => "RolledBack",
            Phase::Failed => "Failed",
        }
    }

    /// The phase a status names; a word this version does not know is treated as Failed, so
    /// nothing is acted on blindly.
    pub fn parse(word: Option<&str>) -> Phase {
        let Some(word) = word else {
            return Phase::Pending;
        };
        [Phase::RollingBack, Phase::RolledBack, Phase::Failed]
            .into_iter()
            .chain(Phase::FORWARD)
            .find(|p| p.as_str() == word)
            .unwrap_or(Phase::Failed)
    }

    fn next(self) -> Phase {
        let at = Phase::FORWARD.iter().position(|p| *p == self);
        at.and_then(|i| Phase::FORWARD.get(i + 1).copied())
            .unwrap_or(self)
    }

    /// A migration in this phase has changed something in AWS that a rollback undoes.
    pub fn in_flight(self) -> bool {
        !matches!(
            self,
            Phase::Pending | Phase::Completed | Phase::RolledBack | Phase::Failed
        )
    }

    /// A failure (or a deletion) in this phase turns the migration back: before the new
    /// volume was verified in place. After that the swap stands, and only finishing it is
    /// left.
    pub fn can_roll_back(self) -> bool {
        self.in_flight() && (self < Phase::HandingOver || self == Phase::RollingBack)
    }

    /// Nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Completed | Phase::RolledBack | Phase::Failed)
    }
}

/// How the spec names the volume, as the reconciler resolved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    /// `source.volumeId`.
    ById,
    /// `source.volumeRef`: the EbsVolume, when it exists.
    ByRef {
        name: String,
        ebs_volume: Option<ReferencedVolume>,
    },
}

/// The EbsVolume a `volumeRef` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferencedVolume {
    pub uid: String,
    /// The volume it tracks, once it has one.
    pub volume_id: Option<String>,
}

/// Everything the planner looks at.
#[derive(Clone, Copy, Debug)]
pub struct MigrationInput<'a> {
    pub spec: &'a EncryptedVolumeMigrationSpec,
    pub status: &'a EncryptedVolumeMigrationStatus,
    pub owner: &'a Owner,
    pub grants: Grants,
    pub source_ref: &'a SourceRef,
    /// The volume to encrypt, as AWS shows it now.
    pub source_volume: Option<&'a ObservedVolume>,
    /// The instance it is (or was) attached to.
    pub instance: Option<&'a ObservedInstance>,
    /// The instance store of the instance's type, in GB (0: none); read before the start.
    pub instance_store_gb: Option<i64>,
    /// The ARN of the usable key to encrypt with, resolved before the start.
    pub key_arn: Option<&'a str>,
    pub source_snapshot: Option<&'a ObservedSnapshot>,
    pub encrypted_snapshot: Option<&'a ObservedSnapshot>,
    /// Snapshots carrying this migration's tags, looked for while a snapshot's create was
    /// requested without its id being recorded.
    pub found_snapshots: &'a [ObservedSnapshot],
    pub target_volume: Option<&'a ObservedVolume>,
    /// The volume the EbsVolume of `source.volumeRef` tracks now, read while handing over.
    pub ebs_volume_tracks: Option<&'a str>,
    pub deleting: bool,
    pub now: DateTime<Utc>,
}

/// What the status keeps between passes, as this plan leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub phase: Phase,
    pub source_volume_id: Option<String>,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub delete_on_termination: Option<bool>,
    pub kms_key_arn: Option<String>,
    pub instance_stopped_by_migration: bool,
    pub instance_start_requested: bool,
    pub source_snapshot_id: Option<String>,
    pub encrypted_snapshot_id: Option<String>,
    pub target_volume_id: Option<String>,
    pub snapshot_progress: Option<i64>,
    pub failure: Option<String>,
    /// The EbsVolume that tracks the source (name, UID), for `source.volumeRef`.
    pub ebs_volume: Option<(String, String)>,
}

impl Record {
    pub fn from_status(s: &EncryptedVolumeMigrationStatus) -> Self {
        Self {
            phase: Phase::parse(s.phase.as_deref()),
            source_volume_id: s.source_volume_id.clone(),
            instance_id: s.instance_id.clone(),
            device: s.device.clone(),
            delete_on_termination: s.delete_on_termination,
            kms_key_arn: s.kms_key_arn.clone(),
            instance_stopped_by_migration: s.instance_stopped_by_migration.unwrap_or(false),
            instance_start_requested: s.instance_start_requested.unwrap_or(false),
            source_snapshot_id: s.source_snapshot_id.clone(),
            encrypted_snapshot_id: s.encrypted_snapshot_id.clone(),
            target_volume_id: s.target_volume_id.clone(),
            snapshot_progress: s.snapshot_progress,
            failure: s.failure.clone(),
            ebs_volume: s.ebs_volume_name.clone().zip(s.ebs_volume_uid.clone()),
        }
    }

    /// Writes this record into a status.
    pub fn apply(&self, s: &mut EncryptedVolumeMigrationStatus) {
        s.phase = Some(self.phase.as_str().to_owned());
        s.source_volume_id.clone_from(&self.source_volume_id);
        s.instance_id.clone_from(&self.instance_id);
        s.device.clone_from(&self.device);
        s.delete_on_termination = self.delete_on_termination;
        s.kms_key_arn.clone_from(&self.kms_key_arn);
        s.instance_stopped_by_migration = self.instance_stopped_by_migration.then_some(true);
        s.instance_start_requested = self.instance_start_requested.then_some(true);
        s.source_snapshot_id.clone_from(&self.source_snapshot_id);
        s.encrypted_snapshot_id
            .clone_from(&self.encrypted_snapshot_id);
        s.target_volume_id.clone_from(&self.target_volume_id);
        s.snapshot_progress = self.snapshot_progress;
        s.failure.clone_from(&self.failure);
        s.ebs_volume_name = self.ebs_volume.as_ref().map(|(name, _)| name.clone());
        s.ebs_volume_uid = self.ebs_volume.as_ref().map(|(_, uid)| uid.clone());
    }

    /// Turns the migration back (or stops it) after `failure`.
    pub fn fail(&mut self, rollback: bool, failure: String) {
        self.failure = Some(failure);
        self.phase = if rollback && self.phase.can_roll_back() {
            Phase::RollingBack
        } else {
            Phase::Failed
        };
    }
}

/// The new volume: the source's attributes, from the encrypted snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVolume {
    pub availability_zone: String,
    pub volume_type: VolumeType,
    pub size_gib: i64,
    pub iops: Option<i64>,
    pub throughput_mibps: Option<i64>,
    pub multi_attach_enabled: bool,
    pub snapshot_id: String,
    pub kms_key_id: String,
    pub tags: BTreeMap<String, String>,
}

/// One AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationAction {
    StopInstance {
        instance_id: String,
    },
    CreateSnapshot {
        volume_id: String,
        tags: BTreeMap<String, String>,
    },
    CopySnapshot {
        snapshot_id: String,
        kms_key_id: String,
        tags: BTreeMap<String, String>,
    },
    CreateVolume(Box<NewVolume>),
    Detach {
        volume_id: String,
        instance_id: String,
        device: String,
    },
    Attach {
        volume_id: String,
        instance_id: String,
        device: String,
    },
    SetDeleteOnTermination {
        instance_id: String,
        device: String,
    },
    StartInstance {
        instance_id: String,
    },
    DeleteVolume {
        volume_id: String,
    },
    DeleteSnapshot {
        snapshot_id: String,
    },
    /// CreateTags on volumes (the hand-over's marks).
    TagVolumes {
        volume_ids: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    /// DeleteTags on volumes, by key.
    UntagVolumes {
        volume_ids: Vec<String>,
        keys: Vec<String>,
    },
}

impl PlannedAction for MigrationAction {
    fn describe(&self) -> String {
        match self {
            MigrationAction::StopInstance { instance_id } => format!("stop instance {instance_id}"),
            MigrationAction::CreateSnapshot { volume_id, .. } => format!("snapshot {volume_id}"),
            MigrationAction::CopySnapshot {
                snapshot_id,
                kms_key_id,
                ..
            } => format!("copy {snapshot_id} encrypted with {kms_key_id}"),
            MigrationAction::CreateVolume(v) => format!(
                "create an encrypted {} GiB {} volume in {} from {}",
                v.size_gib,
                v.volume_type.as_str(),
                v.availability_zone,
                v.snapshot_id
            ),
            MigrationAction::Detach {
                volume_id,
                instance_id,
                device,
            } => format!("detach {volume_id} from {instance_id} ({device})"),
            MigrationAction::Attach {
                volume_id,
                instance_id,
                device,
            } => format!("attach {volume_id} to {instance_id} at {device}"),
            MigrationAction::SetDeleteOnTermination {
                instance_id,
                device,
            } => format!("set DeleteOnTermination of {device} on {instance_id}"),
            MigrationAction::StartInstance { instance_id } => {
                format!("start instance {instance_id}")
            }
            MigrationAction::DeleteVolume { volume_id } => format!("delete volume {volume_id}"),
            MigrationAction::DeleteSnapshot { snapshot_id } => {
                format!("delete snapshot {snapshot_id}")
            }
            MigrationAction::TagVolumes { volume_ids, tags } => {
                let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
                format!("tag {}: {}", volume_ids.join(", "), keys.join(", "))
            }
            MigrationAction::UntagVolumes { volume_ids, keys } => {
                format!("untag {}: {}", volume_ids.join(", "), keys.join(", "))
            }
        }
    }

    fn event_reason(&self) -> &'static str {
        match self {
            MigrationAction::StopInstance { .. } => "StoppedInstance",
            MigrationAction::CreateSnapshot { .. } => "CreatedSnapshot",
            MigrationAction::CopySnapshot { .. } => "CopiedSnapshot",
            MigrationAction::CreateVolume(_) => "CreatedVolume",
            MigrationAction::Detach { .. } => "Detached",
            MigrationAction::Attach { .. } => "Attached",
            MigrationAction::SetDeleteOnTermination { .. } => "SetDeleteOnTermination",
            MigrationAction::StartInstance { .. } => "StartedInstance",
            MigrationAction::DeleteVolume { .. } => "DeletedVolume",
            MigrationAction::DeleteSnapshot { .. } => "DeletedSnapshot",
            MigrationAction::TagVolumes { .. } => "Tagged",
            MigrationAction::UntagVolumes { .. } => "Untagged",
        }
    }

    fn idempotent(&self) -> bool {
        // The snapshots' creates carry no token: they need the freshest record of their
        // intent. Everything else is decided from AWS's state or carries a token.
        !matches!(
            self,
            MigrationAction::CreateSnapshot { .. } | MigrationAction::CopySnapshot { .. }
        )
    }
}

/// AWS (or someone else) is still working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationWait {
    /// `instanceStopPolicy: WaitForStopped`: someone else is to stop it.
    ForSomeoneToStop {
        instance_id: String,
    },
    Instance {
        instance_id: String,
        state: String,
    },
    Snapshot {
        snapshot_id: String,
        progress: Option<i64>,
    },
    Requested {
        what: &'static str,
    },
    Volume {
        volume_id: String,
        state: String,
    },
    Attachment {
        volume_id: String,
        state: String,
    },
    /// The EbsVolume of `source.volumeRef` has no volume yet.
    SourcePending {
        ebs_volume: String,
    },
    /// The EbsVolume is to take up the new volume.
    HandOver {
        ebs_volume: String,
        volume_id: String,
    },
}

impl PlannedWait for MigrationWait {
    fn reason(&self) -> &'static str {
        match self {
            MigrationWait::ForSomeoneToStop { .. } => "WaitingForInstanceStop",
            MigrationWait::Instance { .. } => "WaitingForInstance",
            MigrationWait::Snapshot { .. } => "WaitingForSnapshot",
            MigrationWait::Requested { .. } => "WaitingForAws",
            MigrationWait::Volume { .. } | MigrationWait::Attachment { .. } => "WaitingForVolume",
            MigrationWait::HandOver { .. } | MigrationWait::SourcePending { .. } => {
                "WaitingForEbsVolume"
            }
        }
    }

    fn message(&self) -> String {
        match self {
            MigrationWait::ForSomeoneToStop { instance_id } => format!(
                "instance {instance_id} is running; instanceStopPolicy is WaitForStopped, so the migration waits for it to be stopped"
            ),
            MigrationWait::Instance { instance_id, state } => {
                format!("instance {instance_id} is {state}")
            }
            MigrationWait::Snapshot {
                snapshot_id,
                progress: Some(p),
            } => format!("snapshot {snapshot_id} is {p}% done"),
            MigrationWait::Snapshot { snapshot_id, .. } => {
                format!("snapshot {snapshot_id} is pending")
            }
            MigrationWait::Requested { what } => {
                format!("{what} was requested; waiting for AWS to report it")
            }
            MigrationWait::Volume { volume_id, state } => format!("volume {volume_id} is {state}"),
            MigrationWait::Attachment { volume_id, state } => {
                format!("the attachment of {volume_id} is {state}")
            }
            MigrationWait::HandOver {
                ebs_volume,
                volume_id,
            } => format!("EbsVolume {ebs_volume} is to take up {volume_id}"),
            MigrationWait::SourcePending { ebs_volume } => {
                format!("EbsVolume {ebs_volume} has no volume yet")
            }
        }
    }
}

/// The plan, and the record the status keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationPlan {
    pub plan: Plan<MigrationAction, MigrationWait>,
    pub record: Record,
    /// The pass's time, which the steps' start and end times are stamped with.
    pub now: DateTime<Utc>,
    /// Every phase this pass entered, in order (the last is `record.phase`).
    pub entered: Vec<Phase>,
}

impl Deref for MigrationPlan {
    type Target = Plan<MigrationAction, MigrationWait>;
    fn deref(&self) -> &Self::Target {
        &self.plan
    }
}

impl std::borrow::Borrow<Plan<MigrationAction, MigrationWait>> for MigrationPlan {
    fn borrow(&self) -> &Plan<MigrationAction, MigrationWait> {
        &self.plan
    }
}

/// What a step decided.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Done: on to the next phase in this pass.
    Done,
    /// An action or a wait was planned (or a problem found): stop here.
    Hold,
    /// Failed for good, with the reason in words.
    Fail(String),
}

/// The pass's working state: the input, the record it updates and the plan it builds.
struct Planner<'a> {
    input: &'a MigrationInput<'a>,
    record: Record,
    builder: Builder<MigrationAction, MigrationWait>,
    entered: Vec<Phase>,
}

pub fn plan_migration(input: &MigrationInput<'_>) -> MigrationPlan {
    let mut p = Planner {
        input,
        record: Record::from_status(input.status),
        builder: Builder::default(),
        entered: Vec::new(),
    };
    if input.deleting && p.record.phase.can_roll_back() && p.record.phase != Phase::RollingBack {
        p.record.fail(
            true,
            "the migration was deleted before it finished: rolled back".to_owned(),
        );
        p.entered.push(p.record.phase);
    }
    // Bounded: each phase is visited at most twice (forward, then in a rollback).
    for _ in 0..(2 * Phase::FORWARD.len() + 4) {
        let step = match p.record.phase {
            Phase::Pending => preflight::check(&mut p),
            Phase::Stopping => forward::stop(&mut p),
            Phase::Snapshotting => forward::snapshot(&mut p),
            Phase::Copying => forward::copy(&mut p),
            Phase::CreatingVolume => forward::create_volume(&mut p),
            Phase::Swapping => forward::swap(&mut p),
            Phase::Starting => forward::start(&mut p),
            Phase::Verifying => forward::verify(&mut p),
            Phase::HandingOver => hand_over::step(&mut p),
            Phase::CleaningUp => forward::clean_up(&mut p),
            Phase::RollingBack => rollback::step(&mut p),
            Phase::Completed | Phase::RolledBack | Phase::Failed => Step::Hold,
        };
        let before = p.record.phase;
        match step {
            Step::Done if p.record.phase == Phase::RollingBack => {
                p.record.phase = Phase::RolledBack;
            }
            Step::Done => p.record.phase = p.record.phase.next(),
            Step::Hold => break,
            Step::Fail(failure) if p.record.phase == Phase::RollingBack => {
                // A rollback that cannot go on is left for a person, with both reasons.
                let first = p.record.failure.take().unwrap_or_default();
                p.record.fail(
                    false,
                    format!("{first}; the rollback failed too: {failure}"),
                );
            }
            Step::Fail(failure) => {
                let rollback = input.spec.rollback_on_failure || input.deleting;
                p.record.fail(rollback, failure);
            }
        }
        if p.record.phase != before {
            p.entered.push(p.record.phase);
        }
    }
    p.finish()
}

impl Planner<'_> {
    fn act(&mut self, action: MigrationAction) -> Step {
        self.builder.act(action);
        Step::Hold
    }

    fn wait(&mut self, wait: MigrationWait) -> Step {
        self.builder.wait(wait);
        Step::Hold
    }

    fn refuse(&mut self, reason: &'static str, message: String) -> Step {
        self.builder.problem(reason, message);
        Step::Hold
    }

    fn finish(mut self) -> MigrationPlan {
        let phase = self.record.phase;
        let failure = self.record.failure.clone().unwrap_or_default();
        match phase {
            Phase::RolledBack => self.builder.problem(
                "RolledBack",
                format!("the migration failed and was rolled back: {failure}"),
            ),
            Phase::Failed => self.builder.problem(
                "MigrationFailed",
                format!("the migration failed and was left where it stopped: {failure}"),
            ),
            _ => {}
        }
        let done = phase == Phase::Completed;
        let converged = if done {
            Summary::yes(
                "Completed",
                format!(
                    "{} was replaced by {}, encrypted with {}",
                    self.record.source_volume_id.as_deref().unwrap_or_default(),
                    self.record.target_volume_id.as_deref().unwrap_or_default(),
                    self.record.kms_key_arn.as_deref().unwrap_or_default()
                ),
            )
        } else {
            Summary::no(phase.as_str(), failure.clone())
        };
        self.builder.finished =
            self.input.deleting && (phase.is_final() || phase == Phase::Pending);
        let mut plan = self.builder.finish(Finish {
            policy: ManagementPolicy::Manage,
            deleting: self.input.deleting,
            now: self.input.now,
            waiting_since: None,
            noun: "the volume",
            converged,
        });
        if phase == Phase::RollingBack && !self.input.deleting {
            plan.ready = Summary::no("RollingBack", failure);
        }
        MigrationPlan {
            plan,
            record: self.record,
            now: self.input.now,
            entered: self.entered,
        }
    }
}
