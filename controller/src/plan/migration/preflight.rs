//! Before anything changes: the volume, its instance and the key are checked, and what the
//! migration needs to put things back (the instance, the device, DeleteOnTermination, the
//! key's ARN) is recorded. Every refusal here leaves AWS untouched.

use super::{MigrationWait, Planner, SourceRef, Step};
use crate::api::migration::InstanceStopPolicy;
use crate::plan::observed::{AttachmentState, VolumeState};
use crate::plan::tags::{KIND_TAG, UID_TAG};
use crate::plan::tenancy::{self, Resource, Standing, Use};

/// Condition reasons of the refusals.
pub mod reason {
    pub const SOURCE_NOT_FOUND: &str = "SourceNotFound";
    pub const VOLUME_NOT_FOUND: &str = "VolumeNotFound";
    pub const VOLUME_NOT_READY: &str = "VolumeNotReady";
    pub const VOLUME_IN_ERROR: &str = "VolumeInError";
    pub const ALREADY_ENCRYPTED: &str = "AlreadyEncrypted";
    pub const MULTI_ATTACHED: &str = "AttachedToSeveralInstances";
    pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
    pub const INSTANCE_TERMINATED: &str = "InstanceTerminated";
    pub const INSTANCE_STORE_BACKED: &str = "InstanceStoreBacked";
    pub const INSTANCE_STORE_DATA_LOSS: &str = "InstanceStoreDataLoss";
    pub const KEY_UNRESOLVED: &str = "KmsKeyUnresolved";
}

pub(super) fn check(p: &mut Planner<'_>) -> Step {
    let input = p.input;
    let Some(volume_id) = source_volume_id(p) else {
        return Step::Hold;
    };
    let Some(volume) = input.source_volume else {
        return p.refuse(
            reason::VOLUME_NOT_FOUND,
            format!("volume {volume_id} does not exist (or this identity cannot see it)"),
        );
    };
    if let Some(problem) = tenancy_refusal(p, &volume_id) {
        return problem;
    }
    match volume.state {
        VolumeState::Available | VolumeState::InUse => {}
        // Applied with the EbsVolume that creates it: its create is under way.
        VolumeState::Creating => {
            return p.wait(MigrationWait::Volume {
                volume_id,
                state: "creating".to_owned(),
            });
        }
        VolumeState::Error => {
            return p.refuse(
                reason::VOLUME_IN_ERROR,
                format!("volume {volume_id} is in the error state: its data cannot be read"),
            );
        }
        other => {
            return p.refuse(
                reason::VOLUME_NOT_READY,
                format!("volume {volume_id} is {}", other.as_str()),
            );
        }
    }
    let Some(key_arn) = input.key_arn else {
        return p.refuse(
            reason::KEY_UNRESOLVED,
            "the KMS key to encrypt with could not be resolved".to_owned(),
        );
    };
    if volume.encrypted && volume.kms_key_id.as_deref() == Some(key_arn) {
        return p.refuse(
            reason::ALREADY_ENCRYPTED,
            format!("volume {volume_id} is already encrypted with {key_arn}: nothing to migrate"),
        );
    }
    let attachments: Vec<_> = volume
        .attachments
        .iter()
        .filter(|a| a.state != AttachmentState::Detached)
        .collect();
    if attachments.len() > 1 {
        let ids: Vec<&str> = attachments.iter().map(|a| a.instance_id.as_str()).collect();
        return p.refuse(
            reason::MULTI_ATTACHED,
            format!(
                "volume {volume_id} is attached to {} instances ({}): a migration swaps the volume of one instance; detach it from all but one first",
                ids.len(),
                ids.join(", ")
            ),
        );
    }
    if let Some(attachment) = attachments.first() {
        if let Some(problem) = instance_refusal(p, &attachment.instance_id) {
            return problem;
        }
        let dot = input
            .instance
            .and_then(|i| i.device(&attachment.device))
            .map(|d| d.delete_on_termination);
        p.record.instance_id = Some(attachment.instance_id.clone());
        p.record.device = Some(attachment.device.clone());
        p.record.delete_on_termination = dot;
    }
    p.record.source_volume_id = Some(volume_id);
    p.record.kms_key_arn = Some(key_arn.to_owned());
    if let SourceRef::ByRef {
        name,
        ebs_volume: Some(referenced),
    } = input.source_ref
    {
        p.record.ebs_volume = Some((name.clone(), referenced.uid.clone()));
    }
    Step::Done
}

/// The volume the spec names: by id, or the one its EbsVolume tracks.
fn source_volume_id(p: &mut Planner<'_>) -> Option<String> {
    match p.input.source_ref {
        SourceRef::ById => p.input.spec.source.volume_id.clone(),
        SourceRef::ByRef {
            name,
            ebs_volume: None,
        } => {
            p.refuse(
                reason::SOURCE_NOT_FOUND,
                format!("EbsVolume {name} does not exist in this namespace"),
            );
            None
        }
        SourceRef::ByRef {
            name,
            ebs_volume: Some(referenced),
        } => {
            if referenced.volume_id.is_none() {
                // Applied together with its EbsVolume: it is being created.
                p.wait(MigrationWait::SourcePending {
                    ebs_volume: name.clone(),
                });
            }
            referenced.volume_id.clone()
        }
    }
}

/// The namespace may act on the volume: its own EbsVolume's (named by `volumeRef`), or an
/// unowned one granted to it.
fn tenancy_refusal(p: &mut Planner<'_>, volume_id: &str) -> Option<Step> {
    let input = p.input;
    let tags = input.source_volume.map(|v| &v.tags)?;
    if let SourceRef::ByRef {
        name,
        ebs_volume: Some(referenced),
    } = input.source_ref
    {
        if tags.get(UID_TAG) == Some(referenced.uid.as_str()) {
            return None;
        }
        return Some(p.refuse(
            tenancy::reason::OWNED_BY_ANOTHER_OBJECT,
            format!("volume {volume_id} is not the one EbsVolume {name} manages"),
        ));
    }
    if let Standing::OwnedByAnother(Some(name)) = tenancy::standing(input.owner, tags)
        && tags.get(KIND_TAG) == Some("EbsVolume")
    {
        return Some(p.refuse(
            tenancy::reason::OWNED_BY_ANOTHER_OBJECT,
            format!(
                "volume {volume_id} is managed by EbsVolume {name}: name it with source.volumeRef so the EbsVolume hands the volume over"
            ),
        ));
    }
    let resource = Resource {
        noun: "volume",
        id: volume_id,
        tags,
    };
    let problem = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn)?;
    p.builder.add_problem(problem);
    Some(Step::Hold)
}

/// The instance can be stopped (or is) without losing anything and may be acted on.
fn instance_refusal(p: &mut Planner<'_>, instance_id: &str) -> Option<Step> {
    let input = p.input;
    let Some(instance) = input.instance else {
        return Some(p.refuse(
            reason::INSTANCE_NOT_FOUND,
            format!("instance {instance_id} does not exist"),
        ));
    };
    let resource = Resource {
        noun: "instance",
        id: instance_id,
        tags: &instance.tags,
    };
    if let Some(problem) = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn) {
        p.builder.add_problem(problem);
        return Some(Step::Hold);
    }
    let state = instance.state.as_deref().unwrap_or("unknown");
    if matches!(state, "shutting-down" | "terminated") {
        return Some(p.refuse(
            reason::INSTANCE_TERMINATED,
            format!("instance {instance_id} is {state}"),
        ));
    }
    if instance.root_device_type.as_deref() == Some("instance-store") {
        return Some(p.refuse(
            reason::INSTANCE_STORE_BACKED,
            format!(
                "instance {instance_id} is instance store-backed: it cannot be stopped, so its volumes cannot be swapped"
            ),
        ));
    }
    let must_stop =
        state != "stopped" && input.spec.instance_stop_policy == InstanceStopPolicy::StopIfRunning;
    let store_gb = input.instance_store_gb.unwrap_or(0);
    if must_stop && store_gb > 0 && !input.spec.allow_instance_store_data_loss {
        let type_ = instance.instance_type.as_deref().unwrap_or("its type");
        return Some(p.refuse(
            reason::INSTANCE_STORE_DATA_LOSS,
            format!(
                "instance {instance_id} ({type_}) has {store_gb} GB of instance store, whose data is lost when it stops: set allowInstanceStoreDataLoss to accept that"
            ),
        ));
    }
    None
}
