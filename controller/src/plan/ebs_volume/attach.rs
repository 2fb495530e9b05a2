//! Attachments: attach what the spec lists, detach what it does not.
//!
//! Detaches come before attaches (a single-attach volume must leave one instance before it
//! can join another), and anything in `attaching` or `detaching` is waited for, never
//! acted on again. A wrong instance (missing, in another zone) is a problem on the
//! condition, not an attach retried in a loop.

use std::collections::BTreeSet;

use super::{Builder, VolumeAction, VolumeInput, Wait, reason};
use crate::api::limits::MAX_MULTI_ATTACH_INSTANCES;
use crate::plan::observed::{AttachmentState, ObservedAttachment, ObservedVolume, VolumeState};
use crate::plan::tenancy::{self, Use};

/// Checks the spec's attachments against the volume's zone and the instances observed;
/// returns the instances that cannot be attached (each with a problem recorded).
pub(super) fn check_spec<'a>(
    input: &'a VolumeInput<'_>,
    volume_zone: &str,
    b: &mut Builder,
) -> BTreeSet<&'a str> {
    let spec = input.spec;
    let mut bad = BTreeSet::new();
    let count = spec.attachments.len();
    if count > MAX_MULTI_ATTACH_INSTANCES {
        b.problem(
            reason::TOO_MANY_ATTACHMENTS,
            format!(
                "{count} attachments: a volume can be attached to at most {MAX_MULTI_ATTACH_INSTANCES} instances"
            ),
        );
    }
    if count > 1 && !spec.multi_attach_enabled {
        b.problem(
            reason::MULTI_ATTACH_REQUIRED,
            format!("{count} attachments need multiAttachEnabled (io1 or io2)"),
        );
    }
    let Some(instances) = input.instances else {
        return bad;
    };
    for a in &spec.attachments {
        // An instance AWS reports without a zone is as good as missing.
        let found = instances
            .get(&a.instance_id)
            .and_then(|i| Some((i, i.availability_zone.as_deref()?)));
        let Some((instance, zone)) = found else {
            b.problem(
                reason::INSTANCE_NOT_FOUND,
                format!("instance {} does not exist", a.instance_id),
            );
            bad.insert(a.instance_id.as_str());
            continue;
        };
        let resource = tenancy::Resource {
            noun: "instance",
            id: &a.instance_id,
            tags: &instance.tags,
        };
        if let Some(refused) = tenancy::refusal(input.owner, input.grants, resource, Use::ActOn) {
            // Attaching hands the volume's data to whoever runs that instance, and the
            // instance's disks to this namespace: only where an administrator said so.
            b.add_problem(refused);
            bad.insert(a.instance_id.as_str());
        } else if zone != volume_zone {
            b.problem(
                reason::INSTANCE_IN_OTHER_ZONE,
                format!(
                    "instance {} is in {zone}, the volume in {volume_zone}: a volume can only attach in its own Availability Zone",
                    a.instance_id
                ),
            );
            bad.insert(a.instance_id.as_str());
        }
    }
    bad
}

pub(super) fn plan(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    let spec = input.spec;
    // An adopted volume with no attachments in its spec keeps whatever it has: an omitted
    // field is not managed, and detaching someone's in-use volume would be a nasty surprise.
    if spec.volume_id.is_some() && spec.attachments.is_empty() {
        return;
    }
    // Multi-Attach can only be turned on while the volume is attached nowhere: the
    // modification goes first, the attaches once it is on.
    let attached_nowhere = v
        .attachments
        .iter()
        .all(|a| a.state == AttachmentState::Detached);
    if spec.multi_attach_enabled && !v.multi_attach_enabled && attached_nowhere {
        return;
    }
    let bad = check_spec(input, &v.availability_zone, b);
    // Wanted means on the right instance at the right device: one at another device is
    // detached and attached again where the spec says (an instance holds a volume once).
    let wanted = |a: &ObservedAttachment| {
        spec.attachments
            .iter()
            .any(|s| s.instance_id == a.instance_id && same_device(&a.device, &s.device))
    };

    // Attachments that are not wanted: detach, or wait for AWS to finish with them.
    let mut detaching = false;
    for a in v.attachments.iter().filter(|a| !wanted(a)) {
        match a.state {
            AttachmentState::Attached | AttachmentState::Busy => {
                b.act(VolumeAction::Detach {
                    volume_id: v.volume_id.clone(),
                    instance_id: a.instance_id.clone(),
                    device: a.device.clone(),
                    force: spec.force_detach,
                });
                detaching = true;
            }
            AttachmentState::Attaching => {
                b.wait(Wait::Attaching {
                    instance_id: a.instance_id.clone(),
                });
                detaching = true;
            }
            AttachmentState::Detaching => {
                b.wait(Wait::Detaching {
                    instance_id: a.instance_id.clone(),
                });
                detaching = true;
            }
            AttachmentState::Detached => {}
        }
    }

    // Every attachment that still occupies the volume counts against its capacity until
    // AWS reports it detached.
    let capacity = if v.multi_attach_enabled {
        MAX_MULTI_ATTACH_INSTANCES
    } else {
        1
    };
    let mut occupied = v
        .attachments
        .iter()
        .filter(|a| a.state != AttachmentState::Detached)
        .count();
    let usable = matches!(v.state, VolumeState::Available | VolumeState::InUse);

    for want in &spec.attachments {
        let on_instance = |a: &&ObservedAttachment| {
            a.instance_id == want.instance_id && a.state != AttachmentState::Detached
        };
        let current = v
            .attachments
            .iter()
            .filter(on_instance)
            .find(|a| same_device(&a.device, &want.device));
        if current.is_none() && v.attachments.iter().any(|a| on_instance(&a)) {
            // At another device: its detach is planned above; attach once it is over.
            continue;
        }
        match current.map(|a| a.state) {
            Some(AttachmentState::Attached | AttachmentState::Busy) => continue,
            Some(AttachmentState::Attaching) => {
                b.wait(Wait::Attaching {
                    instance_id: want.instance_id.clone(),
                });
                continue;
            }
            // Re-attach once the detach (someone else's) is over.
            Some(AttachmentState::Detaching) => {
                b.wait(Wait::Detaching {
                    instance_id: want.instance_id.clone(),
                });
                continue;
            }
            Some(AttachmentState::Detached) | None => {}
        }
        if !usable || bad.contains(want.instance_id.as_str()) {
            continue;
        }
        if occupied >= capacity {
            // The detaches planned above make room; the attach follows on a later pass.
            if !detaching {
                b.problem(
                    reason::MULTI_ATTACH_REQUIRED,
                    format!(
                        "{} is already attached to {occupied} instance(s) and cannot also attach to {}",
                        v.volume_id, want.instance_id
                    ),
                );
            }
            continue;
        }
        b.act(VolumeAction::Attach {
            volume_id: v.volume_id.clone(),
            instance_id: want.instance_id.clone(),
            device: want.device.clone(),
        });
        occupied += 1;
    }
}

/// AWS reports the device as given; `xvdf` and `/dev/xvdf` name the same device.
fn same_device(a: &str, b: &str) -> bool {
    a.trim_start_matches("/dev/") == b.trim_start_matches("/dev/")
}
