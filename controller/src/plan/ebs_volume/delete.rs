//! The object is being deleted: follow the deletion policy, one safe step at a time.
//!
//! Delete: detach everything and wait, take the final snapshot and wait, delete, done when
//! AWS no longer reports the volume. Retain: mark it released, done. `ObserveOnly` never
//! acts: the volume was never ours. Like kube-runtime's finalizer Cleanup, this works when
//! nothing was ever created.

use super::{
    Builder, CREATE_STEP, FINAL_SNAPSHOT_STEP, VolumeAction, VolumeInput, Wait, create, reason,
};
use crate::api::common::{DeletionPolicy, ManagementPolicy};
use crate::api::intent::find_intent;
use crate::plan::observed::{AttachmentState, ObservedVolume, VolumeState};
use crate::plan::tags::{creation_tags, release_changes};

pub(super) fn plan(input: &VolumeInput<'_>, volume: Option<&ObservedVolume>, b: &mut Builder) {
    let spec = input.spec;
    if spec.management_policy == ManagementPolicy::ObserveOnly {
        b.finished = true;
        return;
    }
    let Some(v) = volume else {
        gone(input, b);
        return;
    };
    if !super::is_this_objects(input, v) {
        // Adopted by another object, or never granted: not ours to release, detach or
        // delete. The object goes; the volume stays exactly as it is.
        b.finished = true;
        return;
    }
    b.volume_state = Some(v.state);
    if spec.deletion_policy == DeletionPolicy::Retain {
        // Released first, then disowned: a crash in between leaves a volume that no object
        // claims (a released volume is nobody's), never one that is still ours.
        super::tags::act_on(&v.volume_id, release_changes(&v.tags), b);
        b.finished = true;
        return;
    }
    match v.state {
        VolumeState::Creating => {
            b.wait(Wait::Creating {
                volume_id: v.volume_id.clone(),
            });
            return;
        }
        VolumeState::Deleting => {
            b.wait(Wait::Deleting {
                volume_id: v.volume_id.clone(),
            });
            return;
        }
        _ => {}
    }

    let mut attached = false;
    for a in &v.attachments {
        match a.state {
            AttachmentState::Attached | AttachmentState::Busy => b.act(VolumeAction::Detach {
                volume_id: v.volume_id.clone(),
                instance_id: a.instance_id.clone(),
                device: a.device.clone(),
                force: spec.force_detach,
            }),
            AttachmentState::Attaching => b.wait(Wait::Attaching {
                instance_id: a.instance_id.clone(),
            }),
            AttachmentState::Detaching => b.wait(Wait::Detaching {
                instance_id: a.instance_id.clone(),
            }),
            AttachmentState::Detached => continue,
        }
        attached = true;
    }
    // A snapshot after the detach is consistent; DeleteVolume on an attached volume fails.
    if attached {
        return;
    }

    if spec.final_snapshot {
        match input.final_snapshot {
            // Requested before (its id or its intent is recorded) but not visible: AWS is
            // eventually consistent, so wait for it rather than take a second snapshot.
            None if input.status.final_snapshot_id.is_some()
                || find_intent(&input.status.intents, FINAL_SNAPSHOT_STEP).is_some() =>
            {
                b.wait(Wait::FinalSnapshotRequested {
                    volume_id: v.volume_id.clone(),
                });
                return;
            }
            None => {
                b.act(VolumeAction::CreateFinalSnapshot {
                    volume_id: v.volume_id.clone(),
                    description: format!(
                        "Final snapshot of {} before deletion",
                        input.owner.owner_ref()
                    ),
                    tags: creation_tags(input.owner, Some(FINAL_SNAPSHOT_STEP), &spec.tags),
                });
                return;
            }
            Some(s) if s.state == "completed" => {}
            Some(s) if matches!(s.state.as_str(), "pending" | "recovering") => {
                b.wait(Wait::FinalSnapshot {
                    snapshot_id: s.snapshot_id.clone(),
                    progress: s.progress,
                    since: s.start_time,
                });
                return;
            }
            // The user asked for a copy of the data: never delete without one. Setting
            // finalSnapshot to false (or Retain) lets the deletion go on.
            Some(s) => {
                b.problem(
                    reason::FINAL_SNAPSHOT_FAILED,
                    format!(
                        "final snapshot {} of {} is {}: the volume is not deleted without it",
                        s.snapshot_id, v.volume_id, s.state
                    ),
                );
                return;
            }
        }
    }
    b.act(VolumeAction::Delete {
        volume_id: v.volume_id.clone(),
    });
}

/// AWS does not report the volume: deleted, or never created, or created but not visible.
fn gone(input: &VolumeInput<'_>, b: &mut Builder) {
    let spec = input.spec;
    let status = input.status;
    let known_id = spec.volume_id.as_ref().or(status.volume_id.as_ref());
    let create_recorded = find_intent(&status.intents, CREATE_STEP).is_some();
    if spec.deletion_policy == DeletionPolicy::Retain || !create_recorded {
        b.finished = true;
        return;
    }
    match known_id {
        // Created (the response gave its id) but not seen yet: deleting now could miss it.
        Some(id) if spec.volume_id.is_none() && !create::invisible_too_long(input) => {
            b.wait(Wait::VolumeNotVisibleYet {
                volume_id: id.clone(),
            });
        }
        Some(_) => b.finished = true,
        // A create was recorded but its answer was lost: replaying it with the same client
        // token returns the volume if it exists (and makes one otherwise, which the next
        // passes delete), so nothing leaks.
        None => {
            let replay = create::create_action(input, b);
            // Problems of a spec that is going away do not matter; an invalid create was
            // refused by AWS, so nothing can exist.
            b.problems.clear();
            match replay {
                Some(c) => b.act(VolumeAction::Create(c)),
                None => b.finished = true,
            }
        }
    }
}
