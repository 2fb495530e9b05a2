//! The controller's least-privilege IAM policy, generated from [`AwsAction`]: every action
//! says, in one exhaustive match, on which resources and under which condition it may run,
//! so a new call cannot ship without its permission. `ec2-reconciler iam-policy` writes the
//! result to `deploy/iam-policy.json`; a test fails when the committed file differs.
//!
//! The shape (the EBS CSI driver's pattern, see `shared/AWS-FACTS.md`):
//!
//! - reads (`Describe*`, `Get*`) on `*`: EC2 has no resource-level permissions for them;
//! - what a call creates, only with our cluster tag in the request (`aws:RequestTag`);
//! - tagging as part of a create only (`ec2:CreateAction` among our create actions);
//! - modify and delete only on resources that carry our cluster tag (`ec2:ResourceTag`);
//! - what the controller acts on without owning it (the user's instances, a volume being
//!   migrated or adopted, a snapshot an image is registered from) only when it carries the
//!   grant tag ([`GRANT_TAG`]): the AWS side of the tenancy grant. Grants given by namespace
//!   label or `--single-tenant` are invisible to AWS: who uses them widens that statement;
//! - KMS: `kms:DescribeKey` directly (the controller resolves aliases), everything else only
//!   through EBS (`kms:ViaService`), grants only for AWS resources
//!   (`kms:GrantIsForAWSResource`).

use serde::Serialize;

use super::actions::AwsAction;
use crate::plan::tags::{CLUSTER_TAG, MIGRATED_FROM_TAG};
use crate::plan::tenancy::GRANT_TAG;

/// A resource type an action is authorized on, as its ARN pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceType {
    Volume,
    Snapshot,
    Image,
    Instance,
    KmsKey,
}

impl ResourceType {
    /// Snapshot and image ARNs carry no account (`arn:aws:ec2:<region>::image/ami-x`).
    /// The partition is `*` (`aws`, `aws-cn`, `aws-us-gov`, ...), so one file serves every
    /// account: IAM's validator takes a partition that is `*` or a partition's name, nothing
    /// in between (`aws*` is refused as "Partition is not valid").
    pub const fn arn_pattern(self) -> &'static str {
        match self {
            ResourceType::Volume => "arn:*:ec2:*:*:volume/*",
            ResourceType::Snapshot => "arn:*:ec2:*::snapshot/*",
            ResourceType::Image => "arn:*:ec2:*::image/*",
            ResourceType::Instance => "arn:*:ec2:*:*:instance/*",
            ResourceType::KmsKey => "arn:*:kms:*:*:key/*",
        }
    }

    const fn plural(self) -> &'static str {
        match self {
            ResourceType::Volume => "Volumes",
            ResourceType::Snapshot => "Snapshots",
            ResourceType::Image => "Images",
            ResourceType::Instance => "Instances",
            ResourceType::KmsKey => "KmsKeys",
        }
    }
}

/// Under which condition an action may touch a resource type: the statement class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// A read with no resource-level permissions: `Resource: *`.
    Read,
    /// A source the call only reads (a snapshot a volume is created from): any.
    Source,
    /// A resource the call creates: our cluster tag must be in the request.
    Created,
    /// A migration's replacement for a volume the controller does not own: it stays the
    /// user's (no cluster tag) and the request carries our `migrated-from` tag.
    CreatedReplacement,
    /// Tags written by a create (TagSpecifications): `ec2:CreateAction` is a create action.
    TagOnCreate,
    /// A resource the controller made: it carries our cluster tag.
    Owned,
    /// A resource of someone else's the controller may act on: it carries the grant tag.
    Granted,
    /// A KMS operation EBS makes with the caller's permissions (`kms:ViaService`).
    ThroughEbs,
    /// A KMS grant EBS creates for a volume (`kms:ViaService`, `kms:GrantIsForAWSResource`).
    GrantThroughEbs,
}

impl Scope {
    const fn sid_prefix(self) -> &'static str {
        match self {
            Scope::Read => "Read",
            Scope::Source => "ReadAny",
            Scope::Created => "CreateTagged",
            Scope::CreatedReplacement => "CreateReplacement",
            Scope::TagOnCreate => "TagOnCreate",
            Scope::Owned => "ActOnOwned",
            Scope::Granted => "ActOnGranted",
            Scope::ThroughEbs => "UseThroughEbs",
            Scope::GrantThroughEbs => "GrantThroughEbs",
        }
    }
}

use ResourceType::{Image, Instance, KmsKey, Snapshot, Volume};

/// One permission an action needs: the scope and the resource types it applies to.
pub type Permission = (Scope, &'static [ResourceType]);

/// The KMS operations EBS makes on the caller's behalf when it encrypts or decrypts a
/// volume, snapshot or image ("How Amazon EBS uses AWS KMS"; the EBS CSI driver's policy).
/// (`kms:DescribeKey` is granted directly: the controller reads keys itself.)
pub const KMS_THROUGH_EBS: [&str; 4] = [
    "kms:Decrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

/// The KMS grant EBS creates for an encrypted volume attached to an instance.
pub const KMS_GRANT: &str = "kms:CreateGrant";

impl AwsAction {
    /// Where the action may act, and under which condition: the one place that decides its
    /// IAM statements. Resource types follow the Service Authorization Reference's
    /// "Actions defined by Amazon EC2" (required resources of each action).
    pub const fn permissions(self) -> &'static [Permission] {
        match self {
            AwsAction::DescribeVolumes
            | AwsAction::DescribeVolumesModifications
            | AwsAction::DescribeSnapshots
            | AwsAction::DescribeInstances
            | AwsAction::DescribeInstanceTypes
            | AwsAction::DescribeImages
            | AwsAction::DescribeImageAttribute
            | AwsAction::DescribeSnapshotAttribute
            | AwsAction::GetImageBlockPublicAccessState
            | AwsAction::GetEbsDefaultKmsKeyId => &[(Scope::Read, &[])],
            // A volume from any snapshot the account can read (public, shared or ours).
            AwsAction::CreateVolume => &[
                (Scope::Created, &[Volume]),
                (Scope::CreatedReplacement, &[Volume]),
                (Scope::Source, &[Snapshot]),
            ],
            AwsAction::ModifyVolume | AwsAction::DeleteVolume => &[(Scope::Owned, &[Volume])],
            // Our volume or a migrated one on a granted instance.
            AwsAction::AttachVolume | AwsAction::DetachVolume => &[
                (Scope::Owned, &[Volume]),
                (Scope::Granted, &[Volume, Instance]),
            ],
            // The migration snapshots the volume it replaces: ours, or granted.
            AwsAction::CreateSnapshot => &[
                (Scope::Created, &[Snapshot]),
                (Scope::Owned, &[Volume]),
                (Scope::Granted, &[Volume]),
            ],
            // The migration copies its own snapshot.
            AwsAction::CopySnapshot => {
                &[(Scope::Created, &[Snapshot]), (Scope::Owned, &[Snapshot])]
            }
            AwsAction::DeleteSnapshot | AwsAction::ModifySnapshotAttribute => {
                &[(Scope::Owned, &[Snapshot])]
            }
            // An image of an instance copies its disks: the instance must be granted.
            AwsAction::CreateImage => &[
                (Scope::Created, &[Image, Snapshot]),
                (Scope::Granted, &[Instance]),
            ],
            AwsAction::RegisterImage => &[
                (Scope::Created, &[Image]),
                (Scope::Owned, &[Snapshot]),
                (Scope::Granted, &[Snapshot]),
            ],
            // The Service Authorization Reference lists the new image only.
            AwsAction::CopyImage => &[(Scope::Created, &[Image])],
            AwsAction::DeregisterImage
            | AwsAction::ModifyImageAttribute
            | AwsAction::EnableImageDeprecation
            | AwsAction::DisableImageDeprecation
            | AwsAction::EnableImageDeregistrationProtection
            | AwsAction::DisableImageDeregistrationProtection => &[(Scope::Owned, &[Image])],
            // Tags at creation, tag updates on ours, and the migration's and adoption's tags
            // on granted volumes.
            AwsAction::CreateTags | AwsAction::DeleteTags => &[
                (Scope::Owned, &[Volume, Snapshot, Image]),
                (Scope::Granted, &[Volume]),
            ],
            AwsAction::StopInstances
            | AwsAction::StartInstances
            | AwsAction::ModifyInstanceAttribute => &[(Scope::Granted, &[Instance])],
            // Alias resolution: a direct read of any key, not through EBS.
            AwsAction::KmsDescribeKey => &[(Scope::Source, &[KmsKey])],
        }
    }

    /// Whether EBS may use a KMS key with the caller's permissions while serving this call
    /// (it creates, copies or attaches encrypted data): then the policy carries the KMS
    /// statements through EBS.
    pub const fn uses_kms_through_ebs(self) -> bool {
        match self {
            AwsAction::CreateVolume
            | AwsAction::AttachVolume
            | AwsAction::CreateSnapshot
            | AwsAction::CopySnapshot
            | AwsAction::CreateImage
            | AwsAction::CopyImage
            | AwsAction::StartInstances => true,
            AwsAction::DescribeVolumes
            | AwsAction::DescribeVolumesModifications
            | AwsAction::DescribeSnapshots
            | AwsAction::DescribeInstances
            | AwsAction::DescribeInstanceTypes
            | AwsAction::DescribeImages
            | AwsAction::DescribeImageAttribute
            | AwsAction::DescribeSnapshotAttribute
            | AwsAction::GetImageBlockPublicAccessState
            | AwsAction::GetEbsDefaultKmsKeyId
            | AwsAction::ModifyVolume
            | AwsAction::DetachVolume
            | AwsAction::DeleteVolume
            | AwsAction::DeleteSnapshot
            | AwsAction::ModifySnapshotAttribute
            | AwsAction::RegisterImage
            | AwsAction::DeregisterImage
            | AwsAction::ModifyImageAttribute
            | AwsAction::EnableImageDeprecation
            | AwsAction::DisableImageDeprecation
            | AwsAction::EnableImageDeregistrationProtection
            | AwsAction::DisableImageDeregistrationProtection
            | AwsAction::CreateTags
            | AwsAction::DeleteTags
            | AwsAction::StopInstances
            | AwsAction::ModifyInstanceAttribute
            | AwsAction::KmsDescribeKey => false,
        }
    }

    /// The IAM action name: `ec2:CreateVolume`, `kms:DescribeKey`.
    pub fn iam_name(self) -> String {
        let name = self.as_str();
        if name.contains(':') {
            name.to_owned()
        } else {
            format!("ec2:{name}")
        }
    }
}

/// An IAM policy document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// One Allow statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

/// The create actions: those that make a resource tagged in the request.
pub fn create_actions() -> Vec<AwsAction> {
    AwsAction::ALL
        .into_iter()
        .filter(|a| a.permissions().iter().any(|(s, _)| *s == Scope::Created))
        .collect()
}

/// The `kms:ViaService` values of EBS (EC2's endpoint) in every partition.
const EBS_VIA_SERVICE: [&str; 2] = ["ec2.*.amazonaws.com", "ec2.*.amazonaws.com.cn"];

fn condition(scope: Scope) -> Option<serde_json::Value> {
    use serde_json::json;
    // EBS's endpoint in every Region; the China Regions' endpoints end in `.com.cn`.
    let via_ebs = json!({ "kms:ViaService": EBS_VIA_SERVICE });
    match scope {
        Scope::Read | Scope::Source => None,
        Scope::Created => {
            Some(json!({ "Null": { format!("aws:RequestTag/{CLUSTER_TAG}"): "false" } }))
        }
        Scope::CreatedReplacement => {
            Some(json!({ "Null": { format!("aws:RequestTag/{MIGRATED_FROM_TAG}"): "false" } }))
        }
        Scope::TagOnCreate => None,
        Scope::Owned => {
            Some(json!({ "Null": { format!("ec2:ResourceTag/{CLUSTER_TAG}"): "false" } }))
        }
        Scope::Granted => {
            Some(json!({ "Null": { format!("ec2:ResourceTag/{GRANT_TAG}"): "false" } }))
        }
        Scope::ThroughEbs => Some(json!({ "StringLike": via_ebs })),
        Scope::GrantThroughEbs => Some(json!({
            "StringLike": via_ebs,
            "Bool": { "kms:GrantIsForAWSResource": "true" },
        })),
    }
}

/// The create actions that make `resource`.
pub fn actions_creating(resource: ResourceType) -> Vec<AwsAction> {
    AwsAction::ALL
        .into_iter()
        .filter(|a| {
            a.permissions()
                .iter()
                .any(|(s, types)| *s == Scope::Created && types.contains(&resource))
        })
        .collect()
}

/// Tagging `resource` as part of the calls that create it.
fn tag_on_create(resource: ResourceType) -> Statement {
    let creates: Vec<&str> = actions_creating(resource)
        .iter()
        .map(|a| a.as_str())
        .collect();
    Statement {
        condition: Some(serde_json::json!({ "StringEquals": { "ec2:CreateAction": creates } })),
        ..statement(
            Scope::TagOnCreate,
            Some(resource),
            vec![AwsAction::CreateTags.iam_name()],
        )
    }
}

fn statement(scope: Scope, resource: Option<ResourceType>, mut actions: Vec<String>) -> Statement {
    actions.sort();
    actions.dedup();
    let (sid, resources) = match resource {
        Some(r) => (
            format!("{}{}", scope.sid_prefix(), r.plural()),
            vec![r.arn_pattern().to_owned()],
        ),
        None => (scope.sid_prefix().to_owned(), vec!["*".to_owned()]),
    };
    Statement {
        sid,
        effect: "Allow",
        actions,
        resources,
        condition: condition(scope),
    }
}

/// The policy: one statement per scope and resource type, in a fixed order.
pub fn policy() -> PolicyDocument {
    let mut statements = Vec::new();
    let reads: Vec<String> = AwsAction::ALL
        .into_iter()
        .filter(|a| a.permissions().iter().any(|(s, _)| *s == Scope::Read))
        .map(AwsAction::iam_name)
        .collect();
    statements.push(statement(Scope::Read, None, reads));
    let scoped = [
        Scope::Source,
        Scope::Created,
        Scope::CreatedReplacement,
        Scope::Owned,
        Scope::Granted,
    ];
    for scope in scoped {
        for resource in [Volume, Snapshot, Image, Instance, KmsKey] {
            let actions: Vec<String> = AwsAction::ALL
                .into_iter()
                .filter(|a| {
                    a.permissions()
                        .iter()
                        .any(|(s, types)| *s == scope && types.contains(&resource))
                })
                .map(AwsAction::iam_name)
                .collect();
            if !actions.is_empty() {
                statements.push(statement(scope, Some(resource), actions));
            }
        }
        // Tags written by a create, right after the creates.
        if scope == Scope::CreatedReplacement {
            for resource in [Volume, Snapshot, Image] {
                if !actions_creating(resource).is_empty() {
                    statements.push(tag_on_create(resource));
                }
            }
        }
    }
    if AwsAction::ALL
        .into_iter()
        .any(AwsAction::uses_kms_through_ebs)
    {
        let uses = KMS_THROUGH_EBS.iter().map(|a| (*a).to_owned()).collect();
        statements.push(statement(Scope::ThroughEbs, Some(KmsKey), uses));
        let grant = vec![KMS_GRANT.to_owned()];
        statements.push(statement(Scope::GrantThroughEbs, Some(KmsKey), grant));
    }
    PolicyDocument {
        version: "2012-10-17",
        statements,
    }
}

/// The policy as the committed file holds it: pretty JSON and a final newline.
pub fn policy_json() -> Result<String, serde_json::Error> {
    Ok(format!("{}\n", serde_json::to_string_pretty(&policy())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements_allowing(action: &str) -> Vec<Statement> {
        policy()
            .statements
            .into_iter()
            .filter(|s| s.actions.iter().any(|a| a == action))
            .collect()
    }

    fn null_key(statement: &Statement) -> Option<String> {
        let null = statement.condition.as_ref()?.get("Null")?.as_object()?;
        let (key, value) = null.iter().next()?;
        (value == "false").then(|| key.clone())
    }

    #[test]
    fn the_committed_policy_file_is_the_generated_one() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/iam-policy.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = policy_json().unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date with controller/src/aws/iam_policy.rs: run `make iam-policy` and commit the result",
            path.display()
        );
    }

    #[test]
    fn every_action_the_client_calls_is_in_some_statement() {
        for action in AwsAction::ALL {
            assert!(
                !action.permissions().is_empty(),
                "{action} declares no permission"
            );
            let allowing = statements_allowing(&action.iam_name());
            assert!(!allowing.is_empty(), "{action} is in no statement");
            for (scope, types) in action.permissions() {
                for t in *types {
                    assert!(
                        allowing.iter().any(|s| s.resources == [t.arn_pattern()]
                            && s.sid.starts_with(scope.sid_prefix())),
                        "{action} has no {scope:?} statement on {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reads_are_on_everything_and_only_reads_are() {
        for s in policy().statements {
            let on_everything = s.resources == ["*"];
            assert_eq!(on_everything, s.sid == "Read", "{}", s.sid);
            if on_everything {
                assert!(s.condition.is_none());
                for a in &s.actions {
                    assert!(
                        a.starts_with("ec2:Describe") || a.starts_with("ec2:Get"),
                        "{a} on *"
                    );
                }
            }
        }
    }

    #[test]
    fn creates_need_our_cluster_tag_in_the_request() {
        let key = format!("aws:RequestTag/{CLUSTER_TAG}");
        for action in create_actions() {
            for (scope, types) in action.permissions() {
                if *scope != Scope::Created {
                    continue;
                }
                for t in *types {
                    let s = statements_allowing(&action.iam_name())
                        .into_iter()
                        .find(|s| {
                            s.resources == [t.arn_pattern()] && null_key(s).as_deref() == Some(&key)
                        });
                    assert!(s.is_some(), "{action} on {t:?} without {key}");
                }
            }
        }
        assert_eq!(
            create_actions(),
            [
                AwsAction::CreateVolume,
                AwsAction::CreateSnapshot,
                AwsAction::CopySnapshot,
                AwsAction::CreateImage,
                AwsAction::RegisterImage,
                AwsAction::CopyImage
            ]
        );
    }

    #[test]
    fn an_unowned_volume_is_created_only_as_a_migration_replacement() {
        let key = format!("aws:RequestTag/{MIGRATED_FROM_TAG}");
        let replacements: Vec<Statement> = policy()
            .statements
            .into_iter()
            .filter(|s| null_key(s).as_deref() == Some(&key))
            .collect();
        assert_eq!(replacements.len(), 1);
        assert_eq!(replacements[0].actions, ["ec2:CreateVolume"]);
        assert_eq!(replacements[0].resources, [Volume.arn_pattern()]);
    }

    #[test]
    fn modify_and_delete_need_our_tag_or_the_grant_tag_on_the_resource() {
        let owned = format!("ec2:ResourceTag/{CLUSTER_TAG}");
        let granted = format!("ec2:ResourceTag/{GRANT_TAG}");
        for s in policy().statements {
            let mutating = s.actions.iter().any(|a| {
                [
                    "Modify",
                    "Delete",
                    "Deregister",
                    "Enable",
                    "Disable",
                    "Stop",
                    "Start",
                    "Attach",
                    "Detach",
                ]
                .iter()
                .any(|verb| a.starts_with(&format!("ec2:{verb}")))
            });
            if mutating {
                let key = null_key(&s);
                assert!(
                    key.as_ref() == Some(&owned) || key.as_ref() == Some(&granted),
                    "{} mutates without a resource tag condition",
                    s.sid
                );
            }
        }
        // Deletes only on what the controller made, never on what it was granted.
        for s in policy().statements {
            if s.actions
                .iter()
                .any(|a| a.starts_with("ec2:Delete") && a != "ec2:DeleteTags")
            {
                assert_eq!(null_key(&s), Some(owned.clone()), "{}", s.sid);
            }
        }
    }

    #[test]
    fn tags_are_written_only_at_creation_on_ours_or_on_granted_resources() {
        let tagging = statements_allowing("ec2:CreateTags");
        assert!(!tagging.is_empty());
        for s in tagging {
            let condition = s.condition.clone().unwrap_or_default();
            let create_action = condition.pointer("/StringEquals/ec2:CreateAction");
            match create_action {
                Some(list) => {
                    let listed: Vec<&str> = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str())
                        .collect();
                    assert!(!listed.is_empty(), "{}", s.sid);
                    for name in listed {
                        assert!(
                            create_actions().iter().any(|a| a.as_str() == name),
                            "{name}"
                        );
                    }
                }
                None => assert!(
                    null_key(&s).is_some_and(|k| k.starts_with("ec2:ResourceTag/")),
                    "{}",
                    s.sid
                ),
            }
        }
        let at_creation: Vec<String> = statements_allowing("ec2:CreateTags")
            .into_iter()
            .filter(|s| s.sid.starts_with("TagOnCreate"))
            .flat_map(|s| s.resources)
            .collect();
        assert_eq!(at_creation.len(), 3, "{at_creation:?}");
    }

    #[test]
    fn kms_is_used_only_through_ebs_except_reading_a_key() {
        for s in policy().statements {
            if !s.actions.iter().any(|a| a.starts_with("kms:")) {
                continue;
            }
            assert_eq!(s.resources, [KmsKey.arn_pattern()], "{}", s.sid);
            if s.actions == ["kms:DescribeKey"] && s.condition.is_none() {
                continue;
            }
            let c = s.condition.clone().unwrap_or_default();
            assert_eq!(
                c.pointer("/StringLike/kms:ViaService"),
                Some(&serde_json::json!(EBS_VIA_SERVICE)),
                "{}",
                s.sid
            );
            if s.actions.iter().any(|a| a == KMS_GRANT) {
                assert_eq!(s.actions, [KMS_GRANT]);
                assert_eq!(
                    c.pointer("/Bool/kms:GrantIsForAWSResource"),
                    Some(&serde_json::json!("true"))
                );
            }
        }
        assert!(!statements_allowing(KMS_GRANT).is_empty());
    }

    #[test]
    fn statement_ids_are_unique() {
        let sids: std::collections::HashSet<String> =
            policy().statements.into_iter().map(|s| s.sid).collect();
        assert_eq!(sids.len(), policy().statements.len());
    }
}
