//! Delete (rule 7).

use super::*;

fn deleting(spec: EbsVolumeSpec, observed: Option<ObservedVolume>) -> Case {
    Case {
        deleting: true,
        observed,
        status: created(),
        ..Case::new(spec)
    }
}

#[test]
fn deleting_detaches_everything_first_and_waits_for_the_detach() {
    let attached = ObservedVolume {
        state: VolumeState::InUse,
        attachments: vec![
            attachment("i-0aaaaaaaaaaaaaaaa", "/dev/sdf", AttachmentState::Attached),
            attachment(
                "i-0bbbbbbbbbbbbbbbb",
                "/dev/sdf",
                AttachmentState::Detaching,
            ),
        ],
        ..volume()
    };
    let spec = EbsVolumeSpec {
        force_detach: true,
        attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
        ..spec()
    };
    let plan = deleting(spec, Some(attached)).plan();
    assert_eq!(
        plan.actions,
        vec![detach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf", true)]
    );
    assert_eq!(
        plan.waits,
        vec![Wait::Detaching {
            instance_id: "i-0bbbbbbbbbbbbbbbb".into()
        }]
    );
    assert!(!plan.finished);
}

#[test]
fn deleting_takes_the_final_snapshot_once_and_waits_for_it() {
    let spec = EbsVolumeSpec {
        final_snapshot: true,
        ..spec()
    };
    let first = deleting(spec.clone(), Some(volume())).plan();
    assert_eq!(
        first.actions,
        vec![VolumeAction::CreateFinalSnapshot {
            volume_id: VOL.into(),
            description: "Final snapshot of team-a/data before deletion".into(),
            tags: creation_tags(&owner(), Some(FINAL_SNAPSHOT_STEP), &spec.tags),
        }]
    );
    let pending = Case {
        final_snapshot: Some(snapshot("pending")),
        ..deleting(spec, Some(volume()))
    }
    .plan();
    assert!(pending.actions.is_empty());
    assert_eq!(pending.progressing.reason, "SnapshotPending");
    assert!(!pending.finished);
}

#[test]
fn deleting_after_the_final_snapshot_completed_deletes_the_volume() {
    let plan = Case {
        final_snapshot: Some(snapshot("completed")),
        ..deleting(
            EbsVolumeSpec {
                final_snapshot: true,
                ..spec()
            },
            Some(volume()),
        )
    }
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::Delete {
            volume_id: VOL.into()
        }]
    );
    assert_eq!(plan.in_words(), vec![format!("delete {VOL}")]);
    // Done only once AWS no longer reports the volume.
    assert!(!plan.finished);
}

#[test]
fn a_failed_final_snapshot_keeps_the_volume() {
    let plan = Case {
        final_snapshot: Some(snapshot("error")),
        ..deleting(
            EbsVolumeSpec {
                final_snapshot: true,
                ..spec()
            },
            Some(volume()),
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::FINAL_SNAPSHOT_FAILED]);
    assert!(!plan.finished);
}

#[test]
fn a_volume_being_deleted_is_waited_for_and_a_gone_one_is_done() {
    let in_progress = deleting(
        spec(),
        Some(ObservedVolume {
            state: VolumeState::Deleting,
            ..volume()
        }),
    )
    .plan();
    assert_eq!(in_progress.progressing.reason, "Deleting");
    assert!(!in_progress.finished);

    for observed in [
        None,
        Some(ObservedVolume {
            state: VolumeState::Deleted,
            ..volume()
        }),
    ] {
        let gone = deleting(spec(), observed).plan();
        assert!(gone.actions.is_empty());
        assert!(gone.finished);
    }
}

#[test]
fn retain_marks_the_volume_released_and_is_done() {
    let plan = deleting(
        EbsVolumeSpec {
            deletion_policy: DeletionPolicy::Retain,
            final_snapshot: true,
            ..spec()
        },
        Some(ObservedVolume {
            state: VolumeState::InUse,
            attachments: vec![attachment(
                "i-0aaaaaaaaaaaaaaaa",
                "/dev/sdf",
                AttachmentState::Attached,
            )],
            ..volume()
        }),
    )
    .plan();
    // Released first, then disowned: one tag call each.
    assert_eq!(
        plan.actions,
        vec![
            VolumeAction::SetTags {
                volume_id: VOL.into(),
                tags: tags(&[(RELEASED_TAG, "true")]),
            },
            VolumeAction::RemoveTags {
                volume_id: VOL.into(),
                keys: keys(&[UID_TAG]),
            },
        ]
    );
    assert!(plan.finished);
}

#[test]
fn deleting_an_object_whose_create_never_happened_is_done_at_once() {
    let plan = Case {
        deleting: true,
        ..Case::new(spec())
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert!(plan.waits.is_empty());
    assert!(plan.finished);
}

#[test]
fn deleting_with_a_recorded_create_but_no_answer_replays_it_so_nothing_leaks() {
    let plan = Case {
        deleting: true,
        status: EbsVolumeStatus {
            intents: vec![intent(CREATE_STEP, minutes_ago(1))],
            ..EbsVolumeStatus::default()
        },
        ..Case::new(spec())
    }
    .plan();
    assert!(matches!(plan.actions.as_slice(), [VolumeAction::Create(_)]));
    assert!(!plan.finished);
}

#[test]
fn deleting_an_observe_only_volume_never_acts() {
    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let plan = deleting(
            EbsVolumeSpec {
                management_policy: ManagementPolicy::ObserveOnly,
                deletion_policy: policy,
                ..adopting()
            },
            Some(ObservedVolume {
                state: VolumeState::InUse,
                attachments: vec![attachment(
                    "i-0aaaaaaaaaaaaaaaa",
                    "/dev/sdf",
                    AttachmentState::Attached,
                )],
                ..volume()
            }),
        )
        .plan();
        assert!(plan.actions.is_empty());
        assert!(plan.finished);
    }
}

#[test]
fn deleting_an_adopted_volume_under_manage_follows_the_policy() {
    let plan = deleting(adopting(), Some(volume())).plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::Delete {
            volume_id: VOL.into()
        }]
    );
}

#[test]
fn deleting_a_volume_still_being_created_waits_for_it() {
    let plan = deleting(
        spec(),
        Some(ObservedVolume {
            state: VolumeState::Creating,
            ..volume()
        }),
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.progressing.reason, "Creating");
}
