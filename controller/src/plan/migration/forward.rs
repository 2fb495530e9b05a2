//! The forward steps, one per phase: stop, snapshot, encrypted copy, new volume, swap,
//! start, verify, clean up. Each looks at AWS's state and either finds its work done, plans
//! one call, waits, or fails.

use super::{COPY_STEP, MigrationAction, MigrationWait, NewVolume, Planner, SNAPSHOT_STEP, Step};
use crate::api::VolumeType;
use crate::api::intent::find_intent;
use crate::api::migration::{InstanceStopPolicy, SourceVolumePolicy};
use crate::plan::observed::{
    AttachmentState, ObservedInstance, ObservedSnapshot, ObservedVolume, VolumeState,
};
use std::collections::BTreeMap;

use crate::plan::tags::{
    CLUSTER_TAG, KIND_TAG, MIGRATED_FROM_TAG, MIGRATING_TAG, OWNER_TAG, STEP_TAG, UID_TAG,
    is_reserved_key, ownership_tags,
};
use crate::plan::tenancy::GRANT_TAG;

/// StateReason codes of a stop someone asked for; any other code on an instance that was
/// to start means the start failed.
const REQUESTED_STOPS: [&str; 2] = [
    "Client.UserInitiatedShutdown",
    "Client.InstanceInitiatedShutdown",
];

/// The instance, when the volume is attached to one; `Err` when it vanished.
pub(super) fn instance<'a>(p: &Planner<'a>) -> Result<Option<&'a ObservedInstance>, String> {
    match (&p.record.instance_id, p.input.instance) {
        (None, _) => Ok(None),
        (Some(_), Some(instance)) => Ok(Some(instance)),
        (Some(id), None) => Err(format!("instance {id} no longer exists")),
    }
}

/// The instance a step acts on; without one the step is done, and one that vanished fails
/// it.
fn instance_to_act_on<'a>(p: &Planner<'a>) -> Result<&'a ObservedInstance, Step> {
    match instance(p) {
        Ok(Some(instance)) => Ok(instance),
        Ok(None) => Err(Step::Done),
        Err(failure) => Err(Step::Fail(failure)),
    }
}

pub(super) fn stop(p: &mut Planner<'_>) -> Step {
    if let Some(marking) = super::hand_over::mark(p) {
        return marking;
    }
    let instance = match instance_to_act_on(p) {
        Ok(instance) => instance,
        Err(step) => return step,
    };
    let id = instance.instance_id.clone();
    match instance.state.as_deref().unwrap_or("unknown") {
        "stopped" => Step::Done,
        "running" if p.input.spec.instance_stop_policy == InstanceStopPolicy::WaitForStopped => {
            p.wait(MigrationWait::ForSomeoneToStop { instance_id: id })
        }
        "running" => {
            // Recorded before the call: whoever resumes knows the migration stopped it.
            p.record.instance_stopped_by_migration = true;
            p.act(MigrationAction::StopInstance { instance_id: id })
        }
        state @ ("pending" | "stopping") => p.wait(MigrationWait::Instance {
            instance_id: id,
            state: state.to_owned(),
        }),
        state => Step::Fail(format!("instance {id} is {state}")),
    }
}

pub(super) fn snapshot(p: &mut Planner<'_>) -> Step {
    let Some(volume_id) = p.record.source_volume_id.clone() else {
        return Step::Fail("no source volume was recorded".to_owned());
    };
    if p.record.source_snapshot_id.is_none() {
        p.record.source_snapshot_id = found(p, SNAPSHOT_STEP);
    }
    match p.record.source_snapshot_id.clone() {
        Some(id) => completed(p, &id, p.input.source_snapshot),
        None if find_intent(&p.input.status.intents, SNAPSHOT_STEP).is_some() => {
            p.wait(MigrationWait::Requested {
                what: "the snapshot",
            })
        }
        None => {
            let tags = ownership_tags(p.input.owner, Some(SNAPSHOT_STEP));
            p.act(MigrationAction::CreateSnapshot { volume_id, tags })
        }
    }
}

pub(super) fn copy(p: &mut Planner<'_>) -> Step {
    let (Some(source), Some(key)) = (
        p.record.source_snapshot_id.clone(),
        p.record.kms_key_arn.clone(),
    ) else {
        return Step::Fail("no snapshot or key was recorded".to_owned());
    };
    if p.record.encrypted_snapshot_id.is_none() {
        p.record.encrypted_snapshot_id = found(p, COPY_STEP);
    }
    match p.record.encrypted_snapshot_id.clone() {
        Some(id) => {
            let step = completed(p, &id, p.input.encrypted_snapshot);
            let wrong_key = p
                .input
                .encrypted_snapshot
                .is_some_and(|s| !s.encrypted || s.kms_key_id.as_deref() != Some(key.as_str()));
            if step == Step::Done && wrong_key {
                return Step::Fail(format!("snapshot {id} is not encrypted with {key}"));
            }
            step
        }
        None if find_intent(&p.input.status.intents, COPY_STEP).is_some() => {
            p.wait(MigrationWait::Requested {
                what: "the encrypted copy",
            })
        }
        None => {
            let tags = ownership_tags(p.input.owner, Some(COPY_STEP));
            p.act(MigrationAction::CopySnapshot {
                snapshot_id: source,
                kms_key_id: key,
                tags,
            })
        }
    }
}

/// A snapshot found by this migration's tags for `step`, after a create whose answer was
/// lost.
fn found(p: &Planner<'_>, step: &str) -> Option<String> {
    p.input
        .found_snapshots
        .iter()
        .find(|s| s.tags.get(STEP_TAG) == Some(step))
        .map(|s| s.snapshot_id.clone())
}

/// How long something the migration just made may stay invisible to Describe calls
/// (EC2's eventual consistency) before its absence counts as a failure.
const NOT_VISIBLE_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// The resource `id` was made in this phase and is not seen (yet): a wait within the
/// grace, a failure after it.
fn not_visible(p: &mut Planner<'_>, id: &str, noun: &str) -> Step {
    let phase = p.record.phase.as_str();
    let started = p
        .input
        .status
        .steps
        .iter()
        .rev()
        .find(|s| s.name == phase)
        .and_then(|s| s.start_time);
    match started {
        Some(at) if p.input.now - at > NOT_VISIBLE_GRACE => Step::Fail(match noun {
            // What AWS does with a volume it cannot encrypt with its key (CreateVolume).
            "volume" => format!(
                "volume {id} no longer exists: AWS removes a new volume it cannot encrypt with its key"
            ),
            _ => format!("{noun} {id} no longer exists"),
        }),
        _ => p.wait(MigrationWait::Requested {
            what: "the new resource",
        }),
    }
}

/// Done once the snapshot is completed; a wait while it is pending.
fn completed(p: &mut Planner<'_>, id: &str, snapshot: Option<&ObservedSnapshot>) -> Step {
    // Found by its tags this pass (after a lost answer), or read by its recorded id.
    let found = p.input.found_snapshots.iter().find(|s| s.snapshot_id == id);
    let Some(snapshot) = snapshot.or(found) else {
        return not_visible(p, id, "snapshot");
    };
    match snapshot.state.as_str() {
        "completed" => {
            p.record.snapshot_progress = None;
            Step::Done
        }
        "pending" => {
            p.record.snapshot_progress = snapshot.progress;
            p.wait(MigrationWait::Snapshot {
                snapshot_id: id.to_owned(),
                progress: snapshot.progress,
            })
        }
        state => Step::Fail(format!("snapshot {id} is {state}")),
    }
}

pub(super) fn create_volume(p: &mut Planner<'_>) -> Step {
    if let Some(id) = p.record.target_volume_id.clone() {
        return match p.input.target_volume {
            None => not_visible(p, &id, "volume"),
            Some(v) if v.state == VolumeState::Creating => p.wait(MigrationWait::Volume {
                volume_id: id,
                state: "creating".to_owned(),
            }),
            Some(v) if v.state == VolumeState::Available => Step::Done,
            Some(v) => Step::Fail(format!("volume {id} is {}", v.state.as_str())),
        };
    }
    let Some(source) = p.input.source_volume else {
        return Step::Fail("the source volume no longer exists".to_owned());
    };
    let (Some(snapshot_id), Some(kms_key_id)) = (
        p.record.encrypted_snapshot_id.clone(),
        p.record.kms_key_arn.clone(),
    ) else {
        return Step::Fail("no encrypted snapshot was recorded".to_owned());
    };
    let Some(volume_type) = source.volume_type else {
        return Step::Fail(format!(
            "volume {} has a type this controller does not know",
            source.volume_id
        ));
    };
    let new = NewVolume {
        availability_zone: source.availability_zone.clone(),
        volume_type,
        size_gib: source.size_gib,
        // Only the types that take them (EBS volume types): AWS refuses the others'.
        iops: source.iops.filter(|_| {
            matches!(
                volume_type,
                VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2
            )
        }),
        throughput_mibps: source
            .throughput_mibps
            .filter(|_| volume_type == VolumeType::Gp3),
        multi_attach_enabled: source.multi_attach_enabled,
        snapshot_id,
        kms_key_id,
        tags: new_volume_tags(p, source),
    };
    p.act(MigrationAction::CreateVolume(Box::new(new)))
}

/// The source's own tags (AWS's and ours aside, its grant kept), where it came from, and
/// the ownership of the EbsVolume that tracked the source (with the migrating mark, so it
/// holds still until the hand-over). A volume no EbsVolume tracked stays unowned, like its
/// source: it is the user's, not this migration's.
fn new_volume_tags(p: &Planner<'_>, source: &ObservedVolume) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = source
        .tags
        .iter()
        .filter(|(k, _)| !is_reserved_key(k) || *k == GRANT_TAG)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    tags.insert(MIGRATED_FROM_TAG.to_owned(), source.volume_id.clone());
    if p.record.ebs_volume.is_some() {
        for key in [CLUSTER_TAG, KIND_TAG, OWNER_TAG, UID_TAG] {
            if let Some(value) = source.tags.get(key) {
                tags.insert(key.to_owned(), value.to_owned());
            }
        }
        tags.insert(MIGRATING_TAG.to_owned(), p.input.owner.owner_ref());
    }
    tags
}

/// The state of `volume`'s attachment to `instance_id`, if attached.
pub(super) fn attachment(
    volume: Option<&ObservedVolume>,
    instance_id: &str,
) -> Option<AttachmentState> {
    volume?
        .attachments
        .iter()
        .find(|a| a.instance_id == instance_id && a.state != AttachmentState::Detached)
        .map(|a| a.state)
}

/// `from` off the instance, `to` on it at the recorded device (and its DeleteOnTermination
/// as the original had it).
pub(super) fn put_in_place(
    p: &mut Planner<'_>,
    from: Option<&ObservedVolume>,
    to: Option<&ObservedVolume>,
) -> Step {
    let (Some(instance_id), Some(device)) = (p.record.instance_id.clone(), p.record.device.clone())
    else {
        return Step::Done;
    };
    if let Some(from) = from
        && let Some(state) = attachment(Some(from), &instance_id)
    {
        return match state {
            AttachmentState::Detaching => p.wait(MigrationWait::Attachment {
                volume_id: from.volume_id.clone(),
                state: state.as_str().to_owned(),
            }),
            _ => p.act(MigrationAction::Detach {
                volume_id: from.volume_id.clone(),
                instance_id,
                device,
            }),
        };
    }
    let Some(to) = to else {
        return Step::Fail("the volume to attach no longer exists".to_owned());
    };
    match attachment(Some(to), &instance_id) {
        Some(AttachmentState::Attached) => {}
        Some(state) => {
            return p.wait(MigrationWait::Attachment {
                volume_id: to.volume_id.clone(),
                state: state.as_str().to_owned(),
            });
        }
        None if to.state == VolumeState::Available => {
            return p.act(MigrationAction::Attach {
                volume_id: to.volume_id.clone(),
                instance_id,
                device,
            });
        }
        None => {
            return Step::Fail(format!(
                "volume {} is {} and cannot be attached",
                to.volume_id,
                to.state.as_str()
            ));
        }
    }
    let dot_lost = p.record.delete_on_termination == Some(true)
        && p.input
            .instance
            .and_then(|i| i.device(&device))
            .is_some_and(|d| !d.delete_on_termination);
    if dot_lost {
        return p.act(MigrationAction::SetDeleteOnTermination {
            instance_id,
            device,
        });
    }
    Step::Done
}

pub(super) fn swap(p: &mut Planner<'_>) -> Step {
    if let Err(failure) = instance(p) {
        return Step::Fail(failure);
    }
    put_in_place(p, p.input.source_volume, p.input.target_volume)
}

/// Starts the instance again if the migration stopped it (and the spec wants it running).
pub(super) fn start(p: &mut Planner<'_>) -> Step {
    if !(p.record.instance_stopped_by_migration && p.input.spec.restart_instance) {
        return Step::Done;
    }
    start_instance(p)
}

/// The instance running again; a start that AWS turned back is a failure.
pub(super) fn start_instance(p: &mut Planner<'_>) -> Step {
    let instance = match instance_to_act_on(p) {
        Ok(instance) => instance,
        Err(step) => return step,
    };
    let id = instance.instance_id.clone();
    match instance.state.as_deref().unwrap_or("unknown") {
        "running" => Step::Done,
        state @ ("pending" | "stopping") => p.wait(MigrationWait::Instance {
            instance_id: id,
            state: state.to_owned(),
        }),
        "stopped" => {
            let refused = instance
                .state_reason
                .as_deref()
                .filter(|code| !REQUESTED_STOPS.contains(code));
            if p.record.instance_start_requested
                && let Some(code) = refused
                && p.record.phase != super::Phase::RollingBack
            {
                return Step::Fail(format!("instance {id} did not start: {code}"));
            }
            p.record.instance_start_requested = true;
            p.act(MigrationAction::StartInstance { instance_id: id })
        }
        state => Step::Fail(format!("instance {id} is {state}")),
    }
}

pub(super) fn verify(p: &mut Planner<'_>) -> Step {
    let (Some(target), Some(key)) = (p.input.target_volume, p.record.kms_key_arn.as_deref()) else {
        return Step::Fail("the new volume no longer exists".to_owned());
    };
    if !target.encrypted || target.kms_key_id.as_deref() != Some(key) {
        return Step::Fail(format!(
            "volume {} is not encrypted with {key}",
            target.volume_id
        ));
    }
    if let (Some(instance_id), Some(device)) = (&p.record.instance_id, &p.record.device) {
        let in_place = target.state == VolumeState::InUse
            && target.attachments.iter().any(|a| {
                a.instance_id == *instance_id
                    && a.device == *device
                    && a.state == AttachmentState::Attached
            });
        if !in_place {
            return Step::Fail(format!(
                "volume {} is not attached to {instance_id} at {device}",
                target.volume_id
            ));
        }
    }
    Step::Done
}

pub(super) fn clean_up(p: &mut Planner<'_>) -> Step {
    if p.input.spec.source_volume_policy == SourceVolumePolicy::Delete
        && let Some(source) = p.input.source_volume
    {
        match source.state {
            VolumeState::Available => {
                return p.act(MigrationAction::DeleteVolume {
                    volume_id: source.volume_id.clone(),
                });
            }
            VolumeState::Deleting | VolumeState::Deleted => {}
            other => {
                // Someone attached it again since the swap: it is theirs now.
                p.builder.problem(
                    "SourceVolumeInUse",
                    format!(
                        "volume {} is {} again, so it was not deleted",
                        source.volume_id,
                        other.as_str()
                    ),
                );
            }
        }
    }
    delete_snapshots(p)
}

/// Deletes the migration's snapshots, one per pass, unless the spec keeps them.
pub(super) fn delete_snapshots(p: &mut Planner<'_>) -> Step {
    if p.input.spec.keep_snapshots {
        return Step::Done;
    }
    let existing = [p.input.encrypted_snapshot, p.input.source_snapshot]
        .into_iter()
        .flatten()
        .find(|s| s.state != "deleted");
    match existing {
        Some(s) => p.act(MigrationAction::DeleteSnapshot {
            snapshot_id: s.snapshot_id.clone(),
        }),
        None => Step::Done,
    }
}
