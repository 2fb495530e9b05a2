//! Modify (rule 3).

use super::*;

#[test]
fn every_changed_field_goes_into_one_modify() {
    let plan = Case::existing(
        EbsVolumeSpec {
            size_gib: Some(200),
            iops: Some(6000),
            throughput_mibps: Some(500),
            ..spec()
        },
        volume(),
    )
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::Modify(ModifyVolume {
            volume_id: VOL.into(),
            size_gib: change(100, 200),
            volume_type: None,
            iops: change(3000, 6000),
            throughput_mibps: change(125, 500),
            multi_attach_enabled: None,
        })]
    );
    assert_eq!(
        plan.in_words(),
        vec![format!(
            "modify {VOL}: size 100 -> 200 GiB, iops 3000 -> 6000, throughput 125 -> 500 MiB/s"
        )]
    );
}

#[test]
fn only_the_fields_that_differ_are_sent() {
    let plan = Case::existing(
        EbsVolumeSpec {
            size_gib: Some(150),
            ..spec()
        },
        volume(),
    )
    .plan();
    assert_eq!(
        modify(&plan),
        Some(&ModifyVolume {
            volume_id: VOL.into(),
            size_gib: change(100, 150),
            volume_type: None,
            iops: None,
            throughput_mibps: None,
            multi_attach_enabled: None,
        })
    );
}

#[test]
fn a_gp2_volume_matching_its_spec_gets_no_modify_for_its_reported_baseline_iops() {
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: Some(VolumeType::Gp2),
            ..spec()
        },
        ObservedVolume {
            volume_type: Some(VolumeType::Gp2),
            iops: Some(300),
            throughput_mibps: None,
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert!(plan.ready.status);
}

#[test]
fn a_type_change_always_sends_iops_and_throughput() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            volume_type: Some(VolumeType::Gp2),
            iops: Some(300),
            throughput_mibps: None,
            ..volume()
        },
    )
    .plan();
    assert_eq!(
        modify(&plan),
        Some(&ModifyVolume {
            volume_id: VOL.into(),
            size_gib: None,
            volume_type: change(VolumeType::Gp2, VolumeType::Gp3),
            iops: Some(Change {
                from: None,
                to: 3000
            }),
            throughput_mibps: Some(Change {
                from: None,
                to: 125
            }),
            multi_attach_enabled: None,
        })
    );
}

#[test]
fn a_type_change_sends_unchanged_iops_too_and_says_they_are_kept() {
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: Some(VolumeType::Io2),
            iops: Some(3000),
            ..spec()
        },
        volume(),
    )
    .plan();
    let m = modify(&plan);
    assert_eq!(m.and_then(|m| m.iops), change(3000, 3000));
    assert_eq!(m.and_then(|m| m.throughput_mibps), None);
    assert_eq!(
        plan.in_words(),
        vec![format!("modify {VOL}: type gp3 -> io2, iops 3000 (kept)")]
    );
}

#[test]
fn shrinking_a_volume_is_a_problem_and_plans_no_modify() {
    let plan = Case::existing(
        EbsVolumeSpec {
            size_gib: Some(50),
            iops: Some(4000),
            ..spec()
        },
        volume(),
    )
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(reasons(&plan), vec![reason::SHRINK_NOT_ALLOWED]);
    assert!(!plan.synced().status);
    assert!(!plan.ready.status);
    assert_eq!(plan.progressing.reason, "Blocked");
}

#[test]
fn a_modification_in_progress_is_waited_for_with_its_progress() {
    let plan = Case {
        modification: Some(modification(ModificationState::Modifying, minutes_ago(5))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(plan.waits.len(), 1);
    assert_eq!(plan.progressing.reason, "Modifying");
    assert_eq!(
        plan.progressing.message,
        format!("{VOL} modification is modifying (40%)")
    );
    assert!(!plan.ready.status);
}

#[test]
fn a_spec_change_during_a_modification_waits_and_says_another_follows() {
    let plan = Case {
        modification: Some(modification(ModificationState::Optimizing, minutes_ago(5))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(300),
                ..spec()
            },
            ObservedVolume {
                size_gib: 200,
                ..volume()
            },
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    assert!(matches!(
        plan.waits.as_slice(),
        [Wait::Modification {
            more_to_do: true,
            ..
        }]
    ));
    assert!(
        plan.progressing
            .message
            .contains("the next modification follows")
    );
}

#[test]
fn a_fifth_modification_in_24_hours_waits_and_says_until_when() {
    let plan = Case {
        status: EbsVolumeStatus {
            recent_modifications: vec![hours_ago(23), hours_ago(20), hours_ago(10), hours_ago(2)],
            ..created()
        },
        modification: Some(modification(ModificationState::Completed, hours_ago(2))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(300),
                ..spec()
            },
            ObservedVolume {
                size_gib: 200,
                ..volume()
            },
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    let until = hours_ago(23) + TimeDelta::hours(24);
    assert_eq!(
        plan.waits,
        vec![Wait::ModificationQuota { until, count: 4 }]
    );
    assert_eq!(plan.ready.reason, "ModificationQuotaReached");
    assert!(plan.ready.message.contains("2026-11-20T13:00:00+00:00"));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(3600)));
    assert_eq!(plan.recent_modifications.len(), 4);
}

#[test]
fn modifications_older_than_24_hours_do_not_count() {
    let plan = Case {
        status: EbsVolumeStatus {
            recent_modifications: vec![hours_ago(30), hours_ago(25), hours_ago(24), hours_ago(3)],
            ..created()
        },
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert!(modify(&plan).is_some());
    assert_eq!(plan.recent_modifications, vec![hours_ago(3)]);
}

#[test]
fn a_modification_status_forgot_still_counts_toward_the_four() {
    let plan = Case {
        status: EbsVolumeStatus {
            recent_modifications: vec![hours_ago(20), hours_ago(10), hours_ago(5)],
            ..created()
        },
        modification: Some(modification(ModificationState::Completed, hours_ago(1))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(300),
                ..spec()
            },
            ObservedVolume {
                size_gib: 200,
                ..volume()
            },
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    assert!(matches!(
        plan.waits.as_slice(),
        [Wait::ModificationQuota { count: 4, .. }]
    ));
}

#[test]
fn a_recorded_modification_and_the_one_aws_reports_count_once() {
    let recorded = hours_ago(1);
    let window = modifications_in_window(
        &[hours_ago(20), recorded],
        Some(&modification(
            ModificationState::Completed,
            recorded + TimeDelta::seconds(2),
        )),
        now(),
    );
    assert_eq!(window, vec![hours_ago(20), recorded]);
    assert_eq!(next_modification_slot(&window), None);
}

#[test]
fn a_modification_just_started_but_not_yet_visible_is_not_started_again() {
    let plan = Case {
        status: EbsVolumeStatus {
            recent_modifications: vec![minutes_ago(1)],
            ..created()
        },
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(
        plan.waits,
        vec![Wait::ModificationNotVisibleYet {
            since: minutes_ago(1)
        }]
    );
}

#[test]
fn a_failed_modification_with_the_same_targets_is_not_retried() {
    let failed = ObservedModification {
        status_message: Some("insufficient capacity".into()),
        ..modification(ModificationState::Failed, hours_ago(1))
    };
    let plan = Case {
        modification: Some(failed),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(200),
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(reasons(&plan), vec![reason::MODIFICATION_FAILED]);
    assert!(plan.problems[0].message.contains("insufficient capacity"));
}

#[test]
fn after_a_failed_modification_a_different_spec_may_modify_again() {
    let plan = Case {
        modification: Some(modification(ModificationState::Failed, hours_ago(1))),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(250),
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    assert!(modify(&plan).is_some());
}

#[test]
fn fields_an_adopting_spec_leaves_out_are_not_managed() {
    let plan = Case::existing(
        adopting(),
        ObservedVolume {
            size_gib: 700,
            iops: Some(9000),
            throughput_mibps: Some(600),
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert!(plan.ready.status);
}

#[test]
fn an_adopting_spec_without_a_type_keeps_the_volumes_own_type() {
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: None,
            ..adopting()
        },
        ObservedVolume {
            volume_type: Some(VolumeType::Io2),
            iops: Some(8000),
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
}

#[test]
fn a_created_gp3_volume_changed_outside_goes_back_to_the_default_iops() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            iops: Some(9000),
            ..volume()
        },
    )
    .plan();
    assert_eq!(modify(&plan).and_then(|m| m.iops), change(9000, 3000));
}

#[test]
fn an_adopted_volume_pushed_past_the_limits_table_is_a_problem_not_a_call() {
    // io1 allows at most 50 IOPS per GiB: 1000 IOPS on 10 GiB is not a volume AWS makes.
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: Some(VolumeType::Io1),
            iops: Some(1000),
            ..adopting()
        },
        ObservedVolume {
            volume_type: Some(VolumeType::Io1),
            size_gib: 10,
            iops: Some(500),
            throughput_mibps: None,
            ..volume()
        },
    )
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(reasons(&plan), vec![reason::OUTSIDE_VOLUME_LIMITS]);
}

#[test]
fn a_volume_of_a_type_the_controller_does_not_know_is_not_modified() {
    let plan = Case::existing(
        spec(),
        ObservedVolume {
            volume_type: None,
            ..volume()
        },
    )
    .plan();
    assert_eq!(modify(&plan), None);
    assert_eq!(reasons(&plan), vec![reason::UNSUPPORTED_VOLUME_TYPE]);
}

fn io2(multi_attach: bool, attached_to: &[&str]) -> ObservedVolume {
    ObservedVolume {
        volume_type: Some(VolumeType::Io2),
        iops: Some(3000),
        throughput_mibps: None,
        multi_attach_enabled: multi_attach,
        state: if attached_to.is_empty() {
            VolumeState::Available
        } else {
            VolumeState::InUse
        },
        attachments: attached_to
            .iter()
            .map(|i| attachment(i, "/dev/sdf", AttachmentState::Attached))
            .collect(),
        ..volume()
    }
}

fn io2_spec(multi_attach: bool) -> EbsVolumeSpec {
    EbsVolumeSpec {
        volume_type: Some(VolumeType::Io2),
        iops: Some(3000),
        throughput_mibps: None,
        multi_attach_enabled: multi_attach,
        ..spec()
    }
}

#[test]
fn multi_attach_is_enabled_in_place_on_a_detached_io2_volume_before_any_attach() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![
                wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf"),
                wants("i-0bbbbbbbbbbbbbbbb", "/dev/sdf"),
            ],
            ..io2_spec(true)
        },
        io2(false, &[]),
    )
    .plan();
    assert_eq!(
        plan.actions,
        vec![VolumeAction::Modify(ModifyVolume {
            volume_id: VOL.into(),
            size_gib: None,
            volume_type: None,
            iops: None,
            throughput_mibps: None,
            multi_attach_enabled: change(false, true),
        })],
        "the attaches wait until Multi-Attach is on"
    );
    assert_eq!(
        plan.in_words(),
        vec![format!("modify {VOL}: enable Multi-Attach")]
    );
}

#[test]
fn multi_attach_is_not_enabled_on_an_attached_volume_and_the_condition_says_why() {
    let plan = Case::existing(io2_spec(true), io2(false, &["i-0aaaaaaaaaaaaaaaa"])).plan();
    assert!(modify(&plan).is_none(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::MULTI_ATTACH_MISMATCH]);
    assert!(plan.synced().message.contains("attached to no instance"));
}

#[test]
fn multi_attach_is_changed_in_place_only_on_io2() {
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: Some(VolumeType::Io1),
            ..io2_spec(true)
        },
        ObservedVolume {
            volume_type: Some(VolumeType::Io1),
            ..io2(false, &[])
        },
    )
    .plan();
    assert!(modify(&plan).is_none(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::MULTI_ATTACH_MISMATCH]);
    assert!(plan.synced().message.contains("only on io2"));
}

#[test]
fn multi_attach_is_disabled_only_while_attached_to_at_most_one_instance() {
    let one = Case::existing(io2_spec(false), io2(true, &["i-0aaaaaaaaaaaaaaaa"])).plan();
    assert_eq!(
        modify(&one).and_then(|m| m.multi_attach_enabled),
        change(true, false)
    );
    let two = Case::existing(
        io2_spec(false),
        io2(true, &["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"]),
    )
    .plan();
    assert!(modify(&two).is_none(), "{:?}", two.actions);
    assert!(reasons(&two).contains(&reason::MULTI_ATTACH_MISMATCH));
    assert!(two.synced().message.contains("at most one instance"));
}

#[test]
fn an_adopting_spec_that_leaves_multi_attach_out_does_not_disable_it() {
    let plan = Case::existing(
        EbsVolumeSpec {
            volume_type: None,
            multi_attach_enabled: false,
            ..adopting()
        },
        io2(true, &[]),
    )
    .plan();
    assert!(modify(&plan).is_none(), "{:?}", plan.actions);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
}
