//! Ownership tags and tag diffs: pure values, shared by the planners and the `aws` layer
//! (which tags new resources with them and sweeps by them).
//!
//! Every resource the controller creates carries, from the first instant (TagSpecifications):
//!
//! | key | value |
//! |---|---|
//! | `ec2.reconciler.dev/cluster` | the cluster name (the sweep filter) |
//! | `ec2.reconciler.dev/kind` | `EbsVolume`, `AmiImage`, `EncryptedVolumeMigration` |
//! | `ec2.reconciler.dev/owner` | `namespace/name` of the owning object |
//! | `ec2.reconciler.dev/uid` | the owning object's UID: what "ours" means |
//! | `ec2.reconciler.dev/step` | for multi-step work, the step that made it (optional) |
//!
//! Released (deletion policy `Retain`): the `uid` tag is removed and
//! `ec2.reconciler.dev/released=true` is set, so the resource stays findable (cluster, kind and
//! owner stay, for people) but no object claims it any more: [`is_ours`] is false, and a new
//! object with the same name (a new UID) never adopts it by accident. The released tag takes
//! the uid tag's place, so the count stays at [`OWNERSHIP_TAGS`].

use std::collections::{BTreeMap, BTreeSet};

pub use crate::api::limits::OWNERSHIP_TAGS;
pub use crate::plan::observed_tags::Tags;

pub const TAG_PREFIX: &str = "ec2.reconciler.dev/";
pub const CLUSTER_TAG: &str = "ec2.reconciler.dev/cluster";
pub const KIND_TAG: &str = "ec2.reconciler.dev/kind";
pub const OWNER_TAG: &str = "ec2.reconciler.dev/owner";
pub const UID_TAG: &str = "ec2.reconciler.dev/uid";
pub const STEP_TAG: &str = "ec2.reconciler.dev/step";
pub const RELEASED_TAG: &str = "ec2.reconciler.dev/released";

/// On a volume an EncryptedVolumeMigration is swapping (value: the migration,
/// `namespace/name`): the EbsVolume that tracks the volume holds still until it is gone.
pub const MIGRATING_TAG: &str = "ec2.reconciler.dev/migrating";
/// On a volume a migration replaced (value: the new volume's id): the EbsVolume that
/// tracked it follows it to the new one.
pub const REPLACED_BY_TAG: &str = "ec2.reconciler.dev/replaced-by";
/// On a volume a migration made (value: the id of the volume it replaces).
pub const MIGRATED_FROM_TAG: &str = "ec2.reconciler.dev/migrated-from";

/// The ownership tag keys, the optional step included.
pub const OWNERSHIP_TAG_KEYS: [&str; 5] = [CLUSTER_TAG, KIND_TAG, OWNER_TAG, UID_TAG, STEP_TAG];

/// Who owns a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub cluster: String,
    /// `EbsVolume`, `AmiImage`, `EncryptedVolumeMigration`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// `namespace/name`.
    pub fn owner_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Keys users may not set or remove through the spec: AWS's and ours.
pub fn is_reserved_key(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) || key.starts_with(TAG_PREFIX)
}

/// The ownership tags of a resource made by `owner` (at `step`, for multi-step work).
pub fn ownership_tags(owner: &Owner, step: Option<&str>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (CLUSTER_TAG.to_owned(), owner.cluster.clone()),
        (KIND_TAG.to_owned(), owner.kind.clone()),
        (OWNER_TAG.to_owned(), owner.owner_ref()),
        (UID_TAG.to_owned(), owner.uid.clone()),
    ]);
    if let Some(step) = step {
        tags.insert(STEP_TAG.to_owned(), step.to_owned());
    }
    tags
}

/// Every tag a new resource gets: the user's (reserved keys dropped) plus ours (ours win).
pub fn creation_tags(
    owner: &Owner,
    step: Option<&str>,
    user_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = user_tags
        .iter()
        .filter(|(k, _)| !is_reserved_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(ownership_tags(owner, step));
    tags
}

/// Whether the resource belongs to the object with this UID (and was not released).
pub fn is_ours(tags: &Tags, uid: &str) -> bool {
    !uid.is_empty() && tags.get(UID_TAG).is_some_and(|v| v == uid) && !is_released(tags)
}

/// Whether the resource was released by its owner (deletion policy `Retain`).
pub fn is_released(tags: &Tags) -> bool {
    tags.get(RELEASED_TAG).is_some_and(|v| v == "true")
}

/// Tags to write (CreateTags) and keys to remove (DeleteTags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagChanges {
    pub to_set: BTreeMap<String, String>,
    pub to_remove: BTreeSet<String>,
}

impl TagChanges {
    pub fn is_empty(&self) -> bool {
        self.to_set.is_empty() && self.to_remove.is_empty()
    }
}

/// What to change so the user's tags match the spec, touching only tags we manage: a tag is
/// set when missing or different, and removed only when we managed it before
/// (`previously_managed_keys`, kept in status) and the spec no longer has it. Reserved keys
/// (`aws:`, ours) are never touched here; tags others added are left alone.
pub fn tag_changes(
    desired_user_tags: &BTreeMap<String, String>,
    observed_tags: &Tags,
    previously_managed_keys: &BTreeSet<String>,
) -> TagChanges {
    let to_set = desired_user_tags
        .iter()
        .filter(|(k, v)| !is_reserved_key(k) && observed_tags.get(k) != Some(v.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let to_remove = previously_managed_keys
        .iter()
        .filter(|k| {
            !is_reserved_key(k)
                && !desired_user_tags.contains_key(*k)
                && observed_tags.contains_key(k)
        })
        .cloned()
        .collect();
    TagChanges { to_set, to_remove }
}

/// The user tag keys that are ours after `changes`: the spec's (reserved keys aside), and
/// those being removed, which stay ours until their removal is observed (so a failed
/// DeleteTags is retried on the next pass instead of being forgotten).
pub fn managed_keys_after(
    desired_user_tags: &BTreeMap<String, String>,
    changes: &TagChanges,
) -> BTreeSet<String> {
    desired_user_tags
        .keys()
        .filter(|k| !is_reserved_key(k))
        .chain(&changes.to_remove)
        .cloned()
        .collect()
}

/// What to change to put back ownership tags removed or altered outside (drift). A released
/// resource is left as it is.
pub fn ownership_repairs(owner: &Owner, step: Option<&str>, observed_tags: &Tags) -> TagChanges {
    if is_released(observed_tags) {
        return TagChanges::default();
    }
    let to_set = ownership_tags(owner, step)
        .into_iter()
        .filter(|(k, v)| observed_tags.get(k) != Some(v))
        .collect();
    TagChanges {
        to_set,
        to_remove: BTreeSet::new(),
    }
}

/// What to change to release a resource (deletion policy `Retain`): set `released=true`,
/// remove the uid tag.
pub fn release_changes(observed_tags: &Tags) -> TagChanges {
    let mut changes = TagChanges::default();
    if !is_released(observed_tags) {
        changes
            .to_set
            .insert(RELEASED_TAG.to_owned(), "true".to_owned());
    }
    if observed_tags.contains_key(UID_TAG) {
        changes.to_remove.insert(UID_TAG.to_owned());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            cluster: "prod".to_owned(),
            kind: "EbsVolume".to_owned(),
            namespace: "team-a".to_owned(),
            name: "data".to_owned(),
            uid: "1234-abcd".to_owned(),
        }
    }

    /// A map (desired tags, changes) or observed [`Tags`] of these pairs.
    fn map<T: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> T {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn keys(ks: &[&str]) -> BTreeSet<String> {
        ks.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn ownership_tags_fit_the_reserved_tag_budget() {
        assert_eq!(OWNERSHIP_TAG_KEYS.len(), OWNERSHIP_TAGS);
        assert_eq!(ownership_tags(&owner(), Some("copy")).len(), OWNERSHIP_TAGS);
        // Releasing replaces a tag, it does not add one.
        let mut released = ownership_tags(&owner(), Some("copy"));
        let changes = release_changes(&Tags::from(&released));
        released.extend(changes.to_set);
        for k in &changes.to_remove {
            released.remove(k);
        }
        assert_eq!(released.len(), OWNERSHIP_TAGS);
    }

    #[test]
    fn ownership_tags_name_cluster_kind_owner_and_uid() {
        let tags = ownership_tags(&owner(), None);
        assert_eq!(
            tags,
            map(&[
                (CLUSTER_TAG, "prod"),
                (KIND_TAG, "EbsVolume"),
                (OWNER_TAG, "team-a/data"),
                (UID_TAG, "1234-abcd"),
            ])
        );
        assert_eq!(
            ownership_tags(&owner(), Some("snapshot"))
                .get(STEP_TAG)
                .map(String::as_str),
            Some("snapshot")
        );
    }

    #[test]
    fn creation_tags_drop_reserved_user_keys_and_keep_ours() {
        let user = map(&[("team", "a"), ("aws:x", "1"), (UID_TAG, "forged")]);
        let tags = creation_tags(&owner(), None, &user);
        assert_eq!(tags.get("team").map(String::as_str), Some("a"));
        assert!(!tags.contains_key("aws:x"));
        assert_eq!(tags.get(UID_TAG).map(String::as_str), Some("1234-abcd"));
    }

    #[test]
    fn a_resource_is_ours_only_with_our_uid_and_not_released() {
        let tags = Tags::from(ownership_tags(&owner(), None));
        assert!(is_ours(&tags, "1234-abcd"));
        assert!(!is_ours(&tags, "other"));
        assert!(!is_ours(&tags, ""));
        assert!(!is_ours(&map(&[("team", "a")]), "1234-abcd"));
        let mut released = tags.clone();
        released.insert(RELEASED_TAG, "true");
        assert!(!is_ours(&released, "1234-abcd"));
    }

    #[test]
    fn tag_changes_set_missing_and_changed_tags_only() {
        let desired = map(&[("team", "a"), ("env", "prod")]);
        let observed = map(&[("team", "a"), ("env", "dev")]);
        let c = tag_changes(&desired, &observed, &keys(&["team", "env"]));
        assert_eq!(c.to_set, map(&[("env", "prod")]));
        assert!(c.to_remove.is_empty());
        assert!(tag_changes(&desired, &Tags::from(&desired), &keys(&[])).is_empty());
    }

    #[test]
    fn tag_changes_remove_only_tags_we_managed_before() {
        let desired = map(&[("team", "a")]);
        let observed = map(&[
            ("team", "a"),
            ("old", "x"),
            ("someone-else", "y"),
            ("aws:cloudformation:stack-name", "s"),
            (UID_TAG, "1234-abcd"),
        ]);
        let previously = keys(&[
            "team",
            "old",
            "aws:cloudformation:stack-name",
            UID_TAG,
            "gone",
        ]);
        let c = tag_changes(&desired, &observed, &previously);
        assert!(c.to_set.is_empty());
        assert_eq!(c.to_remove, keys(&["old"]));
    }

    #[test]
    fn tag_changes_never_set_reserved_keys() {
        let desired = map(&[("AWS:thing", "1"), (KIND_TAG, "x")]);
        let c = tag_changes(&desired, &Tags::default(), &keys(&[]));
        assert!(c.is_empty());
    }

    #[test]
    fn removed_ownership_tags_are_repaired_unless_released() {
        let mut observed = Tags::from(ownership_tags(&owner(), None));
        observed.remove(OWNER_TAG);
        let c = ownership_repairs(&owner(), None, &observed);
        assert_eq!(c.to_set, map(&[(OWNER_TAG, "team-a/data")]));
        let released = map(&[(RELEASED_TAG, "true")]);
        assert!(ownership_repairs(&owner(), None, &released).is_empty());
    }

    #[test]
    fn release_swaps_the_uid_tag_for_the_released_tag_once() {
        let tags = Tags::from(ownership_tags(&owner(), None));
        let c = release_changes(&tags);
        assert_eq!(c.to_set, map(&[(RELEASED_TAG, "true")]));
        assert_eq!(c.to_remove, keys(&[UID_TAG]));
        let mut after = tags;
        after.remove(UID_TAG);
        after.insert(RELEASED_TAG, "true");
        assert!(release_changes(&after).is_empty());
    }
}
