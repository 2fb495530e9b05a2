//! Assembling a plan: the parts the submodules found, plus the conditions they add up to.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::words::{describe, join_messages};
use super::{
    Problem, Summary, VolumeAction, VolumeInput, VolumePlan, Wait, modifications_in_window,
};
use crate::api::common::ManagementPolicy;
use crate::api::conditions::{ConditionStatus, PROGRESSING};
use crate::plan::observed::VolumeState;

/// The requeue delay while AWS works, growing with how long it has been working: short
/// for quick steps (attach, a small create), up to five minutes for long ones (optimizing
/// a large volume can take hours), so a slow step costs few Describe calls.
pub fn waiting_delay(elapsed: TimeDelta) -> Duration {
    const MIN: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(300);
    let grown = elapsed.to_std().unwrap_or_default() / 6;
    grown.clamp(MIN, MAX)
}

/// Collects the parts of a plan as the submodules find them.
pub(super) struct Builder {
    pub(super) actions: Vec<VolumeAction>,
    pub(super) waits: Vec<Wait>,
    pub(super) problems: Vec<Problem>,
    pub(super) recent_modifications: Vec<DateTime<Utc>>,
    pub(super) managed_tag_keys: BTreeSet<String>,
    pub(super) finished: bool,
    pub(super) volume_state: Option<VolumeState>,
}

impl Builder {
    pub(super) fn new(input: &VolumeInput<'_>) -> Self {
        Self {
            actions: Vec::new(),
            waits: Vec::new(),
            problems: Vec::new(),
            recent_modifications: modifications_in_window(
                &input.status.recent_modifications,
                input.modification,
                input.now,
            ),
            // Unless the tag planner says otherwise, what was ours stays ours.
            managed_tag_keys: input.managed_tag_keys.clone(),
            finished: false,
            volume_state: None,
        }
    }

    pub(super) fn act(&mut self, action: VolumeAction) {
        self.actions.push(action);
    }

    pub(super) fn wait(&mut self, wait: Wait) {
        if !self.waits.contains(&wait) {
            self.waits.push(wait);
        }
    }

    pub(super) fn problem(&mut self, reason: &'static str, message: String) {
        self.problems.push(Problem { reason, message });
    }

    pub(super) fn finish(self, input: &VolumeInput<'_>) -> VolumePlan {
        let policy = input.spec.management_policy;
        let requeue_after = self.requeue_after(input);
        let ready = self.ready(input, policy);
        let progressing = self.progressing(input, policy);
        VolumePlan {
            policy,
            actions: self.actions,
            waits: self.waits,
            problems: self.problems,
            ready,
            progressing,
            requeue_after,
            recent_modifications: self.recent_modifications,
            managed_tag_keys: self.managed_tag_keys,
            finished: self.finished,
        }
    }

    fn requeue_after(&self, input: &VolumeInput<'_>) -> Option<Duration> {
        // Without a start time from AWS, waiting began when Progressing last turned True.
        let progressing_since = crate::api::conditions::find(&input.status.conditions, PROGRESSING)
            .filter(|c| c.status == ConditionStatus::True)
            .map(|c| c.last_transition_time);
        self.waits
            .iter()
            .map(|w| match w {
                Wait::ModificationQuota { until, .. } => (*until - input.now)
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
                _ => {
                    let since = w.since().or(progressing_since).unwrap_or(input.now);
                    waiting_delay(input.now - since)
                }
            })
            .min()
    }

    fn ready(&self, input: &VolumeInput<'_>, policy: ManagementPolicy) -> Summary {
        let not_ready = |reason, message| Summary {
            status: false,
            reason,
            message,
        };
        if input.deleting {
            return not_ready(
                "Deleting",
                if self.finished {
                    "clean-up done".to_owned()
                } else {
                    "the object is being deleted".to_owned()
                },
            );
        }
        if let Some(p) = self.problems.first() {
            return not_ready(p.reason, p.message.clone());
        }
        if let Some(w) = self.waits.first() {
            return not_ready(w.reason(), w.message());
        }
        if !self.actions.is_empty() {
            let message = match policy {
                ManagementPolicy::Manage => {
                    format!("{} change(s) to apply", self.actions.len())
                }
                ManagementPolicy::ObserveOnly => format!(
                    "the volume differs from the spec; observe-only, so {} change(s) are not applied (see status.plan)",
                    self.actions.len()
                ),
            };
            return not_ready("OutOfSync", message);
        }
        match self.volume_state {
            Some(VolumeState::InUse) => Summary {
                status: true,
                reason: "InUse",
                message: "the volume is in use as specified".to_owned(),
            },
            Some(VolumeState::Available) => Summary {
                status: true,
                reason: "Available",
                message: "the volume is available as specified".to_owned(),
            },
            // Not observed yet: a create is on its way.
            _ => not_ready("Pending", String::new()),
        }
    }

    fn progressing(&self, input: &VolumeInput<'_>, policy: ManagementPolicy) -> Summary {
        if let Some(w) = self.waits.first() {
            return Summary {
                status: true,
                reason: w.reason(),
                message: join_messages(self.waits.iter().map(Wait::message)),
            };
        }
        let acting = policy == ManagementPolicy::Manage && !self.actions.is_empty();
        if acting {
            return Summary {
                status: true,
                reason: if input.deleting {
                    "Deleting"
                } else {
                    "Applying"
                },
                message: join_messages(self.actions.iter().map(describe)),
            };
        }
        let (reason, message) = if !self.problems.is_empty() {
            ("Blocked", "waiting for the spec to change (see Synced)")
        } else if !self.actions.is_empty() {
            ("ObserveOnly", "changes are reported, not applied")
        } else {
            ("UpToDate", "")
        };
        Summary {
            status: false,
            reason,
            message: message.to_owned(),
        }
    }
}
