//! Where a namespace's grants come from: the controller's cluster-wide settings and the
//! labels cluster administrators put on the Namespace (a tenant's namespaced RBAC cannot
//! edit a Namespace). The planner decides with them (`plan::tenancy`).

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::plan::tenancy::{Grants, TRUSTED_LABEL};

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
}

impl Tenancy {
    /// What `namespace` is granted now.
    pub fn grants(&self, namespace: &str) -> Grants {
        Grants {
            trusted: self.settings.single_tenant || self.trusted_by_label(namespace),
            observe_unowned: self.settings.observe_unowned,
        }
    }

    fn trusted_by_label(&self, namespace: &str) -> bool {
        let Some(store) = &self.namespaces else {
            return false;
        };
        store
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.as_ref()?.get(TRUSTED_LABEL).cloned())
            .is_some_and(|value| value == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
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
}
