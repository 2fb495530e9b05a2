//! Planner tests: plain values in, a plan out. One rule per test, named as a sentence.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::api::common::{DeletionPolicy, ManagementPolicy};
use crate::api::conditions::{Condition, ConditionStatus, PROGRESSING};
use crate::api::ebs_volume::{PendingCreate, VolumeAttachmentSpec};
use crate::api::{EbsVolumeSpec, EbsVolumeStatus, VolumeType};
use crate::plan::observed::{
    AttachmentState, ModificationState, ObservedAttachment, ObservedModification, ObservedSnapshot,
    ObservedVolume, VolumeState,
};

const VOL: &str = "vol-0123456789abcdef0";
const AZ: &str = "eu-west-1a";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(h)
}

fn minutes_ago(m: i64) -> DateTime<Utc> {
    now() - TimeDelta::minutes(m)
}

/// A created (not adopted) 100 GiB gp3 volume in eu-west-1a.
fn spec() -> EbsVolumeSpec {
    EbsVolumeSpec {
        region: None,
        availability_zone: Some(AZ.into()),
        volume_type: Some(VolumeType::Gp3),
        size_gib: Some(100),
        iops: None,
        throughput_mibps: None,
        encrypted: false,
        kms_key_id: None,
        multi_attach_enabled: false,
        snapshot_id: None,
        attachments: Vec::new(),
        tags: BTreeMap::new(),
        volume_id: None,
        management_policy: ManagementPolicy::Manage,
        deletion_policy: DeletionPolicy::Delete,
        final_snapshot: false,
        force_detach: false,
    }
}

/// A spec adopting VOL, every optional field left out.
fn adopting() -> EbsVolumeSpec {
    EbsVolumeSpec {
        availability_zone: None,
        size_gib: None,
        volume_id: Some(VOL.into()),
        ..spec()
    }
}

/// What AWS reports for `spec()` once created.
fn volume() -> ObservedVolume {
    ObservedVolume {
        volume_id: VOL.into(),
        state: VolumeState::Available,
        availability_zone: AZ.into(),
        volume_type: Some(VolumeType::Gp3),
        size_gib: 100,
        iops: Some(3000),
        throughput_mibps: Some(125),
        encrypted: false,
        kms_key_id: None,
        multi_attach_enabled: false,
        snapshot_id: None,
        attachments: Vec::new(),
        tags: BTreeMap::new(),
        create_time: Some(hours_ago(100)),
    }
}

/// The status once the volume has been created and observed.
fn created() -> EbsVolumeStatus {
    EbsVolumeStatus {
        volume_id: Some(VOL.into()),
        ..EbsVolumeStatus::default()
    }
}

fn attachment(instance: &str, device: &str, state: AttachmentState) -> ObservedAttachment {
    ObservedAttachment {
        instance_id: instance.into(),
        device: device.into(),
        state,
    }
}

fn wants(instance: &str, device: &str) -> VolumeAttachmentSpec {
    VolumeAttachmentSpec {
        instance_id: instance.into(),
        device: device.into(),
    }
}

fn modification(state: ModificationState, started: DateTime<Utc>) -> ObservedModification {
    ObservedModification {
        volume_id: VOL.into(),
        state,
        progress: Some(40),
        start_time: Some(started),
        end_time: None,
        status_message: None,
        target_size_gib: Some(200),
        target_volume_type: Some(VolumeType::Gp3),
        target_iops: Some(3000),
        target_throughput_mibps: Some(125),
    }
}

fn snapshot(state: &str) -> ObservedSnapshot {
    ObservedSnapshot {
        snapshot_id: "snap-0123456789abcdef0".into(),
        volume_id: Some(VOL.into()),
        state: state.into(),
        progress: Some(60),
        encrypted: false,
        kms_key_id: None,
        volume_size_gib: Some(100),
        tags: BTreeMap::new(),
        start_time: Some(minutes_ago(3)),
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

fn progressing_since(t: DateTime<Utc>) -> Condition {
    Condition {
        type_: PROGRESSING.into(),
        status: ConditionStatus::True,
        observed_generation: Some(1),
        last_transition_time: t,
        reason: "Creating".into(),
        message: String::new(),
    }
}

/// Owned inputs, so each test states only what differs from the defaults.
struct Case {
    spec: EbsVolumeSpec,
    status: EbsVolumeStatus,
    observed: Option<ObservedVolume>,
    modification: Option<ObservedModification>,
    kms_key_arn: Option<String>,
    managed_tag_keys: BTreeSet<String>,
    instance_zones: Option<BTreeMap<String, String>>,
    final_snapshot: Option<ObservedSnapshot>,
    deleting: bool,
    now: DateTime<Utc>,
}

impl Case {
    /// Nothing in AWS, nothing in status.
    fn new(spec: EbsVolumeSpec) -> Self {
        Self {
            spec,
            status: EbsVolumeStatus::default(),
            observed: None,
            modification: None,
            kms_key_arn: None,
            managed_tag_keys: BTreeSet::new(),
            instance_zones: None,
            final_snapshot: None,
            deleting: false,
            now: now(),
        }
    }

    /// The volume exists, as observed.
    fn existing(spec: EbsVolumeSpec, observed: ObservedVolume) -> Self {
        Self {
            status: created(),
            observed: Some(observed),
            ..Self::new(spec)
        }
    }

    fn plan(&self) -> VolumePlan {
        plan_volume(&VolumeInput {
            spec: &self.spec,
            status: &self.status,
            observed: self.observed.as_ref(),
            modification: self.modification.as_ref(),
            kms_key_arn: self.kms_key_arn.as_deref(),
            managed_tag_keys: &self.managed_tag_keys,
            instance_zones: self.instance_zones.as_ref(),
            final_snapshot: self.final_snapshot.as_ref(),
            deleting: self.deleting,
            now: self.now,
        })
    }
}

fn reasons(plan: &VolumePlan) -> Vec<&'static str> {
    plan.problems.iter().map(|p| p.reason).collect()
}

fn modify(plan: &VolumePlan) -> Option<&ModifyVolume> {
    plan.actions.iter().find_map(|a| match a {
        VolumeAction::Modify(m) => Some(m),
        _ => None,
    })
}

fn change<T>(from: T, to: T) -> Option<Change<T>> {
    Some(Change {
        from: Some(from),
        to,
    })
}

fn attach(instance: &str, device: &str) -> VolumeAction {
    VolumeAction::Attach {
        volume_id: VOL.into(),
        instance_id: instance.into(),
        device: device.into(),
    }
}

fn detach(instance: &str, device: &str, force: bool) -> VolumeAction {
    VolumeAction::Detach {
        volume_id: VOL.into(),
        instance_id: instance.into(),
        device: device.into(),
        force,
    }
}

// ---- Create (rule 1) ----

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
            pending_create: Some(PendingCreate {
                client_token: "t".into(),
                attempt: 0,
            }),
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
    let pending = EbsVolumeStatus {
        pending_create: Some(PendingCreate {
            client_token: "t".into(),
            attempt: 0,
        }),
        ..created()
    };
    let fresh = Case {
        status: EbsVolumeStatus {
            conditions: vec![progressing_since(minutes_ago(1))],
            ..pending.clone()
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

    let late = Case {
        status: EbsVolumeStatus {
            conditions: vec![progressing_since(minutes_ago(30))],
            ..pending
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

// ---- Ready (rule 2) ----

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
    assert!(plan.requeue_after.is_some());
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

// ---- Modify (rule 3) ----

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

// ---- Attachments (rules 4 and 8) ----

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
fn an_attachment_on_another_device_is_reported_not_moved() {
    let plan = Case::existing(
        EbsVolumeSpec {
            attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdg")],
            ..spec()
        },
        ObservedVolume {
            state: VolumeState::InUse,
            attachments: vec![attachment(
                "i-0aaaaaaaaaaaaaaaa",
                "xvdf",
                AttachmentState::Attached,
            )],
            ..volume()
        },
    )
    .plan();
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec![reason::DEVICE_MISMATCH]);
}

// ---- Tags (rule 5) ----

#[test]
fn spec_tags_are_set_and_tags_others_added_are_left_alone() {
    let plan = Case::existing(
        EbsVolumeSpec {
            tags: tags(&[("team", "data"), ("env", "prod")]),
            ..spec()
        },
        ObservedVolume {
            tags: tags(&[("team", "web"), ("backup", "daily"), ("env", "prod")]),
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
                tags: tags(&[("team", "data"), ("old", "x"), ("backup", "daily")]),
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
                tags: tags(&[("team", "data")]),
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
                tags: tags(&[
                    ("aws:cloudformation:stack-name", "s"),
                    ("ec2.reconciler.dev/owner-uid", "u"),
                ]),
                ..volume()
            },
        )
    }
    .plan();
    assert!(plan.actions.is_empty());
    assert!(is_protected_tag("aws:backup"));
    assert!(is_protected_tag("ec2.reconciler.dev/owner-uid"));
    assert!(!is_protected_tag("team"));
}

// ---- Drift (rule 6) ----

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

// ---- Delete (rule 7) ----

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
            volume_id: VOL.into()
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
    assert_eq!(
        plan.actions,
        vec![VolumeAction::MarkReleased {
            volume_id: VOL.into()
        }]
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
            pending_create: Some(PendingCreate {
                client_token: "t".into(),
                attempt: 0,
            }),
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

// ---- Waiting and conditions ----

#[test]
fn the_requeue_delay_grows_while_aws_keeps_working() {
    assert_eq!(waiting_delay(TimeDelta::zero()), Duration::from_secs(5));
    assert_eq!(
        waiting_delay(TimeDelta::minutes(3)),
        Duration::from_secs(30)
    );
    assert_eq!(waiting_delay(TimeDelta::hours(6)), Duration::from_secs(300));
    let delay_after = |started| {
        Case {
            modification: Some(modification(ModificationState::Optimizing, started)),
            ..Case::existing(spec(), volume())
        }
        .plan()
        .requeue_after
    };
    assert!(delay_after(minutes_ago(1)) < delay_after(minutes_ago(20)));
}

#[test]
fn without_a_start_time_from_aws_waiting_is_measured_from_when_progressing_began() {
    let plan = Case {
        status: EbsVolumeStatus {
            conditions: vec![progressing_since(minutes_ago(10))],
            ..created()
        },
        ..Case::existing(
            spec(),
            ObservedVolume {
                state: VolumeState::Creating,
                ..volume()
            },
        )
    }
    .plan();
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(100)));
}

#[test]
fn problems_become_synced_false_with_their_reason_and_every_message() {
    let plan = Case {
        instance_zones: Some(BTreeMap::new()),
        ..Case::existing(
            EbsVolumeSpec {
                size_gib: Some(50),
                attachments: vec![wants("i-0aaaaaaaaaaaaaaaa", "/dev/sdf")],
                ..spec()
            },
            volume(),
        )
    }
    .plan();
    let conditions = plan.conditions();
    let synced = conditions.iter().find(|c| c.type_ == SYNCED);
    assert_eq!(
        synced.map(|c| (c.status, c.reason.as_str())),
        Some((ConditionStatus::False, reason::INSTANCE_NOT_FOUND))
    );
    assert!(synced.is_some_and(|c| c.message.contains("cannot shrink")));
    assert_eq!(conditions.len(), 3);
}
