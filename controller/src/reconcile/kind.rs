//! What the reconcile machinery needs to know about each kind.

use std::fmt::Debug;

use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::conditions::Condition;
use crate::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};

/// A kind this controller manages.
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The kind's name, also its metric label.
    const KIND: &'static str;

    /// The conditions currently in status.
    fn conditions(&self) -> &[Condition];

    /// The generation the status was last written for.
    fn observed_generation(&self) -> Option<i64>;
}

macro_rules! managed_kind {
    ($ty:ty, $kind:literal) => {
        impl ManagedKind for $ty {
            const KIND: &'static str = $kind;

            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default()
            }

            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
        }
    };
}

managed_kind!(EbsVolume, "EbsVolume");
managed_kind!(AmiImage, "AmiImage");
managed_kind!(EncryptedVolumeMigration, "EncryptedVolumeMigration");
