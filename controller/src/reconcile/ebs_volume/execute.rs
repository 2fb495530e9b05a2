//! Runs the plan's actions in order. Every call the plan names, and nothing else; intent is
//! recorded in status before any call that is not idempotent by itself.

use kube::runtime::events::EventType;

use crate::api::ebs_volume::PendingCreate;
use crate::aws::client::{
    AttachVolumeRequest, CreateSnapshotRequest, CreateVolumeRequest, DetachVolumeRequest, Filter,
    ModifyVolumeRequest,
};
use crate::aws::errors::AwsError;
use crate::aws::tags::{STEP_TAG, UID_TAG, creation_tags, release_changes};
use crate::aws::tokens::client_token;
use crate::plan::ebs_volume::{VolumeAction, describe};
use crate::plan::observed::ObservedVolume;
use crate::reconcile::aws_errors::from_aws;
use crate::reconcile::error::{Error, Result};

use super::Pass;
use super::status::StatusWriter;
use crate::api::EbsVolumeStatus;

/// The step name of a volume's create, in its client token.
const CREATE_STEP: &str = "create";
/// The step tag of the snapshot taken before a delete.
const FINAL_SNAPSHOT_STEP: &str = "final-snapshot";
/// How long a requested snapshot may stay invisible to DescribeSnapshots before the
/// request is taken as lost and made again.
const SNAPSHOT_VISIBILITY_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// Runs one action; returns whether AWS was changed (so the volume should be read again).
pub async fn run(
    pass: &Pass<'_>,
    action: &VolumeAction,
    status: &mut EbsVolumeStatus,
    writer: &mut StatusWriter<'_>,
    observed: Option<&ObservedVolume>,
) -> Result<()> {
    let ec2 = &pass.ec2;
    match action {
        VolumeAction::Create(create) => {
            let pending = status
                .pending_create
                .get_or_insert_with(|| PendingCreate {
                    client_token: client_token(&pass.owner.uid, CREATE_STEP, 0),
                    attempt: 0,
                })
                .clone();
            // The token is in status before the call: a restart replays the same token and
            // AWS answers with the same volume instead of making a second one.
            writer.write(status).await?;
            let request = CreateVolumeRequest {
                availability_zone: create.availability_zone.clone(),
                volume_type: create.volume_type,
                size_gib: create.size_gib,
                iops: create.iops,
                throughput_mibps: create.throughput_mibps,
                encrypted: Some(create.encrypted),
                kms_key_id: create.kms_key_id.clone(),
                multi_attach_enabled: create.multi_attach_enabled,
                snapshot_id: create.snapshot_id.clone(),
                client_token: pending.client_token.clone(),
                tags: creation_tags(&pass.owner, None, &pass.obj.spec.tags),
            };
            match ec2.create_volume(request).await {
                Ok(volume) => {
                    status.volume_id = Some(volume.volume_id.clone());
                    status.state = Some(volume.state.as_str().to_owned());
                    writer.write(status).await?;
                }
                Err(AwsError::IdempotentParameterMismatch { message }) => {
                    // The token was used with other parameters (or burned by a failed
                    // create): the next attempt gets a new one.
                    let attempt = pending.attempt + 1;
                    status.pending_create = Some(PendingCreate {
                        client_token: client_token(&pass.owner.uid, CREATE_STEP, attempt),
                        attempt,
                    });
                    writer.write(status).await?;
                    return Err(Error::Retryable {
                        reason: "ClientTokenReused",
                        message,
                    });
                }
                Err(e) => {
                    let error = from_aws("CreateVolume", e);
                    if matches!(error, Error::Terminal { .. }) {
                        // Refused outright: nothing was created, so there is no create to
                        // replay (a delete then finishes at once).
                        status.pending_create = None;
                        writer.write(status).await?;
                    }
                    return Err(error);
                }
            }
        }
        VolumeAction::Modify(modify) => {
            // Counted before the call: AWS counts a modification toward its 4 per 24 hours
            // once it starts, and a restart must not forget it.
            let started = pass.now;
            status.recent_modifications.push(started);
            writer.write(status).await?;
            let request = ModifyVolumeRequest {
                volume_id: modify.volume_id.clone(),
                size_gib: modify.size_gib.as_ref().map(|c| c.to),
                volume_type: modify.volume_type.as_ref().map(|c| c.to),
                iops: modify.iops.as_ref().map(|c| c.to),
                throughput_mibps: modify.throughput_mibps.as_ref().map(|c| c.to),
            };
            if let Err(e) = ec2.modify_volume(request).await {
                // Rejected (or throttled): AWS did not count it. After a 5xx or a lost
                // response AWS may have started it: the record stays, and the planner waits
                // for it to show up instead of starting another.
                if !matches!(e, AwsError::ServerError { .. } | AwsError::Transport { .. }) {
                    status.recent_modifications.retain(|t| *t != started);
                    writer.write(status).await?;
                }
                return Err(from_aws("ModifyVolume", e));
            }
        }
        VolumeAction::Attach {
            volume_id,
            instance_id,
            device,
        } => {
            let request = AttachVolumeRequest {
                volume_id: volume_id.clone(),
                instance_id: instance_id.clone(),
                device: device.clone(),
            };
            ec2.attach_volume(request)
                .await
                .map_err(|e| from_aws("AttachVolume", e))?;
        }
        VolumeAction::Detach {
            volume_id,
            instance_id,
            device,
            force,
        } => {
            let request = DetachVolumeRequest {
                volume_id: volume_id.clone(),
                instance_id: instance_id.clone(),
                device: Some(device.clone()),
                force: *force,
            };
            ec2.detach_volume(request)
                .await
                .map_err(|e| from_aws("DetachVolume", e))?;
        }
        VolumeAction::SetTags { volume_id, tags } => {
            ec2.create_tags(vec![volume_id.clone()], tags.clone())
                .await
                .map_err(|e| from_aws("CreateTags", e))?;
        }
        VolumeAction::RemoveTags { volume_id, keys } => {
            let keys = keys.iter().cloned().collect();
            ec2.delete_tags(vec![volume_id.clone()], keys)
                .await
                .map_err(|e| from_aws("DeleteTags", e))?;
        }
        VolumeAction::CreateFinalSnapshot { volume_id } => {
            // CreateSnapshot takes no client token: look for ours by tags first, so a
            // restart after the call finds the snapshot instead of taking another.
            let filters = vec![
                Filter::tag(UID_TAG, pass.owner.uid.clone()),
                Filter::tag(STEP_TAG, FINAL_SNAPSHOT_STEP),
            ];
            let existing = ec2
                .describe_snapshots_page(filters, 5, None)
                .await
                .map_err(|e| from_aws("DescribeSnapshots", e))?;
            let snapshot_id = match existing.items.into_iter().next() {
                Some(found) => found.snapshot_id,
                // Requested moments ago but not visible yet: DescribeSnapshots is
                // eventually consistent, so wait rather than take a second snapshot.
                None if status
                    .final_snapshot_requested_at
                    .is_some_and(|at| pass.now - at < SNAPSHOT_VISIBILITY_GRACE) =>
                {
                    return Err(Error::Waiting {
                        reason: "FinalSnapshotRequested",
                        message: format!(
                            "waiting for the final snapshot of {volume_id} to become visible"
                        ),
                        retry_after: std::time::Duration::from_secs(5),
                    });
                }
                None => {
                    status.final_snapshot_requested_at = Some(pass.now);
                    writer.write(status).await?;
                    let request = CreateSnapshotRequest {
                        volume_id: volume_id.clone(),
                        description: Some(format!(
                            "Final snapshot of {} before deletion",
                            pass.owner.owner_ref()
                        )),
                        tags: creation_tags(
                            &pass.owner,
                            Some(FINAL_SNAPSHOT_STEP),
                            &pass.obj.spec.tags,
                        ),
                    };
                    ec2.create_snapshot(request)
                        .await
                        .map_err(|e| from_aws("CreateSnapshot", e))?
                        .snapshot_id
                }
            };
            status.final_snapshot_id = Some(snapshot_id);
            writer.write(status).await?;
        }
        VolumeAction::Delete { volume_id } => {
            ec2.delete_volume(volume_id.clone())
                .await
                .map_err(|e| from_aws("DeleteVolume", e))?;
        }
        VolumeAction::MarkReleased { volume_id } => {
            let changes = release_changes(&observed.map(|v| v.tags.clone()).unwrap_or_default());
            if !changes.to_set.is_empty() {
                ec2.create_tags(vec![volume_id.clone()], changes.to_set)
                    .await
                    .map_err(|e| from_aws("CreateTags", e))?;
            }
            if !changes.to_remove.is_empty() {
                let keys = changes.to_remove.into_iter().collect();
                ec2.delete_tags(vec![volume_id.clone()], keys)
                    .await
                    .map_err(|e| from_aws("DeleteTags", e))?;
            }
        }
    }
    publish(pass, action).await;
    Ok(())
}

/// One event per action taken.
async fn publish(pass: &Pass<'_>, action: &VolumeAction) {
    let reason = match action {
        VolumeAction::Create(_) => "CreatedVolume",
        VolumeAction::Modify(_) => "ModifyingVolume",
        VolumeAction::Attach { .. } => "AttachingVolume",
        VolumeAction::Detach { .. } => "DetachingVolume",
        VolumeAction::SetTags { .. } => "TaggedVolume",
        VolumeAction::RemoveTags { .. } => "UntaggedVolume",
        VolumeAction::CreateFinalSnapshot { .. } => "TookFinalSnapshot",
        VolumeAction::Delete { .. } => "DeletingVolume",
        VolumeAction::MarkReleased { .. } => "ReleasedVolume",
    };
    pass.ctx
        .publish(
            &pass.reference,
            EventType::Normal,
            reason,
            describe(action),
            reason,
        )
        .await;
}
