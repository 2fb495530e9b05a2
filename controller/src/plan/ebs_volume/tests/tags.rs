//! Tags (rule 5).

use super::*;

#[test]
fn spec_tags_are_set_and_tags_others_added_are_left_alone() {
    let plan = Case::existing(
        EbsVolumeSpec {
            tags: tags(&[("team", "data"), ("env", "prod")]),
            ..spec()
        },
        ObservedVolume {
            tags: ours(&[("team", "web"), ("backup", "daily"), ("env", "prod")]),
            ..volume()
        },
    )
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::SetTags {
            volume_id: VOL.into(),
            tags: tags(&[("team", "data")]),
        }]
    );
    assert_eq!(plan.in_words(), vec![format!("tag {VOL}: team=data")]);
    assert_eq!(plan.managed_tag_keys, keys(&["env", "team"]));
}

#[test]
fn a_tag_dropped_from_the_spec_is_removed_only_if_we_managed_it() {
    let plan = Case {
        managed_tag_keys: keys(&["team", "old"]),
        ..Case::existing(
            EbsVolumeSpec {
                tags: tags(&[("team", "data")]),
                ..spec()
            },
            ObservedVolume {
                tags: ours(&[("team", "data"), ("old", "x"), ("backup", "daily")]),
                ..volume()
            },
        )
    }
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::RemoveTags {
            volume_id: VOL.into(),
            keys: keys(&["old"]),
        }]
    );
    assert_eq!(plan.in_words(), vec![format!("untag {VOL}: old")]);
    // Still ours until AWS shows it gone, so a failed DeleteTags is retried.
    assert_eq!(plan.managed_tag_keys, keys(&["old", "team"]));
}

#[test]
fn a_removed_tag_is_forgotten_once_aws_shows_it_gone() {
    let plan = Case {
        managed_tag_keys: keys(&["team", "old"]),
        ..Case::existing(
            EbsVolumeSpec {
                tags: tags(&[("team", "data")]),
                ..spec()
            },
            ObservedVolume {
                tags: ours(&[("team", "data")]),
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.managed_tag_keys, keys(&["team"]));
}

#[test]
fn aws_and_ownership_tags_are_never_touched() {
    let plan = Case {
        managed_tag_keys: keys(&[
            "aws:cloudformation:stack-name",
            "ec2.reconciler.dev/owner-uid",
        ]),
        ..Case::existing(
            spec(),
            ObservedVolume {
                tags: ours(&[
                    ("aws:cloudformation:stack-name", "s"),
                    ("ec2.reconciler.dev/owner-uid", "u"),
                ]),
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert!(is_reserved_key("aws:backup"));
    assert!(
        is_reserved_key("AWS:backup"),
        "AWS reserves the prefix in any case"
    );
    assert!(is_reserved_key("ec2.reconciler.dev/owner-uid"));
    assert!(!is_reserved_key("team"));
}
