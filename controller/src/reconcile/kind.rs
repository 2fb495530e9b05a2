//! What the reconcile machinery needs to know about each kind.

use std::fmt::Debug;

use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::conditions::Condition;
use crate::api::status::KindStatus;
use crate::api::{
    AmiImage, AmiImageStatus, EbsVolume, EbsVolumeStatus, EncryptedVolumeMigration,
    EncryptedVolumeMigrationStatus,
};

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
    /// The kind's name, also its metric label and its ownership tag.
    const KIND: &'static str;

    type Status: KindStatus;

    fn status(&self) -> Option<&Self::Status>;

    /// The Region the spec names, if any (the controller's default otherwise).
    fn spec_region(&self) -> Option<&str>;

    /// `live` (its identity and recorded state) with this object's spec: what applying
    /// this manifest to the stored object would give.
    fn applied_to(self, live: Self) -> Self;

    /// The conditions currently in status.
    fn conditions(&self) -> &[Condition] {
        self.status()
            .map(KindStatus::conditions)
            .unwrap_or_default()
    }

    /// The generation the status was last written for.
    fn observed_generation(&self) -> Option<i64> {
        self.status().and_then(KindStatus::observed_generation)
    }
}

macro_rules! managed_kind {
    ($ty:ty, $status:ty, $kind:literal) => {
        impl ManagedKind for $ty {
            const KIND: &'static str = $kind;
            type Status = $status;

            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }

            fn spec_region(&self) -> Option<&str> {
                self.spec.region.as_deref()
            }

            fn applied_to(self, live: Self) -> Self {
                Self {
                    spec: self.spec,
                    ..live
                }
            }
        }
    };
}

managed_kind!(EbsVolume, EbsVolumeStatus, "EbsVolume");
managed_kind!(AmiImage, AmiImageStatus, "AmiImage");
managed_kind!(
    EncryptedVolumeMigration,
    EncryptedVolumeMigrationStatus,
    "EncryptedVolumeMigration"
);
