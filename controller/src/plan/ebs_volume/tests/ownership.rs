//! Ownership: our tags repaired, another object's volume left alone, a snapshot asked once.

use super::*;

fn adopted_by(uid: &str, owner_ref: &str) -> ObservedVolume {
    let mut tags = ownership_tags(&owner(), None);
    tags.insert(UID_TAG.into(), uid.into());
    tags.insert(crate::plan::tags::OWNER_TAG.into(), owner_ref.into());
    ObservedVolume {
        tags: tags.into(),
        ..volume()
    }
}

#[test]
fn ownership_tags_removed_outside_are_put_back_first() {
    let mut observed = volume();
    observed.tags.remove(crate::plan::tags::OWNER_TAG);
    let plan = Case::existing(
        EbsVolumeSpec {
            size_gib: Some(200),
            ..spec()
        },
        observed,
    )
    .plan();
    assert_eq!(
        plan.actions.first(),
        Some(&VolumeAction::SetTags {
            volume_id: VOL.into(),
            tags: tags(&[(crate::plan::tags::OWNER_TAG, "team-a/data")]),
        })
    );
    assert!(matches!(plan.actions.get(1), Some(VolumeAction::Modify(_))));
}

#[test]
fn observe_only_plans_no_ownership_change() {
    let observed = ObservedVolume {
        tags: Tags::default(),
        ..volume()
    };
    let plan = Case::existing(adopting_observe_only(), observed).plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.ready.status);
}

#[test]
fn a_volume_another_object_owns_is_refused_with_no_action() {
    let plan = Case::existing(adopting(), adopted_by("other-uid", "team-a/first")).plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::OWNED_BY_ANOTHER_OBJECT]);
    assert!(
        plan.synced()
            .message
            .contains("EbsVolume first in this namespace"),
        "{}",
        plan.synced().message
    );
}

#[test]
fn another_namespaces_owner_is_not_named() {
    let plan = Case::existing(adopting(), adopted_by("other-uid", "team-b/secret")).plan();
    assert_eq!(reasons(&plan), vec![reason::OWNED_BY_ANOTHER_OBJECT]);
    let message = plan.synced().message;
    assert!(message.contains("another object"), "{message}");
    assert!(
        !message.contains("team-b") && !message.contains("secret"),
        "{message}"
    );
}

#[test]
fn a_released_volume_may_be_adopted_again() {
    let mut observed = adopted_by("old-uid", "team-a/old");
    observed.tags.insert(RELEASED_TAG, "true");
    let plan = Case::existing(adopting(), observed).plan();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
}

#[test]
fn a_final_snapshot_requested_but_not_visible_is_waited_for_never_asked_again() {
    let spec = EbsVolumeSpec {
        final_snapshot: true,
        ..spec()
    };
    let by_intent = Case {
        status: EbsVolumeStatus {
            intents: vec![intent(FINAL_SNAPSHOT_STEP, hours_ago(5))],
            ..created()
        },
        deleting: true,
        ..Case::existing(spec.clone(), volume())
    }
    .plan();
    assert!(by_intent.actions.is_empty(), "{:?}", by_intent.actions);
    assert_eq!(
        by_intent.waits,
        vec![Wait::FinalSnapshotRequested {
            volume_id: VOL.into()
        }]
    );
    let by_id = Case {
        status: EbsVolumeStatus {
            final_snapshot_id: Some("snap-0123456789abcdef0".into()),
            ..created()
        },
        deleting: true,
        ..Case::existing(spec, volume())
    }
    .plan();
    assert!(by_id.actions.is_empty(), "{:?}", by_id.actions);
    assert_eq!(by_id.progressing.reason, "SnapshotPending");
}
