//! What every kind's plan has: ordered actions, waits on AWS, problems, the conditions they
//! add up to and when to look again. Each kind's planner fills a [`Builder`] and finishes it
//! into a [`Plan`]; the reconcile pipeline runs, shows and reports from that one list.

use std::fmt::Debug;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::common::ManagementPolicy;
use crate::api::conditions::{ConditionStatus, DesiredCondition, PROGRESSING, READY, SYNCED};

/// `Progressing=False` with this reason: nothing goes on until the spec, or something
/// outside, changes (see `Synced`).
pub const BLOCKED: &str = "Blocked";

/// One AWS change a plan asks for. The executor maps it to exactly one call.
pub trait PlannedAction: Clone + Debug + PartialEq + Send + Sync {
    /// The action in words, for `status.plan`, events and the `plan` command. Stable for a
    /// given action (no times or progress), so an unchanged plan costs no status write.
    fn describe(&self) -> String;

    /// The PascalCase reason of the event published once the call succeeded.
    fn event_reason(&self) -> &'static str;

    /// Whether sending the call twice is harmless (a client token, a set of tags, a
    /// detach): such calls may start from a cached copy of the object that lags behind
    /// the controller's own last write. Everything else waits for a fresh copy.
    fn idempotent(&self) -> bool;
}

/// Something AWS is still doing; the plan resumes when it is done.
pub trait PlannedWait: Clone + Debug + PartialEq + Send + Sync {
    /// PascalCase, for the `Progressing` and `Ready` conditions.
    fn reason(&self) -> &'static str;

    fn message(&self) -> String;

    /// When AWS started the work waited for, when known: the longer it has worked, the
    /// less often it is looked at.
    fn since(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The wait ends at a known time (a quota window), not when AWS reports progress.
    fn until(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// AWS usually ends this wait within seconds, and the object is read by id while it
    /// waits (one id in a read merged with every other waiting object's): look again at
    /// the next merged read ([`Plan::look_soon`]) instead of after a delay that grows
    /// with the time waited so far.
    fn ends_soon(&self) -> bool {
        false
    }
}

/// Why the spec cannot be acted on: terminal until the spec (or the world) changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// PascalCase, for `Synced=False`.
    pub reason: &'static str,
    pub message: String,
    /// The AWS resource (its id) whose change outside the spec would remove the problem,
    /// such as a grant tag added to it: the reconciler watches it.
    pub resource: Option<String>,
}

/// The desired status, reason and message of one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Summary {
    pub fn yes(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: true,
            reason,
            message: message.into(),
        }
    }

    pub fn no(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// What to do next, what AWS is still doing, and what cannot be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<A, W> {
    pub policy: ManagementPolicy,
    /// In the order they must run.
    pub actions: Vec<A>,
    pub waits: Vec<W>,
    pub problems: Vec<Problem>,
    pub ready: Summary,
    pub progressing: Summary,
    /// When to look again because AWS is still working; grows the longer it works.
    /// Waits that end soon are not counted here: see `look_soon`.
    pub requeue_after: Option<Duration>,
    /// A wait ends soon ([`PlannedWait::ends_soon`]): look again at the next merged
    /// on-demand read (the observer's merge window), whatever `requeue_after` says.
    pub look_soon: bool,
    /// Deleting: once every action has succeeded, the finalizer may be removed.
    pub finished: bool,
}

impl<A: PlannedAction, W: PlannedWait> Plan<A, W> {
    /// The actions the executor may run: none under `ObserveOnly`.
    pub fn executable(&self) -> &[A] {
        match self.policy {
            ManagementPolicy::Manage => &self.actions,
            ManagementPolicy::ObserveOnly => &[],
        }
    }

    /// `status.plan`: every action in words (also under `ObserveOnly`, where none runs).
    pub fn in_words(&self) -> Vec<String> {
        self.actions.iter().map(PlannedAction::describe).collect()
    }

    pub fn synced(&self) -> Summary {
        match self.problems.first() {
            None => Summary::yes("Synced", ""),
            Some(first) => Summary::no(
                first.reason,
                join_messages(self.problems.iter().map(|p| p.message.clone())),
            ),
        }
    }

    /// `Ready`, `Synced` and `Progressing` as the plan sees them. The pipeline overrides
    /// `Synced` when executing an action fails.
    pub fn conditions(&self) -> Vec<DesiredCondition> {
        vec![
            desired(READY, &self.ready),
            desired(SYNCED, &self.synced()),
            desired(PROGRESSING, &self.progressing),
        ]
    }
}

/// A summary as a condition to write.
pub fn desired(type_: &'static str, s: &Summary) -> DesiredCondition {
    let status = if s.status {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    DesiredCondition::new(type_, status, s.reason, s.message.clone())
}

/// Messages joined for one condition.
pub fn join_messages(messages: impl Iterator<Item = String>) -> String {
    messages.collect::<Vec<_>>().join("; ")
}

/// The requeue delay while AWS works, growing with how long it has been working: short
/// for quick steps (attach, a small create), up to five minutes for long ones (optimizing
/// a large volume can take hours), so a slow step costs few Describe calls.
pub fn waiting_delay(elapsed: TimeDelta) -> Duration {
    const MIN: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(300);
    let grown = elapsed.to_std().unwrap_or_default() / 6;
    grown.clamp(MIN, MAX)
}

/// What the planner knows about the object when it finishes a plan.
#[derive(Clone, Debug)]
pub struct Finish<'a> {
    pub policy: ManagementPolicy,
    pub deleting: bool,
    pub now: DateTime<Utc>,
    /// When waiting began, for waits without a start time of their own.
    pub waiting_since: Option<DateTime<Utc>>,
    /// What the AWS resource is called in messages ("the volume", "the image").
    pub noun: &'a str,
    /// `Ready` when nothing is left to do, to wait for or to complain about.
    pub converged: Summary,
}

/// Collects the parts of a plan as a kind's planner finds them.
#[derive(Clone, Debug)]
pub struct Builder<A, W> {
    pub actions: Vec<A>,
    pub waits: Vec<W>,
    pub problems: Vec<Problem>,
    pub finished: bool,
}

impl<A, W> Default for Builder<A, W> {
    fn default() -> Self {
        Self {
            actions: Vec::new(),
            waits: Vec::new(),
            problems: Vec::new(),
            finished: false,
        }
    }
}

impl<A: PlannedAction, W: PlannedWait> Builder<A, W> {
    pub fn act(&mut self, action: A) {
        self.actions.push(action);
    }

    pub fn wait(&mut self, wait: W) {
        if !self.waits.contains(&wait) {
            self.waits.push(wait);
        }
    }

    pub fn problem(&mut self, reason: &'static str, message: String) {
        self.problems.push(Problem {
            reason,
            message,
            resource: None,
        });
    }

    pub fn add_problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub fn finish(self, how: Finish<'_>) -> Plan<A, W> {
        let requeue_after = self.requeue_after(&how);
        let look_soon = self.waits.iter().any(W::ends_soon);
        let ready = self.ready(&how);
        let progressing = self.progressing(&how);
        Plan {
            policy: how.policy,
            actions: self.actions,
            waits: self.waits,
            problems: self.problems,
            ready,
            progressing,
            requeue_after,
            look_soon,
            finished: self.finished,
        }
    }

    fn requeue_after(&self, how: &Finish<'_>) -> Option<Duration> {
        self.waits
            .iter()
            .filter(|w| !w.ends_soon())
            .map(|w| match w.until() {
                Some(until) => (until - how.now)
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
                None => {
                    let since = w.since().or(how.waiting_since).unwrap_or(how.now);
                    waiting_delay(how.now - since)
                }
            })
            .min()
    }

    fn ready(&self, how: &Finish<'_>) -> Summary {
        if how.deleting {
            return Summary::no(
                "Deleting",
                if self.finished {
                    "clean-up done"
                } else {
                    "the object is being deleted"
                },
            );
        }
        if let Some(p) = self.problems.first() {
            return Summary::no(p.reason, p.message.clone());
        }
        if let Some(w) = self.waits.first() {
            return Summary::no(w.reason(), w.message());
        }
        if !self.actions.is_empty() {
            let message = match how.policy {
                ManagementPolicy::Manage => format!("{} change(s) to apply", self.actions.len()),
                ManagementPolicy::ObserveOnly => format!(
                    "{} differs from the spec; observe-only, so {} change(s) are not applied (see status.plan)",
                    how.noun,
                    self.actions.len()
                ),
            };
            return Summary::no("OutOfSync", message);
        }
        how.converged.clone()
    }

    fn progressing(&self, how: &Finish<'_>) -> Summary {
        if let Some(w) = self.waits.first() {
            return Summary::yes(w.reason(), join_messages(self.waits.iter().map(W::message)));
        }
        if how.policy == ManagementPolicy::Manage && !self.actions.is_empty() {
            return Summary::yes(
                if how.deleting { "Deleting" } else { "Applying" },
                join_messages(self.actions.iter().map(PlannedAction::describe)),
            );
        }
        if !self.problems.is_empty() {
            Summary::no(BLOCKED, "waiting for the spec to change (see Synced)")
        } else if !self.actions.is_empty() {
            Summary::no("ObserveOnly", "changes are reported, not applied")
        } else {
            Summary::no("UpToDate", "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Act(&'static str);

    impl PlannedAction for Act {
        fn describe(&self) -> String {
            self.0.to_owned()
        }
        fn event_reason(&self) -> &'static str {
            "Acted"
        }
        fn idempotent(&self) -> bool {
            true
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Wait(Option<DateTime<Utc>>);

    impl PlannedWait for Wait {
        fn reason(&self) -> &'static str {
            "Waiting"
        }
        fn message(&self) -> String {
            "waiting".to_owned()
        }
        fn since(&self) -> Option<DateTime<Utc>> {
            self.0
        }
    }

    fn finish(policy: ManagementPolicy) -> Finish<'static> {
        Finish {
            policy,
            deleting: false,
            now: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            waiting_since: None,
            noun: "the thing",
            converged: Summary::yes("Available", "as specified"),
        }
    }

    #[test]
    fn a_converged_plan_is_ready_synced_and_not_progressing() {
        let plan = Builder::<Act, Wait>::default().finish(finish(ManagementPolicy::Manage));
        let reasons: Vec<_> = plan.conditions().iter().map(|c| c.reason.clone()).collect();
        assert_eq!(reasons, ["Available", "Synced", "UpToDate"]);
        assert_eq!(plan.requeue_after, None);
    }

    #[test]
    fn observe_only_reports_actions_and_executes_none() {
        let mut b = Builder::<Act, Wait>::default();
        b.act(Act("tag it"));
        let plan = b.finish(finish(ManagementPolicy::ObserveOnly));
        assert!(plan.executable().is_empty());
        assert_eq!(plan.in_words(), ["tag it"]);
        assert_eq!(plan.ready.reason, "OutOfSync");
        assert!(plan.ready.message.contains("the thing differs"));
        assert_eq!(plan.progressing.reason, "ObserveOnly");
    }

    #[test]
    fn a_problem_comes_before_waits_and_blocks_progress() {
        let mut b = Builder::<Act, Wait>::default();
        b.problem("Broken", "it is broken".to_owned());
        b.problem("AlsoBroken", "and this".to_owned());
        let plan = b.finish(finish(ManagementPolicy::Manage));
        assert_eq!(plan.synced().reason, "Broken");
        assert_eq!(plan.synced().message, "it is broken; and this");
        assert_eq!(plan.progressing.reason, "Blocked");
    }

    #[test]
    fn a_long_wait_is_looked_at_less_often() {
        let mut how = finish(ManagementPolicy::Manage);
        let mut b = Builder::<Act, Wait>::default();
        b.wait(Wait(Some(how.now - TimeDelta::hours(2))));
        b.wait(Wait(Some(how.now - TimeDelta::hours(2))));
        assert_eq!(b.waits.len(), 1, "the same wait is kept once");
        how.waiting_since = Some(how.now);
        let plan = b.finish(how);
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(300)));
        assert!(!plan.look_soon);
        assert_eq!(waiting_delay(TimeDelta::seconds(1)), Duration::from_secs(5));
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Quick;

    impl PlannedWait for Quick {
        fn reason(&self) -> &'static str {
            "Quick"
        }
        fn message(&self) -> String {
            "nearly done".to_owned()
        }
        fn ends_soon(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_wait_that_ends_soon_asks_for_the_next_merged_read_and_grows_no_delay() {
        let mut how = finish(ManagementPolicy::Manage);
        how.waiting_since = Some(how.now - TimeDelta::hours(2));
        let mut b = Builder::<Act, Quick>::default();
        b.wait(Quick);
        let plan = b.finish(how);
        assert!(plan.look_soon);
        assert_eq!(
            plan.requeue_after, None,
            "two hours of waiting grow nothing"
        );
        assert_eq!(plan.progressing.reason, "Quick");
    }
}
