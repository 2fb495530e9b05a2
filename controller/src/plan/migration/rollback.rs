//! Putting things back after a failure: the original volume at its device again (with its
//! DeleteOnTermination), the instance started again if the migration stopped it, and what
//! the migration made deleted. One call per pass, each decided from AWS's state, so a
//! rollback interrupted at any instant resumes where it was.

use super::forward::{delete_snapshots, instance, put_in_place, start_instance};
use super::{MigrationAction, MigrationWait, Planner, Step};
use crate::plan::observed::VolumeState;

pub(super) fn step(p: &mut Planner<'_>) -> Step {
    if let Err(failure) = instance(p) {
        // Nothing to put back on an instance that is gone: only clean up.
        p.record.instance_id = None;
        p.record.failure = p.record.failure.take().map(|f| format!("{f}; {failure}"));
    }
    if p.record.instance_id.is_some() {
        if p.input.source_volume.is_none() {
            return p.refuse(
                "SourceVolumeGone",
                "the original volume no longer exists, so it cannot be put back".to_owned(),
            );
        }
        let put_back = put_in_place(p, p.input.target_volume, p.input.source_volume);
        if put_back != Step::Done {
            return put_back;
        }
        if p.record.instance_stopped_by_migration {
            let started = start_instance(p);
            if started != Step::Done {
                return started;
            }
        }
    }
    if let Some(target) = p.input.target_volume {
        match target.state {
            VolumeState::Available => {
                return p.act(MigrationAction::DeleteVolume {
                    volume_id: target.volume_id.clone(),
                });
            }
            VolumeState::Creating => {
                return p.wait(MigrationWait::Volume {
                    volume_id: target.volume_id.clone(),
                    state: "creating".to_owned(),
                });
            }
            _ => {}
        }
    }
    let deleted = delete_snapshots(p);
    if deleted != Step::Done {
        return deleted;
    }
    super::hand_over::unmark(p).unwrap_or(Step::Done)
}
