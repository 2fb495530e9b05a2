//! One kube-runtime Controller per kind: wait for the CRD, sync the cache, reconcile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, ObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Client};
use prometheus_client::metrics::gauge::Gauge;

use super::config::Config;
use super::metrics::{KindLabels, Metrics, ObjectLabels};
use super::readiness::{KindState, Readiness};
use crate::api::conditions::{ConditionStatus, READY, SYNCED, find};
use crate::reconcile::{
    Context, Error, ManagedKind, Reconciler, error_policy, object_key, reconcile,
};

/// The API for a kind: in the one watched namespace, or in all of them (several watched
/// namespaces are filtered from all, see [`watched`]).
pub fn kind_api<K: ManagedKind>(client: &Client, config: &Config) -> Api<K> {
    match config.watch_namespaces.as_slice() {
        [ns] => Api::namespaced(client.clone(), ns),
        _ => Api::all(client.clone()),
    }
}

/// Whether an event of the kind's watch concerns a watched namespace (all are, when none
/// is named). Events that carry no object (the starts and ends of a list) always pass.
fn watched<K: ManagedKind>(config: &Config, event: &watcher::Event<K>) -> bool {
    let namespaces = &config.watch_namespaces;
    match event {
        watcher::Event::Apply(obj)
        | watcher::Event::Delete(obj)
        | watcher::Event::InitApply(obj) => {
            namespaces.is_empty()
                || obj
                    .meta()
                    .namespace
                    .as_ref()
                    .is_some_and(|ns| namespaces.contains(ns))
        }
        watcher::Event::Init | watcher::Event::InitDone => true,
    }
}

/// Waits until the kind's CRD is served. Any answer but 404 counts as served: a 403
/// means RBAC is wrong, which the controller's own errors will report more clearly.
async fn wait_for_crd<K: ManagedKind>(api: &Api<K>, config: &Config) {
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Err(kube::Error::Api(status)) if status.code == 404 => {
                tracing::warn!(kind = K::KIND, "CRD not installed; waiting for it");
            }
            Err(error) => {
                tracing::warn!(kind = K::KIND, %error, "cannot list; retrying");
            }
            Ok(_) => return,
        }
        tokio::time::sleep(config.crd_poll_interval).await;
    }
}

/// What wakes a reconcile: a change of anything but status. The controller's own status
/// writes (a progress tick, a condition) change only status, and waking on them would
/// cost a pass and an AWS read per write; the pass that wrote already requeued itself.
fn wake_key<K: ManagedKind>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    Some(hasher.finish())
}

/// The annotation `kubectl apply` keeps the whole last applied manifest in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from a watched object what the controller never reads, before the cache keeps it
/// (memory per object is what limits how many one controller carries): managedFields, and
/// the last-applied annotation, a second copy of the spec as text.
fn strip_unread(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Everything the controllers of all kinds share.
pub struct Runner<'a> {
    pub ctx: Arc<Context>,
    pub config: &'a Config,
    pub metrics: &'a Metrics,
    pub readiness: &'a Readiness,
}

impl Runner<'_> {
    /// Runs the kind's controller until the process ends.
    pub async fn kind<K: Reconciler>(&self) {
        let readiness = self.readiness.clone();
        readiness.set(K::KIND, KindState::WaitingForCrd);
        let api = kind_api::<K>(&self.ctx.client, self.config);
        wait_for_crd(&api, self.config).await;
        readiness.set(K::KIND, KindState::Syncing);

        let (store, writer) = reflector::store();
        let config = self.config.clone();
        let mut watch = watcher::Config::default();
        if let Some(selector) = &self.config.shard_selector {
            // The apiserver filters: objects of other shards never reach this process.
            watch = watch.labels(selector);
        }
        let triggers = watcher(api, watch)
            .try_filter(move |event| std::future::ready(watched(&config, event)))
            .default_backoff()
            .modify(|obj: &mut K| strip_unread(obj.meta_mut()))
            .reflect(writer)
            .applied_objects()
            .predicate_filter(wake_key::<K>, PredicateConfig::default());
        // Objects whose blocking cause was fixed outside the controller: reconciled at once.
        let unblocked = self
            .ctx
            .rechecks
            .subscribe(K::KIND)
            .map(|(namespace, name)| ObjectRef::new(&name).within(&namespace));
        let controller = Controller::for_stream(triggers, store.clone()).reconcile_on(unblocked);
        tokio::spawn(count_objects::<K>(store.clone(), self.metrics.clone()));
        tokio::spawn(async move {
            // The store's readiness is a oneshot that wakes only its latest waiter, and the
            // controller itself waits on it too, so one long wait here may never be woken.
            // Asking again each second sees the ready state once the controller has taken it.
            loop {
                match tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await {
                    Ok(Ok(())) => {
                        readiness.set(K::KIND, KindState::Ready);
                        tracing::info!(kind = K::KIND, "cache synced; reconciling");
                        return;
                    }
                    Ok(Err(_)) => return,
                    Err(_) => continue,
                }
            }
        });

        let metrics = self.metrics.clone();
        controller
            .shutdown_on_signal()
            .run(
                move |obj, ctx| {
                    let metrics = metrics.clone();
                    async move { measured(obj, ctx, &metrics).await }
                },
                error_policy::<K>,
                self.ctx.clone(),
            )
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(kind = K::KIND, %error, "reconcile did not finish");
                }
            })
            .await;
    }
}

/// Runs one reconcile, recording its duration and outcome, and publishing an event when
/// it fails.
async fn measured<K: Reconciler>(
    obj: Arc<K>,
    ctx: Arc<Context>,
    metrics: &Metrics,
) -> Result<Action, Error> {
    let started = Instant::now();
    let reference = obj.object_ref(&());
    let key = object_key(obj.as_ref());
    let in_flight = InFlight::start(metrics, K::KIND);
    let result = reconcile(obj.clone(), ctx.clone()).await;
    drop(in_flight);
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    metrics.record_reconcile(K::KIND, outcome, started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.succeeded(&key),
        Err(error) if error.is_failure() => {
            tracing::warn!(kind = K::KIND, name = reference.name.as_deref().unwrap_or_default(), reason = error.reason(), %error, "reconcile failed");
            if !already_reported(obj.as_ref(), error) {
                ctx.publish(
                    &reference,
                    EventType::Warning,
                    error.reason(),
                    error.to_string(),
                    "Reconcile",
                )
                .await;
            }
        }
        // Expected races (a conflict on our own write) and AWS still working.
        Err(error) => {
            tracing::debug!(kind = K::KIND, name = reference.name.as_deref().unwrap_or_default(), %error, "reconcile will be retried");
        }
    }
    result
}

/// One running reconcile in `reconciles_in_flight`, counted down however the reconcile ends
/// (also when its future is dropped at shutdown).
struct InFlight(Gauge);

impl InFlight {
    fn start(metrics: &Metrics, kind: &'static str) -> Self {
        let gauge = metrics
            .reconciles_in_flight
            .get_or_create(&KindLabels { kind })
            .clone();
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The object already shows this failure on `Synced`: its event was published when it
/// first happened (one event per new failure, not per retry).
fn already_reported<K: ManagedKind>(obj: &K, error: &Error) -> bool {
    find(obj.conditions(), SYNCED)
        .is_some_and(|c| c.status == ConditionStatus::False && c.reason == error.reason())
}

/// How often the objects gauge is refreshed from the cache.
const OBJECT_COUNT_INTERVAL: Duration = Duration::from_secs(15);

/// Keeps `objects{kind, ready}` current from the controller's cache (no API calls).
async fn count_objects<K: ManagedKind>(store: Store<K>, metrics: Metrics) {
    loop {
        let mut counts = [0_i64; 3];
        for obj in store.state() {
            let index = match find(obj.conditions(), READY).map(|c| c.status) {
                Some(ConditionStatus::True) => 0,
                Some(ConditionStatus::False) => 1,
                _ => 2,
            };
            counts[index] += 1;
        }
        for (ready, count) in ["True", "False", "Unknown"].into_iter().zip(counts) {
            metrics
                .objects
                .get_or_create(&ObjectLabels {
                    kind: K::KIND,
                    ready,
                })
                .set(count);
        }
        tokio::time::sleep(OBJECT_COUNT_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    #[test]
    fn the_cache_keeps_no_managed_fields_and_no_last_applied_copy_but_other_annotations() {
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            annotations: Some(BTreeMap::from([
                (LAST_APPLIED.to_owned(), "{\"spec\":{}}".to_owned()),
                ("team".to_owned(), "red".to_owned()),
            ])),
            ..ObjectMeta::default()
        };
        strip_unread(&mut meta);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(
            meta.annotations,
            Some(BTreeMap::from([("team".to_owned(), "red".to_owned())]))
        );

        let mut only_last_applied = ObjectMeta {
            annotations: Some(BTreeMap::from([(LAST_APPLIED.to_owned(), "{}".to_owned())])),
            ..ObjectMeta::default()
        };
        strip_unread(&mut only_last_applied);
        assert_eq!(only_last_applied.annotations, None);
    }
}
