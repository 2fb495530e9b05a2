//! No image is observed: adopt reports it missing, a recorded create is waited for, and
//! otherwise the source is checked (it exists, it is this namespace's or granted) and the
//! create is planned.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Builder, CREATE_STEP, ImageAction, ImageInput, ImageWait, Registration, reason};
use crate::api::ami_image::{CopySource, InstanceSource, ManifestSource, SnapshotsSource};
use crate::api::intent::find_intent;
use crate::plan::tags::creation_tags;
use crate::plan::tenancy::{self, Resource, Use};

pub(super) fn plan_missing(input: &ImageInput<'_>, b: &mut Builder) {
    let spec = input.spec;
    if let Some(id) = &spec.image_id {
        b.problem(
            reason::IMAGE_NOT_FOUND,
            format!("{id} does not exist or is not visible to this account"),
        );
        return;
    }
    if find_intent(&input.status.intents, CREATE_STEP).is_some() {
        // Requested before (its answer may have been lost): found by its id or its tags
        // once AWS shows it, never requested twice.
        b.wait(ImageWait::Requested {
            name: super::image_name(spec),
        });
        return;
    }
    if let Some(id) = &input.status.image_id {
        b.problem(
            reason::IMAGE_NOT_FOUND,
            format!("{id} was deregistered outside the controller; it is not made again (delete this AmiImage, or create a new one)"),
        );
        return;
    }
    let Some(source) = &spec.source else {
        return;
    };
    let action = if let Some(instance) = &source.instance {
        from_instance(input, instance, b)
    } else if let Some(snapshots) = &source.snapshots {
        from_snapshots(input, snapshots, b)
    } else if let Some(manifest) = &source.manifest {
        Some(from_manifest(input, manifest))
    } else if let Some(copy) = &source.copy {
        copied(input, copy, b)
    } else {
        None
    };
    if let Some(action) = action {
        super::share::check_before_create(input, b);
        if b.problems.is_empty() {
            b.act(action);
        }
    }
}

/// Our ownership tags plus the user's, on the image.
fn new_image_tags(input: &ImageInput<'_>) -> BTreeMap<String, String> {
    creation_tags(input.owner, None, &input.spec.tags)
}

/// The snapshots AWS makes for the image: its tags, then `snapshotTags` (which win), then
/// our ownership tags (which always win).
fn new_snapshot_tags(input: &ImageInput<'_>) -> BTreeMap<String, String> {
    let mut user = input.spec.tags.clone();
    user.extend(input.spec.snapshot_tags.clone());
    creation_tags(input.owner, None, &user)
}

fn from_instance(
    input: &ImageInput<'_>,
    source: &InstanceSource,
    b: &mut Builder,
) -> Option<ImageAction> {
    let Some(instance) = input.source_instance else {
        b.problem(
            reason::INSTANCE_NOT_FOUND,
            format!("instance {} does not exist", source.instance_id),
        );
        return None;
    };
    let resource = Resource {
        noun: "instance",
        id: &instance.instance_id,
        tags: &instance.tags,
    };
    // An image of an instance copies its disks: this namespace needs the instance granted.
    if let Some(refused) = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn) {
        b.add_problem(refused);
        return None;
    }
    let state = instance.state.as_deref().unwrap_or("unknown");
    if !matches!(state, "running" | "stopped") {
        b.problem(
            reason::INSTANCE_NOT_IMAGEABLE,
            format!(
                "instance {} is {state}: AWS images only a running or stopped instance",
                instance.instance_id
            ),
        );
        return None;
    }
    Some(ImageAction::CreateFromInstance {
        instance_id: instance.instance_id.clone(),
        name: super::image_name(input.spec),
        description: input.spec.description.clone(),
        no_reboot: source.no_reboot,
        tags: new_image_tags(input),
        snapshot_tags: new_snapshot_tags(input),
    })
}

fn from_snapshots(
    input: &ImageInput<'_>,
    source: &SnapshotsSource,
    b: &mut Builder,
) -> Option<ImageAction> {
    let found = input.source_snapshots.cloned().unwrap_or_default();
    let mut usable = true;
    for id in source
        .block_device_mappings
        .iter()
        .filter_map(|m| m.snapshot_id.as_ref())
    {
        let Some(snapshot) = found.get(id) else {
            b.problem(
                reason::SNAPSHOT_NOT_FOUND,
                format!("snapshot {id} does not exist in this Region"),
            );
            usable = false;
            continue;
        };
        let resource = Resource {
            noun: "snapshot",
            id,
            tags: &snapshot.tags,
        };
        // Registering an image of a snapshot hands its data to whoever launches it.
        if let Some(refused) = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn) {
            b.add_problem(refused);
            usable = false;
        } else if snapshot.state != "completed" {
            b.problem(
                reason::SNAPSHOT_NOT_COMPLETED,
                format!(
                    "snapshot {id} is {}: an image can be registered only from completed snapshots",
                    snapshot.state
                ),
            );
            usable = false;
        }
    }
    if !usable {
        return None;
    }
    Some(ImageAction::Register(Box::new(Registration {
        name: super::image_name(input.spec),
        description: input.spec.description.clone(),
        architecture: word(&source.architecture),
        virtualization_type: word(&source.virtualization_type),
        boot_mode: source.boot_mode.as_ref().map(word),
        ena_support: source.ena_support,
        imds_support: source.imds_support.as_ref().map(word),
        tpm_support: source.tpm_support.as_ref().map(word),
        uefi_data: source.uefi_data.clone(),
        root_device_name: Some(source.root_device_name.clone()),
        mappings: source.block_device_mappings.clone(),
        image_location: None,
        tags: new_image_tags(input),
    })))
}

fn from_manifest(input: &ImageInput<'_>, source: &ManifestSource) -> ImageAction {
    ImageAction::Register(Box::new(Registration {
        name: super::image_name(input.spec),
        description: input.spec.description.clone(),
        architecture: word(&source.architecture),
        virtualization_type: word(&source.virtualization_type),
        boot_mode: None,
        ena_support: false,
        imds_support: None,
        tpm_support: None,
        uefi_data: None,
        root_device_name: None,
        mappings: Vec::new(),
        image_location: Some(source.image_location.clone()),
        tags: new_image_tags(input),
    }))
}

fn copied(input: &ImageInput<'_>, source: &CopySource, b: &mut Builder) -> Option<ImageAction> {
    let Some(image) = input.source_image else {
        let what = match (&source.source_image_id, &source.source_image_selector) {
            (Some(id), _) => format!("{id} does not exist in {}", source.source_region),
            (None, Some(selector)) => format!(
                "no available image named like {} of {} in {}",
                selector.name_pattern,
                selector
                    .owners
                    .iter()
                    .map(|o| o.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                source.source_region
            ),
            (None, None) => "no source image is named".to_owned(),
        };
        b.problem(
            reason::SOURCE_IMAGE_NOT_FOUND,
            format!("{what}, or is not visible to this account"),
        );
        return None;
    };
    // A public image is anyone's to copy; any other image of the account needs to be this
    // namespace's, or granted.
    if !image.public {
        let resource = Resource {
            noun: "image",
            id: &image.image_id,
            tags: &image.tags,
        };
        if let Some(refused) = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn) {
            b.add_problem(refused);
            return None;
        }
    }
    Some(ImageAction::Copy {
        source_image_id: image.image_id.clone(),
        source_region: source.source_region.clone(),
        name: super::image_name(input.spec),
        description: input.spec.description.clone(),
        encrypted: source.encrypted,
        kms_key_id: source.kms_key_id.clone(),
        copy_image_tags: source.copy_image_tags,
        completion_duration_minutes: source.completion_duration_minutes,
        tags: new_image_tags(input),
        snapshot_tags: new_snapshot_tags(input),
    })
}

/// An enum's wire word, as its serde name (`x86_64`, `hvm`, `uefi`).
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
