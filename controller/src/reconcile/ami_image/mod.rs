//! AmiImage: what the pipeline needs from this kind (observe, plan, record, execute).

mod execute;
mod observe;
mod status;

use std::collections::BTreeSet;

use super::error::Result;
use super::pipeline::{Pass, Reconciler};
use super::status::StatusWriter;
use crate::api::ami_image::{AmiImage, AmiImageStatus};
use crate::aws::actions::AwsAction;
use crate::plan::ami_image::{ImageAction, ImageInput, ImagePlan, ImageWait, plan_image};

pub use observe::Observation;

impl Reconciler for AmiImage {
    type Observation = Observation;
    type Action = ImageAction;
    type Wait = ImageWait;
    type Plan = ImagePlan;

    fn observe(pass: &Pass<'_, Self>) -> impl Future<Output = Result<Observation>> + Send {
        observe::observe(pass)
    }

    fn plan(
        pass: &Pass<'_, Self>,
        observation: &Observation,
        status: &AmiImageStatus,
    ) -> ImagePlan {
        let managed_tag_keys: BTreeSet<String> = status.managed_tag_keys.iter().cloned().collect();
        plan_image(&ImageInput {
            spec: &pass.obj.spec,
            status,
            owner: &pass.owner,
            grants: pass.grants,
            sharing: &pass.ctx.tenancy.sharing,
            observed: observation.image.as_ref(),
            source_instance: observation.source_instance.as_ref(),
            source_image: observation.source_image.as_ref(),
            newest_match: observation.newest_match.as_ref(),
            source_snapshots: observation.source_snapshots.as_ref(),
            launch_permissions: observation.launch_permissions.as_ref(),
            snapshot_permissions: observation.snapshot_permissions.as_ref(),
            aws_managed_key: observation.aws_managed_key.as_deref(),
            progress_percent: observation.progress_percent,
            public_access_blocked: observation.public_access_blocked,
            managed_tag_keys: &managed_tag_keys,
            deleting: pass.deleting,
            now: pass.now,
        })
    }

    fn record(status: &mut AmiImageStatus, observation: &Observation, plan: &ImagePlan) {
        if !plan.image_hidden {
            status::record_observation(status, observation);
        }
        status.managed_tag_keys = plan.managed_tag_keys.iter().cloned().collect();
    }

    fn first_call(action: &ImageAction) -> AwsAction {
        match action {
            ImageAction::CreateFromInstance { .. } => AwsAction::CreateImage,
            ImageAction::Register(_) => AwsAction::RegisterImage,
            ImageAction::Copy { .. } => AwsAction::CopyImage,
            ImageAction::SetTags { .. } => AwsAction::CreateTags,
            ImageAction::RemoveTags { .. } => AwsAction::DeleteTags,
            ImageAction::SetDescription { .. } | ImageAction::ChangeLaunchPermissions { .. } => {
                AwsAction::ModifyImageAttribute
            }
            ImageAction::EnableDeprecation { .. } => AwsAction::EnableImageDeprecation,
            ImageAction::DisableDeprecation { .. } => AwsAction::DisableImageDeprecation,
            ImageAction::SetDeregistrationProtection { enabled: true, .. } => {
                AwsAction::EnableImageDeregistrationProtection
            }
            ImageAction::SetDeregistrationProtection { enabled: false, .. } => {
                AwsAction::DisableImageDeregistrationProtection
            }
            ImageAction::ChangeSnapshotPermissions { .. } => AwsAction::ModifySnapshotAttribute,
            ImageAction::Deregister { .. } => AwsAction::DeregisterImage,
        }
    }

    fn execute(
        pass: &Pass<'_, Self>,
        action: &ImageAction,
        status: &mut AmiImageStatus,
        writer: &mut StatusWriter<'_, Self>,
    ) -> impl Future<Output = Result<()>> + Send {
        execute::run(pass, action, status, writer)
    }

    async fn after_changes(pass: &Pass<'_, Self>, status: &AmiImageStatus) {
        if let Some(image_id) = &status.image_id {
            // Read it again (merged with other objects' reads) so the next pass sees it.
            let _ = pass.ctx.aws.images(&pass.scope).refresh(image_id).await;
        }
    }
}
