//! Conditions in the shape of `metav1.Condition`, shared by every kind.
//!
//! `Ready=True` when the AWS resource is as specified, `Progressing` while AWS or the
//! controller is still working, `Synced=False` when the controller could not act on the
//! latest spec. Beside them, every status carries the two conditions kstatus reads (the
//! library Flux's health checks use), derived from those three by
//! [`with_kstatus_conditions`] so that they never disagree: `Reconciling=True` while the
//! controller works (kstatus: InProgress) and `Stalled=True` when it cannot go on until
//! something outside changes (kstatus: Failed). Both are "abnormal-true": False when all is
//! well.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const PROGRESSING: &str = "Progressing";
/// kstatus: the controller is working on the object.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: the controller cannot go on until the spec (or something in AWS) changes.
pub const STALLED: &str = "Stalled";

/// `True`, `False` or `Unknown`, as in `metav1.ConditionStatus`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One condition, as in `metav1.Condition`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    pub last_transition_time: DateTime<Utc>,
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// A condition as the controller wants it now, before its transition time is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: &'static str,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `desired` (`Ready`, `Synced`, `Progressing`) with kstatus's `Reconciling` and `Stalled`
/// added, replacing any given. `terminal` says whether a `Synced=False` among them needs a
/// change from outside (a request AWS rejected, a problem the planner found) rather than
/// clearing by itself (throttling, an API error, retried with backoff).
///
/// - `Reconciling` is `Progressing` while that is True; it is also True while a passing
///   failure is retried.
/// - `Stalled` is True when `Synced` is False for a terminal reason and nothing is in
///   progress, with `Synced`'s reason and message.
pub fn with_kstatus_conditions(
    desired: &[DesiredCondition],
    terminal: bool,
) -> Vec<DesiredCondition> {
    use ConditionStatus::{False, True};
    let find = |type_: &str| desired.iter().find(|c| c.type_ == type_);
    let progressing = find(PROGRESSING);
    let failing = find(SYNCED).filter(|c| c.status == False);
    let (reconciling, stalled) = match (progressing, failing) {
        (Some(p), _) if p.status == True => (
            DesiredCondition::new(RECONCILING, True, p.reason.clone(), p.message.clone()),
            DesiredCondition::new(STALLED, False, "Progressing", ""),
        ),
        (_, Some(s)) if terminal => (
            DesiredCondition::new(RECONCILING, False, "Stalled", ""),
            DesiredCondition::new(STALLED, True, s.reason.clone(), s.message.clone()),
        ),
        (_, Some(s)) => (
            DesiredCondition::new(RECONCILING, True, "Retrying", s.message.clone()),
            DesiredCondition::new(STALLED, False, "Retrying", ""),
        ),
        (p, None) => (
            match p {
                Some(p) => {
                    DesiredCondition::new(RECONCILING, False, p.reason.clone(), p.message.clone())
                }
                None => DesiredCondition::new(RECONCILING, False, "Idle", ""),
            },
            DesiredCondition::new(STALLED, False, "Synced", ""),
        ),
    };
    desired
        .iter()
        .filter(|c| c.type_ != RECONCILING && c.type_ != STALLED)
        .cloned()
        .chain([reconciling, stalled])
        .collect()
}

/// Merges desired conditions into the current list. `lastTransitionTime` moves only when a
/// condition's status changes, so writing the same state twice changes nothing (a status
/// write that changes nothing would otherwise wake the controller again: a hot loop).
pub fn merge_conditions(
    current: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = current
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let previous = current.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == d.status => p.last_transition_time,
            _ => now,
        };
        merged.push(Condition {
            type_: d.type_.to_owned(),
            status: d.status,
            observed_generation: generation,
            last_transition_time,
            reason: d.reason.clone(),
            message: d.message.clone(),
        });
    }
    merged.sort_by(|a, b| {
        condition_rank(&a.type_)
            .cmp(&condition_rank(&b.type_))
            .then(a.type_.cmp(&b.type_))
    });
    merged
}

fn condition_rank(type_: &str) -> u8 {
    match type_ {
        READY => 0,
        SYNCED => 1,
        PROGRESSING => 2,
        RECONCILING => 3,
        STALLED => 4,
        _ => 5,
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }

    #[test]
    fn transition_time_stays_when_status_does_not_change() {
        let first = merge_conditions(
            &[],
            &[DesiredCondition::new(
                READY,
                ConditionStatus::False,
                "Creating",
                "",
            )],
            Some(1),
            at(10),
        );
        let second = merge_conditions(
            &first,
            &[DesiredCondition::new(
                READY,
                ConditionStatus::False,
                "Waiting",
                "still creating",
            )],
            Some(2),
            at(20),
        );
        assert_eq!(second[0].last_transition_time, at(10));
        assert_eq!(second[0].reason, "Waiting");
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn transition_time_moves_when_status_changes() {
        let first = merge_conditions(
            &[],
            &[DesiredCondition::new(
                READY,
                ConditionStatus::False,
                "Creating",
                "",
            )],
            Some(1),
            at(10),
        );
        let second = merge_conditions(
            &first,
            &[DesiredCondition::new(
                READY,
                ConditionStatus::True,
                "Available",
                "",
            )],
            Some(1),
            at(30),
        );
        assert_eq!(second[0].last_transition_time, at(30));
    }

    #[test]
    fn conditions_keep_a_stable_order_and_others_survive() {
        let first = merge_conditions(
            &[],
            &[
                DesiredCondition::new(PROGRESSING, ConditionStatus::False, "Idle", ""),
                DesiredCondition::new(READY, ConditionStatus::True, "Available", ""),
            ],
            Some(1),
            at(1),
        );
        let second = merge_conditions(
            &first,
            &[DesiredCondition::new(
                SYNCED,
                ConditionStatus::True,
                "Synced",
                "",
            )],
            Some(1),
            at(2),
        );
        let types: Vec<_> = second.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, SYNCED, PROGRESSING]);
    }

    fn kstatus(
        desired: &[DesiredCondition],
        terminal: bool,
    ) -> Vec<(String, ConditionStatus, String)> {
        with_kstatus_conditions(desired, terminal)
            .into_iter()
            .filter(|c| c.type_ == RECONCILING || c.type_ == STALLED)
            .map(|c| (c.type_.to_owned(), c.status, c.reason))
            .collect()
    }

    fn three(
        synced: (ConditionStatus, &str),
        progressing: (ConditionStatus, &str),
    ) -> Vec<DesiredCondition> {
        vec![
            DesiredCondition::new(READY, ConditionStatus::False, "Whatever", ""),
            DesiredCondition::new(SYNCED, synced.0, synced.1, "synced says"),
            DesiredCondition::new(
                PROGRESSING,
                progressing.0,
                progressing.1,
                "progressing says",
            ),
        ]
    }

    fn pair(
        reconciling: (ConditionStatus, &str),
        stalled: (ConditionStatus, &str),
    ) -> Vec<(String, ConditionStatus, String)> {
        vec![
            (
                RECONCILING.to_owned(),
                reconciling.0,
                reconciling.1.to_owned(),
            ),
            (STALLED.to_owned(), stalled.0, stalled.1.to_owned()),
        ]
    }

    use ConditionStatus::{False, True};

    #[test]
    fn work_in_progress_is_reconciling_and_not_stalled() {
        let desired = three((True, "Synced"), (True, "Modifying"));
        assert_eq!(
            kstatus(&desired, false),
            pair((True, "Modifying"), (False, "Progressing"))
        );
        let reconciling = with_kstatus_conditions(&desired, false)
            .into_iter()
            .find(|c| c.type_ == RECONCILING);
        assert_eq!(
            reconciling.map(|c| c.message),
            Some("progressing says".to_owned())
        );
    }

    #[test]
    fn a_terminal_failure_with_nothing_in_progress_is_stalled_with_its_reason() {
        let desired = three((False, "KmsKeyNotFound"), (False, "Blocked"));
        assert_eq!(
            kstatus(&desired, true),
            pair((False, "Stalled"), (True, "KmsKeyNotFound"))
        );
        let stalled = with_kstatus_conditions(&desired, true)
            .into_iter()
            .find(|c| c.type_ == STALLED);
        assert_eq!(stalled.map(|c| c.message), Some("synced says".to_owned()));
    }

    #[test]
    fn a_terminal_failure_while_aws_still_works_is_not_stalled_yet() {
        let desired = three((False, "InstanceNotFound"), (True, "Creating"));
        assert_eq!(
            kstatus(&desired, true),
            pair((True, "Creating"), (False, "Progressing"))
        );
    }

    #[test]
    fn a_passing_failure_is_retried_so_reconciling_and_never_stalled() {
        let desired = three((False, "AwsThrottled"), (False, "UpToDate"));
        assert_eq!(
            kstatus(&desired, false),
            pair((True, "Retrying"), (False, "Retrying"))
        );
        // The first pass of a new object may fail before any other condition was written.
        let alone = [DesiredCondition::new(SYNCED, False, "AwsThrottled", "")];
        assert_eq!(
            kstatus(&alone, false),
            pair((True, "Retrying"), (False, "Retrying"))
        );
        assert_eq!(
            kstatus(&alone, true),
            pair((False, "Stalled"), (True, "AwsThrottled"))
        );
    }

    #[test]
    fn a_converged_object_is_neither_reconciling_nor_stalled() {
        let desired = three((True, "Synced"), (False, "UpToDate"));
        assert_eq!(
            kstatus(&desired, false),
            pair((False, "UpToDate"), (False, "Synced"))
        );
        // `terminal` matters only for a Synced=False.
        assert_eq!(kstatus(&desired, true), kstatus(&desired, false));
    }

    #[test]
    fn kstatus_conditions_given_are_replaced_and_come_after_the_other_three() {
        let mut desired = three((True, "Synced"), (False, "UpToDate"));
        desired.push(DesiredCondition::new(STALLED, True, "Stale", ""));
        let all = with_kstatus_conditions(&desired, false);
        assert_eq!(all.iter().filter(|c| c.type_ == STALLED).count(), 1);
        let merged = merge_conditions(&[], &all, Some(1), at(1));
        let types: Vec<_> = merged.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, SYNCED, PROGRESSING, RECONCILING, STALLED]);
    }
}
