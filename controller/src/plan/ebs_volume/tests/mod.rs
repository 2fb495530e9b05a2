//! Planner tests: plain values in, a plan out. One rule per test, named as a sentence, one
//! file per behaviour; the fixtures below are shared by all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::api::common::{DeletionPolicy, ManagementPolicy};
use crate::api::conditions::{Condition, ConditionStatus, PROGRESSING, SYNCED};
use crate::api::ebs_volume::VolumeAttachmentSpec;
use crate::api::intent::Intent;
use crate::api::{EbsVolumeSpec, EbsVolumeStatus, VolumeType};
use crate::plan::observed::{
    AttachmentState, ModificationState, ObservedAttachment, ObservedInstance, ObservedModification,
    ObservedSnapshot, ObservedVolume, VolumeState,
};
use crate::plan::tags::{
    Owner, RELEASED_TAG, Tags, UID_TAG, creation_tags, is_reserved_key, ownership_tags,
};
use crate::plan::tenancy::Grants;

mod attachments;
mod create;
mod delete;
mod drift;
mod migration;
mod modify;
mod ownership;
mod ready;
mod tags;
mod tenancy;
mod waiting;

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
        tags: ownership_tags(&owner(), None).into(),
        create_time: Some(hours_ago(100)),
        ..ObservedVolume::example(VOL, AZ)
    }
}

/// The object the volumes in these tests belong to.
fn adopting_observe_only() -> EbsVolumeSpec {
    EbsVolumeSpec {
        management_policy: ManagementPolicy::ObserveOnly,
        ..adopting()
    }
}

fn owner() -> Owner {
    Owner {
        cluster: "test".into(),
        kind: "EbsVolume".into(),
        namespace: "team-a".into(),
        name: "data".into(),
        uid: "5f0c2a8e-uid".into(),
    }
}

/// Our ownership tags plus these.
fn ours(pairs: &[(&str, &str)]) -> Tags {
    let extra: Vec<(String, String)> = tags(pairs);
    ownership_tags(&owner(), None)
        .into_iter()
        .chain(extra)
        .collect()
}

/// A recorded intent of `step`, requested at `at`.
fn intent(step: &str, at: DateTime<Utc>) -> Intent {
    Intent {
        step: step.into(),
        client_token: Some("t".into()),
        attempt: 0,
        requested_at: at,
        lookup_tags: BTreeMap::new(),
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
        tags: Tags::default(),
        start_time: Some(minutes_ago(3)),
    }
}

/// A map (spec tags, zones) or observed [`Tags`] of these pairs.
fn tags<T: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> T {
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
    owner: Owner,
    status: EbsVolumeStatus,
    observed: Option<ObservedVolume>,
    modification: Option<ObservedModification>,
    kms_key_arn: Option<String>,
    managed_tag_keys: BTreeSet<String>,
    instance_zones: Option<BTreeMap<String, String>>,
    /// Tags of the instances in `instance_zones` (none by default).
    instance_tags: BTreeMap<String, Tags>,
    grants: Grants,
    final_snapshot: Option<ObservedSnapshot>,
    deleting: bool,
    now: DateTime<Utc>,
}

impl Case {
    /// Nothing in AWS, nothing in status.
    fn new(spec: EbsVolumeSpec) -> Self {
        Self {
            spec,
            owner: owner(),
            status: EbsVolumeStatus::default(),
            observed: None,
            modification: None,
            kms_key_arn: None,
            managed_tag_keys: BTreeSet::new(),
            instance_zones: None,
            instance_tags: BTreeMap::new(),
            // Everything granted: tenancy has its own tests (ownership.rs).
            grants: Grants::SINGLE_TENANT,
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
        let instances: Option<BTreeMap<String, ObservedInstance>> =
            self.instance_zones.as_ref().map(|zones| {
                zones
                    .iter()
                    .map(|(id, zone)| {
                        let instance = ObservedInstance {
                            instance_id: id.clone(),
                            availability_zone: Some(zone.clone()),
                            state: Some("running".to_owned()),
                            tags: self.instance_tags.get(id).cloned().unwrap_or_default(),
                            ..ObservedInstance::default()
                        };
                        (id.clone(), instance)
                    })
                    .collect()
            });
        plan_volume(&VolumeInput {
            spec: &self.spec,
            status: &self.status,
            owner: &self.owner,
            observed: self.observed.as_ref(),
            modification: self.modification.as_ref(),
            kms_key_arn: self.kms_key_arn.as_deref(),
            managed_tag_keys: &self.managed_tag_keys,
            instances: instances.as_ref(),
            grants: self.grants,
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
