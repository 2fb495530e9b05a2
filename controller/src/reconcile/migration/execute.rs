//! One migration action as one AWS call. Calls without a client token (CreateSnapshot,
//! CopySnapshot) record their intent, with the tags to find the snapshot by, before they
//! are sent; every id AWS answers is recorded at once. A call AWS refuses for good turns
//! the migration back (or stops it) instead of being retried.

use std::time::Duration;

use kube::runtime::events::EventType;

use crate::api::intent::{Intent, drop_intent, recorded_or_put};
use crate::api::migration::{EncryptedVolumeMigration, EncryptedVolumeMigrationStatus};
use crate::aws::client::{
    AttachVolumeRequest, CopySnapshotRequest, CreateSnapshotRequest, CreateVolumeRequest,
    DetachVolumeRequest,
};
use crate::aws::errors::AwsError;
use crate::aws::tokens::client_token;
use crate::plan::core::PlannedAction;
use crate::plan::migration::{
    COPY_STEP, MigrationAction, Phase, Record, SNAPSHOT_STEP, VOLUME_STEP,
};
use crate::reconcile::aws_errors::from_aws;
use crate::reconcile::error::{Error, Result};
use crate::reconcile::pipeline::Pass;
use crate::reconcile::status::StatusWriter;

type Writer<'w, 'a> = &'w mut StatusWriter<'a, EncryptedVolumeMigration>;

pub async fn run(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    action: &MigrationAction,
    status: &mut EncryptedVolumeMigrationStatus,
    writer: Writer<'_, '_>,
) -> Result<()> {
    // What the plan recorded (the phase, whether the migration stopped the instance) and,
    // for a snapshot made without a client token, its intent are on the server before the
    // call: one write.
    record_intent(pass, action, status);
    writer.write(status).await?;
    let outcome = call(pass, action, status, writer).await;
    match outcome {
        Err(error @ Error::Terminal { .. }) => fail(pass, action, status, writer, error).await,
        other => other,
    }
}

async fn call(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    action: &MigrationAction,
    status: &mut EncryptedVolumeMigrationStatus,
    writer: Writer<'_, '_>,
) -> Result<()> {
    let ec2 = pass.ec2();
    match action {
        MigrationAction::StopInstance { instance_id } => ec2
            .stop_instance(instance_id.clone())
            .await
            .map_err(|e| from_aws("StopInstances", e)),
        MigrationAction::StartInstance { instance_id } => ec2
            .start_instance(instance_id.clone())
            .await
            .map_err(|e| from_aws("StartInstances", e)),
        MigrationAction::CreateSnapshot { volume_id, tags } => {
            let request = CreateSnapshotRequest {
                volume_id: volume_id.clone(),
                description: Some(format!(
                    "ec2-reconciler: {volume_id} before encryption by {}",
                    pass.owner.owner_ref()
                )),
                tags: tags.clone(),
            };
            let answer = ec2.create_snapshot(request).await.map(|s| s.snapshot_id);
            let id = answered(status, writer, SNAPSHOT_STEP, "CreateSnapshot", answer).await?;
            status.source_snapshot_id = Some(id);
            drop_intent(&mut status.intents, SNAPSHOT_STEP);
            writer.write(status).await
        }
        MigrationAction::CopySnapshot {
            snapshot_id,
            kms_key_id,
            tags,
        } => {
            let request = CopySnapshotRequest {
                source_snapshot_id: snapshot_id.clone(),
                description: Some(format!(
                    "ec2-reconciler: encrypted copy of {snapshot_id} for {}",
                    pass.owner.owner_ref()
                )),
                kms_key_id: Some(kms_key_id.clone()),
                tags: tags.clone(),
            };
            let answer = ec2.copy_snapshot(request).await;
            let id = answered(status, writer, COPY_STEP, "CopySnapshot", answer).await?;
            status.encrypted_snapshot_id = Some(id);
            drop_intent(&mut status.intents, COPY_STEP);
            writer.write(status).await
        }
        MigrationAction::CreateVolume(new) => {
            let request = CreateVolumeRequest {
                availability_zone: new.availability_zone.clone(),
                volume_type: new.volume_type,
                // Without a size AWS takes the snapshot's, which is the source's.
                size_gib: Some(new.size_gib),
                iops: new.iops,
                throughput_mibps: new.throughput_mibps,
                encrypted: Some(true),
                kms_key_id: Some(new.kms_key_id.clone()),
                multi_attach_enabled: new.multi_attach_enabled,
                snapshot_id: Some(new.snapshot_id.clone()),
                // The token makes a repeat after a lost answer return the same volume.
                client_token: client_token(&pass.owner.uid, VOLUME_STEP, 0),
                tags: new.tags.clone(),
            };
            let created = ec2
                .create_volume(request)
                .await
                .map_err(|e| from_aws("CreateVolume", e))?;
            status.target_volume_id = Some(created.volume_id);
            writer.write(status).await
        }
        MigrationAction::Detach {
            volume_id,
            instance_id,
            device,
        } => ec2
            .detach_volume(DetachVolumeRequest {
                volume_id: volume_id.clone(),
                instance_id: instance_id.clone(),
                device: Some(device.clone()),
                force: false,
            })
            .await
            .map(|_| ())
            .map_err(|e| from_aws("DetachVolume", e)),
        MigrationAction::Attach {
            volume_id,
            instance_id,
            device,
        } => ec2
            .attach_volume(AttachVolumeRequest {
                volume_id: volume_id.clone(),
                instance_id: instance_id.clone(),
                device: device.clone(),
            })
            .await
            .map(|_| ())
            .map_err(|e| from_aws("AttachVolume", e)),
        MigrationAction::SetDeleteOnTermination {
            instance_id,
            device,
        } => ec2
            .set_delete_on_termination(instance_id.clone(), device.clone(), true)
            .await
            .map_err(|e| from_aws("ModifyInstanceAttribute", e)),
        MigrationAction::DeleteVolume { volume_id } => {
            match ec2.delete_volume(volume_id.clone()).await {
                Ok(()) | Err(AwsError::NotFound { .. }) => Ok(()),
                Err(e) => Err(from_aws("DeleteVolume", e)),
            }
        }
        MigrationAction::TagVolumes { volume_ids, tags } => ec2
            .create_tags(volume_ids.clone(), tags.clone())
            .await
            .map_err(|e| from_aws("CreateTags", e)),
        MigrationAction::UntagVolumes { volume_ids, keys } => ec2
            .delete_tags(volume_ids.clone(), keys.clone())
            .await
            .map_err(|e| from_aws("DeleteTags", e)),
        MigrationAction::DeleteSnapshot { snapshot_id } => ec2
            .delete_snapshot(snapshot_id.clone())
            .await
            .map_err(|e| from_aws("DeleteSnapshot", e)),
    }
}

/// Records that a snapshot is about to be made, with the tags it is made with, so a pass
/// after a lost answer looks for it instead of making a second one. Other actions are
/// decided from AWS's state or carry a client token: they record nothing.
fn record_intent(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    action: &MigrationAction,
    status: &mut EncryptedVolumeMigrationStatus,
) {
    let (step, tags) = match action {
        MigrationAction::CreateSnapshot { tags, .. } => (SNAPSHOT_STEP, tags),
        MigrationAction::CopySnapshot { tags, .. } => (COPY_STEP, tags),
        _ => return,
    };
    recorded_or_put(
        &mut status.intents,
        Intent {
            step: step.to_owned(),
            client_token: None,
            attempt: 0,
            requested_at: pass.now,
            lookup_tags: tags.clone(),
        },
    );
}

/// The id AWS answered; when AWS proved it made nothing, the intent goes with the error.
async fn answered(
    status: &mut EncryptedVolumeMigrationStatus,
    writer: Writer<'_, '_>,
    step: &str,
    action: &str,
    answer: std::result::Result<String, AwsError>,
) -> Result<String> {
    match answer {
        Ok(id) => Ok(id),
        Err(e) => {
            if e.proves_nothing_happened() {
                drop_intent(&mut status.intents, step);
                writer.write(status).await?;
            }
            Err(from_aws(action, e))
        }
    }
}

/// AWS refused a step for good: the failure is recorded and the migration turns back (or
/// stops, without `rollbackOnFailure`).
async fn fail(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    action: &MigrationAction,
    status: &mut EncryptedVolumeMigrationStatus,
    writer: Writer<'_, '_>,
    error: Error,
) -> Result<()> {
    let mut record = Record::from_status(status);
    // A rollback's refusal, or one after the new volume was verified in place (the swap
    // stands): reported and tried again at the resync.
    if !record.phase.can_roll_back() || record.phase == Phase::RollingBack {
        return Err(error);
    }
    let failure = format!("{} failed: {error}", action.describe());
    record.fail(pass.obj.spec.rollback_on_failure, failure.clone());
    record.apply(status);
    writer.write(status).await?;
    pass.ctx
        .publish(
            &pass.reference,
            EventType::Warning,
            "MigrationFailed",
            failure.clone(),
            "Migrate",
        )
        .await;
    // Not a failure of the pass: the next one, at once, plans the rollback.
    Err(Error::Waiting {
        reason: "RollingBack",
        message: failure,
        retry_after: Duration::from_secs(1),
    })
}
