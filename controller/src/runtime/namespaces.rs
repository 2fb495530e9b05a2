//! The cluster's Namespaces, watched for the labels administrators grant with.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

/// How long the controllers wait for the first list of namespaces before they start
/// anyway. Until the list arrives no namespace is trusted by label (the safe side), and a
/// refusal it causes heals once it does (grants are re-checked).
const FIRST_LIST_WAIT: Duration = Duration::from_secs(30);

/// A store of every Namespace (labels only: the rest is dropped), kept current by a
/// background watch. Waits for the first list, up to [`FIRST_LIST_WAIT`].
pub async fn watch(client: Client) -> Store<Namespace> {
    let (store, writer) = reflector::store();
    let api: Api<Namespace> = Api::all(client);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|ns: &mut Namespace| {
            ns.metadata.managed_fields = None;
            ns.metadata.annotations = None;
            ns.spec = None;
            ns.status = None;
        })
        .reflect(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                tracing::warn!(%error, "cannot watch namespaces: grants by namespace label are not seen");
            }
        });
    tokio::spawn(stream);
    if tokio::time::timeout(FIRST_LIST_WAIT, store.wait_until_ready())
        .await
        .is_err()
    {
        tracing::warn!(
            "namespaces not listed yet: no namespace is trusted by label until they are"
        );
    }
    store
}
