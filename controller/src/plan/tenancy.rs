//! Tenancy: a namespace acts only on what its own objects own, or on what an administrator
//! granted it. Pure: the reconciler resolves the grants (namespace labels, controller
//! settings) and the planner decides with the resource's tags.
//!
//! - **Owned means one owner.** A resource carrying another object's ownership tags (its
//!   UID, not released) is refused to every other object, in any policy.
//! - **Released stays in its namespace.** A resource released by `deletionPolicy: Retain`
//!   may be adopted again from the namespace that released it; elsewhere it is unowned.
//! - **Unowned needs a grant.** Adopting under `Manage`, attaching to an instance, imaging
//!   an instance or migrating a volume act on something the controller did not make: only
//!   in a namespace the administrator trusts (a namespace label tenants cannot edit, or the
//!   controller's single-tenant setting), or where the resource's own AWS tag
//!   [`GRANT_TAG`] names the namespace. `ObserveOnly` adoption is a read, allowed unless
//!   the administrator turned it off.
//!
//! Messages never name another namespace's object.

use crate::api::common::ManagementPolicy;
use crate::plan::core::Problem;
use crate::plan::tags::{CLUSTER_TAG, OWNER_TAG, Owner, Tags, UID_TAG, is_released};

/// The namespace label, set by cluster administrators, that trusts a namespace with every
/// unowned resource of the account (tenants with namespaced RBAC cannot edit a Namespace).
pub const TRUSTED_LABEL: &str = "ec2.reconciler.dev/trusted";

/// The AWS tag, set by whoever owns a resource in AWS, naming the namespaces that may act
/// on it: space-separated, each `namespace` (any cluster) or `cluster/namespace`.
pub const GRANT_TAG: &str = "ec2.reconciler.dev/grant-namespaces";

/// The reasons of tenancy refusals.
pub mod reason {
    pub const OWNED_BY_ANOTHER_OBJECT: &str = "OwnedByAnotherObject";
    pub const NOT_GRANTED: &str = "NotGranted";
    pub const OBSERVE_NOT_ALLOWED: &str = "ObserveNotAllowed";
}

/// What the administrator allowed the object's namespace, resolved by the reconciler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grants {
    /// Every unowned resource of the account: the namespace carries [`TRUSTED_LABEL`], or
    /// the controller runs single-tenant.
    pub trusted: bool,
    /// `ObserveOnly` adoption of unowned resources (on unless the administrator says no).
    pub observe_unowned: bool,
}

impl Grants {
    /// The safe default: nothing unowned is granted, reads are.
    pub const DEFAULT: Grants = Grants {
        trusted: false,
        observe_unowned: true,
    };

    /// Everything unowned: a single-tenant cluster.
    pub const SINGLE_TENANT: Grants = Grants {
        trusted: true,
        observe_unowned: true,
    };
}

impl Default for Grants {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whose a resource is, seen from one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Our ownership tags with this object's UID.
    Ours,
    /// Released by an object of this namespace in this cluster: this namespace may take it.
    ReleasedHere,
    /// Another object's. `Some(name)` when that object is in this namespace (its name may
    /// be shown), `None` otherwise.
    OwnedByAnother(Option<String>),
    /// Nobody's, as far as our tags say.
    Unowned,
}

/// The standing of a resource with these tags, for `owner`.
pub fn standing(owner: &Owner, tags: &Tags) -> Standing {
    let same_cluster = tags.get(CLUSTER_TAG).is_some_and(|c| *c == owner.cluster);
    let owner_in_this_namespace = tags
        .get(OWNER_TAG)
        .and_then(|o| o.split_once('/'))
        .filter(|(ns, _)| same_cluster && *ns == owner.namespace)
        .map(|(_, name)| name.to_owned());
    if is_released(tags) {
        return match owner_in_this_namespace {
            Some(_) => Standing::ReleasedHere,
            None => Standing::Unowned,
        };
    }
    match tags.get(UID_TAG) {
        Some(uid) if !owner.uid.is_empty() && *uid == owner.uid => Standing::Ours,
        Some(_) => Standing::OwnedByAnother(owner_in_this_namespace),
        None => Standing::Unowned,
    }
}

/// Whether a resource's own [`GRANT_TAG`] names `namespace` of `cluster`.
pub fn tag_grants(cluster: &str, namespace: &str, tags: &Tags) -> bool {
    tags.get(GRANT_TAG).is_some_and(|value| {
        value
            .split_whitespace()
            .any(|entry| match entry.split_once('/') {
                Some((c, ns)) => c == cluster && ns == namespace,
                None => entry == namespace,
            })
    })
}

/// How the resource is to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Taken over under `Manage`: tagged as ours, modified, deleted with the object.
    Manage,
    /// Only read (`ObserveOnly`).
    Observe,
    /// Acted on without being taken over: an instance attached to, imaged or stopped.
    ActOn,
}

/// The resource a tenancy check looks at.
#[derive(Clone, Copy, Debug)]
pub struct Resource<'a> {
    /// What it is, in words: `volume`, `instance`.
    pub noun: &'a str,
    pub id: &'a str,
    pub tags: &'a Tags,
}

impl From<ManagementPolicy> for Use {
    fn from(policy: ManagementPolicy) -> Self {
        match policy {
            ManagementPolicy::Manage => Use::Manage,
            ManagementPolicy::ObserveOnly => Use::Observe,
        }
    }
}

/// Why `owner` may not use `resource` this way; `None` when it may.
pub fn refusal(
    owner: &Owner,
    grants: Grants,
    resource: Resource<'_>,
    usage: Use,
) -> Option<Problem> {
    let Resource { noun, id, tags } = resource;
    let what = format!("{noun} {id}");
    let granted = grants.trusted || tag_grants(&owner.cluster, &owner.namespace, tags);
    match standing(owner, tags) {
        Standing::Ours | Standing::ReleasedHere => None,
        // Reading what an object of the same namespace owns shows nothing that object's own
        // status does not.
        Standing::OwnedByAnother(Some(_)) if usage == Use::Observe => None,
        Standing::OwnedByAnother(name) => {
            let holder = match name {
                Some(name) => format!("{} {name} in this namespace", owner.kind),
                None => "another object".to_owned(),
            };
            Some(Problem {
                reason: reason::OWNED_BY_ANOTHER_OBJECT,
                message: format!(
                    "{what} is managed by {holder}: a resource has one owner (its owner hands it over by being deleted with deletionPolicy Retain)"
                ),
                resource: None,
            })
        }
        Standing::Unowned => match usage {
            Use::Observe if grants.observe_unowned || granted => None,
            Use::Observe => Some(Problem {
                reason: reason::OBSERVE_NOT_ALLOWED,
                message: format!(
                    "{what} was not made by this namespace, and the administrator turned off observing unowned resources"
                ),
                resource: None,
            }),
            Use::Manage | Use::ActOn if granted => None,
            Use::Manage | Use::ActOn => Some(Problem {
                reason: reason::NOT_GRANTED,
                message: format!(
                    "{what} was not made by this namespace and no administrator granted it: grant it with the namespace label {TRUSTED_LABEL}=true, the AWS tag {GRANT_TAG} on the resource naming this namespace, or the controller's single-tenant setting"
                ),
                // A grant added later (label or tag) heals it: watched by the reconciler.
                resource: Some(id.to_owned()),
            }),
        },
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use super::*;
    use crate::plan::tags::{RELEASED_TAG, ownership_tags};

    fn owner(namespace: &str, name: &str, uid: &str) -> Owner {
        Owner {
            cluster: "prod".to_owned(),
            kind: "EbsVolume".to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    fn volume(tags: &Tags) -> Resource<'_> {
        Resource {
            noun: "volume",
            id: "vol-1",
            tags,
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_resource_of_another_namespace_is_refused_without_naming_its_owner() {
        let theirs = Tags::from(ownership_tags(&owner("team-b", "secret-db", "uid-b"), None));
        let me = owner("team-a", "grab", "uid-a");
        for usage in [Use::Manage, Use::Observe, Use::ActOn] {
            let problem = refusal(&me, Grants::SINGLE_TENANT, volume(&theirs), usage);
            let Some(problem) = problem else {
                panic!("{usage:?} of another object's volume was allowed");
            };
            assert_eq!(problem.reason, reason::OWNED_BY_ANOTHER_OBJECT);
            assert!(!problem.message.contains("team-b"), "{}", problem.message);
            assert!(
                !problem.message.contains("secret-db"),
                "{}",
                problem.message
            );
        }
    }

    #[test]
    fn an_owner_in_the_same_namespace_is_named() {
        let theirs = Tags::from(ownership_tags(&owner("team-a", "first", "uid-1"), None));
        let problem = refusal(
            &owner("team-a", "second", "uid-2"),
            Grants::DEFAULT,
            volume(&theirs),
            Use::Manage,
        );
        assert!(problem.is_some_and(|p| p.message.contains("EbsVolume first in this namespace")));
        let observed = refusal(
            &owner("team-a", "watcher", "uid-3"),
            Grants::DEFAULT,
            volume(&theirs),
            Use::Observe,
        );
        assert_eq!(observed, None, "observing within the namespace is allowed");
    }

    #[test]
    fn a_namespace_of_the_same_name_in_another_cluster_is_another_owner() {
        let mut theirs = Tags::from(ownership_tags(&owner("team-a", "first", "uid-1"), None));
        theirs.insert(CLUSTER_TAG, "staging");
        assert_eq!(
            standing(&owner("team-a", "second", "uid-2"), &theirs),
            Standing::OwnedByAnother(None)
        );
    }

    #[test]
    fn our_own_resource_needs_no_grant() {
        let me = owner("team-a", "mine", "uid-a");
        let ours = Tags::from(ownership_tags(&me, None));
        assert_eq!(
            refusal(&me, Grants::DEFAULT, volume(&ours), Use::Manage),
            None
        );
    }

    #[test]
    fn a_released_resource_may_be_taken_back_only_by_its_namespace() {
        let mut released = Tags::from(ownership_tags(&owner("team-a", "old", "uid-old"), None));
        released.insert(RELEASED_TAG, "true");
        let here = owner("team-a", "new", "uid-new");
        assert_eq!(standing(&here, &released), Standing::ReleasedHere);
        assert_eq!(
            refusal(&here, Grants::DEFAULT, volume(&released), Use::Manage),
            None
        );
        let elsewhere = owner("team-b", "new", "uid-b");
        assert_eq!(standing(&elsewhere, &released), Standing::Unowned);
        assert_eq!(
            refusal(&elsewhere, Grants::DEFAULT, volume(&released), Use::Manage).map(|p| p.reason),
            Some(reason::NOT_GRANTED)
        );
    }

    #[test]
    fn unowned_resources_need_a_grant_to_be_managed_or_acted_on_but_not_to_be_read() {
        let me = owner("team-a", "adopt", "uid-a");
        let none = Tags::default();
        for usage in [Use::Manage, Use::ActOn] {
            assert_eq!(
                refusal(&me, Grants::DEFAULT, volume(&none), usage).map(|p| p.reason),
                Some(reason::NOT_GRANTED),
                "{usage:?}"
            );
            assert_eq!(
                refusal(&me, Grants::SINGLE_TENANT, volume(&none), usage),
                None
            );
        }
        assert_eq!(
            refusal(&me, Grants::DEFAULT, volume(&none), Use::Observe),
            None
        );
        let no_reads = Grants {
            trusted: false,
            observe_unowned: false,
        };
        assert_eq!(
            refusal(&me, no_reads, volume(&none), Use::Observe).map(|p| p.reason),
            Some(reason::OBSERVE_NOT_ALLOWED)
        );
    }

    #[test]
    fn the_grant_tag_names_namespaces_with_or_without_their_cluster() {
        for value in ["team-a", "team-c team-a", "prod/team-a", "  team-a  "] {
            assert!(
                tag_grants("prod", "team-a", &tags(&[(GRANT_TAG, value)])),
                "{value:?}"
            );
        }
        for value in [
            "",
            "team-ab",
            "team",
            "staging/team-a",
            "prod/team-b",
            "team-b,team-a",
        ] {
            assert!(
                !tag_grants("prod", "team-a", &tags(&[(GRANT_TAG, value)])),
                "{value:?}"
            );
        }
        assert!(!tag_grants(
            "prod",
            "team-a",
            &tags(&[("grant-namespaces", "team-a")])
        ));
    }
}
