//! No volume in AWS: create one, or say why not.

use chrono::TimeDelta;

use super::{Builder, CREATE_STEP, CreateVolume, VolumeAction, VolumeInput, Wait, attach, reason};
use crate::api::intent::find_intent;
use crate::api::limits::{VolumeShape, check_volume};
use crate::plan::tags::{TagChanges, creation_tags, managed_keys_after};

/// How long a volume id returned by CreateVolume may stay invisible to Describe before it
/// counts as lost (AWS is eventually consistent right after a create).
pub const VISIBILITY_GRACE: TimeDelta = TimeDelta::minutes(10);

pub(super) fn plan_missing(input: &VolumeInput<'_>, b: &mut Builder) {
    let spec = input.spec;
    let status = input.status;
    // The create carries the spec's tags: they are ours from its first instant.
    b.managed_tag_keys = managed_keys_after(&spec.tags, &TagChanges::default());
    if let Some(id) = &spec.volume_id {
        b.problem(
            reason::VOLUME_NOT_FOUND,
            format!(
                "{id} (spec.volumeId) was not found: it was deleted outside the controller, or is in another Region or account"
            ),
        );
        return;
    }
    if let Some(id) = &status.volume_id {
        if find_intent(&status.intents, CREATE_STEP).is_some() && !invisible_too_long(input) {
            b.wait(Wait::VolumeNotVisibleYet {
                volume_id: id.clone(),
            });
            return;
        }
        // It existed and held data: re-creating it would hide the loss behind an empty volume.
        b.problem(
            reason::VOLUME_NOT_FOUND,
            format!(
                "{id} was deleted outside the controller; it is not re-created because it held data (delete this EbsVolume, or restore the volume and adopt it with spec.volumeId)"
            ),
        );
        return;
    }
    if let Some(create) = create_action(input, b) {
        b.act(VolumeAction::Create(create));
    }
}

/// The Create for this spec, or `None` with a problem recorded. Also used when deleting, to
/// replay a recorded create whose result was lost.
pub(super) fn create_action(input: &VolumeInput<'_>, b: &mut Builder) -> Option<CreateVolume> {
    let spec = input.spec;
    let Some(az) = &spec.availability_zone else {
        b.problem(
            reason::AVAILABILITY_ZONE_REQUIRED,
            "availabilityZone is required to create a volume (or set volumeId to adopt one)"
                .to_owned(),
        );
        return None;
    };
    // The CRD makes the same checks at admission; objects admitted before a limit changed,
    // or with values the schema could not see, are caught here.
    let shape = VolumeShape {
        volume_type: spec.volume_type.unwrap_or_default(),
        size_gib: spec.size_gib,
        iops: spec.iops,
        throughput_mibps: spec.throughput_mibps,
        multi_attach: spec.multi_attach_enabled,
    };
    if let Err(violation) = check_volume(&shape) {
        b.problem(reason::OUTSIDE_VOLUME_LIMITS, violation.to_string());
        return None;
    }
    // Attachments cannot happen before the volume exists, but a wrong instance is worth
    // reporting now rather than after the create.
    attach::check_spec(input, az, b);
    Some(CreateVolume {
        availability_zone: az.clone(),
        volume_type: spec.volume_type.unwrap_or_default(),
        size_gib: spec.size_gib,
        iops: spec.iops,
        throughput_mibps: spec.throughput_mibps,
        encrypted: spec.encrypted,
        kms_key_id: input
            .kms_key_arn
            .map(str::to_owned)
            .or_else(|| spec.kms_key_id.clone()),
        multi_attach_enabled: spec.multi_attach_enabled,
        snapshot_id: spec.snapshot_id.clone(),
        tags: creation_tags(input.owner, None, &spec.tags),
    })
}

/// Whether a created volume has been invisible for longer than the grace period, measured
/// from when its create was requested (the recorded intent).
pub(super) fn invisible_too_long(input: &VolumeInput<'_>) -> bool {
    find_intent(&input.status.intents, CREATE_STEP)
        .is_some_and(|intent| input.now - intent.requested_at > VISIBILITY_GRACE)
}
