//! Ready (rule 2).

use super::*;

#[test]
fn an_available_volume_matching_the_spec_is_ready_with_nothing_to_do() {
    let plan = Case::existing(spec(), volume()).plan();
    assert!(plan.actions.is_empty());
    assert!(plan.waits.is_empty());
    assert!(plan.problems.is_empty());
    assert_eq!((plan.ready.status, plan.ready.reason), (true, "Available"));
    assert_eq!(
        (plan.progressing.status, plan.progressing.reason),
        (false, "UpToDate")
    );
    assert!(plan.synced().status);
    assert_eq!(plan.requeue_after, None);
    assert!(plan.in_words().is_empty());
}

#[test]
fn an_attached_volume_matching_the_spec_is_ready_as_in_use() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec()
        },
        ObservedVolume {
            state: VolumeState::InUse,
            attachments: vec![attachment(
                "i-0aaaaaaaaaaaaaaaa",
                "/dev/sdf",
                AttachmentState::Attached,
            )],
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!((plan.ready.status, plan.ready.reason), (true, "InUse"));
}

#[test]
fn a_creating_volume_is_not_ready_and_nothing_is_attached_or_modified() {
    let plan = Case::existing(
        EbsVolumeSpec {
            size_gib: Some(200),
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec()
        },
        ObservedVolume {
            state: VolumeState::Creating,
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.waits,
        vec![Wait::Creating {
            volume_id: VOL.into()
        }]
    );
    assert_eq!((plan.ready.status, plan.ready.reason), (false, "Creating"));
    assert!(plan.progressing.status);
    assert!(plan.look_soon, "looked at again at the next merged read");
}

#[test]
fn a_volume_in_error_is_a_problem_with_no_action() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            state: VolumeState::Error,
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::VOLUME_ERROR]);
}

#[test]
fn a_volume_still_optimizing_toward_the_spec_is_not_ready_yet() {
    let plan = Case {
        modification: Some(modification(ModificationState::Optimizing, hours_ago(1))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            ObservedVolume {
                size_gib: 200,
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert!(!plan.ready.status);
    assert_eq!(plan.progressing.reason, "Optimizing");
}

#[test]
fn a_completed_modification_that_reached_the_spec_is_ready() {
    let plan = Case {
        modification: Some(modification(ModificationState::Completed, hours_ago(1))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            ObservedVolume {
                size_gib: 200,
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert!(plan.ready.status);
}
