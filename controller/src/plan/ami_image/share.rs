//! Launch permissions: the spec's set, exactly, and only where the administrator allows an
//! image to go. A refusal is a problem before any call (AWS would refuse some of them too,
//! but after the image was made, or with a less helpful message).

use std::collections::BTreeSet;

use super::{Builder, ImageAction, ImageInput, reason};
use crate::api::ami_image::LaunchPermissions;
use crate::api::common::ManagementPolicy;
use crate::plan::observed::{LaunchPermissionSet, ObservedImage};

/// Where the administrator lets images leave the account: the safe default allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharingPolicy {
    /// Accounts images may be shared with.
    pub accounts: BTreeSet<String>,
    /// Organization ARNs images may be shared with.
    pub organizations: BTreeSet<String>,
    /// Organizational unit ARNs images may be shared with.
    pub organizational_units: BTreeSet<String>,
    /// Any account, organization or OU (no allowlist).
    pub any: bool,
    /// Public images (launchable by every AWS account).
    pub public: bool,
}

/// The spec's launch permissions as a set.
pub fn desired(spec: &LaunchPermissions) -> LaunchPermissionSet {
    LaunchPermissionSet {
        account_ids: spec.account_ids.iter().map(|a| a.0.clone()).collect(),
        organization_arns: spec.organization_arns.iter().map(|a| a.0.clone()).collect(),
        organizational_unit_arns: spec
            .organizational_unit_arns
            .iter()
            .map(|a| a.0.clone())
            .collect(),
        public: spec.public,
    }
}

/// Problems with the spec's launch permissions that are known before the image exists, so
/// nothing is created that could not be shared as asked.
pub(super) fn check_before_create(input: &ImageInput<'_>, b: &mut Builder) {
    if let Some(wanted) = &input.spec.launch_permissions {
        check(input, &desired(wanted), None, b);
    }
}

/// The grants the policy refuses, then the image's own limits (public and encrypted, the
/// AWS managed key).
fn check(
    input: &ImageInput<'_>,
    wanted: &LaunchPermissionSet,
    image: Option<&ObservedImage>,
    b: &mut Builder,
) {
    let policy = input.sharing;
    let outside = |allowed: &BTreeSet<String>, wanted: &BTreeSet<String>| -> Vec<String> {
        match policy.any {
            true => Vec::new(),
            false => wanted.difference(allowed).cloned().collect(),
        }
    };
    let refused: Vec<String> = outside(&policy.accounts, &wanted.account_ids)
        .into_iter()
        .chain(outside(&policy.organizations, &wanted.organization_arns))
        .chain(outside(
            &policy.organizational_units,
            &wanted.organizational_unit_arns,
        ))
        .collect();
    if !refused.is_empty() {
        b.problem(
            reason::SHARING_NOT_ALLOWED,
            format!(
                "the administrator's sharing allowlist does not include {}: ask for them to be added (the controller's --share-allow-* settings)",
                refused.join(", ")
            ),
        );
    }
    if let Some(key) = input.aws_managed_key
        && wanted.grants_accounts()
    {
        let what = match image {
            Some(_) => "the image's snapshots are encrypted",
            None => "the image would be encrypted",
        };
        b.problem(
            reason::AWS_MANAGED_KEY_NOT_SHAREABLE,
            format!(
                "{what} with the AWS managed key {key} (aws/ebs), which AWS lets no other account use, so the image cannot be shared: copy it with encrypted: true and a customer managed kmsKeyId, and share the copy"
            ),
        );
    }
    if wanted.public {
        if !policy.public {
            b.problem(
                reason::PUBLIC_SHARING_REFUSED,
                "the administrator does not allow public images (the controller's --allow-public-images setting)".to_owned(),
            );
        } else if input.public_access_blocked == Some(true) {
            b.problem(
                reason::PUBLIC_SHARING_REFUSED,
                "image block public access is on in this Region: AWS refuses public images until the account turns it off".to_owned(),
            );
        } else if image.is_some_and(is_encrypted) || copy_will_be_encrypted(input) {
            b.problem(
                reason::PUBLIC_SHARING_REFUSED,
                "an encrypted image cannot be made public (AWS refuses it): share it with accounts instead".to_owned(),
            );
        }
    }
}

fn is_encrypted(image: &ObservedImage) -> bool {
    image
        .block_device_mappings
        .iter()
        .any(|m| m.encrypted == Some(true))
}

fn copy_will_be_encrypted(input: &ImageInput<'_>) -> bool {
    input
        .spec
        .source
        .as_ref()
        .and_then(|s| s.copy.as_ref())
        .is_some_and(|c| c.encrypted)
}

/// Converges the image's launch permissions to the spec's set (under `Manage`), or reports
/// the difference (under `ObserveOnly`). Nothing when the spec names none (not managed) or
/// the current set is unknown.
pub(super) fn plan(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    let Some(spec) = &input.spec.launch_permissions else {
        return;
    };
    let wanted = desired(spec);
    let problems_before = b.problems.len();
    check(input, &wanted, Some(image), b);
    if b.problems.len() > problems_before {
        return;
    }
    snapshots(input, b);
    let Some(current) = input.launch_permissions else {
        return;
    };
    let add = difference(&wanted, current);
    let remove = difference(current, &wanted);
    if add.is_empty() && remove.is_empty() {
        return;
    }
    if input.spec.management_policy == ManagementPolicy::ObserveOnly {
        b.problem(
            reason::LAUNCH_PERMISSIONS_DIFFER,
            format!(
                "launch permissions differ from the spec ({}); ObserveOnly changes nothing",
                describe_change(&add, &remove)
            ),
        );
        return;
    }
    b.act(ImageAction::ChangeLaunchPermissions {
        image_id: image.image_id.clone(),
        add,
        remove,
    });
}

/// The accounts the image's snapshots let create volumes: the spec's `accountIds` while
/// `snapshotCreateVolumePermissions` is on, none once it is turned off (the caller reads
/// them only while on, or while the status still records grants the controller made).
fn snapshots(input: &ImageInput<'_>, b: &mut Builder) {
    let (Some(spec), Some(current)) = (&input.spec.launch_permissions, input.snapshot_permissions)
    else {
        return;
    };
    let wanted: BTreeSet<String> = match spec.snapshot_create_volume_permissions {
        true => spec.account_ids.iter().map(|a| a.0.clone()).collect(),
        false => BTreeSet::new(),
    };
    for (snapshot_id, granted) in current {
        let add: BTreeSet<String> = wanted.difference(granted).cloned().collect();
        let remove: BTreeSet<String> = granted.difference(&wanted).cloned().collect();
        if add.is_empty() && remove.is_empty() {
            continue;
        }
        if input.spec.management_policy == ManagementPolicy::ObserveOnly {
            b.problem(
                reason::SNAPSHOT_PERMISSIONS_DIFFER,
                format!(
                    "the accounts that may create volumes from {snapshot_id} differ from the spec ({}); ObserveOnly changes nothing",
                    describe_accounts(&add, &remove)
                ),
            );
            continue;
        }
        b.act(ImageAction::ChangeSnapshotPermissions {
            snapshot_id: snapshot_id.clone(),
            add,
            remove,
        });
    }
}

/// `+111122223333, -444455556666` style words for a change of accounts.
pub(super) fn describe_accounts(add: &BTreeSet<String>, remove: &BTreeSet<String>) -> String {
    let accounts = |ids: &BTreeSet<String>| LaunchPermissionSet {
        account_ids: ids.clone(),
        ..LaunchPermissionSet::default()
    };
    describe_change(&accounts(add), &accounts(remove))
}

/// What `a` has that `b` has not.
pub fn difference(a: &LaunchPermissionSet, b: &LaunchPermissionSet) -> LaunchPermissionSet {
    LaunchPermissionSet {
        account_ids: a.account_ids.difference(&b.account_ids).cloned().collect(),
        organization_arns: a
            .organization_arns
            .difference(&b.organization_arns)
            .cloned()
            .collect(),
        organizational_unit_arns: a
            .organizational_unit_arns
            .difference(&b.organizational_unit_arns)
            .cloned()
            .collect(),
        public: a.public && !b.public,
    }
}

/// `+123456789012, -public` style words for a change.
pub(super) fn describe_change(add: &LaunchPermissionSet, remove: &LaunchPermissionSet) -> String {
    let words = |set: &LaunchPermissionSet, sign: char| -> Vec<String> {
        set.account_ids
            .iter()
            .chain(&set.organization_arns)
            .chain(&set.organizational_unit_arns)
            .map(|id| format!("{sign}{id}"))
            .chain(set.public.then(|| format!("{sign}public")))
            .collect()
    };
    let mut all = words(add, '+');
    all.extend(words(remove, '-'));
    all.join(", ")
}
