//! Tags: converge only the tags we manage, never anyone else's.
//!
//! Ours are the spec's tags plus the keys the spec had on earlier passes (so dropping a tag
//! from the spec removes it). Tags others added are left alone, as are `aws:` tags (AWS
//! owns them) and our ownership tags (planned apart, see `repair_ownership`).

use super::{Builder, VolumeAction, VolumeInput};
use crate::plan::observed::ObservedVolume;
use crate::plan::tags::{TagChanges, managed_keys_after, tag_changes};

pub(super) fn plan(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    let changes = tag_changes(&input.spec.tags, &v.tags, input.managed_tag_keys);
    b.managed_tag_keys = managed_keys_after(&input.spec.tags, &changes);
    act_on(&v.volume_id, changes, b);
}

/// The CreateTags, then the DeleteTags, that make `changes` (each only when needed).
pub(super) fn act_on(volume_id: &str, changes: TagChanges, b: &mut Builder) {
    if !changes.to_set.is_empty() {
        b.act(VolumeAction::SetTags {
            volume_id: volume_id.to_owned(),
            tags: changes.to_set,
        });
    }
    if !changes.to_remove.is_empty() {
        b.act(VolumeAction::RemoveTags {
            volume_id: volume_id.to_owned(),
            keys: changes.to_remove,
        });
    }
}
