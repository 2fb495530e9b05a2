//! Tags: converge only the tags we manage, never anyone else's.
//!
//! Ours are the spec's tags plus the keys the spec had on earlier passes (so dropping a tag
//! from the spec removes it). Tags others added are left alone, as are `aws:` tags (AWS
//! owns them) and our ownership tags (the `aws` layer owns those, not the user diff).

use std::collections::{BTreeMap, BTreeSet};

use super::{Builder, VolumeAction, VolumeInput};
use crate::api::EbsVolumeSpec;
use crate::api::common::OWN_PREFIX;
use crate::plan::observed::ObservedVolume;

/// Tags the user diff never touches: AWS's own and the controller's ownership tags.
pub fn is_protected_tag(key: &str) -> bool {
    key.starts_with("aws:") || key.starts_with(OWN_PREFIX)
}

/// The spec's tag keys that are ours to manage.
pub(super) fn spec_keys(spec: &EbsVolumeSpec) -> BTreeSet<String> {
    spec.tags
        .keys()
        .filter(|k| !is_protected_tag(k))
        .cloned()
        .collect()
}

pub(super) fn plan(input: &VolumeInput<'_>, v: &ObservedVolume, b: &mut Builder) {
    let spec = input.spec;
    let set: BTreeMap<String, String> = spec
        .tags
        .iter()
        .filter(|(k, want)| !is_protected_tag(k) && v.tags.get(*k) != Some(*want))
        .map(|(k, want)| (k.clone(), want.clone()))
        .collect();
    let remove: BTreeSet<String> = input
        .managed_tag_keys
        .iter()
        .filter(|k| !is_protected_tag(k) && !spec.tags.contains_key(*k) && v.tags.contains_key(*k))
        .cloned()
        .collect();
    // A dropped key stays ours until its removal is observed, so a failed DeleteTags is
    // retried on the next pass instead of being forgotten.
    let mut managed = spec_keys(spec);
    managed.extend(remove.iter().cloned());
    b.managed_tag_keys = managed;
    if !set.is_empty() {
        b.act(VolumeAction::SetTags {
            volume_id: v.volume_id.clone(),
            tags: set,
        });
    }
    if !remove.is_empty() {
        b.act(VolumeAction::RemoveTags {
            volume_id: v.volume_id.clone(),
            keys: remove,
        });
    }
}
