//! An EncryptedVolumeMigration swapping the volume (issue 8, behaviour 7).

use super::*;
use crate::plan::tags::{MIGRATED_FROM_TAG, MIGRATING_TAG};

/// Our volume, with the migrating mark.
fn being_migrated() -> ObservedVolume {
    ObservedVolume {
        tags: ours(&[(MIGRATING_TAG, "team-a/encrypt")]),
        ..volume()
    }
}

#[test]
fn a_volume_being_migrated_is_left_alone_and_the_condition_says_why() {
    let mut case = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            iops: Some(5000),
            ..spec()
        },
        being_migrated(),
    );
    let plan = case.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), ["MigrationInProgress"]);
    assert!(plan.synced().message.contains("encrypt"));
    case.deleting = true;
    let plan = case.plan();
    assert!(
        plan.actions.is_empty() && !plan.finished,
        "not deleted mid-swap: {plan:?}"
    );
}

#[test]
fn an_unencrypted_spec_on_a_migrated_volume_is_reported_never_acted_on() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            encrypted: true,
            kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/1".into()),
            tags: ours(&[(MIGRATED_FROM_TAG, "vol-0123456789abcdef0")]),
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), ["EncryptionMismatch"]);
    assert!(plan.synced().message.contains("never decrypts"));
}
