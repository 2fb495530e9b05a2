//! The benchmark's objects, of any kind: created side by side, and a watch that counts how
//! many are Ready=True at once.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use ec2_reconciler::reconcile::ManagedKind;
use futures::{StreamExt, TryStreamExt};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bed::{is_ready, manifest_in};
use crate::wait::retry;

/// The name of object `i` (sorted as numbered).
pub fn name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Creates objects `0..n` named [`name`] in `ns`, object `i` with `spec(i)`, `concurrency`
/// requests at a time; an object that already exists (an earlier attempt that got no
/// answer) counts as created.
pub async fn create_all<K: ManagedKind>(
    api: &Api<K>,
    ns: &str,
    n: usize,
    concurrency: usize,
    spec: impl Fn(usize) -> Value,
) -> Result<()> {
    let spec = &spec;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let obj: K = serde_json::from_value(manifest_in::<K>(ns, &name(i), spec(i)))
                .with_context(|| format!("a {} manifest", K::KIND))?;
            retry(&format!("creating {}", name(i)), || async {
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
            .await
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// A watch on the namespace's objects of one kind, publishing how many are Ready=True.
pub struct ReadyCount {
    rx: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl ReadyCount {
    /// Starts watching (before the objects are created, so none is missed).
    pub fn start<K: ManagedKind>(api: Api<K>) -> Self {
        let (tx, rx) = watch::channel(0);
        let task = tokio::spawn(async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Init) => ready.clear(),
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        ready.insert(o.name_any(), is_ready(&o));
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        ready.remove(&o.name_any());
                    }
                    // The backoff restarts the watch; the count stays until it relists.
                    Ok(watcher::Event::InitDone) | Err(_) => continue,
                }
                let count = ready.values().filter(|r| **r).count();
                tx.send_if_modified(|c| std::mem::replace(c, count) != count);
            }
        });
        Self { rx, task }
    }

    /// Objects Ready=True now.
    pub fn now(&self) -> usize {
        *self.rx.borrow()
    }

    /// Waits up to `timeout` for the count to change; returns the count.
    pub async fn changed(&mut self, timeout: Duration) -> usize {
        if let Ok(Err(_)) = tokio::time::timeout(timeout, self.rx.changed()).await {
            // The watch task is gone (it never ends by itself): no news, only time.
            tokio::time::sleep(timeout).await;
        }
        *self.rx.borrow_and_update()
    }
}

impl Drop for ReadyCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}
