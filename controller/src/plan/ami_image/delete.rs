//! The object is being deleted: deregister what is this object's (with the snapshots it
//! made, when asked), release it under `Retain`, and never touch an image that is not ours.

use super::{Builder, CREATE_STEP, ImageAction, ImageInput, ImageWait, reason};
use crate::api::common::{DeletionPolicy, ManagementPolicy};
use crate::api::intent::find_intent;
use crate::plan::observed::{ImageState, ObservedImage};
use crate::plan::tags::release_changes;
use crate::plan::tenancy::{self, Standing};

pub(super) fn plan(input: &ImageInput<'_>, image: Option<&ObservedImage>, b: &mut Builder) {
    let spec = input.spec;
    if spec.management_policy == ManagementPolicy::ObserveOnly {
        b.finished = true;
        return;
    }
    let Some(image) = image else {
        // Requested but never seen: wait for it (a lost answer), so it is not left behind.
        if spec.deletion_policy == DeletionPolicy::Delete
            && find_intent(&input.status.intents, CREATE_STEP).is_some()
        {
            b.wait(ImageWait::Requested {
                name: super::image_name(spec),
            });
        } else {
            b.finished = true;
        }
        return;
    };
    // Only an image tagged as this object's is released or deregistered: one whose
    // adoption was refused, or another object's, stays exactly as it is.
    if tenancy::standing(input.owner, &image.tags) != Standing::Ours {
        b.finished = true;
        return;
    }
    if spec.deletion_policy == DeletionPolicy::Retain {
        super::existing::act_on_tags(&image.image_id, release_changes(&image.tags), b);
        b.finished = true;
        return;
    }
    if super::existing::is_protected(image) {
        // Never lifted by the controller on its own: only a spec that asks for it.
        let wants_off = spec
            .deregistration_protection
            .as_ref()
            .is_some_and(|p| !p.enabled);
        let seen = image
            .deregistration_protection
            .as_deref()
            .unwrap_or_default();
        if wants_off && seen.starts_with("enabled") {
            super::existing::protection(input, image, b);
            return;
        }
        b.problem(
            reason::DEREGISTRATION_PROTECTED,
            format!(
                "{} is protected from deregistration ({seen}): set deregistrationProtection.enabled to false to let it go (a protection enabled withCooldown then holds 24 more hours), or use deletionPolicy Retain to keep it",
                image.image_id
            ),
        );
        return;
    }
    if image.state == Some(ImageState::Pending) {
        // DeregisterImage refuses a pending image; it goes once it is done.
        b.wait(ImageWait::Pending {
            image_id: image.image_id.clone(),
            progress: input.progress_percent,
        });
        return;
    }
    b.act(ImageAction::Deregister {
        image_id: image.image_id.clone(),
        delete_snapshots: spec.delete_snapshots && made_its_snapshots(input),
    });
    b.finished = true;
}

/// The image's snapshots were made for this object (CreateImage, CopyImage), so they are
/// ours to delete; snapshots a user registered from, or an adopted image's, are not.
fn made_its_snapshots(input: &ImageInput<'_>) -> bool {
    input.spec.image_id.is_none()
        && input
            .spec
            .source
            .as_ref()
            .is_some_and(|s| s.instance.is_some() || s.copy.is_some())
}
