//! API pieces every kind shares: policies, tags, and the CEL rule builders.

use std::collections::BTreeMap;

use kube::core::Rule;
use schemars::{JsonSchema, Schema, json_schema};
use serde::{Deserialize, Serialize};

use super::limits::MAX_USER_TAGS;

/// The API group of every kind.
pub const GROUP: &str = "ec2.reconciler.dev";

/// The prefix of the tags and finalizers the controller owns; users may not write it.
pub const OWN_PREFIX: &str = "ec2.reconciler.dev/";

/// Whether the controller may change AWS or only report on it.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ManagementPolicy {
    /// Create, change and delete the AWS resource to match the spec.
    #[default]
    Manage,
    /// Only observe an existing resource and report in `status.plan` what would change.
    ObserveOnly,
}

/// What happens to the AWS resource when its Kubernetes object is deleted.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the AWS resource (after the kind's own safety steps).
    #[default]
    Delete,
    /// Leave the AWS resource in place and mark it released.
    Retain,
}

/// User tags: at most what AWS allows after our ownership tags, none with a reserved prefix.
pub type Tags = BTreeMap<String, String>;

/// Schema for `tags`: bounded so the apiserver can cost the CEL rules, with the reserved
/// prefixes rejected at admission (AWS rejects `aws:`; `ec2.reconciler.dev/` is ours).
pub fn tags_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    let mut schema = json_schema!({
        "type": "object",
        "description": "Tags to put on the AWS resource. Tags others add are left alone.",
        "maxProperties": MAX_USER_TAGS,
        "additionalProperties": { "type": "string", "maxLength": 256 },
    });
    let rules = [
        Rule::new("self.all(k, !k.startsWith('aws:'))")
            .message("tag keys must not start with 'aws:': AWS reserves that prefix"),
        Rule::new(format!("self.all(k, !k.startsWith('{OWN_PREFIX}'))")).message(&*format!(
            "tag keys must not start with '{OWN_PREFIX}': the controller's ownership tags use it"
        )),
        Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)")
            .message("tag keys must be 1 to 128 characters long"),
    ];
    for rule in rules {
        add_rule(&mut schema, rule);
    }
    let _ = schema.insert(
        "x-kubernetes-map-type".into(),
        serde_json::Value::String("granular".into()),
    );
    schema
}

/// Adds one `x-kubernetes-validations` rule to a schema.
pub fn add_rule(schema: &mut Schema, rule: Rule) {
    // `validate` only fails when a rule cannot be serialised, which a Rule always can.
    let _ = kube::core::validate(schema, rule);
}

/// A transition rule that keeps an optional field exactly as it was when the object was
/// created: neither set, removed nor changed.
pub fn immutable(field: &str, what_to_do: &str) -> Rule {
    Rule::new(format!(
        "has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})"
    ))
    .message(&*format!("{field} cannot change after creation: {what_to_do}"))
    .field_path(format!(".{field}"))
}

/// A rule that exactly one of the optional fields is set.
pub fn exactly_one(fields: &[&str], message: &str) -> Rule {
    Rule::new(format!("{} == 1", count_set(fields))).message(message)
}

/// A CEL expression that counts how many of the optional fields are set.
pub fn count_set(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("(has(self.{f}) ? 1 : 0)"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The pattern of an AWS Region name such as `eu-west-1` or `us-gov-east-1`.
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";

/// The pattern of a 12-digit AWS account id.
pub const ACCOUNT_ID_PATTERN: &str = "^[0-9]{12}$";

/// Schema of an optional Region field, shared by every kind.
pub fn region_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "AWS Region, such as eu-west-1. Defaults to the controller's configured Region. Immutable.",
        "pattern": REGION_PATTERN,
        "maxLength": 32,
    })
}

/// Schema of a KMS key reference: a key id, key ARN, alias name or alias ARN.
pub fn kms_key_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "KMS key as key id, key ARN, alias name (alias/...) or alias ARN. Resolved to the key ARN before comparing.",
        "minLength": 1,
        "maxLength": 2048,
    })
}
