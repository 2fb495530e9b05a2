//! Everything the planner needs from AWS for one EbsVolume, read through the batched
//! observer (never a per-object Describe of the volume in steady state).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::EbsVolume;
use crate::api::conditions::{ConditionStatus, PROGRESSING, find};
use crate::api::intent::find_intent;
use crate::aws::errors::AwsError;
use crate::aws::observer::volumes::{VolumeEntry, VolumeObserver};
use crate::plan::ebs_volume::FINAL_SNAPSHOT_STEP;
use crate::plan::observed::{
    ModificationState, ObservedInstance, ObservedModification, ObservedSnapshot, ObservedVolume,
    VolumeState,
};
use crate::plan::tags::{MIGRATING_TAG, REPLACED_BY_TAG, STEP_TAG, is_ours};
use crate::reconcile::aws_errors::from_aws;
use crate::reconcile::error::Result;
use crate::reconcile::pipeline::Pass;
use crate::reconcile::rechecks::Cause;

/// How old a snapshot sweep may be when looking for a requested final snapshot by its
/// tags: fresh enough to find it soon, shared by every object waiting in the Region.
const FINAL_SNAPSHOT_LOOKUP_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// What AWS told us about this object's volume.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub volume: Option<ObservedVolume>,
    pub modification: Option<ObservedModification>,
    pub kms_key_arn: Option<String>,
    /// The instances the spec wants attached and that are not yet, by id; `None` when no
    /// instance needed looking up.
    pub instances: Option<BTreeMap<String, ObservedInstance>>,
    pub final_snapshot: Option<ObservedSnapshot>,
}

/// The volume this object tracks: the one it created (status) or the one it adopts (spec).
pub fn tracked_volume_id(obj: &EbsVolume) -> Option<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .or_else(|| obj.spec.volume_id.clone())
}

/// The last pass left the object progressing: AWS was still working on something.
fn awaiting_aws(obj: &EbsVolume) -> bool {
    obj.status
        .as_ref()
        .and_then(|s| find(&s.conditions, PROGRESSING))
        .is_some_and(|c| c.status == ConditionStatus::True)
}

/// How a volume AWS is working on is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Still `creating`: in the next paced read of every creating volume.
    Poll,
    /// A modification may have moved on: the volume and its modification, by id.
    InFull,
    /// Anything else: the volume by id (its modification carried over).
    Refresh,
}

impl Read {
    /// Reads volume `id` this way, merged with other objects' reads.
    pub async fn read(
        self,
        volumes: &Arc<VolumeObserver>,
        id: &str,
    ) -> std::result::Result<Option<VolumeEntry>, AwsError> {
        match self {
            Read::Poll => volumes.poll(id).await,
            Read::InFull => volumes.refresh_in_full(id).await,
            Read::Refresh => volumes.refresh(id).await,
        }
    }
}

/// How to read the volume `status` describes.
pub fn read_for(status: Option<&crate::api::EbsVolumeStatus>) -> Read {
    let Some(status) = status else {
        return Read::Refresh;
    };
    if status.state.as_deref() == Some(VolumeState::Creating.as_str()) {
        return Read::Poll;
    }
    let modifying = status.modification.as_ref().is_some_and(|m| {
        ModificationState::parse(&m.state).is_some_and(|s| {
            matches!(
                s,
                ModificationState::Modifying | ModificationState::Optimizing
            )
        })
    });
    if modifying || modification_not_shown(status) {
        Read::InFull
    } else {
        Read::Refresh
    }
}

/// Status records a modification started since the one it shows (or it shows none): AWS
/// may not have shown it when the volume was last read (a restart while ModifyVolume was
/// in flight), so its modification is read, not carried over.
fn modification_not_shown(status: &crate::api::EbsVolumeStatus) -> bool {
    // The recorded time is taken just before the call, AWS's start time after it.
    let shown_since = status
        .modification
        .as_ref()
        .and_then(|m| m.start_time)
        .map(|t| t + chrono::TimeDelta::minutes(10));
    status
        .recent_modifications
        .iter()
        .max()
        .is_some_and(|recorded| shown_since.is_none_or(|shown| shown < *recorded))
}

pub async fn observe(pass: &Pass<'_, EbsVolume>) -> Result<Observation> {
    let obj = pass.obj;
    let mut observation = Observation::default();
    let volumes = pass.ctx.aws.volumes(&pass.scope);

    if let Some(volume_id) = tracked_volume_id(obj) {
        // While AWS is still working on the volume, read it afresh each pass (merged with
        // other objects' reads); in steady state the shared sweep answers. A volume being
        // created is polled: one read per poll interval for every creating volume of the
        // Region. One whose status shows a modification in flight has it read too.
        let entry = if awaiting_aws(obj) {
            read_for(obj.status.as_ref())
                .read(&volumes, &volume_id)
                .await
        } else {
            volumes.get(&volume_id).await
        }
        .map_err(|e| from_aws("DescribeVolumes", e))?;
        if let Some(entry) = entry {
            observation.volume = Some(entry.volume);
            observation.modification = entry.modification.map(|m| *m);
        }
        follow_replacement(pass, &mut observation).await?;
        if let Some(v) = &observation.volume
            && v.tags.contains_key(MIGRATING_TAG)
        {
            // Looked at again as soon as the migration hands the volume over.
            pass.recheck_when(Cause::VolumeMigrating {
                scope: pass.scope.clone(),
                volume_id: v.volume_id.clone(),
            });
        }
    }

    // Deleting needs no key: a missing or disabled one must not keep the object forever.
    if !pass.deleting
        && let Some(key) = &obj.spec.kms_key_id
    {
        observation.kms_key_arn = Some(pass.usable_key(key).await?.arn);
    }

    observation.instances = wanted_instances(pass, observation.volume.as_ref()).await?;

    if pass.deleting {
        observation.final_snapshot = final_snapshot(pass).await?;
    }
    Ok(observation)
}

/// A migration replaced the tracked volume (its replaced-by tag names the new one): the
/// object tracks the new volume from now on, if that one carries this object's ownership
/// tags (the migration gave it them when it made it).
async fn follow_replacement(
    pass: &Pass<'_, EbsVolume>,
    observation: &mut Observation,
) -> Result<()> {
    let Some(new_id) = observation
        .volume
        .as_ref()
        .and_then(|v| v.tags.get(REPLACED_BY_TAG))
    else {
        return Ok(());
    };
    let entry = pass
        .ctx
        .aws
        .volumes(&pass.scope)
        .refresh(new_id)
        .await
        .map_err(|e| from_aws("DescribeVolumes", e))?;
    if let Some(entry) = entry.filter(|e| is_ours(&e.volume.tags, &pass.owner.uid)) {
        observation.volume = Some(entry.volume);
        observation.modification = entry.modification.map(|m| *m);
    }
    Ok(())
}

/// The final snapshot of a deletion: by the id the create returned, or, when only its
/// intent is recorded (the answer was lost), by the tags it was created with. Each pass
/// reads it afresh, merged with every other object's reads in the Region.
async fn final_snapshot(pass: &Pass<'_, EbsVolume>) -> Result<Option<ObservedSnapshot>> {
    let snapshots = pass.ctx.aws.snapshots(&pass.scope);
    let status = pass.obj.status.as_ref();
    if let Some(id) = status.and_then(|s| s.final_snapshot_id.as_deref()) {
        return snapshots
            .refresh(id)
            .await
            .map_err(|e| from_aws("DescribeSnapshots", e));
    }
    if status.is_some_and(|s| find_intent(&s.intents, FINAL_SNAPSHOT_STEP).is_some()) {
        let found = snapshots
            .owned_by_recently(&pass.owner.uid, FINAL_SNAPSHOT_LOOKUP_AGE)
            .await
            .map_err(|e| from_aws("DescribeSnapshots", e))?;
        return Ok(found
            .into_iter()
            .find(|s| s.tags.get(STEP_TAG) == Some(FINAL_SNAPSHOT_STEP)));
    }
    Ok(None)
}

/// Looks up only the instances the spec wants attached but that are not attached yet, so a
/// converged volume costs no DescribeInstances.
async fn wanted_instances(
    pass: &Pass<'_, EbsVolume>,
    volume: Option<&ObservedVolume>,
) -> Result<Option<BTreeMap<String, ObservedInstance>>> {
    let attached: BTreeSet<&str> = volume
        .map(|v| {
            v.attachments
                .iter()
                .map(|a| a.instance_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let wanted: Vec<String> = pass
        .obj
        .spec
        .attachments
        .iter()
        .map(|a| a.instance_id.clone())
        .filter(|id| !attached.contains(id.as_str()))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    // Read at most once per resync (merged with every other object's reads within the
    // observer's window): an instance found missing stays missing until then, instead of
    // costing a DescribeInstances on every pass.
    let reader = pass.ctx.aws.instances(&pass.scope);
    let max_age = pass.ctx.settings.resync_interval;
    let reads = wanted.iter().map(|id| reader.get_recent(id, max_age));
    let found: BTreeMap<String, ObservedInstance> = futures::future::try_join_all(reads)
        .await
        .map_err(|e| from_aws("DescribeInstances", e))?
        .into_iter()
        .flatten()
        .map(|instance| (instance.instance_id.clone(), instance))
        .collect();
    for missing in wanted.iter().filter(|id| !found.contains_key(*id)) {
        pass.recheck_when(Cause::InstanceMissing {
            scope: pass.scope.clone(),
            instance_id: missing.clone(),
        });
    }
    Ok(Some(found))
}
