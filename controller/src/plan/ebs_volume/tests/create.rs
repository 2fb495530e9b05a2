//! Create (rule 1).

use super::*;

#[test]
fn a_volume_that_was_never_created_is_created_with_every_spec_setting() {
    let spec = EbsVolumeSpec {
        volume_type: Some(VolumeType::Io2),
        size_gib: Some(500),
        iops: Some(16000),
        encrypted: true,
        kms_key_id: Some("alias/data".into()),
        multi_attach_enabled: true,
        snapshot_id: Some("snap-0123456789abcdef0".into()),
        ..spec()
    };
    let plan = Case {
        kms_key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/k1".into()),
        ..Case::new(spec)
    }
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::Create(CreateVolume {
            availability_zone: AZ.into(),
            volume_type: VolumeType::Io2,
            size_gib: Some(500),
            iops: Some(16000),
            throughput_mibps: None,
            encrypted: true,
            kms_key_id: Some("arn:aws:kms:eu-west-1:111122223333:key/k1".into()),
            multi_attach_enabled: true,
            snapshot_id: Some("snap-0123456789abcdef0".into()),
            tags: ownership_tags(&owner(), None),
        })]
    );
    assert_eq!(plan.executable().len(), 1);
    assert!(!plan.ready.status);
    assert!(plan.progressing.status);
    assert_eq!(
        plan.in_words(),
        vec![
            "create a 500 GiB io2 volume in eu-west-1a (iops 16000, encrypted with arn:aws:kms:eu-west-1:111122223333:key/k1, Multi-Attach, from snap-0123456789abcdef0)"
        ]
    );
}

#[test]
fn a_recorded_create_without_an_answer_is_planned_again_for_its_client_token() {
    let plan = Case {
        status: EbsVolumeStatus {
            intents: vec![intent(CREATE_STEP, minutes_ago(1))],
            ..EbsVolumeStatus::default()
        },
        ..Case::new(spec())
    }
    .plan();
    assert!(matches!(plan.actions.as_slice(), [VolumeAction::Create(_)]));
}

#[test]
fn an_adopted_volume_that_is_not_found_is_reported_and_never_created() {
    let plan = Case::new(adopting()).plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::VOLUME_NOT_FOUND]);
    assert!(!plan.synced().status);
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn a_volume_deleted_outside_the_controller_is_never_recreated() {
    let plan = Case {
        status: created(),
        ..Case::new(spec())
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::VOLUME_NOT_FOUND]);
    assert!(
        plan.problems[0]
            .message
            .contains("deleted outside the controller")
    );
    assert_eq!(plan.ready.reason, reason::VOLUME_NOT_FOUND);
}

#[test]
fn a_volume_reported_as_deleting_outside_the_controller_is_reported_not_recreated() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            state: VolumeState::Deleting,
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::VOLUME_NOT_FOUND]);
}

#[test]
fn a_created_volume_not_yet_visible_is_waited_for_then_reported_lost() {
    let fresh = Case {
        status: EbsVolumeStatus {
            intents: vec![intent(CREATE_STEP, minutes_ago(1))],
            ..created()
        },
        ..Case::new(spec())
    }
    .plan();
    assert!(fresh.actions.is_empty());
    assert!(fresh.problems.is_empty());
    assert_eq!(
        fresh.waits,
        vec![Wait::VolumeNotVisibleYet {
            volume_id: VOL.into()
        }]
    );

    // Measured from the request, not from any condition's transition time.
    let late = Case {
        status: EbsVolumeStatus {
            intents: vec![intent(CREATE_STEP, minutes_ago(30))],
            conditions: vec![progressing_since(minutes_ago(1))],
            ..created()
        },
        ..Case::new(spec())
    }
    .plan();
    assert!(late.actions.is_empty());
    assert_eq!(reasons(&late), vec![reason::VOLUME_NOT_FOUND]);
}

#[test]
fn a_spec_outside_the_limits_table_is_not_created() {
    let plan = Case::new(EbsVolumeSpec {
        volume_type: Some(VolumeType::St1),
        size_gib: Some(100),
        ..spec()
    })
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::OUTSIDE_VOLUME_LIMITS]);
}

#[test]
fn a_create_without_an_availability_zone_is_a_problem() {
    let plan = Case::new(EbsVolumeSpec {
        availability_zone: None,
        ..spec()
    })
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::AVAILABILITY_ZONE_REQUIRED]);
}
