//! One action, one AWS call. Intent is recorded in status before any call that AWS does not
//! make idempotent by itself; everything the call needs comes from the action.

use crate::api::EbsVolume;
use crate::api::EbsVolumeStatus;
use crate::api::intent::{Intent, drop_intent, put_intent, recorded_or_put};
use crate::aws::client::{
    AttachVolumeRequest, CreateSnapshotRequest, CreateVolumeRequest, DetachVolumeRequest,
    ModifyVolumeRequest,
};
use crate::aws::errors::AwsError;
use crate::aws::tokens::client_token;
use crate::plan::ebs_volume::{CREATE_STEP, FINAL_SNAPSHOT_STEP, VolumeAction};
use crate::reconcile::aws_errors::{INSTANCE_NOT_FOUND, SNAPSHOT_NOT_FOUND, from_aws};
use crate::reconcile::error::{Error, Result};
use crate::reconcile::pipeline::Pass;
use crate::reconcile::rechecks::Cause;
use crate::reconcile::status::StatusWriter;

pub async fn run(
    pass: &Pass<'_, EbsVolume>,
    action: &VolumeAction,
    status: &mut EbsVolumeStatus,
    writer: &mut StatusWriter<'_, EbsVolume>,
) -> Result<()> {
    let ec2 = pass.ec2();
    match action {
        VolumeAction::Create(create) => {
            // The token is in status before the call: a restart replays the same token and
            // AWS answers with the same volume instead of making a second one.
            let intent = recorded_or_put(
                &mut status.intents,
                Intent {
                    step: CREATE_STEP.to_owned(),
                    client_token: Some(client_token(&pass.owner.uid, CREATE_STEP, 0)),
                    attempt: 0,
                    requested_at: pass.now,
                    lookup_tags: Default::default(),
                },
            );
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
                client_token: intent.client_token.clone().unwrap_or_default(),
                tags: create.tags.clone(),
            };
            match ec2.create_volume(request).await {
                Ok(volume) => {
                    // Written with the rest of the pass (what AWS shows of the new volume,
                    // and its conditions): the intent already makes a replay safe.
                    status.volume_id = Some(volume.volume_id.clone());
                    status.state = Some(volume.state.as_str().to_owned());
                    // The grace for a new volume to become visible runs from the call, which
                    // may have been deferred long after the intent was recorded (its rate
                    // token was far off): measured from the intent, a volume created after
                    // an hour in the queue would look deleted at its first read.
                    put_intent(
                        &mut status.intents,
                        Intent {
                            requested_at: pass.ctx.clock.now(),
                            ..intent
                        },
                    );
                }
                Err(AwsError::IdempotentParameterMismatch { message }) => {
                    // The token was used with other parameters (or burned by a failed
                    // create): the next attempt gets a new one.
                    let attempt = intent.attempt + 1;
                    put_intent(
                        &mut status.intents,
                        Intent {
                            client_token: Some(client_token(&pass.owner.uid, CREATE_STEP, attempt)),
                            attempt,
                            ..intent
                        },
                    );
                    writer.write(status).await?;
                    return Err(Error::Retryable {
                        reason: "ClientTokenReused",
                        message,
                    });
                }
                Err(e) => {
                    let error = from_aws("CreateVolume", e);
                    if let Some(snapshot_id) = &create.snapshot_id
                        && error.reason() == SNAPSHOT_NOT_FOUND
                    {
                        pass.recheck_when(Cause::SnapshotMissing {
                            scope: pass.scope.clone(),
                            snapshot_id: snapshot_id.clone(),
                        });
                    }
                    if matches!(error, Error::Terminal { .. }) {
                        // Refused outright: nothing was created, so there is no create to
                        // replay (a delete then finishes at once).
                        drop_intent(&mut status.intents, CREATE_STEP);
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
                multi_attach_enabled: modify.multi_attach_enabled.as_ref().map(|c| c.to),
            };
            if let Err(e) = ec2.modify_volume(request).await {
                // Rejected (or throttled): AWS did not count it. Otherwise the record stays,
                // and the planner waits for it to show up instead of starting another.
                if e.proves_nothing_happened() {
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
            if let Err(e) = ec2.attach_volume(request).await {
                let error = from_aws("AttachVolume", e);
                if error.reason() == INSTANCE_NOT_FOUND {
                    pass.recheck_when(Cause::InstanceMissing {
                        scope: pass.scope.clone(),
                        instance_id: instance_id.clone(),
                    });
                }
                return Err(error);
            }
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
        VolumeAction::CreateFinalSnapshot {
            volume_id,
            description,
            tags,
        } => {
            // CreateSnapshot takes no client token: the intent, with the tags the snapshot
            // carries from its first instant, is what a restart finds it by.
            put_intent(
                &mut status.intents,
                Intent {
                    step: FINAL_SNAPSHOT_STEP.to_owned(),
                    client_token: None,
                    attempt: 0,
                    requested_at: pass.now,
                    lookup_tags: tags.clone(),
                },
            );
            writer.write(status).await?;
            let request = CreateSnapshotRequest {
                volume_id: volume_id.clone(),
                description: Some(description.clone()),
                tags: tags.clone(),
            };
            match ec2.create_snapshot(request).await {
                Ok(snapshot) => {
                    status.final_snapshot_id = Some(snapshot.snapshot_id);
                    drop_intent(&mut status.intents, FINAL_SNAPSHOT_STEP);
                    writer.write(status).await?;
                }
                Err(e) => {
                    if e.proves_nothing_happened() {
                        drop_intent(&mut status.intents, FINAL_SNAPSHOT_STEP);
                        writer.write(status).await?;
                    }
                    return Err(from_aws("CreateSnapshot", e));
                }
            }
        }
        VolumeAction::Delete { volume_id } => {
            ec2.delete_volume(volume_id.clone())
                .await
                .map_err(|e| from_aws("DeleteVolume", e))?;
        }
    }
    Ok(())
}
