//! Conditions in the shape of `metav1.Condition`, shared by every kind.
//!
//! `Ready`, `Synced` and `Progressing` follow kstatus conventions so that Argo CD and Flux
//! read health correctly: `Ready=True` when the AWS resource is as specified, `Progressing`
//! while AWS or the controller is still working, `Synced=False` when the controller could
//! not act on the latest spec.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const PROGRESSING: &str = "Progressing";

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
        _ => 3,
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
}
