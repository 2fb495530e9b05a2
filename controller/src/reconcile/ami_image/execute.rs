//! One action, one AWS call. The create intent is recorded before CreateImage,
//! RegisterImage or CopyImage; everything a call needs comes from the action.

use std::collections::BTreeSet;

use crate::api::ami_image::{AmiImage, AmiImageStatus, SnapshotVolumePermissions};
use crate::api::intent::{Intent, drop_intent, recorded_or_put};
use crate::aws::client::{
    CopyImageRequest, CreateImageRequest, ImageMappingRequest, RegisterImageRequest,
};
use crate::aws::errors::AwsError;
use crate::aws::tokens::client_token;
use crate::plan::ami_image::share::desired;
use crate::plan::ami_image::{CREATE_STEP, ImageAction, Registration};
use crate::reconcile::aws_errors::{INSTANCE_NOT_FOUND, SNAPSHOT_NOT_FOUND, from_aws};
use crate::reconcile::error::Result;
use crate::reconcile::pipeline::Pass;
use crate::reconcile::rechecks::Cause;
use crate::reconcile::status::StatusWriter;

pub async fn run(
    pass: &Pass<'_, AmiImage>,
    action: &ImageAction,
    status: &mut AmiImageStatus,
    writer: &mut StatusWriter<'_, AmiImage>,
) -> Result<()> {
    let ec2 = pass.ec2();
    match action {
        ImageAction::CreateFromInstance {
            instance_id,
            name,
            description,
            no_reboot,
            tags,
            snapshot_tags,
        } => {
            record_create(pass, status, writer, None, tags).await?;
            let request = CreateImageRequest {
                instance_id: instance_id.clone(),
                name: name.clone(),
                description: description.clone(),
                no_reboot: *no_reboot,
                tags: tags.clone(),
                snapshot_tags: snapshot_tags.clone(),
            };
            let created = ec2.create_image(request).await;
            if let Err(e) = &created
                && from_aws("CreateImage", e.clone()).reason() == INSTANCE_NOT_FOUND
            {
                pass.recheck_when(Cause::InstanceMissing {
                    scope: pass.scope.clone(),
                    instance_id: instance_id.clone(),
                });
            }
            created_image(status, writer, "CreateImage", created).await
        }
        ImageAction::Register(registration) => {
            record_create(pass, status, writer, None, &registration.tags).await?;
            let created = ec2.register_image(register_request(registration)).await;
            if let Err(e) = &created
                && from_aws("RegisterImage", e.clone()).reason() == SNAPSHOT_NOT_FOUND
            {
                for id in registration
                    .mappings
                    .iter()
                    .filter_map(|m| m.snapshot_id.clone())
                {
                    pass.recheck_when(Cause::SnapshotMissing {
                        scope: pass.scope.clone(),
                        snapshot_id: id,
                    });
                }
            }
            created_image(status, writer, "RegisterImage", created).await
        }
        ImageAction::Copy {
            source_image_id,
            source_region,
            name,
            description,
            encrypted,
            kms_key_id,
            copy_image_tags,
            completion_duration_minutes,
            tags,
            snapshot_tags,
        } => {
            // The source is pinned with the intent: a selector's newer match later never
            // changes what this object copies.
            status.source_image_id = Some(source_image_id.clone());
            let token = client_token(&pass.owner.uid, CREATE_STEP, 0);
            let token = record_create(pass, status, writer, Some(token), tags)
                .await?
                .unwrap_or_default();
            let request = CopyImageRequest {
                source_image_id: source_image_id.clone(),
                source_region: source_region.clone(),
                name: name.clone(),
                description: description.clone(),
                encrypted: *encrypted,
                kms_key_id: kms_key_id.clone(),
                copy_image_tags: *copy_image_tags,
                completion_duration_minutes: *completion_duration_minutes,
                client_token: token,
                tags: tags.clone(),
                snapshot_tags: snapshot_tags.clone(),
            };
            let copied = ec2.copy_image(request).await;
            created_image(status, writer, "CopyImage", copied).await
        }
        ImageAction::SetTags { image_id, tags } => ec2
            .create_tags(vec![image_id.clone()], tags.clone())
            .await
            .map_err(|e| from_aws("CreateTags", e)),
        ImageAction::RemoveTags { image_id, keys } => ec2
            .delete_tags(vec![image_id.clone()], keys.iter().cloned().collect())
            .await
            .map_err(|e| from_aws("DeleteTags", e)),
        ImageAction::SetDescription {
            image_id,
            description,
        } => ec2
            .modify_image_description(image_id.clone(), description.clone())
            .await
            .map_err(|e| from_aws("ModifyImageAttribute", e)),
        ImageAction::EnableDeprecation { image_id, at } => ec2
            .enable_image_deprecation(image_id.clone(), *at)
            .await
            .map_err(|e| from_aws("EnableImageDeprecation", e)),
        ImageAction::SetDeregistrationProtection {
            image_id,
            enabled: true,
            with_cooldown,
        } => ec2
            .enable_image_deregistration_protection(image_id.clone(), *with_cooldown)
            .await
            .map_err(|e| from_aws("EnableImageDeregistrationProtection", e)),
        ImageAction::SetDeregistrationProtection {
            image_id,
            enabled: false,
            ..
        } => ec2
            .disable_image_deregistration_protection(image_id.clone())
            .await
            .map_err(|e| from_aws("DisableImageDeregistrationProtection", e)),
        ImageAction::DisableDeprecation { image_id } => ec2
            .disable_image_deprecation(image_id.clone())
            .await
            .map_err(|e| from_aws("DisableImageDeprecation", e)),
        ImageAction::ChangeLaunchPermissions {
            image_id,
            add,
            remove,
        } => {
            ec2.modify_launch_permissions(image_id.clone(), add.clone(), remove.clone())
                .await
                .map_err(|e| from_aws("ModifyImageAttribute", e))?;
            // What AWS now holds is the spec's set: recorded, so the next pass reads nothing.
            status.launch_permissions = pass
                .obj
                .spec
                .launch_permissions
                .as_ref()
                .map(|wanted| super::observe::as_spec(&desired(wanted)));
            writer.write(status).await
        }
        ImageAction::ChangeSnapshotPermissions {
            snapshot_id,
            add,
            remove,
        } => {
            ec2.modify_snapshot_volume_permissions(
                snapshot_id.clone(),
                add.clone(),
                remove.clone(),
            )
            .await
            .map_err(|e| from_aws("ModifySnapshotAttribute", e))?;
            // This snapshot's record becomes what AWS now holds, so a crash before the other
            // snapshots' changes leaves exactly those to make.
            let wanted = pass
                .obj
                .spec
                .launch_permissions
                .as_ref()
                .is_some_and(|l| l.snapshot_create_volume_permissions);
            record_snapshot_change(status, snapshot_id, add, remove, wanted);
            writer.write(status).await
        }
        ImageAction::Deregister {
            image_id,
            delete_snapshots,
        } => match ec2
            .deregister_image(image_id.clone(), *delete_snapshots)
            .await
        {
            Ok(()) => Ok(()),
            // Already gone: deregistered counts as done.
            Err(AwsError::NotFound { .. }) => Ok(()),
            Err(e) => Err(from_aws("DeregisterImage", e)),
        },
    }
}

/// Updates one snapshot's recorded volume permissions after a change; an entry left with
/// no account goes once the spec no longer asks for any.
fn record_snapshot_change(
    status: &mut AmiImageStatus,
    snapshot_id: &str,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
    wanted: bool,
) {
    let records = &mut status.snapshot_volume_permissions;
    let mut accounts: BTreeSet<String> = records
        .iter()
        .find(|r| r.snapshot_id == snapshot_id)
        .map(|r| r.account_ids.iter().cloned().collect())
        .unwrap_or_default();
    accounts.extend(add.iter().cloned());
    accounts.retain(|a| !remove.contains(a));
    records.retain(|r| r.snapshot_id != snapshot_id);
    if wanted || !accounts.is_empty() {
        records.push(SnapshotVolumePermissions {
            snapshot_id: snapshot_id.to_owned(),
            account_ids: accounts.into_iter().collect(),
        });
        records.sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
    }
}

/// Records the create intent (with its client token when the call takes one) before the
/// call, and returns the token to send: the recorded one when a create was already tried.
async fn record_create(
    pass: &Pass<'_, AmiImage>,
    status: &mut AmiImageStatus,
    writer: &mut StatusWriter<'_, AmiImage>,
    token: Option<String>,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<Option<String>> {
    let intent = recorded_or_put(
        &mut status.intents,
        Intent {
            step: CREATE_STEP.to_owned(),
            client_token: token,
            attempt: 0,
            requested_at: pass.now,
            lookup_tags: tags.clone(),
        },
    );
    writer.write(status).await?;
    Ok(intent.client_token)
}

/// The create's answer: its image id recorded, or its intent dropped when AWS proved it
/// made nothing.
async fn created_image(
    status: &mut AmiImageStatus,
    writer: &mut StatusWriter<'_, AmiImage>,
    action: &str,
    answer: std::result::Result<String, AwsError>,
) -> Result<()> {
    match answer {
        Ok(image_id) => {
            status.image_id = Some(image_id);
            status.state = Some("pending".to_owned());
            writer.write(status).await
        }
        Err(e) => {
            if e.proves_nothing_happened() {
                drop_intent(&mut status.intents, CREATE_STEP);
                writer.write(status).await?;
            }
            Err(from_aws(action, e))
        }
    }
}

fn register_request(r: &Registration) -> RegisterImageRequest {
    RegisterImageRequest {
        name: r.name.clone(),
        description: r.description.clone(),
        architecture: r.architecture.clone(),
        virtualization_type: r.virtualization_type.clone(),
        boot_mode: r.boot_mode.clone(),
        ena_support: r.ena_support,
        imds_support: r.imds_support.clone(),
        tpm_support: r.tpm_support.clone(),
        uefi_data: r.uefi_data.clone(),
        root_device_name: r.root_device_name.clone(),
        mappings: r
            .mappings
            .iter()
            .map(|m| ImageMappingRequest {
                device_name: m.device_name.clone(),
                virtual_name: None,
                snapshot_id: m.snapshot_id.clone(),
                volume_type: m.volume_type,
                size_gib: m.size_gib,
                iops: m.iops,
                throughput_mibps: m.throughput_mibps,
                delete_on_termination: m.delete_on_termination,
                encrypted: m.encrypted,
                kms_key_id: None,
            })
            .collect(),
        image_location: r.image_location.clone(),
        tags: r.tags.clone(),
    }
}
