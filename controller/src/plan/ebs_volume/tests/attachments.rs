//! Attachments (rules 4 and 8).

use super::*;

#[test]
fn an_instance_in_the_spec_but_not_attached_is_attached() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec()
        },
        volume(),
    )
    .plan();
    assert_eq!(
        plan.actions,
        vec![attach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")]
    );
    assert_eq!(
        plan.in_words(),
        vec![format!("attach {VOL} to i-0aaaaaaaaaaaaaaaa as /dev/sdf")]
    );
}

#[test]
fn an_instance_attached_but_not_in_the_spec_is_detached_with_force_detach_honoured() {
    for force in [false, true] {
        let plan = Case::existing(
            EbsVolumeSpec {
                force_detach: force,
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
        assert_eq!(
            plan.actions,
            vec![detach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf", force)]
        );
    }
}

#[test]
fn moving_a_single_attach_volume_detaches_first_and_attaches_once_detached() {
    let spec = EbsVolumeSpec {
        attachments: vec![wants("i-0bbbbbbbbbbbbbbbb", "/dev/sdg")],
        ..spec()
    };
    let on_a = |state| ObservedVolume {
        state: VolumeState::InUse,
        attachments: vec![attachment("i-0aaaaaaaaaaaaaaaa", "/dev/sdf", state)],
        ..volume()
    };
    let first = Case::existing(spec.clone(), on_a(AttachmentState::Attached)).plan();
    assert_eq!(
        first.actions,
        vec![detach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf", false)]
    );
    assert!(first.problems.is_empty());

    let second = Case::existing(spec.clone(), on_a(AttachmentState::Detaching)).plan();
    assert!(second.actions.is_empty());
    assert_eq!(
        second.waits,
        vec![Wait::Detaching {
            instance_id: "i-0aaaaaaaaaaaaaaaa".into()
        }]
    );

    let third = Case::existing(spec, volume()).plan();
    assert_eq!(
        third.actions,
        vec![attach("i-0bbbbbbbbbbbbbbbb", "/dev/sdg")]
    );
}

#[test]
fn attachments_in_flight_are_waited_for_not_repeated() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec()
        },
        ObservedVolume {
            attachments: vec![attachment(
                "i-0aaaaaaaaaaaaaaaa",
                "/dev/sdf",
                AttachmentState::Attaching,
            )],
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.progressing.reason, "Attaching");
    assert!(!plan.ready.status);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(5)));
}

#[test]
fn an_instance_in_another_zone_is_a_problem_not_an_attach() {
    let plan = Case {
        instance_zones: Some(tags(&[("i-0aaaaaaaaaaaaaaaa", "eu-west-1b")])),
        ..Case::existing(
            EbsVolumeSpec {
                attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::INSTANCE_IN_OTHER_ZONE]);
    // Terminal: no requeue of its own, the next spec change or resync looks again.
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn a_missing_instance_is_a_problem_not_an_attach() {
    let plan = Case {
        instance_zones: Some(BTreeMap::new()),
        ..Case::existing(
            EbsVolumeSpec {
                attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::INSTANCE_NOT_FOUND]);
}

#[test]
fn a_bad_instance_is_reported_before_the_volume_is_created() {
    let plan = Case {
        instance_zones: Some(BTreeMap::new()),
        ..Case::new(EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec()
        })
    }
    .plan();
    assert!(matches!(plan.actions.as_slice(), [VolumeAction::Create(_)]));
    assert_eq!(reasons(&plan), vec![reason::INSTANCE_NOT_FOUND]);
}

#[test]
fn more_than_one_attachment_needs_multi_attach() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![
                wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf"),
                wants("i-0bbbbbbbbbbbbbbbb", "/dev/sdf"),
            ],
            ..spec()
        },
        volume(),
    )
    .plan();
    assert!(reasons(&plan).contains(&reason::MULTI_ATTACH_REQUIRED));
    // One instance still fits a single-attach volume.
    assert_eq!(
        plan.actions,
        vec![attach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")]
    );
}

#[test]
fn a_multi_attach_volume_attaches_to_several_instances_at_once() {
    let io2 = ObservedVolume {
        volume_type: Some(VolumeType::Io2),
        iops: Some(1000),
        throughput_mibps: None,
        multi_attach_enabled: true,
        ..volume()
    };
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: Some(VolumeType::Io2),
            iops: Some(1000),
            multi_attach_enabled: true,
            attachments: vec![
                wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf"),
                wants("i-0bbbbbbbbbbbbbbbb", "/dev/sdf"),
            ],
            ..spec()
        },
        io2,
    )
    .plan();
    assert!(plan.problems.is_empty());
    assert_eq!(
        plan.actions,
        vec![
            attach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf"),
            attach("i-0bbbbbbbbbbbbbbbb", "/dev/sdf"),
        ]
    );
}

#[test]
fn an_adopted_volume_without_attachments_in_its_spec_keeps_its_attachments() {
    let plan = Case::existing(
        adopting(),
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
    assert!(plan.ready.status);
}

#[test]
fn an_attachment_on_another_device_is_detached_then_attached_at_the_spec_device() {
    let spec = EbsVolumeSpec {
        attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdg")],
        ..spec()
    };
    let at = |state| ObservedVolume {
        state: VolumeState::InUse,
        attachments: vec![attachment("i-0aaaaaaaaaaaaaaaa", "xvdf", state)],
        ..volume()
    };
    // First the detach alone: an instance holds a volume at one device only.
    let first = Case::existing(spec.clone(), at(AttachmentState::Attached)).plan();
    assert_eq!(
        first.actions,
        vec![detach("i-0aaaaaaaaaaaaaaaa", "xvdf", false)]
    );
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    // While it detaches, nothing more.
    let detaching = Case::existing(spec.clone(), at(AttachmentState::Detaching)).plan();
    assert!(detaching.actions.is_empty(), "{:?}", detaching.actions);
    assert!(detaching.progressing.status);
    // Once detached, the attach at the spec's device.
    let detached = Case::existing(
        spec.clone(),
        ObservedVolume {
            state: VolumeState::Available,
            attachments: Vec::new(),
            ..volume()
        },
    )
    .plan();
    assert_eq!(
        detached.actions,
        vec![attach("i-0aaaaaaaaaaaaaaaa", "/dev/sdg")]
    );
    // `xvdg` and `/dev/xvdg` are the same device: nothing to move.
    let same = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/xvdf")],
            ..spec
        },
        at(AttachmentState::Attached),
    )
    .plan();
    assert!(same.actions.is_empty(), "{:?}", same.actions);
}
