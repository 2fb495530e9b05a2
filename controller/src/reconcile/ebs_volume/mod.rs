//! EbsVolume: what the pipeline needs from this kind (observe, plan, record, execute).

mod execute;
mod observe;
mod status;

use std::collections::BTreeSet;

use super::error::Result;
use super::pipeline::{Pass, Reconciler};
use super::status::StatusWriter;
use crate::api::{EbsVolume, EbsVolumeStatus};
use crate::aws::actions::AwsAction;
use crate::plan::ebs_volume::{VolumeAction, VolumeInput, VolumePlan, Wait, plan_volume};

pub use observe::Observation;

impl Reconciler for EbsVolume {
    type Observation = Observation;
    type Action = VolumeAction;
    type Wait = Wait;
    type Plan = VolumePlan;

    fn observe(pass: &Pass<'_, Self>) -> impl Future<Output = Result<Observation>> + Send {
        observe::observe(pass)
    }

    fn plan(
        pass: &Pass<'_, Self>,
        observation: &Observation,
        status: &EbsVolumeStatus,
    ) -> VolumePlan {
        let managed_tag_keys: BTreeSet<String> = status.managed_tag_keys.iter().cloned().collect();
        plan_volume(&VolumeInput {
            spec: &pass.obj.spec,
            status,
            owner: &pass.owner,
            observed: observation.volume.as_ref(),
            modification: observation.modification.as_ref(),
            kms_key_arn: observation.kms_key_arn.as_deref(),
            managed_tag_keys: &managed_tag_keys,
            instances: observation.instances.as_ref(),
            grants: pass.grants,
            final_snapshot: observation.final_snapshot.as_ref(),
            deleting: pass.deleting,
            now: pass.now,
        })
    }

    fn record(status: &mut EbsVolumeStatus, observation: &Observation, plan: &VolumePlan) {
        if !plan.volume_hidden {
            status::record_observation(
                status,
                observation.volume.as_ref(),
                observation.modification.as_ref(),
            );
        }
        status.recent_modifications = plan.recent_modifications.clone();
        status.managed_tag_keys = plan.managed_tag_keys.iter().cloned().collect();
    }

    fn first_call(action: &VolumeAction) -> AwsAction {
        match action {
            VolumeAction::Create(_) => AwsAction::CreateVolume,
            VolumeAction::Modify(_) => AwsAction::ModifyVolume,
            VolumeAction::Attach { .. } => AwsAction::AttachVolume,
            VolumeAction::Detach { .. } => AwsAction::DetachVolume,
            VolumeAction::SetTags { .. } => AwsAction::CreateTags,
            VolumeAction::RemoveTags { .. } => AwsAction::DeleteTags,
            VolumeAction::CreateFinalSnapshot { .. } => AwsAction::CreateSnapshot,
            VolumeAction::Delete { .. } => AwsAction::DeleteVolume,
        }
    }

    fn execute(
        pass: &Pass<'_, Self>,
        action: &VolumeAction,
        status: &mut EbsVolumeStatus,
        writer: &mut StatusWriter<'_, Self>,
    ) -> impl Future<Output = Result<()>> + Send {
        execute::run(pass, action, status, writer)
    }

    async fn observe_after_changes(
        pass: &Pass<'_, Self>,
        status: &EbsVolumeStatus,
        observation: &Observation,
    ) -> Option<Observation> {
        let volume_id = status.volume_id.as_ref()?;
        let volumes = pass.ctx.aws.volumes(&pass.scope);
        // This pass started a modification (recorded at `pass.now` before the call): its
        // modification is read too, not carried over.
        let modified = status.recent_modifications.contains(&pass.now);
        // Read it again, merged with other objects' reads (just created: in the next paced
        // read of every creating volume, so a bulk creation costs one read per poll interval,
        // not one per create). A failed read is no loss: the pass writes what it did and the
        // next pass reads it again.
        let read = match observe::read_for(Some(status)) {
            observe::Read::Refresh if modified => observe::Read::InFull,
            read => read,
        };
        let entry = read.read(&volumes, volume_id).await.ok()??;
        Some(Observation {
            volume: Some(entry.volume),
            modification: entry.modification.map(|m| *m),
            ..observation.clone()
        })
    }
}
