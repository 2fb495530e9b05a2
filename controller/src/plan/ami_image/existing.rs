//! The image exists: wait while it is pending, report a failure, and converge what can
//! change in place (tags, description, deprecation, launch permissions) under `Manage`.

use super::{Builder, ImageAction, ImageInput, ImageWait, reason};
use crate::api::common::ManagementPolicy;
use crate::plan::observed::{ImageState, ObservedImage};
use crate::plan::tags::{TagChanges, managed_keys_after, ownership_repairs, tag_changes};
use crate::plan::tenancy::{self, Resource, Use};

pub(super) fn plan(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    let resource = Resource {
        noun: "image",
        id: &image.image_id,
        tags: &image.tags,
    };
    let usage = Use::from(input.spec.management_policy);
    // Public images and other accounts' shared images are anyone's to observe.
    let readable = image.public && usage == Use::Observe;
    if !readable && let Some(refused) = tenancy::refusal(input.owner, input.grants, resource, usage)
    {
        let observe_refused =
            tenancy::refusal(input.owner, input.grants, resource, Use::Observe).is_some();
        b.image_hidden = observe_refused && !image.public;
        b.add_problem(refused);
        return;
    }
    match image.state {
        Some(ImageState::Pending | ImageState::Transient) => {
            b.wait(ImageWait::Pending {
                image_id: image.image_id.clone(),
                progress: input.progress_percent,
            });
            return;
        }
        Some(ImageState::Available) => {}
        state => {
            let state = state.map_or("unknown", ImageState::as_str);
            let why = image
                .state_reason
                .as_deref()
                .unwrap_or("AWS gave no reason");
            b.problem(
                reason::IMAGE_FAILED,
                format!("{} is {state}: {why}", image.image_id),
            );
            return;
        }
    }
    b.converged = Some(ImageState::Available);
    b.newer_source = input
        .newest_match
        .filter(|newest| input.status.source_image_id.as_ref() != Some(&newest.image_id))
        .map(|newest| newest.image_id.clone());
    if input.spec.management_policy == ManagementPolicy::Manage {
        repair_ownership(input, image, b);
        tags(input, image, b);
        description(input, image, b);
        deprecation(input, image, b);
        protection(input, image, b);
    }
    super::share::plan(input, image, b);
}

/// Ownership tags removed or altered outside are put back first (the batched sweep finds
/// the image by them); an adopted and granted image gets them here.
fn repair_ownership(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    let repairs = ownership_repairs(input.owner, None, &image.tags).to_set;
    if !repairs.is_empty() {
        b.act(ImageAction::SetTags {
            image_id: image.image_id.clone(),
            tags: repairs,
        });
    }
}

fn tags(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    let changes = tag_changes(&input.spec.tags, &image.tags, input.managed_tag_keys);
    b.managed_tag_keys = managed_keys_after(&input.spec.tags, &changes);
    act_on_tags(&image.image_id, changes, b);
}

/// The CreateTags, then the DeleteTags, that make `changes`.
pub(super) fn act_on_tags(image_id: &str, changes: TagChanges, b: &mut Builder) {
    if !changes.to_set.is_empty() {
        b.act(ImageAction::SetTags {
            image_id: image_id.to_owned(),
            tags: changes.to_set,
        });
    }
    if !changes.to_remove.is_empty() {
        b.act(ImageAction::RemoveTags {
            image_id: image_id.to_owned(),
            keys: changes.to_remove,
        });
    }
}

fn description(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    // An omitted description is not managed (an adopted image keeps its own).
    if let Some(wanted) = &input.spec.description
        && image.description.as_ref() != Some(wanted)
    {
        b.act(ImageAction::SetDescription {
            image_id: image.image_id.clone(),
            description: wanted.clone(),
        });
    }
}

fn deprecation(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    match (input.spec.deprecation_time, image.deprecation_time) {
        // AWS keeps the time to the minute: a spec with seconds is the same time.
        (Some(wanted), Some(seen)) if (wanted - seen).num_seconds().abs() < 60 => {}
        (Some(at), _) => b.act(ImageAction::EnableDeprecation {
            image_id: image.image_id.clone(),
            at,
        }),
        // Removed from the spec: only an image this object manages loses its deprecation.
        (None, Some(_))
            if tenancy::standing(input.owner, &image.tags) == tenancy::Standing::Ours
                && input.spec.image_id.is_none() =>
        {
            b.act(ImageAction::DisableDeprecation {
                image_id: image.image_id.clone(),
            });
        }
        (None, _) => {}
    }
}

/// Deregistration protection as the spec asks, when it asks.
pub(super) fn protection(input: &ImageInput<'_>, image: &ObservedImage, b: &mut Builder) {
    let Some(wanted) = &input.spec.deregistration_protection else {
        return;
    };
    let seen = image
        .deregistration_protection
        .as_deref()
        .unwrap_or("disabled");
    let enabled = seen.starts_with("enabled");
    let matches = match wanted.enabled {
        true => enabled && (seen == "enabled-with-cooldown") == wanted.with_cooldown,
        // A cooldown still running (`disabled-until ...`) is as disabled as it can get.
        false => !enabled,
    };
    if !matches {
        b.act(ImageAction::SetDeregistrationProtection {
            image_id: image.image_id.clone(),
            enabled: wanted.enabled,
            with_cooldown: wanted.with_cooldown,
        });
    }
}

/// Whether AWS would refuse to deregister the image now.
pub(super) fn is_protected(image: &ObservedImage) -> bool {
    image
        .deregistration_protection
        .as_deref()
        .is_some_and(|p| p.starts_with("enabled") || p.starts_with("disabled-until"))
}
