//! Batched observation: one cached view per Region and resource kind, never one Describe per
//! object.
//!
//! - The sweep: every resource carrying our cluster tag, by one paginated, tag-filtered
//!   Describe (the largest page the API allows). Single-flight: concurrent callers share one
//!   sweep. A sweep is reused until it is older than the resync interval (jittered per sweep,
//!   so Regions and replicas drift apart). A failed sweep is shared too: callers within
//!   [`FAILED_SWEEP_HOLD`] get its error instead of each taking a sweep of their own, which
//!   would turn one throttled Describe into one per waiting object.
//! - On demand: [`Observer::refresh`] (right after a write, or for an adopted resource without
//!   our tags) queues the id; ids queued within the merge window (default 200 ms) are read
//!   together, filtered by id, so a missing resource is answered by its absence instead of
//!   failing the batch. Results are kept until the next sweep.
//!   [`Observer::get_recent`] answers from such a read while it is young enough, present or
//!   absent, for resources only ever read by id (instances).
//! - Which is newer: every sweep and every on-demand read is stamped with the instant its
//!   first answered request went out (after its rate-limit token, on its last attempt:
//!   [`first_answered_request`]), so its data is at least that recent. A read sent while a
//!   sweep is still paging therefore wins over that sweep, which may have listed the
//!   resource before the write the read follows; a read sent before the sweep's first page
//!   loses to it. Per resource the newer record is kept: a sweep does not hide a newer
//!   on-demand read, and an older on-demand batch that answers late does not replace a
//!   newer one.
//!
//! What is swept, and how, is a [`Source`]: [`volumes`] (with their modifications),
//! [`snapshots`], [`images`], [`instances`] and [`instance_types`] (read by id only: they
//! carry no tag of ours).

#[cfg(test)]
mod fake;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod snapshots;
pub mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::client::{Ec2, first_answered_request};
use super::errors::AwsError;

pub use images::{ImageObserver, ImageSource};
pub use instance_types::{InstanceTypeObserver, InstanceTypeSource};
pub use instances::{InstanceObserver, InstanceSource};
pub use snapshots::{SnapshotObserver, SnapshotSource};
pub use volumes::{VolumeEntry, VolumeObserver, VolumeSource};

/// The tags of a resource that is never ours (instances, instance types): none, so it is
/// matched by id only.
static NO_TAGS: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(BTreeMap::new);

/// The sweep of a source read by id only: nothing carries our tag, so nothing is listed
/// and no call is made.
fn nothing_to_sweep<'a, E: Send + 'a>() -> BoxFuture<'a, Result<HashMap<String, E>, AwsError>> {
    Box::pin(async { Ok(HashMap::new()) })
}

/// How long a failed sweep answers for the sweeps it stands in for.
pub const FAILED_SWEEP_HOLD: Duration = Duration::from_secs(5);

/// How the observers batch and cache.
#[derive(Clone, Debug)]
pub struct ObserverConfig {
    /// A sweep is reused until it is this old (default 10 minutes)...
    pub resync_interval: Duration,
    /// ...give or take this fraction, drawn per sweep (default 0.1).
    pub resync_jitter: f64,
    /// How long on-demand reads wait for company (default 200 ms).
    pub merge_window: Duration,
    /// Sweep page size; `None` (the default): the largest the API allows.
    pub page_size: Option<i32>,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(600),
            resync_jitter: 0.1,
            merge_window: Duration::from_millis(200),
            page_size: None,
        }
    }
}

/// What one kind of observer reads, and how.
pub trait Source: Send + Sync + 'static {
    /// What the observer keeps per resource id.
    type Entry: Clone + Send + Sync + 'static;
    /// The resource, for logs and errors ("volume").
    const NOUN: &'static str;

    /// Every resource tagged with `cluster`, keyed by id (paginated, `page_size` per page).
    fn sweep<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, Self::Entry>, AwsError>>;

    /// The resources among `ids` that exist, keyed by id.
    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, Self::Entry>, AwsError>>;

    /// The entry's tags (ownership is read from them).
    fn tags(entry: &Self::Entry) -> &BTreeMap<String, String>;
}

/// One sweep's result.
#[derive(Debug)]
pub struct Sweep<E> {
    pub entries: HashMap<String, E>,
    /// When its first page was requested: every entry was read at or after this instant,
    /// but possibly long before the last page came back.
    pub taken_at: Instant,
    max_age: Duration,
}

impl<E> Sweep<E> {
    fn is_fresh(&self) -> bool {
        self.taken_at.elapsed() < self.max_age
    }
}

/// When a resource's on-demand read started, and what was found (`None`: no such resource).
type OnDemandRead<E> = (Instant, Option<E>);

type BatchResult<E> = Result<Arc<HashMap<String, E>>, AwsError>;

struct Pending<E> {
    ids: HashSet<String>,
    waiters: Vec<oneshot::Sender<BatchResult<E>>>,
    scheduled: bool,
}

impl<E> Default for Pending<E> {
    fn default() -> Self {
        Self {
            ids: HashSet::new(),
            waiters: Vec::new(),
            scheduled: false,
        }
    }
}

/// The last sweep, or the last failure to take one.
enum SweepSlot<E> {
    Empty,
    Taken(Arc<Sweep<E>>),
    Failed(Instant, AwsError),
}

/// The cached view of one Region's resources of one kind, for one cluster.
pub struct Observer<S: Source> {
    source: S,
    ec2: Arc<dyn Ec2>,
    cluster: String,
    config: ObserverConfig,
    /// Held across a sweep: that is what makes it single-flight.
    sweep: tokio::sync::Mutex<SweepSlot<S::Entry>>,
    /// On-demand reads by id.
    on_demand: Mutex<HashMap<String, OnDemandRead<S::Entry>>>,
    pending: Mutex<Pending<S::Entry>>,
}

impl<S: Source> std::fmt::Debug for Observer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("of", &S::NOUN)
            .field("region", &self.ec2.region())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl<S: Source + Default> Observer<S> {
    pub fn new(ec2: Arc<dyn Ec2>, cluster: impl Into<String>, config: ObserverConfig) -> Arc<Self> {
        Self::with_source(S::default(), ec2, cluster, config)
    }
}

impl<S: Source> Observer<S> {
    pub fn with_source(
        source: S,
        ec2: Arc<dyn Ec2>,
        cluster: impl Into<String>,
        config: ObserverConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            ec2,
            cluster: cluster.into(),
            config,
            sweep: tokio::sync::Mutex::new(SweepSlot::Empty),
            on_demand: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The current sweep, taking one if there is none or it is too old. Concurrent callers
    /// share one sweep, and a failed one for [`FAILED_SWEEP_HOLD`].
    pub async fn sweep(&self) -> Result<Arc<Sweep<S::Entry>>, AwsError> {
        let mut slot = self.sweep.lock().await;
        match &*slot {
            SweepSlot::Taken(sweep) if sweep.is_fresh() => return Ok(sweep.clone()),
            SweepSlot::Failed(at, err) if at.elapsed() < FAILED_SWEEP_HOLD => {
                return Err(err.clone());
            }
            _ => {}
        }
        match self.take_sweep().await {
            Ok(sweep) => {
                let sweep = Arc::new(sweep);
                *slot = SweepSlot::Taken(sweep.clone());
                Ok(sweep)
            }
            Err(err) => {
                tracing::warn!(
                    region = self.ec2.region(),
                    of = S::NOUN,
                    error = %err,
                    "sweep failed"
                );
                *slot = SweepSlot::Failed(Instant::now(), err.clone());
                Err(err)
            }
        }
    }

    /// Forgets the current sweep: the next read takes a new one.
    pub async fn invalidate(&self) {
        *self.sweep.lock().await = SweepSlot::Empty;
    }

    /// The resource as last observed (within the resync interval), reading it on demand when
    /// the sweep does not have it (an adopted resource without our tags). `None`: no such
    /// resource.
    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Option<S::Entry>, AwsError> {
        let sweep = self.sweep().await?;
        let on_demand = self.on_demand_entry(id);
        match (sweep.entries.get(id), on_demand) {
            // An on-demand read started since the sweep started wins (it follows a write, and
            // the sweep may have listed the resource before that write).
            (_, Some((at, entry))) if at >= sweep.taken_at => Ok(entry),
            (Some(entry), _) => Ok(Some(entry.clone())),
            // Not in the sweep: an on-demand read of the same age as the sweep will do.
            (None, Some((at, entry))) if at.elapsed() < self.config.resync_interval => Ok(entry),
            (None, _) => self.refresh(id).await,
        }
    }

    /// The resource as the last on-demand read of `id` found it (present or absent) when that
    /// read started less than `max_age` ago; otherwise reads it now, like
    /// [`Observer::refresh`]. The sweep is not consulted.
    ///
    /// For resources we do not tag and so never sweep (instances): a spec naming an instance
    /// that does not exist would otherwise cost a Describe on every pass; with the resync
    /// interval as `max_age` it costs one per resync. Reads are kept for at most twice the
    /// resync interval, so a longer `max_age` reads again sooner than asked.
    pub async fn get_recent(
        self: &Arc<Self>,
        id: &str,
        max_age: Duration,
    ) -> Result<Option<S::Entry>, AwsError> {
        if let Some((at, entry)) = self.on_demand_entry(id)
            && at.elapsed() < max_age
        {
            return Ok(entry);
        }
        self.refresh(id).await
    }

    /// Every swept resource owned by the object with this UID (crash recovery looks here).
    pub async fn owned_by(&self, uid: &str) -> Result<Vec<S::Entry>, AwsError> {
        let sweep = self.sweep().await?;
        Ok(sweep
            .entries
            .values()
            .filter(|e| super::tags::is_ours(S::tags(e), uid))
            .cloned()
            .collect())
    }

    /// Like [`Observer::owned_by`], from a sweep no older than `max_age`: for a resource
    /// whose create was requested but whose id is unknown (the answer was lost), found by
    /// its tags. Every caller in the Region shares the one sweep.
    pub async fn owned_by_recently(
        &self,
        uid: &str,
        max_age: Duration,
    ) -> Result<Vec<S::Entry>, AwsError> {
        {
            let mut slot = self.sweep.lock().await;
            if let SweepSlot::Taken(sweep) = &*slot
                && sweep.taken_at.elapsed() >= max_age
            {
                *slot = SweepSlot::Empty;
            }
        }
        self.owned_by(uid).await
    }

    /// Reads the resource now (merged with other refreshes within the window); the answer is
    /// kept for later `get` calls. `None`: no such resource.
    pub async fn refresh(self: &Arc<Self>, id: &str) -> Result<Option<S::Entry>, AwsError> {
        let (tx, rx) = oneshot::channel();
        let schedule = {
            let Ok(mut pending) = self.pending.lock() else {
                return Err(poisoned(S::NOUN));
            };
            pending.ids.insert(id.to_owned());
            pending.waiters.push(tx);
            !std::mem::replace(&mut pending.scheduled, true)
        };
        if schedule {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.config.merge_window).await;
                this.flush().await;
            });
        }
        match rx.await {
            Ok(result) => Ok(result?.get(id).cloned()),
            Err(_) => Err(AwsError::Transport {
                message: format!("the batched {} read was cancelled", S::NOUN),
            }),
        }
    }

    fn on_demand_entry(&self, id: &str) -> Option<OnDemandRead<S::Entry>> {
        self.on_demand.lock().ok().and_then(|m| m.get(id).cloned())
    }

    async fn flush(&self) {
        let (ids, waiters) = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            pending.scheduled = false;
            (
                std::mem::take(&mut pending.ids),
                std::mem::take(&mut pending.waiters),
            )
        };
        let mut ids: Vec<String> = ids.into_iter().collect();
        ids.sort();
        let started = Instant::now();
        let (result, sent) =
            first_answered_request(self.source.read_ids(self.ec2.as_ref(), &ids)).await;
        let result = result.map(Arc::new);
        let read_at = sent.unwrap_or(started);
        if let Ok(found) = &result
            && let Ok(mut on_demand) = self.on_demand.lock()
        {
            let now = Instant::now();
            let horizon = self.config.resync_interval.mul_f64(2.0);
            on_demand.retain(|_, (at, _)| now.saturating_duration_since(*at) < horizon);
            for id in &ids {
                // Batches overlap (one may wait for its rate token or answer slowly while
                // the next goes out): the newer read of a resource is kept, whichever
                // comes back last.
                match on_demand.get(id) {
                    Some((at, _)) if *at > read_at => {}
                    _ => {
                        on_demand.insert(id.clone(), (read_at, found.get(id).cloned()));
                    }
                }
            }
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }

    async fn take_sweep(&self) -> Result<Sweep<S::Entry>, AwsError> {
        let started = Instant::now();
        let (entries, sent) = first_answered_request(self.source.sweep(
            self.ec2.as_ref(),
            &self.cluster,
            self.config.page_size,
        ))
        .await;
        let entries = entries?;
        tracing::debug!(
            region = self.ec2.region(),
            of = S::NOUN,
            count = entries.len(),
            "swept"
        );
        Ok(Sweep {
            entries,
            // Its first page may have waited for a rate token (or a retry) behind on-demand
            // reads: those went out first and are older than every page.
            taken_at: sent.unwrap_or(started),
            max_age: jittered(self.config.resync_interval, self.config.resync_jitter),
        })
    }
}

fn poisoned(noun: &str) -> AwsError {
    AwsError::Transport {
        message: format!("the {noun} observer's lock is poisoned"),
    }
}

/// `interval` scaled by a factor drawn from [1 - jitter, 1 + jitter].
fn jittered(interval: Duration, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 0.9);
    if jitter == 0.0 {
        return interval;
    }
    interval.mul_f64(rand::rng().random_range(1.0 - jitter..=1.0 + jitter))
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::observer::fake::{Fake, fake, instance, volume};

    fn ok<T>(r: Result<T, AwsError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn get_recent_answers_from_a_young_read_present_or_absent_then_reads_again() {
        let fake = Arc::new(Fake {
            instances: vec![instance(1)],
            ..Fake::default()
        });
        let obs = InstanceObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let resync = Duration::from_secs(600);
        let gone = "i-0000000000000dead";
        let present = instance(1).instance_id;
        let calls = || fake.instance_calls.load(Ordering::SeqCst);

        let (a, b) = tokio::join!(
            obs.get_recent(gone, resync),
            obs.get_recent(&present, resync)
        );
        assert_eq!(ok(a), None);
        assert!(ok(b).is_some());
        assert_eq!(calls(), 1, "both ids in one batched read");

        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(100)).await;
            assert_eq!(ok(obs.get_recent(gone, resync).await), None);
            assert!(ok(obs.get_recent(&present, resync).await).is_some());
        }
        assert_eq!(calls(), 1, "a known-absent instance is not asked again");

        assert_eq!(
            ok(obs.get_recent(gone, Duration::from_secs(60)).await),
            None
        );
        assert_eq!(calls(), 2, "a read older than max_age is taken again");

        tokio::time::advance(resync).await;
        assert!(ok(obs.get_recent(&present, resync).await).is_some());
        assert_eq!(calls(), 3, "and so after the resync interval");
    }

    #[tokio::test(start_paused = true)]
    async fn get_recent_reuses_what_refresh_read() {
        let fake = Arc::new(Fake {
            instances: vec![instance(1)],
            ..Fake::default()
        });
        let obs = InstanceObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let id = instance(1).instance_id;
        assert!(ok(obs.refresh(&id).await).is_some());
        assert!(ok(obs.get_recent(&id, Duration::from_secs(600)).await).is_some());
        assert_eq!(fake.instance_calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_on_demand_read_taken_during_a_sweep_wins_over_that_sweep() {
        let mut f = fake(3);
        f.page_delay = Some(Duration::from_secs(5));
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let id = volume(0, "prod").volume_id;
        let size = |e: Option<VolumeEntry>| e.map(|e| e.volume.size_gib);

        // The sweep's only page reads the volume now and comes back 5 s later.
        let sweep = tokio::spawn({
            let obs = obs.clone();
            async move { obs.sweep().await.map(|s| s.entries.len()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(fake.pages.load(Ordering::SeqCst), 1, "the sweep is paging");
        // A write lands, and the reconciler reads the volume back while the sweep pages.
        fake.resize(&id, 2);
        assert_eq!(size(ok(obs.refresh(&id).await)), Some(2));
        assert_eq!(ok(sweep.await.unwrap_or_else(|e| panic!("{e}"))), 3);

        assert_eq!(
            size(ok(obs.get(&id).await)),
            Some(2),
            "the sweep finished last but started first: the read is newer"
        );

        // A sweep started after the read is newer than it.
        fake.resize(&id, 3);
        tokio::time::advance(Duration::from_secs(700)).await;
        assert_eq!(size(ok(obs.get(&id).await)), Some(3));
        assert_eq!(fake.pages.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_is_as_old_as_its_first_page_sent_not_as_the_wait_for_its_token() {
        let mut f = fake(3);
        f.token_wait = Some(Duration::from_secs(3));
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let id = volume(0, "prod").volume_id;
        let size = |e: Option<VolumeEntry>| e.map(|e| e.volume.size_gib);
        let original = volume(0, "prod").size_gib;

        // The sweep starts now, but its first page waits 3 s for a rate token.
        let sweep = tokio::spawn({
            let obs = obs.clone();
            async move { obs.sweep().await.map(|s| s.taken_at) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Meanwhile an on-demand read goes out and sees the volume as it was...
        assert_eq!(size(ok(obs.refresh(&id).await)), Some(original));
        // ...then a write lands, and the sweep's page, sent after it, sees the new size.
        fake.resize(&id, original + 5);
        let taken_at = ok(sweep.await.unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            taken_at.elapsed(),
            Duration::ZERO,
            "stamped when its page went out, 3 s after the sweep started"
        );
        assert_eq!(
            size(ok(obs.get(&id).await)),
            Some(original + 5),
            "the page went out after the read: the sweep is newer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_batch_answering_late_does_not_replace_a_newer_read() {
        let f = fake(3);
        if let Ok(mut delays) = f.by_ids_delays.lock() {
            // The first batch answers 5 s after it is sent, the second at once.
            delays.push_back(Duration::from_secs(5));
        }
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let id = volume(0, "prod").volume_id;
        let size = |e: Option<VolumeEntry>| e.map(|e| e.volume.size_gib);
        let original = volume(0, "prod").size_gib;
        assert_eq!(ok(obs.sweep().await).entries.len(), 3);

        let slow = tokio::spawn({
            let obs = obs.clone();
            let id = id.clone();
            async move { obs.refresh(&id).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        fake.resize(&id, original + 5);
        assert_eq!(size(ok(obs.refresh(&id).await)), Some(original + 5));
        let late = ok(slow.await.unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            size(late),
            Some(original),
            "the first read went out before the write"
        );
        assert_eq!(
            fake.by_ids.load(Ordering::SeqCst),
            2,
            "two batches, overlapping"
        );

        assert_eq!(
            size(ok(obs.get(&id).await)),
            Some(original + 5),
            "the newer read is kept although the older one answered last"
        );
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            1,
            "and no sweep was taken for it"
        );
    }
}
