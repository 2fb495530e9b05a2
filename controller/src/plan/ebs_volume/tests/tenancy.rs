//! Tenancy: an unowned volume or instance needs a grant; a refused adoption leaves the
//! volume exactly as it is, also when the object is deleted.

use super::*;
use crate::plan::tenancy::GRANT_TAG;

fn unowned() -> ObservedVolume {
    ObservedVolume {
        tags: tags(&[("team", "storage")]),
        ..volume()
    }
}

fn ungranted(case: Case) -> Case {
    Case {
        grants: Grants::DEFAULT,
        ..case
    }
}

#[test]
fn managing_an_unowned_volume_without_a_grant_is_refused_with_no_action() {
    let plan = ungranted(Case::existing(adopting(), unowned())).plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::NOT_GRANTED]);
    assert!(!plan.ready.status);
}

#[test]
fn the_volumes_own_grant_tag_naming_the_namespace_lets_it_be_adopted() {
    let mut observed = unowned();
    observed
        .tags
        .insert(GRANT_TAG, format!("other {}", owner().namespace));
    let plan = ungranted(Case::existing(adopting(), observed)).plan();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert!(
        matches!(plan.actions.first(), Some(VolumeAction::SetTags { tags, .. }) if tags.contains_key(UID_TAG)),
        "taken over by tagging it as ours: {:?}",
        plan.actions
    );
}

#[test]
fn observing_an_unowned_volume_is_allowed_unless_the_administrator_said_no() {
    let plan = ungranted(Case::existing(adopting_observe_only(), unowned())).plan();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let no_reads = Case {
        grants: Grants {
            trusted: false,
            observe_unowned: false,
        },
        ..Case::existing(adopting_observe_only(), unowned())
    };
    assert_eq!(reasons(&no_reads.plan()), vec![reason::OBSERVE_NOT_ALLOWED]);
}

#[test]
fn attaching_to_an_instance_needs_a_grant() {
    const INSTANCE: &str = "i-0aaaaaaaaaaaaaaaa";
    let wants_instance = EbsVolumeSpec {
        attachments: vec![wants(INSTANCE, "/dev/sdf")],
        ..spec()
    };
    let refused = ungranted(Case {
        instance_zones: Some(tags(&[(INSTANCE, AZ)])),
        ..Case::existing(wants_instance.clone(), volume())
    })
    .plan();
    assert_eq!(reasons(&refused), vec![reason::NOT_GRANTED]);
    assert!(
        !refused
            .actions
            .iter()
            .any(|a| matches!(a, VolumeAction::Attach { .. })),
        "{:?}",
        refused.actions
    );

    let granted = ungranted(Case {
        instance_zones: Some(tags(&[(INSTANCE, AZ)])),
        instance_tags: BTreeMap::from([(
            INSTANCE.to_owned(),
            tags(&[(GRANT_TAG, &owner().namespace)]),
        )]),
        ..Case::existing(wants_instance, volume())
    })
    .plan();
    assert!(granted.problems.is_empty(), "{:?}", granted.problems);
    assert_eq!(granted.actions, vec![attach(INSTANCE, "/dev/sdf")]);
}

#[test]
fn deleting_an_object_whose_adoption_was_refused_leaves_the_volume_alone() {
    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let mut attached = unowned();
        attached.attachments = vec![ObservedAttachment {
            instance_id: "i-0bbbbbbbbbbbbbbbb".into(),
            device: "/dev/sdf".into(),
            state: AttachmentState::Attached,
        }];
        let plan = ungranted(Case {
            deleting: true,
            ..Case::existing(
                EbsVolumeSpec {
                    deletion_policy: policy,
                    final_snapshot: true,
                    ..adopting()
                },
                attached,
            )
        })
        .plan();
        assert!(plan.actions.is_empty(), "{policy:?}: {:?}", plan.actions);
        assert!(plan.finished, "{policy:?}");
    }
}

#[test]
fn deleting_an_object_never_touches_a_volume_another_object_owns() {
    let mut theirs = volume();
    theirs.tags = ownership_tags(
        &Owner {
            namespace: "team-b".into(),
            name: "theirs".into(),
            uid: "uid-b".into(),
            ..owner()
        },
        None,
    )
    .into();
    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let plan = Case {
            deleting: true,
            ..Case::existing(
                EbsVolumeSpec {
                    deletion_policy: policy,
                    ..adopting()
                },
                theirs.clone(),
            )
        }
        .plan();
        assert!(plan.actions.is_empty(), "{policy:?}: {:?}", plan.actions);
        assert!(plan.finished, "{policy:?}");
    }
}
