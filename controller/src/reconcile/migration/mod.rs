//! EncryptedVolumeMigration: what the pipeline needs from this kind (observe, plan, record,
//! execute). The state machine itself is the planner's (`plan::migration`).

mod execute;
mod observe;

use super::error::Result;
use super::kind::ManagedKind;
use super::pipeline::{Pass, Reconciler};
use super::status::StatusWriter;
use crate::api::EbsVolume;
use crate::api::migration::{
    EncryptedVolumeMigration, EncryptedVolumeMigrationStatus, MigrationStep,
};
use crate::aws::actions::AwsAction;
use crate::plan::migration::{
    MigrationAction, MigrationInput, MigrationPlan, MigrationWait, Phase, plan_migration,
};

pub use observe::Observation;

impl Reconciler for EncryptedVolumeMigration {
    type Observation = Observation;
    type Action = MigrationAction;
    type Wait = MigrationWait;
    type Plan = MigrationPlan;

    fn observe(pass: &Pass<'_, Self>) -> impl Future<Output = Result<Observation>> + Send {
        observe::observe(pass)
    }

    fn plan(
        pass: &Pass<'_, Self>,
        o: &Observation,
        status: &EncryptedVolumeMigrationStatus,
    ) -> MigrationPlan {
        plan_migration(&MigrationInput {
            spec: &pass.obj.spec,
            status,
            owner: &pass.owner,
            grants: pass.grants,
            source_ref: &o.source_ref,
            source_volume: o.source_volume.as_ref(),
            instance: o.instance.as_ref(),
            instance_store_gb: o.instance_store_gb,
            key_arn: o.key_arn.as_deref(),
            source_snapshot: o.source_snapshot.as_ref(),
            encrypted_snapshot: o.encrypted_snapshot.as_ref(),
            found_snapshots: &o.found_snapshots,
            target_volume: o.target_volume.as_ref(),
            ebs_volume_tracks: o.ebs_volume_tracks.as_deref(),
            deleting: pass.deleting,
            now: pass.now,
        })
    }

    fn record(status: &mut EncryptedVolumeMigrationStatus, _: &Observation, plan: &MigrationPlan) {
        plan.record.apply(status);
        record_steps(status, plan);
    }

    fn first_call(action: &MigrationAction) -> AwsAction {
        match action {
            MigrationAction::StopInstance { .. } => AwsAction::StopInstances,
            MigrationAction::CreateSnapshot { .. } => AwsAction::CreateSnapshot,
            MigrationAction::CopySnapshot { .. } => AwsAction::CopySnapshot,
            MigrationAction::CreateVolume(_) => AwsAction::CreateVolume,
            MigrationAction::Detach { .. } => AwsAction::DetachVolume,
            MigrationAction::Attach { .. } => AwsAction::AttachVolume,
            MigrationAction::SetDeleteOnTermination { .. } => AwsAction::ModifyInstanceAttribute,
            MigrationAction::StartInstance { .. } => AwsAction::StartInstances,
            MigrationAction::DeleteVolume { .. } => AwsAction::DeleteVolume,
            MigrationAction::DeleteSnapshot { .. } => AwsAction::DeleteSnapshot,
            MigrationAction::TagVolumes { .. } => AwsAction::CreateTags,
            MigrationAction::UntagVolumes { .. } => AwsAction::DeleteTags,
        }
    }

    fn execute(
        pass: &Pass<'_, Self>,
        action: &MigrationAction,
        status: &mut EncryptedVolumeMigrationStatus,
        writer: &mut StatusWriter<'_, Self>,
    ) -> impl Future<Output = Result<()>> + Send {
        execute::run(pass, action, status, writer)
    }

    async fn after_changes(pass: &Pass<'_, Self>, status: &EncryptedVolumeMigrationStatus) {
        // Read again (merged with other objects' reads) what the call changed.
        let volumes = pass.ctx.aws.volumes(&pass.scope);
        for id in [&status.source_volume_id, &status.target_volume_id]
            .into_iter()
            .flatten()
        {
            let _ = volumes.refresh(id).await;
        }
        if let Some(id) = &status.instance_id {
            let _ = pass.ctx.aws.instances(&pass.scope).refresh(id).await;
        }
        nudge_ebs_volume(pass, status);
    }
}

/// The EbsVolume whose volume this migration marks or hands over looks at it now rather
/// than at its next resync (the volume reads above are what it will see).
pub(crate) fn nudge_ebs_volume(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    status: &EncryptedVolumeMigrationStatus,
) {
    if let Some(name) = &status.ebs_volume_name {
        pass.ctx
            .rechecks
            .nudge(EbsVolume::KIND, &pass.owner.namespace, name);
    }
}

/// `status.steps`: one entry per phase the migration went through, with when it started and
/// ended, so a person sees where it is and how long each step took.
fn record_steps(status: &mut EncryptedVolumeMigrationStatus, plan: &MigrationPlan) {
    let now = Some(plan.now);
    for phase in &plan.entered {
        let closing_id = status
            .steps
            .last()
            .and_then(|last| aws_id(status, Phase::parse(Some(&last.name))));
        if let Some(last) = status.steps.last_mut()
            && last.state == "Running"
        {
            if last.aws_id.is_none() {
                last.aws_id = closing_id;
            }
            last.state = match phase {
                Phase::Failed => "Failed",
                Phase::RolledBack => "RolledBack",
                _ => "Succeeded",
            }
            .to_owned();
            last.end_time = now;
        }
        if !phase.is_final() {
            status.steps.push(MigrationStep {
                name: phase.as_str().to_owned(),
                state: "Running".to_owned(),
                start_time: now,
                end_time: None,
                aws_id: None,
            });
        }
    }
    let running = aws_id(status, plan.record.phase);
    if let Some(last) = status.steps.last_mut()
        && last.state == "Running"
    {
        last.aws_id = running;
    }
}

/// What a step works on: the instance, a snapshot or the new volume.
fn aws_id(status: &EncryptedVolumeMigrationStatus, phase: Phase) -> Option<String> {
    match phase {
        Phase::Stopping | Phase::Starting => status.instance_id.clone(),
        Phase::Snapshotting => status.source_snapshot_id.clone(),
        Phase::Copying => status.encrypted_snapshot_id.clone(),
        Phase::CreatingVolume | Phase::Swapping | Phase::Verifying => {
            status.target_volume_id.clone()
        }
        _ => None,
    }
}
