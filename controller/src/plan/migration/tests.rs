use std::collections::BTreeMap;

use super::*;
use crate::api::migration::{InstanceStopPolicy, MigrationSource, SourceVolumePolicy};
use crate::plan::observed::{AttachmentState, InstanceDevice, ObservedAttachment, VolumeState};
use crate::plan::tags::{Tags, ownership_tags};
use crate::plan::tenancy::reason::NOT_GRANTED;

const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1111";
const SOURCE: &str = "vol-0000000000000000a";
const TARGET: &str = "vol-0000000000000000b";
const INSTANCE: &str = "i-0000000000000000a";

fn owner() -> Owner {
    Owner {
        cluster: "prod".into(),
        kind: "EncryptedVolumeMigration".into(),
        namespace: "team-a".into(),
        name: "encrypt".into(),
        uid: "uid-m".into(),
    }
}

fn spec() -> EncryptedVolumeMigrationSpec {
    EncryptedVolumeMigrationSpec {
        region: None,
        source: MigrationSource {
            volume_ref: None,
            volume_id: Some(SOURCE.into()),
        },
        kms_key_id: Some("alias/data".into()),
        instance_stop_policy: InstanceStopPolicy::StopIfRunning,
        restart_instance: true,
        allow_instance_store_data_loss: false,
        source_volume_policy: SourceVolumePolicy::Retain,
        keep_snapshots: false,
        rollback_on_failure: true,
    }
}

fn attached(volume_id: &str, state: AttachmentState) -> ObservedVolume {
    ObservedVolume {
        state: VolumeState::InUse,
        attachments: vec![ObservedAttachment {
            instance_id: INSTANCE.into(),
            device: "/dev/sdf".into(),
            state,
        }],
        ..ObservedVolume::example(volume_id, "us-east-1a")
    }
}

fn instance(state: &str) -> ObservedInstance {
    ObservedInstance {
        instance_id: INSTANCE.into(),
        state: Some(state.into()),
        instance_type: Some("t3.micro".into()),
        root_device_type: Some("ebs".into()),
        devices: vec![InstanceDevice {
            device_name: "/dev/sdf".into(),
            volume_id: SOURCE.into(),
            delete_on_termination: true,
        }],
        ..ObservedInstance::default()
    }
}

fn snapshot(id: &str, state: &str, encrypted: bool) -> ObservedSnapshot {
    ObservedSnapshot {
        snapshot_id: id.into(),
        volume_id: None,
        state: state.into(),
        progress: Some(if state == "completed" { 100 } else { 40 }),
        encrypted,
        kms_key_id: encrypted.then(|| KEY.to_owned()),
        volume_size_gib: Some(100),
        tags: Tags::default(),
        start_time: None,
    }
}

/// One planner input, owned, with a granted namespace.
struct Case {
    spec: EncryptedVolumeMigrationSpec,
    status: EncryptedVolumeMigrationStatus,
    grants: Grants,
    source_ref: SourceRef,
    source: Option<ObservedVolume>,
    instance: Option<ObservedInstance>,
    store_gb: Option<i64>,
    snapshots: (Option<ObservedSnapshot>, Option<ObservedSnapshot>),
    target: Option<ObservedVolume>,
    tracks: Option<String>,
    deleting: bool,
}

impl Case {
    fn new() -> Self {
        Self {
            spec: spec(),
            status: EncryptedVolumeMigrationStatus::default(),
            grants: Grants::SINGLE_TENANT,
            source_ref: SourceRef::ById,
            source: Some(attached(SOURCE, AttachmentState::Attached)),
            instance: Some(instance("running")),
            store_gb: Some(0),
            snapshots: (None, None),
            target: None,
            tracks: None,
            deleting: false,
        }
    }

    fn plan(&self) -> MigrationPlan {
        let owner = owner();
        plan_migration(&MigrationInput {
            spec: &self.spec,
            status: &self.status,
            owner: &owner,
            grants: self.grants,
            source_ref: &self.source_ref,
            source_volume: self.source.as_ref(),
            instance: self.instance.as_ref(),
            instance_store_gb: self.store_gb,
            key_arn: Some(KEY),
            source_snapshot: self.snapshots.0.as_ref(),
            encrypted_snapshot: self.snapshots.1.as_ref(),
            found_snapshots: &[],
            target_volume: self.target.as_ref(),
            ebs_volume_tracks: self.tracks.as_deref(),
            deleting: self.deleting,
            now: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        })
    }

    /// The status after `plan` was recorded.
    fn after(&mut self, plan: &MigrationPlan) {
        plan.record.apply(&mut self.status);
    }
}

fn reasons(plan: &MigrationPlan) -> Vec<&'static str> {
    plan.problems.iter().map(|p| p.reason).collect()
}

#[test]
fn a_running_instance_is_stopped_first_and_what_it_needs_is_recorded_before() {
    let plan = Case::new().plan();
    assert_eq!(
        plan.actions,
        [MigrationAction::StopInstance {
            instance_id: INSTANCE.into()
        }]
    );
    let r = &plan.record;
    assert_eq!(r.phase, Phase::Stopping);
    assert!(r.instance_stopped_by_migration);
    assert_eq!(r.device.as_deref(), Some("/dev/sdf"));
    assert_eq!(r.delete_on_termination, Some(true));
    assert_eq!(r.kms_key_arn.as_deref(), Some(KEY));
}

#[test]
fn wait_for_stopped_never_stops_the_instance() {
    let mut case = Case::new();
    case.spec.instance_stop_policy = InstanceStopPolicy::WaitForStopped;
    let plan = case.plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.ready.reason, "WaitingForInstanceStop");
    assert!(!plan.record.instance_stopped_by_migration);
}

#[test]
fn the_snapshot_is_taken_only_once_the_instance_is_stopped() {
    let mut case = Case::new();
    let first = case.plan();
    case.after(&first);
    case.instance = Some(instance("stopping"));
    assert!(case.plan().actions.is_empty(), "no snapshot while stopping");
    case.instance = Some(instance("stopped"));
    let plan = case.plan();
    assert!(matches!(
        plan.actions.as_slice(),
        [MigrationAction::CreateSnapshot { volume_id, tags }]
            if volume_id == SOURCE && tags.get(crate::plan::tags::STEP_TAG).map(String::as_str) == Some(SNAPSHOT_STEP)
    ));
    assert_eq!(plan.record.phase, Phase::Snapshotting);
}

#[test]
fn an_unattached_volume_has_no_instance_step() {
    let mut case = Case::new();
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    case.instance = None;
    let plan = case.plan();
    assert!(matches!(
        plan.actions.as_slice(),
        [MigrationAction::CreateSnapshot { .. }]
    ));
    assert_eq!(plan.record.instance_id, None);
}

/// Changes a case into one the planner must refuse.
type Setup = Box<dyn Fn(&mut Case)>;

#[test]
fn refusals_before_any_change() {
    let cases: Vec<(&str, Setup)> = vec![
        (
            "AttachedToSeveralInstances",
            Box::new(|c: &mut Case| {
                if let Some(v) = c.source.as_mut() {
                    v.multi_attach_enabled = true;
                    v.attachments.push(ObservedAttachment {
                        instance_id: "i-0000000000000000b".into(),
                        device: "/dev/sdf".into(),
                        state: AttachmentState::Attached,
                    });
                }
            }),
        ),
        (
            "InstanceStoreDataLoss",
            Box::new(|c: &mut Case| c.store_gb = Some(75)),
        ),
        (
            "InstanceStoreBacked",
            Box::new(|c: &mut Case| {
                if let Some(i) = c.instance.as_mut() {
                    i.root_device_type = Some("instance-store".into());
                }
            }),
        ),
        (
            "InstanceTerminated",
            Box::new(|c: &mut Case| c.instance = Some(instance("terminated"))),
        ),
        (
            "VolumeInError",
            Box::new(|c: &mut Case| {
                if let Some(v) = c.source.as_mut() {
                    v.state = VolumeState::Error;
                }
            }),
        ),
        (
            "AlreadyEncrypted",
            Box::new(|c: &mut Case| {
                if let Some(v) = c.source.as_mut() {
                    v.encrypted = true;
                    v.kms_key_id = Some(KEY.into());
                }
            }),
        ),
        ("VolumeNotFound", Box::new(|c: &mut Case| c.source = None)),
        (
            NOT_GRANTED,
            Box::new(|c: &mut Case| c.grants = Grants::DEFAULT),
        ),
    ];
    for (reason, setup) in cases {
        let mut case = Case::new();
        setup(&mut case);
        let plan = case.plan();
        assert_eq!(reasons(&plan), [reason], "{reason}");
        assert!(plan.actions.is_empty(), "{reason}: {:?}", plan.actions);
        assert_eq!(plan.record.phase, Phase::Pending, "{reason}");
    }
}

#[test]
fn instance_store_data_loss_is_accepted_when_the_spec_says_so() {
    let mut case = Case::new();
    case.store_gb = Some(75);
    case.spec.allow_instance_store_data_loss = true;
    assert_eq!(reasons(&case.plan()), Vec::<&str>::new());
}

#[test]
fn a_volume_under_another_key_is_re_keyed() {
    let mut case = Case::new();
    if let Some(v) = case.source.as_mut() {
        v.encrypted = true;
        v.kms_key_id = Some("arn:aws:kms:us-east-1:123456789012:key/old".into());
    }
    assert!(case.plan().problems.is_empty());
}

#[test]
fn a_volume_referenced_through_its_ebs_volume_is_its_own() {
    let mut case = Case::new();
    let ebs_owner = Owner {
        kind: "EbsVolume".into(),
        name: "data".into(),
        uid: "uid-v".into(),
        ..owner()
    };
    if let Some(v) = case.source.as_mut() {
        v.tags = ownership_tags(&ebs_owner, None).into();
    }
    case.grants = Grants::DEFAULT;
    let by_id = case.plan();
    assert!(
        by_id
            .problems
            .first()
            .is_some_and(|p| p.message.contains("source.volumeRef")),
        "{:?}",
        by_id.problems
    );
    case.source_ref = SourceRef::ByRef {
        name: "data".into(),
        ebs_volume: Some(ReferencedVolume {
            uid: "uid-v".into(),
            volume_id: Some(SOURCE.into()),
        }),
    };
    if let Some(i) = case.instance.as_mut() {
        i.tags.insert(crate::plan::tenancy::GRANT_TAG, "team-a");
    }
    assert_eq!(reasons(&case.plan()), Vec::<&str>::new());
}

/// A status in `phase` with every id recorded.
fn in_phase(case: &mut Case, phase: Phase) {
    case.status.phase = Some(phase.as_str().into());
    case.status.source_volume_id = Some(SOURCE.into());
    case.status.instance_id = Some(INSTANCE.into());
    case.status.device = Some("/dev/sdf".into());
    case.status.delete_on_termination = Some(true);
    case.status.kms_key_arn = Some(KEY.into());
    case.status.instance_stopped_by_migration = Some(true);
    case.status.source_snapshot_id = Some("snap-a".into());
    case.status.encrypted_snapshot_id = Some("snap-b".into());
    case.status.target_volume_id = Some(TARGET.into());
    case.snapshots = (
        Some(snapshot("snap-a", "completed", false)),
        Some(snapshot("snap-b", "completed", true)),
    );
}

fn new_volume() -> ObservedVolume {
    ObservedVolume {
        encrypted: true,
        kms_key_id: Some(KEY.into()),
        ..ObservedVolume::example(TARGET, "us-east-1a")
    }
}

#[test]
fn the_swap_detaches_the_old_volume_before_attaching_the_new_one_at_its_device() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::CreatingVolume);
    case.instance = Some(instance("stopped"));
    case.target = Some(new_volume());
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::Swapping);
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::Detach { volume_id, .. }] if volume_id == SOURCE)
    );
    case.after(&plan);
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    let plan = case.plan();
    assert_eq!(
        plan.actions,
        [MigrationAction::Attach {
            volume_id: TARGET.into(),
            instance_id: INSTANCE.into(),
            device: "/dev/sdf".into()
        }]
    );
    // Attached: DeleteOnTermination as the original had it, then the start.
    case.target = Some(ObservedVolume {
        encrypted: true,
        kms_key_id: Some(KEY.into()),
        ..attached(TARGET, AttachmentState::Attached)
    });
    let mut stopped = instance("stopped");
    stopped.devices[0] = InstanceDevice {
        device_name: "/dev/sdf".into(),
        volume_id: TARGET.into(),
        delete_on_termination: false,
    };
    case.instance = Some(stopped.clone());
    assert!(matches!(
        case.plan().actions.as_slice(),
        [MigrationAction::SetDeleteOnTermination { .. }]
    ));
    stopped.devices[0].delete_on_termination = true;
    case.instance = Some(stopped);
    let plan = case.plan();
    assert!(matches!(
        plan.actions.as_slice(),
        [MigrationAction::StartInstance { .. }]
    ));
    assert!(plan.record.instance_start_requested);
}

#[test]
fn a_start_that_aws_turns_back_rolls_the_volume_back() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::Starting);
    case.status.instance_start_requested = Some(true);
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    case.target = Some(ObservedVolume {
        encrypted: true,
        kms_key_id: Some(KEY.into()),
        ..attached(TARGET, AttachmentState::Attached)
    });
    let mut refused = instance("stopped");
    refused.state_reason = Some("Client.InvalidKMSKey.InvalidState".into());
    case.instance = Some(refused);
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::RollingBack);
    assert!(
        plan.record
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("InvalidKMSKey"))
    );
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::Detach { volume_id, .. }] if volume_id == TARGET)
    );
    assert_eq!(plan.ready.reason, "RollingBack");

    // Without rollback it stops there, and says so.
    case.spec.rollback_on_failure = false;
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::Failed);
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), ["MigrationFailed"]);
}

#[test]
fn a_rollback_puts_the_original_back_starts_the_instance_and_deletes_what_it_made() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::RollingBack);
    case.status.failure = Some("AttachVolume failed".into());
    case.instance = Some(instance("stopped"));
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    case.target = Some(new_volume());
    let plan = case.plan();
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::Attach { volume_id, .. }] if volume_id == SOURCE)
    );
    case.source = Some(attached(SOURCE, AttachmentState::Attached));
    assert!(matches!(
        case.plan().actions.as_slice(),
        [MigrationAction::StartInstance { .. }]
    ));
    case.instance = Some(instance("running"));
    assert!(
        matches!(case.plan().actions.as_slice(), [MigrationAction::DeleteVolume { volume_id }] if volume_id == TARGET)
    );
    case.target = None;
    assert!(
        matches!(case.plan().actions.as_slice(), [MigrationAction::DeleteSnapshot { snapshot_id }] if snapshot_id == "snap-b")
    );
    case.snapshots = (None, None);
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::RolledBack);
    assert_eq!(reasons(&plan), ["RolledBack"]);
}

#[test]
fn a_migration_deleted_in_flight_rolls_back_before_its_finalizer_goes() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::Copying);
    case.status.target_volume_id = None;
    case.status.encrypted_snapshot_id = None;
    case.snapshots.1 = None;
    case.instance = Some(instance("stopped"));
    case.deleting = true;
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::RollingBack);
    assert!(!plan.finished);
    assert!(matches!(
        plan.actions.as_slice(),
        [MigrationAction::StartInstance { .. }]
    ));
    case.instance = Some(instance("running"));
    case.snapshots = (None, None);
    let plan = case.plan();
    assert!(plan.finished, "{plan:?}");
}

#[test]
fn a_completed_migration_verifies_and_cleans_up_then_rests() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::Verifying);
    case.spec.source_volume_policy = SourceVolumePolicy::Delete;
    case.instance = Some(instance("running"));
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    case.target = Some(ObservedVolume {
        encrypted: true,
        kms_key_id: Some(KEY.into()),
        ..attached(TARGET, AttachmentState::Attached)
    });
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::CleaningUp);
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::DeleteVolume { volume_id }] if volume_id == SOURCE)
    );
    case.source = None;
    case.snapshots = (None, None);
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::Completed);
    assert!(plan.ready.status, "{:?}", plan.ready);
    assert!(plan.actions.is_empty() && plan.waits.is_empty());
}

#[test]
fn a_new_volume_under_the_wrong_key_fails_verification() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::Verifying);
    case.instance = Some(instance("running"));
    case.target = Some(ObservedVolume {
        encrypted: true,
        kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/other".into()),
        ..attached(TARGET, AttachmentState::Attached)
    });
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::RollingBack);
}

#[test]
fn unknown_phase_words_are_never_acted_on() {
    assert_eq!(Phase::parse(Some("Teleporting")), Phase::Failed);
    assert_eq!(Phase::parse(None), Phase::Pending);
    for phase in Phase::FORWARD {
        assert_eq!(Phase::parse(Some(phase.as_str())), phase);
    }
}

/// A migration of the volume EbsVolume `data` tracks.
fn by_ref() -> (Case, BTreeMap<String, String>) {
    let mut case = Case::new();
    let ebs_owner = Owner {
        kind: "EbsVolume".into(),
        name: "data".into(),
        uid: "uid-v".into(),
        ..owner()
    };
    let tags = ownership_tags(&ebs_owner, None);
    if let Some(v) = case.source.as_mut() {
        v.tags = Tags::from(&tags);
        v.tags.insert("team", "web");
    }
    case.source_ref = SourceRef::ByRef {
        name: "data".into(),
        ebs_volume: Some(ReferencedVolume {
            uid: "uid-v".into(),
            volume_id: Some(SOURCE.into()),
        }),
    };
    (case, tags)
}

#[test]
fn an_ebs_volumes_volume_is_marked_before_anything_changes_and_its_new_volume_is_the_ebs_volumes() {
    use crate::plan::tags::{MIGRATED_FROM_TAG, MIGRATING_TAG, UID_TAG};
    let (mut case, ebs_tags) = by_ref();
    let plan = case.plan();
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::TagVolumes { volume_ids, tags }]
            if volume_ids == &[SOURCE.to_owned()] && tags.contains_key(MIGRATING_TAG)),
        "{:?}",
        plan.actions
    );
    assert_eq!(
        plan.record.ebs_volume,
        Some(("data".into(), "uid-v".into()))
    );
    case.after(&plan);

    in_phase(&mut case, Phase::CreatingVolume);
    case.status.target_volume_id = None;
    if let Some(v) = case.source.as_mut() {
        v.tags.insert(MIGRATING_TAG, "team-a/encrypt");
    }
    let plan = case.plan();
    let [MigrationAction::CreateVolume(new)] = plan.actions.as_slice() else {
        panic!("{:?}", plan.actions);
    };
    for (key, value) in &ebs_tags {
        assert_eq!(new.tags.get(key), Some(value), "{key}");
    }
    assert_eq!(new.tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(
        new.tags.get(MIGRATED_FROM_TAG).map(String::as_str),
        Some(SOURCE)
    );
    assert!(new.tags.contains_key(MIGRATING_TAG));
    assert_eq!(new.tags.get(UID_TAG).map(String::as_str), Some("uid-v"));
}

#[test]
fn the_hand_over_marks_the_old_volume_waits_for_the_ebs_volume_then_lifts_the_marks() {
    use crate::plan::tags::{MIGRATING_TAG, REPLACED_BY_TAG, UID_TAG};
    let (mut case, ebs_tags) = by_ref();
    in_phase(&mut case, Phase::HandingOver);
    case.status.ebs_volume_name = Some("data".into());
    case.status.ebs_volume_uid = Some("uid-v".into());
    case.instance = Some(instance("running"));
    case.source = Some(ObservedVolume {
        tags: Tags::from(&ebs_tags),
        ..ObservedVolume::example(SOURCE, "us-east-1a")
    });
    let mut target = ObservedVolume {
        encrypted: true,
        kms_key_id: Some(KEY.into()),
        tags: Tags::from(&ebs_tags),
        ..attached(TARGET, AttachmentState::Attached)
    };
    target.tags.insert(MIGRATING_TAG, "team-a/encrypt");
    case.target = Some(target);
    case.tracks = Some(SOURCE.into());
    let plan = case.plan();
    let [MigrationAction::TagVolumes { volume_ids, tags }] = plan.actions.as_slice() else {
        panic!("{:?}", plan.actions);
    };
    assert_eq!(volume_ids, &[SOURCE.to_owned()]);
    assert_eq!(tags.get(REPLACED_BY_TAG).map(String::as_str), Some(TARGET));
    assert_eq!(
        tags.get(UID_TAG).map(String::as_str),
        Some("uid-m"),
        "the old one is the migration's now"
    );

    case.source = Some(ObservedVolume {
        tags: Tags::from(tags),
        ..ObservedVolume::example(SOURCE, "us-east-1a")
    });
    assert_eq!(case.plan().ready.reason, "WaitingForEbsVolume");
    case.tracks = Some(TARGET.into());
    assert!(matches!(
        case.plan().actions.as_slice(),
        [MigrationAction::UntagVolumes { volume_ids, .. }] if volume_ids == &[TARGET.to_owned()]
    ));
}

#[test]
fn after_the_new_volume_is_verified_a_deletion_finishes_the_migration_instead_of_undoing_it() {
    let mut case = Case::new();
    in_phase(&mut case, Phase::CleaningUp);
    case.spec.source_volume_policy = SourceVolumePolicy::Delete;
    case.instance = Some(instance("running"));
    case.source = Some(ObservedVolume::example(SOURCE, "us-east-1a"));
    case.deleting = true;
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::CleaningUp);
    assert!(
        matches!(plan.actions.as_slice(), [MigrationAction::DeleteVolume { volume_id }] if volume_id == SOURCE)
    );
    assert!(!plan.finished);
    case.source = None;
    case.snapshots = (None, None);
    let plan = case.plan();
    assert_eq!(plan.record.phase, Phase::Completed);
    assert!(plan.finished);
}

#[test]
fn a_volume_still_being_created_is_waited_for_not_refused() {
    let mut case = Case::new();
    case.source = Some(ObservedVolume {
        state: VolumeState::Creating,
        ..ObservedVolume::example(SOURCE, "us-east-1a")
    });
    let plan = case.plan();
    assert!(
        plan.problems.is_empty() && plan.actions.is_empty(),
        "{plan:?}"
    );
    assert_eq!(plan.ready.reason, "WaitingForVolume");
    assert_eq!(plan.record.phase, Phase::Pending);
}
