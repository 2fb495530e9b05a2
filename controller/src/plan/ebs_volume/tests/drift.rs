//! Drift (rule 6).

use super::*;

/// Someone removed a tag, raised the iops and detached the volume.
fn drifted(spec: EbsVolumeSpec) -> Case {
    Case::existing(
        EbsVolumeSpec {
            tags: tags(&[("team", "data")]),
            iops: Some(3000),
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
            ..spec
        },
        ObservedVolume {
            iops: Some(5000),
            ..volume()
        },
    )
}

#[test]
fn drift_under_manage_yields_the_correcting_actions() {
    let plan = drifted(spec()).plan();
    assert_eq!(
        plan.actions,
        vec![
            VolumeAction::SetTags {
                volume_id: VOL.into(),
                tags: tags(&[("team", "data")]),
            },
            attach("i-0aaaaaaaaaaaaaaaa", "/dev/sdf"),
            VolumeAction::Modify(ModifyVolume {
                volume_id: VOL.into(),
                size_gib: None,
                volume_type: None,
                iops: change(5000, 3000),
                throughput_mibps: None,
                multi_attach_enabled: None,
            }),
        ]
    );
    assert_eq!(plan.executable(), plan.actions.as_slice());
    assert_eq!((plan.ready.status, plan.ready.reason), (false, "OutOfSync"));
    assert_eq!(plan.progressing.reason, "Applying");
}

#[test]
fn drift_under_observe_only_is_listed_in_words_but_nothing_runs() {
    let plan = drifted(EbsVolumeSpec {
        management_policy: ManagementPolicy::ObserveOnly,
        ..adopting()
    })
    .plan();
    assert_eq!(plan.actions.len(), 3);
    assert_eq!(plan.in_words().len(), 3);
    assert!(plan.executable().is_empty());
    assert_eq!((plan.ready.status, plan.ready.reason), (false, "OutOfSync"));
    assert!(plan.ready.message.contains("observe-only"));
    assert_eq!(
        (plan.progressing.status, plan.progressing.reason),
        (false, "ObserveOnly")
    );
    assert!(plan.synced().status);
}

#[test]
fn what_cannot_change_in_place_is_reported_on_an_adopted_volume() {
    let plan = Case {
        kms_key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/wanted".into()),
        ..Case::existing(
            EbsVolumeSpec {
                availability_zone: Some("eu-west-1b".into()),
                encrypted: true,
                kms_key_id: Some("alias/wanted".into()),
                ..adopting()
            },
            volume(),
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(
        reasons(&plan),
        vec![
            reason::AVAILABILITY_ZONE_MISMATCH,
            reason::ENCRYPTION_MISMATCH,
            reason::KMS_KEY_MISMATCH
        ]
    );
}

#[test]
fn a_kms_key_named_by_alias_matches_the_arn_aws_reports() {
    let arn = "arn:aws:kms:eu-west-1:111122223333:key/k1";
    let plan = Case {
        kms_key_arn: Some(arn.into()),
        ..Case::existing(
            EbsVolumeSpec {
                encrypted: true,
                kms_key_id: Some("alias/data".into()),
                ..spec()
            },
            ObservedVolume {
                encrypted: true,
                kms_key_id: Some(arn.into()),
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.problems.is_empty());
    assert!(plan.ready.status);
}
