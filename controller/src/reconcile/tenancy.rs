//! Where a namespace's grants and AWS identity come from: the controller's cluster-wide
//! settings and what cluster administrators put on the Namespace (a tenant's namespaced
//! RBAC cannot edit a Namespace). The planner decides with the grants (`plan::tenancy`); the
//! role is who the controller is in AWS for the namespace's objects.

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::aws::identity::NamespaceRole;
use crate::plan::ami_image::SharingPolicy;
use crate::plan::tenancy::{Grants, TRUSTED_LABEL};

/// The Namespace annotation naming the IAM role the controller assumes (with the namespace
/// and cluster as session tags) for every object of that namespace.
pub const IAM_ROLE_ANNOTATION: &str = "ec2.reconciler.dev/iam-role-arn";

/// The administrator's tenancy settings for the whole controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenancySettings {
    /// Every namespace is trusted with every unowned resource (a single-tenant cluster:
    /// an explicit opt-in).
    pub single_tenant: bool,
    /// `ObserveOnly` adoption of unowned resources is allowed.
    pub observe_unowned: bool,
}

impl Default for TenancySettings {
    /// The safe default: multi-tenant, reads allowed.
    fn default() -> Self {
        Self {
            single_tenant: false,
            observe_unowned: true,
        }
    }
}

/// Resolves grants per namespace.
#[derive(Default)]
pub struct Tenancy {
    pub settings: TenancySettings,
    /// The cluster's Namespaces (their labels); `None` when none are watched, and then no
    /// namespace is trusted by label.
    pub namespaces: Option<Store<Namespace>>,
    /// Where images may be shared outside the account.
    pub sharing: SharingPolicy,
}

impl Tenancy {
    /// What `namespace` is granted now.
    pub fn grants(&self, namespace: &str) -> Grants {
        Grants {
            trusted: self.settings.single_tenant || self.trusted_by_label(namespace),
            observe_unowned: self.settings.observe_unowned,
        }
    }

    /// The role the namespace's objects act as in AWS, when an administrator named one.
    /// A malformed ARN is still the namespace's role: AssumeRole refuses it and the objects
    /// report that, rather than act as the controller's own, broader identity.
    pub fn role(&self, namespace: &str) -> Option<NamespaceRole> {
        let role_arn = self
            .namespace(namespace)?
            .metadata
            .annotations
            .as_ref()?
            .get(IAM_ROLE_ANNOTATION)?
            .trim()
            .to_owned();
        Some(NamespaceRole {
            role_arn,
            namespace: namespace.to_owned(),
        })
    }

    fn trusted_by_label(&self, namespace: &str) -> bool {
        self.namespace(namespace)
            .and_then(|ns| ns.metadata.labels.as_ref()?.get(TRUSTED_LABEL).cloned())
            .is_some_and(|value| value == "true")
    }

    fn namespace(&self, name: &str) -> Option<std::sync::Arc<Namespace>> {
        self.namespaces.as_ref()?.get(&ObjectRef::new(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        annotated(name, labels, &[])
    }

    fn annotated(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[test]
    fn only_the_administrators_label_trusts_a_namespace() {
        let (store, mut writer) = reflector::store();
        for ns in [
            namespace("trusted", &[(TRUSTED_LABEL, "true")]),
            namespace("said-no", &[(TRUSTED_LABEL, "false")]),
            namespace("plain", &[]),
        ] {
            writer.apply_watcher_event(&Event::Apply(ns));
        }
        let tenancy = Tenancy {
            settings: TenancySettings::default(),
            namespaces: Some(store),
            sharing: SharingPolicy::default(),
        };
        assert!(tenancy.grants("trusted").trusted);
        assert!(!tenancy.grants("said-no").trusted);
        assert!(!tenancy.grants("plain").trusted);
        assert!(!tenancy.grants("unknown").trusted);
        assert!(tenancy.grants("plain").observe_unowned);
    }

    #[test]
    fn single_tenant_trusts_every_namespace_and_reads_can_be_turned_off() {
        let tenancy = Tenancy {
            settings: TenancySettings {
                single_tenant: true,
                observe_unowned: false,
            },
            namespaces: None,
            sharing: SharingPolicy::default(),
        };
        assert_eq!(
            tenancy.grants("any"),
            Grants {
                trusted: true,
                observe_unowned: false
            }
        );
        assert_eq!(Tenancy::default().grants("any"), Grants::DEFAULT);
    }

    #[test]
    fn the_administrators_annotation_names_the_namespaces_role() {
        let (store, mut writer) = reflector::store();
        let arn = "arn:aws:iam::123456789012:role/team-a";
        for ns in [
            annotated("team-a", &[], &[(IAM_ROLE_ANNOTATION, arn)]),
            annotated("plain", &[], &[]),
        ] {
            writer.apply_watcher_event(&Event::Apply(ns));
        }
        let tenancy = Tenancy {
            settings: TenancySettings::default(),
            namespaces: Some(store),
            sharing: SharingPolicy::default(),
        };
        assert_eq!(
            tenancy.role("team-a"),
            Some(NamespaceRole {
                role_arn: arn.to_owned(),
                namespace: "team-a".to_owned(),
            })
        );
        assert_eq!(tenancy.role("plain"), None);
        assert_eq!(tenancy.role("unknown"), None);
    }
}
