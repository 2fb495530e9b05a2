//! The AWS actions the controller knows, by name. One enum instead of strings so the rate
//! layer's bucket choice is an exhaustive match (a new action cannot silently fall into the
//! wrong bucket through a prefix rule) and a typo cannot create a new metric series.

/// An EC2 Query action or a KMS operation.
///
/// Besides the actions we call, the enum names every action the throttling table in
/// `shared/AWS-FACTS.md` puts in a bucket of its own, so [`crate::aws::rate::ActionClass::of`]
/// states the whole table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsAction {
    DescribeVolumes,
    DescribeVolumesModifications,
    DescribeSnapshots,
    DescribeInstances,
    DescribeInstanceTypes,
    DescribeImages,
    DescribeImageAttribute,
    DescribeSnapshotAttribute,
    GetImageBlockPublicAccessState,
    GetEbsDefaultKmsKeyId,
    CreateVolume,
    ModifyVolume,
    AttachVolume,
    DetachVolume,
    DeleteVolume,
    CreateSnapshot,
    CopySnapshot,
    DeleteSnapshot,
    ModifySnapshotAttribute,
    CreateImage,
    RegisterImage,
    CopyImage,
    DeregisterImage,
    ModifyImageAttribute,
    EnableImageDeprecation,
    DisableImageDeprecation,
    EnableImageDeregistrationProtection,
    DisableImageDeregistrationProtection,
    CreateTags,
    DeleteTags,
    StopInstances,
    StartInstances,
    ModifyInstanceAttribute,
    /// KMS DescribeKey.
    KmsDescribeKey,
}

impl AwsAction {
    pub const ALL: [AwsAction; 34] = [
        AwsAction::DescribeVolumes,
        AwsAction::DescribeVolumesModifications,
        AwsAction::DescribeSnapshots,
        AwsAction::DescribeInstances,
        AwsAction::DescribeInstanceTypes,
        AwsAction::DescribeImages,
        AwsAction::DescribeImageAttribute,
        AwsAction::DescribeSnapshotAttribute,
        AwsAction::GetImageBlockPublicAccessState,
        AwsAction::GetEbsDefaultKmsKeyId,
        AwsAction::CreateVolume,
        AwsAction::ModifyVolume,
        AwsAction::AttachVolume,
        AwsAction::DetachVolume,
        AwsAction::DeleteVolume,
        AwsAction::CreateSnapshot,
        AwsAction::CopySnapshot,
        AwsAction::DeleteSnapshot,
        AwsAction::ModifySnapshotAttribute,
        AwsAction::CreateImage,
        AwsAction::RegisterImage,
        AwsAction::CopyImage,
        AwsAction::DeregisterImage,
        AwsAction::ModifyImageAttribute,
        AwsAction::EnableImageDeprecation,
        AwsAction::DisableImageDeprecation,
        AwsAction::EnableImageDeregistrationProtection,
        AwsAction::DisableImageDeregistrationProtection,
        AwsAction::CreateTags,
        AwsAction::DeleteTags,
        AwsAction::StopInstances,
        AwsAction::StartInstances,
        AwsAction::ModifyInstanceAttribute,
        AwsAction::KmsDescribeKey,
    ];

    /// The name AWS uses (and our metric label): `DescribeVolumes`, `kms:DescribeKey`. KMS
    /// operations carry the service prefix because the bare name would collide with an EC2
    /// action of the same name in dashboards and IAM policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            AwsAction::DescribeVolumes => "DescribeVolumes",
            AwsAction::DescribeVolumesModifications => "DescribeVolumesModifications",
            AwsAction::DescribeSnapshots => "DescribeSnapshots",
            AwsAction::DescribeInstances => "DescribeInstances",
            AwsAction::DescribeInstanceTypes => "DescribeInstanceTypes",
            AwsAction::DescribeImages => "DescribeImages",
            AwsAction::DescribeImageAttribute => "DescribeImageAttribute",
            AwsAction::DescribeSnapshotAttribute => "DescribeSnapshotAttribute",
            AwsAction::GetImageBlockPublicAccessState => "GetImageBlockPublicAccessState",
            AwsAction::GetEbsDefaultKmsKeyId => "GetEbsDefaultKmsKeyId",
            AwsAction::CreateVolume => "CreateVolume",
            AwsAction::ModifyVolume => "ModifyVolume",
            AwsAction::AttachVolume => "AttachVolume",
            AwsAction::DetachVolume => "DetachVolume",
            AwsAction::DeleteVolume => "DeleteVolume",
            AwsAction::CreateSnapshot => "CreateSnapshot",
            AwsAction::CopySnapshot => "CopySnapshot",
            AwsAction::DeleteSnapshot => "DeleteSnapshot",
            AwsAction::ModifySnapshotAttribute => "ModifySnapshotAttribute",
            AwsAction::CreateImage => "CreateImage",
            AwsAction::RegisterImage => "RegisterImage",
            AwsAction::CopyImage => "CopyImage",
            AwsAction::DeregisterImage => "DeregisterImage",
            AwsAction::ModifyImageAttribute => "ModifyImageAttribute",
            AwsAction::EnableImageDeprecation => "EnableImageDeprecation",
            AwsAction::DisableImageDeprecation => "DisableImageDeprecation",
            AwsAction::EnableImageDeregistrationProtection => "EnableImageDeregistrationProtection",
            AwsAction::DisableImageDeregistrationProtection => {
                "DisableImageDeregistrationProtection"
            }
            AwsAction::CreateTags => "CreateTags",
            AwsAction::DeleteTags => "DeleteTags",
            AwsAction::StopInstances => "StopInstances",
            AwsAction::StartInstances => "StartInstances",
            AwsAction::ModifyInstanceAttribute => "ModifyInstanceAttribute",
            AwsAction::KmsDescribeKey => "kms:DescribeKey",
        }
    }
}

impl std::fmt::Display for AwsAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_the_aws_names_and_unique() {
        assert_eq!(AwsAction::DescribeVolumes.as_str(), "DescribeVolumes");
        assert_eq!(AwsAction::CreateVolume.as_str(), "CreateVolume");
        assert_eq!(AwsAction::KmsDescribeKey.as_str(), "kms:DescribeKey");
        let names: HashSet<_> = AwsAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AwsAction::ALL.len());
    }
}
