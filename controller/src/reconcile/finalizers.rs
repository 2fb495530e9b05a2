//! Adding and removing our finalizer, conditional on the object's resourceVersion so a
//! concurrent change is never overwritten.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::FINALIZER;
use super::error::Result;
use super::kind::ManagedKind;

pub fn has_finalizer<K: ManagedKind>(obj: &K) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// Returns the object as the server has it after the change.
async fn set_finalizers<K: ManagedKind>(
    api: &Api<K>,
    obj: &K,
    finalizers: Vec<String>,
) -> Result<K> {
    // A merge patch carrying resourceVersion is rejected with a conflict if the object
    // changed meanwhile; the reconcile is then retried on the newer object.
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
    Ok(api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?)
}

pub async fn add_finalizer<K: ManagedKind>(api: &Api<K>, obj: &K) -> Result<K> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    set_finalizers(api, obj, finalizers).await
}

pub async fn remove_finalizer<K: ManagedKind>(api: &Api<K>, obj: &K) -> Result<K> {
    let finalizers = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(api, obj, finalizers).await
}
