//! The cluster's Namespaces, watched for what administrators grant with: labels, and the
//! annotation naming a namespace's IAM role.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::reconcile::tenancy::IAM_ROLE_ANNOTATION;

/// How often the wait for the first list of namespaces says it is still waiting.
const FIRST_LIST_WARNING: Duration = Duration::from_secs(30);

/// A store of every Namespace (labels and the role annotation: the rest is dropped), kept
/// current by a background watch. Waits for the first list however long it takes: before
/// it, an object of a namespace with a role would act as the controller's own identity.
pub async fn watch(client: Client) -> Store<Namespace> {
    let (store, writer) = reflector::store();
    let api: Api<Namespace> = Api::all(client);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|ns: &mut Namespace| {
            ns.metadata.managed_fields = None;
            if let Some(annotations) = &mut ns.metadata.annotations {
                annotations.retain(|key, _| key == IAM_ROLE_ANNOTATION);
            }
            ns.spec = None;
            ns.status = None;
        })
        .reflect(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                tracing::warn!(%error, "cannot watch namespaces: new grants and roles are not seen");
            }
        });
    tokio::spawn(stream);
    // The store's readiness wakes only its latest waiter: ask again now and then.
    loop {
        match tokio::time::timeout(FIRST_LIST_WARNING, store.wait_until_ready()).await {
            Ok(_) => return store,
            Err(_) => tracing::warn!(
                "namespaces not listed yet (may the controller list them?): reconciling waits"
            ),
        }
    }
}
