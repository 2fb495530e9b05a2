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

// --- Names AWS gives things -----------------------------------------------------------------
//
// The apiserver checks these patterns at `kubectl apply` (OpenAPI `pattern`, Go's RE2 syntax:
// no look-around). Each follows the *form* AWS documents for the name, not today's list of
// names, so that a new Region, Local Zone or Wavelength Zone is accepted the day it opens,
// while anything AWS would never accept is refused before it reaches AWS. The pieces are macros
// that expand to string literals so the full patterns can be assembled with `concat!`.

/// A Region name without anchors: `<area>[-<sub-area>]-<direction>-<number>`.
///
/// Derived from the Region names of every partition in the AWS SDK's partition table
/// (`partitions.json`, shipped in every AWS SDK; its `regionRegex` per partition):
/// `aws` `^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$` (us-east-1, ap-southeast-7, mx-central-1),
/// `aws-cn` `^cn-\w+-\d+$` (cn-north-1), `aws-us-gov` `^us-gov-\w+-\d+$` (us-gov-west-1),
/// `aws-iso` `^us-iso-\w+-\d+$`, `aws-iso-b` `^us-isob-\w+-\d+$`, `aws-iso-e`
/// `^eu-isoe-\w+-\d+$`, `aws-iso-f` `^us-isof-\w+-\d+$` and `aws-eusc` (European
/// Sovereign Cloud) `^eusc-(de)-\w+-\d+$` (eusc-de-east-1). The area is 2 to 4 letters, the
/// optional sub-area (`gov`, `iso`, `isob`, `isoe`, `isof`, `de`) 2 to 5, the direction any
/// lowercase word, the number 1 to 99 (AWS numbers Regions from 1).
macro_rules! region_body {
    () => {
        "[a-z]{2,4}(-[a-z]{2,5})?-[a-z]+-[1-9][0-9]?"
    };
}

/// A partition, as the second field of an ARN: every partition of the SDK's partition table
/// (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f`,
/// `aws-eusc`). Listed rather than shaped: a new partition is rare and comes with its own
/// endpoints, credentials and SDK release, so it is added here deliberately.
macro_rules! partition {
    () => {
        "aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
    };
}

/// A KMS key id (a UUID in lowercase hex) or a multi-Region key id (`mrk-` and 32 lowercase
/// hex digits). Source: AWS KMS Developer Guide, "Key identifiers (KeyId)", and the KMS API
/// reference (`1234abcd-12ab-34cd-56ef-1234567890ab`, `mrk-1234abcd12ab34cd56ef1234567890ab`).
macro_rules! kms_key_id {
    () => {
        "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
    };
}

/// A KMS alias name: `alias/` and 1 to 250 letters, digits, `/`, `_` or `-` (the whole name is
/// at most 256 characters). Source: KMS API reference, CreateAlias `AliasName`. The
/// `alias/aws/` prefix is reserved for AWS managed keys: users cannot create such aliases,
/// but `alias/aws/ebs` (the account's AWS managed EBS key) is a valid key to encrypt with.
macro_rules! kms_alias {
    () => {
        "alias/[a-zA-Z0-9/_-]{1,250}"
    };
}

/// The pattern of an AWS Region name, such as `eu-west-1`, `us-gov-west-1` or
/// `eusc-de-east-1`. See `region_body!` for its sources.
pub const REGION_PATTERN: &str = concat!("^", region_body!(), "$");

/// Longest Region name accepted: the bound KMS puts on a Region name (the longest Region
/// name today, `us-isof-south-1`, has 15 characters).
pub const REGION_MAX_LENGTH: usize = 32;

/// The pattern of an Availability Zone *name* (not an AZ id such as `use1-az1`): one of
/// - an Availability Zone: the Region and a letter, `us-east-1a`, `eusc-de-east-1a`
///   (EC2 User Guide, "Regions and Zones": "the Region code followed by a letter identifier");
/// - a Local Zone: the parent Region, a location code and a number with a zone letter,
///   `us-west-2-lax-1a`, `us-east-1-nyc-2a` (Local Zones User Guide, "Available Local Zones":
///   "the code of the Local Zone's parent Region followed by an identifier for its location");
///   every location code so far is three letters (airport codes), up to five are accepted;
/// - a Wavelength Zone: the parent Region, `wl` and the carrier number, the location code and
///   `wlz-` with a number, `us-east-1-wl1-bos-wlz-1`, `ap-northeast-1-wl1-nrt-wlz-1`
///   (Wavelength Developer Guide, "Available Wavelength Zones").
pub const AVAILABILITY_ZONE_PATTERN: &str = concat!(
    "^",
    region_body!(),
    "([a-z]|-[a-z]{3,5}-[1-9][0-9]?[a-z]|-wl[1-9]-[a-z]{3,5}-wlz-[1-9][0-9]?)$"
);

/// Longest Availability Zone name accepted.
pub const AVAILABILITY_ZONE_MAX_LENGTH: usize = 64;

/// The pattern of a KMS key reference, in each of the four forms AWS accepts wherever a
/// `KmsKeyId` names a key (KMS API reference, DescribeKey `KeyId`; EC2 CreateVolume and
/// CopyImage `KmsKeyId`): key id (or multi-Region key id), key ARN
/// `arn:<partition>:kms:<region>:<account>:key/<key id>`, alias name `alias/<name>`, and
/// alias ARN `arn:<partition>:kms:<region>:<account>:alias/<name>`, in every partition.
pub const KMS_KEY_PATTERN: &str = concat!(
    "^(",
    kms_key_id!(),
    "|",
    kms_alias!(),
    "|arn:",
    partition!(),
    ":kms:",
    region_body!(),
    ":[0-9]{12}:(key/",
    kms_key_id!(),
    "|",
    kms_alias!(),
    "))$"
);

/// Longest KMS key reference accepted: the `KeyId` bound of the KMS API. Kept as a bound
/// (not derived from the pattern) so the apiserver can cost the CEL rules that compare it.
pub const KMS_KEY_MAX_LENGTH: usize = 2048;

/// The pattern of a 12-digit AWS account id.
pub const ACCOUNT_ID_PATTERN: &str = "^[0-9]{12}$";

/// A Region string schema with the given description.
fn region_string(description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "description": description,
        "pattern": REGION_PATTERN,
        "maxLength": REGION_MAX_LENGTH,
    })
}

/// Schema of an optional Region field, shared by every kind.
pub fn region_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    region_string(
        "AWS Region, such as eu-west-1. Defaults to the controller's configured Region. Immutable.",
    )
}

/// Schema of the Region an AMI is copied from.
pub fn source_region_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    region_string("The Region of the AMI to copy, such as eu-west-1.")
}

/// Schema of an Availability Zone name (Availability Zone, Local Zone or Wavelength Zone).
pub fn availability_zone_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "Availability Zone, Local Zone or Wavelength Zone name, such as us-east-1a, us-west-2-lax-1a or us-east-1-wl1-bos-wlz-1 (a name, not a zone id such as use1-az1).",
        "pattern": AVAILABILITY_ZONE_PATTERN,
        "maxLength": AVAILABILITY_ZONE_MAX_LENGTH,
    })
}

/// Schema of a KMS key reference: a key id, key ARN, alias name or alias ARN.
pub fn kms_key_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "KMS key as key id (1234abcd-12ab-34cd-56ef-1234567890ab or mrk-...), key ARN (arn:aws:kms:<region>:<account>:key/<key id>), alias name (alias/<name>, such as alias/aws/ebs) or alias ARN (arn:aws:kms:<region>:<account>:alias/<name>). Resolved to the key ARN before comparing.",
        "pattern": KMS_KEY_PATTERN,
        "minLength": 1,
        "maxLength": KMS_KEY_MAX_LENGTH,
    })
}
