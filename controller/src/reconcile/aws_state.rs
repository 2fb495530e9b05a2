//! AWS access shared by every reconcile: one client and one observer per scope (Region and
//! identity) and resource kind, and the KMS keys already resolved (so a steady state costs
//! no DescribeKey per pass).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::client::{AwsClients, Ec2, Filter, KmsKey, MAX_IMAGE_PAGE, all_pages};
use crate::aws::errors::AwsError;
use crate::aws::identity::Scope;
use crate::aws::observer::{
    ImageObserver, InstanceObserver, InstanceTypeObserver, Observer, ObserverConfig,
    SnapshotObserver, Source, VolumeObserver,
};
use crate::aws::tags::CLUSTER_TAG;
use crate::plan::observed::{ImageState, ObservedImage};

/// How long a resolved KMS key is trusted before it is looked up again.
const KMS_KEY_TTL: Duration = Duration::from_secs(600);

/// Answers kept for a while, by what was asked: each is trusted until it is older than
/// the age its reader accepts.
struct Recent<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// One question per key at a time: readers that miss together (every object of a
    /// resync, at once) wait for the first one's answer instead of each asking AWS.
    asking: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            asking: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// The answer to `key`, when it is younger than `max_age`.
    fn get(&self, key: &K, max_age: Duration) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < max_age).then(|| value.clone())
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (Instant::now(), value));
        }
    }

    /// The answer to `key` when younger than `max_age`; otherwise `ask`'s, asked once for
    /// every reader missing at the same time, and kept.
    async fn get_or_ask<E, Fut>(
        &self,
        key: K,
        max_age: Duration,
        ask: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        K: Clone,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key, max_age) {
            return Ok(value);
        }
        let turn = self
            .asking
            .lock()
            .ok()
            .map(|mut asking| asking.entry(key.clone()).or_default().clone());
        let _turn = match &turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        };
        // Answered while this reader waited its turn.
        if let Some(value) = self.get(&key, max_age) {
            return Ok(value);
        }
        let value = ask().await?;
        self.put(key, value.clone());
        Ok(value)
    }
}

/// Image ids, shared between the objects that asked for them.
type ImageIds = Arc<BTreeSet<String>>;

/// One observer per scope: what one identity sees in one Region.
type Observers<O> = Mutex<HashMap<Scope, Arc<O>>>;

pub struct AwsState {
    clients: AwsClients,
    cluster: String,
    observer_config: ObserverConfig,
    volume_observers: Observers<VolumeObserver>,
    snapshot_observers: Observers<SnapshotObserver>,
    instance_observers: Observers<InstanceObserver>,
    instance_type_observers: Observers<InstanceTypeObserver>,
    image_observers: Observers<ImageObserver>,
    kms_keys: Recent<(Scope, String), KmsKey>,
    newest_images: Recent<ImageQuery, Option<ObservedImage>>,
    launchable: Recent<(Scope, String), ImageIds>,
}

/// An image selector as DescribeImages takes it: where, whose, which names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageQuery {
    pub scope: Scope,
    /// Sorted, so two specs listing the same owners share one answer.
    pub owners: Vec<String>,
    pub name_pattern: String,
}

impl AwsState {
    pub fn new(
        clients: AwsClients,
        cluster: impl Into<String>,
        observer_config: ObserverConfig,
    ) -> Self {
        Self {
            clients,
            cluster: cluster.into(),
            observer_config,
            volume_observers: Mutex::default(),
            snapshot_observers: Mutex::default(),
            instance_observers: Mutex::default(),
            instance_type_observers: Mutex::default(),
            image_observers: Mutex::default(),
            kms_keys: Recent::default(),
            newest_images: Recent::default(),
            launchable: Recent::default(),
        }
    }

    /// How long on-demand reads wait for company: the soonest a merged read comes.
    pub fn merge_window(&self) -> Duration {
        self.observer_config.merge_window
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The EC2 calls of `scope`: its Region, as its identity.
    pub fn ec2(&self, scope: &Scope) -> Arc<dyn Ec2> {
        self.clients.scoped(scope, &self.cluster)
    }

    /// The scope's volume observer, shared by every EbsVolume in it.
    pub fn volumes(&self, scope: &Scope) -> Arc<VolumeObserver> {
        self.observer(&self.volume_observers, scope)
    }

    /// The scope's snapshot observer, shared by every object that waits on snapshots.
    pub fn snapshots(&self, scope: &Scope) -> Arc<SnapshotObserver> {
        self.observer(&self.snapshot_observers, scope)
    }

    /// The scope's instance reader: reads by id, merged across objects.
    pub fn instances(&self, scope: &Scope) -> Arc<InstanceObserver> {
        self.observer(&self.instance_observers, scope)
    }

    /// The scope's instance type reader: by name, merged across objects.
    pub fn instance_types(&self, scope: &Scope) -> Arc<InstanceTypeObserver> {
        self.observer(&self.instance_type_observers, scope)
    }

    /// The scope's image observer, shared by every AmiImage in it.
    pub fn images(&self, scope: &Scope) -> Arc<ImageObserver> {
        self.observer(&self.image_observers, scope)
    }

    fn observer<S: Source + Default>(
        &self,
        observers: &Observers<Observer<S>>,
        scope: &Scope,
    ) -> Arc<Observer<S>> {
        let build = || {
            Observer::new(
                self.ec2(scope),
                self.cluster.clone(),
                self.observer_config.clone(),
            )
        };
        match observers.lock() {
            Ok(mut observers) => observers.entry(scope.clone()).or_insert_with(build).clone(),
            Err(_) => build(),
        }
    }

    /// The key a spec names (id, ARN, alias or alias ARN), resolved to its ARN.
    pub async fn kms_key(&self, scope: &Scope, key: &str) -> Result<KmsKey, AwsError> {
        let cache_key = (scope.clone(), key.to_owned());
        if let Some(resolved) = self.kms_keys.get(&cache_key, KMS_KEY_TTL) {
            return Ok(resolved);
        }
        let resolved = self.ec2(scope).describe_key(key.to_owned()).await?;
        // Only a usable key is trusted for a while: a disabled one is asked about again at
        // the next pass, so re-enabling it heals the object without waiting out the TTL.
        if resolved.enabled {
            self.kms_keys.put(cache_key, resolved.clone());
        }
        Ok(resolved)
    }

    /// The newest image (by creation date) matching `query`, asked of AWS at most once per
    /// resync interval for every object that names the same selector.
    pub async fn newest_image(
        &self,
        query: &ImageQuery,
    ) -> Result<Option<ObservedImage>, AwsError> {
        let max_age = self.observer_config.resync_interval;
        self.newest_images
            .get_or_ask(query.clone(), max_age, || async {
                let ec2 = self.ec2(&query.scope);
                let filters = vec![Filter::new("name", [query.name_pattern.clone()])];
                let images = all_pages(|token| {
                    ec2.describe_images_page(
                        query.owners.clone(),
                        filters.clone(),
                        MAX_IMAGE_PAGE,
                        token,
                    )
                })
                .await?;
                Ok(images
                    .into_iter()
                    .filter(|i| i.state == Some(ImageState::Available))
                    .max_by(|a, b| {
                        (a.creation_date, &a.image_id).cmp(&(b.creation_date, &b.image_id))
                    }))
            })
            .await
    }

    /// The ids of this cluster's images `account` may launch, asked of AWS at most once
    /// per resync interval for every image shared with that account.
    pub async fn launchable_by(
        &self,
        scope: &Scope,
        account: &str,
    ) -> Result<Arc<BTreeSet<String>>, AwsError> {
        let key = (scope.clone(), account.to_owned());
        let max_age = self.observer_config.resync_interval;
        self.launchable
            .get_or_ask(key, max_age, || async {
                let filters = vec![Filter::tag(CLUSTER_TAG, self.cluster.clone())];
                let ids = self
                    .ec2(scope)
                    .images_launchable_by(account.to_owned(), filters)
                    .await?;
                Ok(Arc::new(ids.into_iter().collect()))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_answer_is_trusted_only_younger_than_its_readers_age() {
        let recent: Recent<&str, u32> = Recent::default();
        assert_eq!(recent.get(&"k", Duration::from_secs(60)), None);
        recent.put("k", 7);
        assert_eq!(recent.get(&"k", Duration::from_secs(60)), Some(7));
        assert_eq!(
            recent.get(&"k", Duration::ZERO),
            None,
            "too old for this reader"
        );
        assert_eq!(recent.get(&"other", Duration::from_secs(60)), None);
    }

    #[tokio::test]
    async fn readers_missing_together_ask_once_and_share_the_answer() {
        let recent: Arc<Recent<&str, u32>> = Arc::default();
        let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let readers = (0..20).map(|_| {
            let recent = recent.clone();
            let asked = asked.clone();
            tokio::spawn(async move {
                recent
                    .get_or_ask("k", Duration::from_secs(60), || async {
                        asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // Long enough for every other reader to miss meanwhile.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            })
        });
        for answer in futures::future::join_all(readers).await {
            assert_eq!(answer.ok(), Some(Ok(7)));
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
