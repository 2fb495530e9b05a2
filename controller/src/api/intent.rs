//! Recorded intent: what the controller is about to do in AWS, written to status before a
//! call that AWS does not make idempotent by itself, so that a process killed at any
//! instant resumes without leaking or duplicating anything.
//!
//! One type for every kind and step. An intent names its step, and carries either the
//! client token AWS deduplicates by (with the attempt that produced it: a failed create
//! burns a token), or the tags the resource is created with, by which the controller finds
//! it again. It is dropped once AWS shows the result, or when AWS proves the call failed;
//! never after a timer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One step the controller is about to take, or took without seeing its result yet.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// The step (`create`, `final-snapshot`, ...): the key of the list.
    pub step: String,
    /// The client token sent with the call, for calls that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Bumped whenever a token is burned (`IdempotentParameterMismatch`, an asynchronous
    /// failure); part of the next token.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// When the call was (about to be) sent.
    pub requested_at: DateTime<Utc>,
    /// For calls without a token: the tags the resource carries from its first instant,
    /// by which the controller looks for it before ever sending the call again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookup_tags: BTreeMap<String, String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The recorded intent of `step`, if any.
pub fn find_intent<'a>(intents: &'a [Intent], step: &str) -> Option<&'a Intent> {
    intents.iter().find(|i| i.step == step)
}

/// Records `intent`, replacing an earlier one of the same step.
pub fn put_intent(intents: &mut Vec<Intent>, intent: Intent) {
    intents.retain(|i| i.step != intent.step);
    intents.push(intent);
}

/// The intent already recorded for `new`'s step (a call tried before, whose token must be
/// replayed), or `new`, recorded now.
pub fn recorded_or_put(intents: &mut Vec<Intent>, new: Intent) -> Intent {
    if let Some(recorded) = find_intent(intents, &new.step) {
        return recorded.clone();
    }
    put_intent(intents, new.clone());
    new
}

/// Forgets the intent of `step`: its result was seen, or AWS proved the call failed.
pub fn drop_intent(intents: &mut Vec<Intent>, step: &str) {
    intents.retain(|i| i.step != step);
}
