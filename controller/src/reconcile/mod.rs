//! One reconcile pipeline for every kind ([`pipeline`]), and per kind only what differs.

pub mod ami_image;
pub mod aws_errors;
pub mod aws_state;
pub mod backoff;
pub mod context;
pub mod ebs_volume;
pub mod error;
pub mod events;
pub mod finalizers;
pub mod kind;
pub mod migration;
pub mod pipeline;
pub mod rechecks;
pub mod status;
pub mod tenancy;

use std::sync::Arc;

use kube::runtime::controller::Action;

pub use context::{Clock, Context, Settings};
pub use error::Error;
pub use kind::ManagedKind;
pub use pipeline::{Reconciler, preview, reconcile};

/// The finalizer that makes deletes pass through the controller.
pub const FINALIZER: &str = "ec2.reconciler.dev/cleanup";

/// Requeues after a failed reconcile. A rejection by AWS is re-checked at the next resync
/// (an outside fix, such as a key re-enabled, heals without a spec edit); other failures
/// wait the error class's base delay, doubled for each consecutive failure of the same
/// object, jittered so that many objects failing together do not come back together. AWS
/// still working, or a conflict on our own write, is not a failure and is not backed off.
pub fn error_policy<K: ManagedKind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    if !error.is_failure() {
        return Action::requeue(error.base_delay());
    }
    let key = object_key(obj.as_ref());
    let delay = match error {
        // Re-checked within one resync: a little before it, so objects rejected together
        // spread out and none waits longer than the interval promises.
        Error::Terminal { .. } => {
            let within = rand::Rng::random_range(&mut rand::rng(), 0.9..=1.0);
            ctx.backoff
                .rejected(&key, ctx.settings.resync_interval.mul_f64(within))
        }
        _ => ctx.backoff.failed(&key, error.base_delay()),
    };
    Action::requeue(delay)
}

/// `Kind/namespace/name` of an object: the key of its backoff and of its last write. The
/// kind is part of it, so an EbsVolume and an AmiImage of the same name never share a
/// backoff or a written version.
pub fn object_key<K: ManagedKind>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use super::*;
    use crate::api::{AmiImage, EbsVolume};

    fn named<K: serde::de::DeserializeOwned>(kind: &str, spec: serde_json::Value) -> K {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ec2.reconciler.dev/v1alpha1",
            "kind": kind,
            "metadata": { "name": "data", "namespace": "team-a" },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
    }

    #[test]
    fn objects_of_two_kinds_with_one_name_have_two_keys() {
        let volume: EbsVolume = named("EbsVolume", serde_json::json!({}));
        let image: AmiImage = named("AmiImage", serde_json::json!({ "name": "x" }));
        assert_eq!(object_key(&volume), "EbsVolume/team-a/data");
        assert_eq!(object_key(&image), "AmiImage/team-a/data");
    }
}
