//! One kube-runtime Controller per kind: wait for the CRD, sync the cache, reconcile.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;

use super::metrics::{Metrics, ObjectLabels};
use super::readiness::{KindState, Readiness};
use crate::api::conditions::{ConditionStatus, READY, SYNCED, find};
use crate::reconcile::{Context, Error, ManagedKind, error_policy, object_key};
use kube::runtime::reflector::Store;

/// The API for a kind, in the watched namespace or all of them.
pub fn kind_api<K: ManagedKind>(ctx: &Context) -> Api<K> {
    match &ctx.config.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// Waits until the kind's CRD is served. Any answer but 404 counts as served: a 403
/// means RBAC is wrong, which the controller's own errors will report more clearly.
async fn wait_for_crd<K: ManagedKind>(api: &Api<K>, ctx: &Context) {
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
        tokio::time::sleep(ctx.config.crd_poll_interval).await;
    }
}

/// Runs the kind's controller until the process ends.
pub async fn run_kind<K, F, Fut>(ctx: Arc<Context>, readiness: Readiness, reconcile: F)
where
    K: ManagedKind,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    readiness.set(K::KIND, KindState::WaitingForCrd);
    let api = kind_api::<K>(&ctx);
    wait_for_crd(&api, &ctx).await;
    readiness.set(K::KIND, KindState::Syncing);

    let controller = Controller::new(api, watcher::Config::default());
    let store = controller.store();
    tokio::spawn(count_objects::<K>(store.clone(), ctx.metrics.clone()));
    let ready_flag = readiness.clone();
    tokio::spawn(async move {
        // The store's readiness is a oneshot that wakes only its latest waiter, and the
        // controller itself waits on it too, so one long wait here may never be woken.
        // Asking again each second sees the ready state once the controller has taken it.
        loop {
            match tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    ready_flag.set(K::KIND, KindState::Ready);
                    tracing::info!(kind = K::KIND, "cache synced; reconciling");
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });

    let reconcile = Arc::new(reconcile);
    controller
        .shutdown_on_signal()
        .run(
            move |obj, ctx| {
                let reconcile = reconcile.clone();
                async move { measured(obj, ctx, reconcile.as_ref()).await }
            },
            error_policy::<K>,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(kind = K::KIND, %error, "reconcile did not finish");
            }
        })
        .await;
}

/// Runs one reconcile, recording its duration and outcome, and publishing an event when
/// it fails.
async fn measured<K, F, Fut>(obj: Arc<K>, ctx: Arc<Context>, reconcile: &F) -> Result<Action, Error>
where
    K: ManagedKind,
    F: Fn(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let started = Instant::now();
    let reference = obj.object_ref(&());
    let obj_for_key = obj.clone();
    let result = reconcile(obj, ctx.clone()).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics
        .record_reconcile(K::KIND, outcome, started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&object_key(obj_for_key.as_ref()));
    }
    if let Err(error) = &result
        && error.is_failure()
    {
        tracing::warn!(kind = K::KIND, name = reference.name.as_deref().unwrap_or_default(), reason = error.reason(), %error, "reconcile failed");
        if already_reported(obj_for_key.as_ref(), error) {
            return result;
        }
        ctx.publish(
            &reference,
            EventType::Warning,
            error.reason(),
            error.to_string(),
            "Reconcile",
        )
        .await;
    }
    result
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
