//! Assembling a volume's plan: the shared builder, plus what only volumes keep.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};

use super::{VolumeAction, VolumeInput, VolumePlan, Wait, modifications_in_window};
use crate::api::conditions::{ConditionStatus, PROGRESSING, find};
use crate::plan::core::{self, Finish, Summary};
use crate::plan::observed::VolumeState;

/// Collects the parts of a plan as the submodules find them.
pub(super) struct Builder {
    core: core::Builder<VolumeAction, Wait>,
    pub(super) recent_modifications: Vec<DateTime<Utc>>,
    pub(super) managed_tag_keys: BTreeSet<String>,
    pub(super) volume_state: Option<VolumeState>,
    pub(super) volume_hidden: bool,
}

impl Deref for Builder {
    type Target = core::Builder<VolumeAction, Wait>;

    fn deref(&self) -> &Self::Target {
        &self.core
    }
}

impl DerefMut for Builder {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.core
    }
}

impl Builder {
    pub(super) fn new(input: &VolumeInput<'_>) -> Self {
        Self {
            core: core::Builder::default(),
            recent_modifications: modifications_in_window(
                &input.status.recent_modifications,
                input.modification,
                input.now,
            ),
            // Unless the tag planner says otherwise, what was ours stays ours.
            managed_tag_keys: input.managed_tag_keys.clone(),
            volume_state: None,
            volume_hidden: false,
        }
    }

    pub(super) fn finish(self, input: &VolumeInput<'_>) -> VolumePlan {
        // Without a start time from AWS, waiting began when Progressing last turned True.
        let waiting_since = find(&input.status.conditions, PROGRESSING)
            .filter(|c| c.status == ConditionStatus::True)
            .map(|c| c.last_transition_time);
        let converged = match self.volume_state {
            Some(VolumeState::InUse) => Summary::yes("InUse", "the volume is in use as specified"),
            Some(VolumeState::Available) => {
                Summary::yes("Available", "the volume is available as specified")
            }
            // Not observed yet: a create is on its way.
            _ => Summary::no("Pending", ""),
        };
        let plan = self.core.finish(Finish {
            policy: input.spec.management_policy,
            deleting: input.deleting,
            now: input.now,
            waiting_since,
            noun: "the volume",
            converged,
        });
        VolumePlan {
            plan,
            recent_modifications: self.recent_modifications,
            managed_tag_keys: self.managed_tag_keys,
            volume_hidden: self.volume_hidden,
        }
    }
}
