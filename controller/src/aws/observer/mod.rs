//! Batched observation: one cached view per Region and resource kind, never one Describe per
//! object.
//!
//! - The sweep: every resource carrying our cluster tag, by one paginated, tag-filtered
//!   Describe (the largest page the API allows). Single-flight: concurrent callers share one
//!   sweep. A sweep is reused until it is older than the resync interval (jittered per sweep,
//!   so Regions and replicas drift apart). A failed sweep is shared too: callers within
//!   [`FAILED_SWEEP_HOLD`] get its error instead of each taking a sweep of their own, which
//!   would turn one throttled Describe into one per waiting object.
//! - A slow sweep blocks nobody: once one sweep is complete, a reader that finds it too old
//!   starts the next one in the background and answers from the last complete sweep while
//!   the next one pages (a 10,000-volume sweep is 20 pages, each waiting for its rate token).
//!   Only the first sweep, and a caller that needs a young one
//!   ([`Observer::owned_by_recently`]: a resource whose id was lost), wait for a sweep.
//! - On demand: [`Observer::refresh`] (right after a write, or for an adopted resource without
//!   our tags) queues the id; ids queued within the merge window (default 200 ms) are read
//!   together, filtered by id, so a missing resource is answered by its absence instead of
//!   failing the batch. Results are kept until the next sweep.
//!   [`Observer::get_recent`] answers from such a read while it is young enough, present or
//!   absent, for resources only ever read by id (instances).
//! - Polls: [`Observer::poll`] is a refresh of a resource AWS is still making (a volume
//!   `creating`). Polls are paced: a batch carrying them goes out at most once per poll
//!   interval (default 5 s) after the previous batch, and never sooner than the merge window
//!   after the poll was queued. So while any number of objects wait for their resources, the
//!   Region costs at most one read by ids per poll interval (plus the reads that writes ask
//!   for with [`Observer::refresh`], which take every queued poll along), instead of one per
//!   merge window: creating 1,000 volumes at the default rate (about 2.5 creates per second
//!   after a burst of 100, about 400 s) costs about 80 reads, not one per create. A resource
//!   that becomes ready at `t` is seen by the first batch after `t`, at most one poll interval
//!   later: the poller asks again right after each answer (requeued at the merge window), so
//!   it is queued for the next batch, which goes out at most a poll interval after the one
//!   that still saw it pending. The first poll after a quiet spell goes out after the merge
//!   window: a lone object is not slowed down.
//! - Which is newer: every sweep and every on-demand read is stamped with the instant its
//!   first answered request went out (after its rate-limit token, on its last attempt:
//!   [`first_answered_request`]), so its data is at least that recent. A read sent while a
//!   sweep is still paging therefore wins over that sweep, which may have listed the
//!   resource before the write the read follows; a read sent before the sweep's first page
//!   loses to it. Per resource the newer record is kept: a sweep does not hide a newer
//!   on-demand read, and an older on-demand batch that answers late does not replace a
//!   newer one.
//! - What is already known: a source may read less where the last record of a resource says
//!   enough ([`Known`]); volumes read a modification only where one may have changed.
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::client::{Ec2, first_answered_request};
use super::errors::AwsError;
use crate::plan::observed_tags::Tags;

pub use images::{ImageObserver, ImageSource};
pub use instance_types::{InstanceTypeObserver, InstanceTypeSource};
pub use instances::{InstanceObserver, InstanceSource};
pub use snapshots::{SnapshotObserver, SnapshotSource};
pub use volumes::{VolumeEntry, VolumeObserver, VolumeSource};

/// The tags of a resource that is never ours (instances, instance types): none, so it is
/// matched by id only.
static NO_TAGS: std::sync::LazyLock<Tags> = std::sync::LazyLock::new(Default::default);

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
    /// Polls ([`Observer::poll`]) go out at most once per this interval (default 5 s).
    pub poll_interval: Duration,
    /// Sweep page size; `None` (the default): the largest the API allows.
    pub page_size: Option<i32>,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(600),
            resync_jitter: 0.1,
            merge_window: Duration::from_millis(200),
            poll_interval: Duration::from_secs(5),
            page_size: None,
        }
    }
}

/// What the observer already knows when a source reads: the newest record of each
/// resource (from the last complete sweep or a newer on-demand read), and the ids a caller
/// asked to read in full ([`Observer::refresh_in_full`]: it changed something the source
/// may otherwise carry over from the last record).
pub struct Known<'a, E> {
    previous: &'a (dyn Fn(&str) -> Option<E> + Send + Sync),
    in_full: &'a HashSet<String>,
    polled: &'a HashSet<String>,
}

impl<E> Known<'_, E> {
    /// The newest record of `id`, if the observer has one.
    pub fn previous(&self, id: &str) -> Option<E> {
        (self.previous)(id)
    }

    /// Whether a caller asked to read `id` in full.
    pub fn in_full(&self, id: &str) -> bool {
        self.in_full.contains(id)
    }

    /// Whether a caller polled `id` ([`Observer::poll`]): AWS is making it, so it has
    /// nothing yet beyond the resource itself.
    pub fn polled(&self, id: &str) -> bool {
        self.polled.contains(id)
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

    /// Like [`Source::sweep`], reading less where what is `known` says enough. By default
    /// it reads everything.
    fn sweep_knowing<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
        _known: &'a Known<'a, Self::Entry>,
    ) -> BoxFuture<'a, Result<HashMap<String, Self::Entry>, AwsError>> {
        self.sweep(ec2, cluster, page_size)
    }

    /// Like [`Source::read_ids`], reading less where what is `known` says enough. By
    /// default it reads everything.
    fn read_ids_knowing<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
        _known: &'a Known<'a, Self::Entry>,
    ) -> BoxFuture<'a, Result<HashMap<String, Self::Entry>, AwsError>> {
        self.read_ids(ec2, ids)
    }

    /// The entry's tags (ownership is read from them).
    fn tags(entry: &Self::Entry) -> &Tags;
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

/// How an on-demand read is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    /// After a write: at the merge window.
    Refresh,
    /// The same, and the source reads everything it can about the resource.
    InFull,
    /// A look at a resource AWS is still making: paced at the poll interval.
    Poll,
}

/// The next batch of on-demand reads.
struct Pending<E> {
    ids: HashSet<String>,
    in_full: HashSet<String>,
    polled: HashSet<String>,
    waiters: Vec<oneshot::Sender<BatchResult<E>>>,
    /// When the batch goes out (`None`: nothing is queued).
    due: Option<Instant>,
    /// Counts batches sent: a timer set for an earlier batch, or for a later time that an
    /// urgent read brought forward, finds it changed and sends nothing.
    generation: u64,
    /// When the last batch went out: polls are paced from here.
    last_sent: Option<Instant>,
}

impl<E> Default for Pending<E> {
    fn default() -> Self {
        Self {
            ids: HashSet::new(),
            in_full: HashSet::new(),
            polled: HashSet::new(),
            waiters: Vec::new(),
            due: None,
            generation: 0,
            last_sent: None,
        }
    }
}

/// The last complete sweep, and how the latest attempt went.
struct SweepState<E> {
    last: Option<Arc<Sweep<E>>>,
    /// The latest sweep failed: when, and why.
    failed: Option<(Instant, AwsError)>,
    /// A sweep is being taken (readers of a stale sweep do not start another).
    running: bool,
    /// [`Observer::invalidate`] was called: `last` answers no reader (it is kept for what
    /// it knows, see [`Known`]) until a new sweep replaces it.
    invalidated: bool,
}

impl<E> Default for SweepState<E> {
    fn default() -> Self {
        Self {
            last: None,
            failed: None,
            running: false,
            invalidated: false,
        }
    }
}

/// The cached view of one Region's resources of one kind, for one cluster.
pub struct Observer<S: Source> {
    source: S,
    ec2: Arc<dyn Ec2>,
    cluster: String,
    config: ObserverConfig,
    /// Held across a sweep: that is what makes it single-flight.
    sweeping: tokio::sync::Mutex<()>,
    /// Never held across an await: readers use the last complete sweep while one runs.
    sweeps: Mutex<SweepState<S::Entry>>,
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
            sweeping: tokio::sync::Mutex::new(()),
            sweeps: Mutex::new(SweepState::default()),
            on_demand: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The current sweep. When it is too old, the next one is started in the background
    /// and the last complete one answers meanwhile; only without any complete sweep does
    /// the caller wait. Concurrent callers share one sweep, and a failed one for
    /// [`FAILED_SWEEP_HOLD`].
    pub async fn sweep(self: &Arc<Self>) -> Result<Arc<Sweep<S::Entry>>, AwsError> {
        {
            let Ok(mut state) = self.sweeps.lock() else {
                return Err(poisoned(S::NOUN));
            };
            if let Some(sweep) = &state.last
                && sweep.is_fresh()
                && !state.invalidated
            {
                return Ok(sweep.clone());
            }
            if let Some((at, err)) = &state.failed
                && at.elapsed() < FAILED_SWEEP_HOLD
            {
                return Err(err.clone());
            }
            if let Some(stale) = state.last.clone().filter(|_| !state.invalidated) {
                if !std::mem::replace(&mut state.running, true) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _ = this.shared_sweep(None).await;
                    });
                }
                return Ok(stale);
            }
        }
        self.shared_sweep(None).await
    }

    /// Waits for a sweep that is fresh (and younger than `max_age`, when given), taking it
    /// unless another caller is already taking one.
    async fn shared_sweep(
        &self,
        max_age: Option<Duration>,
    ) -> Result<Arc<Sweep<S::Entry>>, AwsError> {
        let _single_flight = self.sweeping.lock().await;
        {
            let Ok(mut state) = self.sweeps.lock() else {
                return Err(poisoned(S::NOUN));
            };
            // Another caller may have swept (or failed to) while this one waited.
            let young = state.last.clone().filter(|sweep| {
                !state.invalidated
                    && sweep.is_fresh()
                    && max_age.is_none_or(|age| sweep.taken_at.elapsed() < age)
            });
            let failed = state
                .failed
                .clone()
                .filter(|(at, _)| at.elapsed() < FAILED_SWEEP_HOLD);
            state.running = young.is_none() && failed.is_none();
            if let Some(sweep) = young {
                return Ok(sweep);
            }
            if let Some((_, err)) = failed {
                return Err(err);
            }
        }
        let result = self.take_sweep().await.map(Arc::new);
        if let Ok(sweep) = &result {
            self.forget_reads_superseded_by(sweep);
        }
        let Ok(mut state) = self.sweeps.lock() else {
            return Err(poisoned(S::NOUN));
        };
        state.running = false;
        match &result {
            Ok(sweep) => {
                state.last = Some(sweep.clone());
                state.failed = None;
                state.invalidated = false;
            }
            Err(err) => {
                tracing::warn!(
                    region = self.ec2.region(),
                    of = S::NOUN,
                    error = %err,
                    "sweep failed"
                );
                state.failed = Some((Instant::now(), err.clone()));
            }
        }
        result
    }

    /// Retires the current sweep: the next read takes a new one, and waits for it.
    pub async fn invalidate(&self) {
        let _single_flight = self.sweeping.lock().await;
        if let Ok(mut state) = self.sweeps.lock() {
            state.invalidated = true;
        }
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

    /// The newest record of `id` this observer holds, without reading: the last complete
    /// sweep's, or a newer on-demand read's.
    fn newest_known(&self, id: &str) -> Option<S::Entry> {
        let swept = self
            .sweeps
            .lock()
            .ok()
            .and_then(|s| s.last.clone())
            .map(|s| (s.taken_at, s.entries.get(id).cloned()));
        match (swept, self.on_demand_entry(id)) {
            (Some((taken_at, _)), Some((at, entry))) if at >= taken_at => entry,
            (Some((_, Some(entry))), _) => Some(entry),
            (_, Some((_, entry))) => entry,
            _ => None,
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
    pub async fn owned_by(self: &Arc<Self>, uid: &str) -> Result<Vec<S::Entry>, AwsError> {
        let sweep = self.sweep().await?;
        Ok(owned::<S>(&sweep, uid))
    }

    /// Like [`Observer::owned_by`], from a sweep no older than `max_age`: for a resource
    /// whose create was requested but whose id is unknown (the answer was lost), found by
    /// its tags. Every caller in the Region shares the one sweep, and waits for it.
    pub async fn owned_by_recently(
        &self,
        uid: &str,
        max_age: Duration,
    ) -> Result<Vec<S::Entry>, AwsError> {
        let sweep = self.shared_sweep(Some(max_age)).await?;
        Ok(owned::<S>(&sweep, uid))
    }

    /// Reads the resource now (merged with other reads within the merge window); the answer
    /// is kept for later `get` calls. `None`: no such resource.
    pub async fn refresh(self: &Arc<Self>, id: &str) -> Result<Option<S::Entry>, AwsError> {
        self.read(id, ReadKind::Refresh).await
    }

    /// Like [`Observer::refresh`], and the source reads everything it can about the
    /// resource instead of carrying over what its last record says (a volume's
    /// modification, after a ModifyVolume).
    pub async fn refresh_in_full(self: &Arc<Self>, id: &str) -> Result<Option<S::Entry>, AwsError> {
        self.read(id, ReadKind::InFull).await
    }

    /// Reads a resource AWS is still making, in the next paced batch: at most one batch per
    /// poll interval, shared by every poll and refresh queued by then (see the module
    /// documentation).
    pub async fn poll(self: &Arc<Self>, id: &str) -> Result<Option<S::Entry>, AwsError> {
        self.read(id, ReadKind::Poll).await
    }

    async fn read(
        self: &Arc<Self>,
        id: &str,
        kind: ReadKind,
    ) -> Result<Option<S::Entry>, AwsError> {
        let (tx, rx) = oneshot::channel();
        let timer = {
            let Ok(mut pending) = self.pending.lock() else {
                return Err(poisoned(S::NOUN));
            };
            pending.ids.insert(id.to_owned());
            match kind {
                ReadKind::InFull => pending.in_full.insert(id.to_owned()),
                ReadKind::Poll => pending.polled.insert(id.to_owned()),
                ReadKind::Refresh => false,
            };
            pending.waiters.push(tx);
            let mut due = Instant::now() + self.config.merge_window;
            if kind == ReadKind::Poll
                && let Some(last) = pending.last_sent
            {
                due = due.max(last + self.config.poll_interval);
            }
            match pending.due {
                Some(queued) if queued <= due => None,
                _ => {
                    pending.due = Some(due);
                    Some((pending.generation, due))
                }
            }
        };
        if let Some((generation, due)) = timer {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                this.flush(generation, due).await;
            });
        }
        match rx.await {
            Ok(result) => Ok(result?.get(id).cloned()),
            Err(_) => Err(AwsError::Transport {
                message: format!("the batched {} read was cancelled", S::NOUN),
            }),
        }
    }

    /// Drops the on-demand reads a complete sweep supersedes: those of resources it listed,
    /// taken before it started (every reader prefers the sweep's record of them). What the
    /// sweep does not list (a resource without our tags, or one found absent) is kept.
    /// Without this, every volume created or modified stays in memory twice, once here,
    /// for two resync intervals.
    fn forget_reads_superseded_by(&self, sweep: &Sweep<S::Entry>) {
        if let Ok(mut on_demand) = self.on_demand.lock() {
            on_demand
                .retain(|id, (at, _)| *at >= sweep.taken_at || !sweep.entries.contains_key(id));
            on_demand.shrink_to_fit();
        }
    }

    fn on_demand_entry(&self, id: &str) -> Option<OnDemandRead<S::Entry>> {
        self.on_demand.lock().ok().and_then(|m| m.get(id).cloned())
    }

    /// Sends the batch the timer set for `due` was for, unless it went out already.
    async fn flush(&self, generation: u64, due: Instant) {
        let (ids, in_full, polled, waiters) = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            if pending.generation != generation || pending.due != Some(due) {
                return;
            }
            pending.due = None;
            pending.generation += 1;
            pending.last_sent = Some(Instant::now());
            (
                std::mem::take(&mut pending.ids),
                std::mem::take(&mut pending.in_full),
                std::mem::take(&mut pending.polled),
                std::mem::take(&mut pending.waiters),
            )
        };
        let mut ids: Vec<String> = ids.into_iter().collect();
        ids.sort();
        let started = Instant::now();
        let previous = |id: &str| self.newest_known(id);
        let known = Known {
            previous: &previous,
            in_full: &in_full,
            polled: &polled,
        };
        let (result, sent) = first_answered_request(self.source.read_ids_knowing(
            self.ec2.as_ref(),
            &ids,
            &known,
        ))
        .await;
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
        let previous = |id: &str| self.newest_known(id);
        let none = HashSet::new();
        let known = Known {
            previous: &previous,
            in_full: &none,
            polled: &none,
        };
        let (entries, sent) = first_answered_request(self.source.sweep_knowing(
            self.ec2.as_ref(),
            &self.cluster,
            self.config.page_size,
            &known,
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

/// The swept resources owned by the object with this UID.
fn owned<S: Source>(sweep: &Sweep<S::Entry>, uid: &str) -> Vec<S::Entry> {
    sweep
        .entries
        .values()
        .filter(|e| super::tags::is_ours(S::tags(e), uid))
        .cloned()
        .collect()
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
    use crate::plan::observed::VolumeState;

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
        // The old sweep answers while the next one (started by this read) pages.
        assert_eq!(size(ok(obs.get(&id).await)), Some(2));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(size(ok(obs.get(&id).await)), Some(3));
        assert_eq!(fake.pages.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_sweep_drops_the_older_on_demand_reads_of_what_it_listed_only() {
        let fake = Arc::new(fake(3));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let listed = volume(0, "prod").volume_id;
        let untagged = "vol-not-ours";
        assert!(ok(obs.refresh(&listed).await).is_some());
        assert_eq!(ok(obs.refresh(untagged).await), None);
        let held = |obs: &VolumeObserver| obs.on_demand.lock().map(|m| m.len()).unwrap_or(0);
        assert_eq!(held(&obs), 2);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(ok(obs.sweep().await).entries.len(), 3);
        assert_eq!(held(&obs), 1, "the listed volume's read is superseded");
        assert!(
            obs.on_demand_entry(untagged).is_some(),
            "what the sweep did not list stays"
        );

        // The sweep's record answers, without another read.
        let reads = (
            fake.by_ids.load(Ordering::SeqCst),
            fake.pages.load(Ordering::SeqCst),
        );
        assert!(ok(obs.get(&listed).await).is_some());
        assert_eq!(
            (
                fake.by_ids.load(Ordering::SeqCst),
                fake.pages.load(Ordering::SeqCst)
            ),
            reads
        );
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

    #[tokio::test(start_paused = true)]
    async fn polls_of_100_creating_volumes_cost_one_read_per_poll_interval() {
        let fake = Arc::new(fake(100));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let ids: Vec<String> = (0..100).map(|i| volume(i, "prod").volume_id).collect();
        for id in &ids {
            fake.set_creating(id, true);
        }
        let create_every = Duration::from_millis(400); // 2.5 creates per second
        let creation = Duration::from_secs(2);
        let started = Instant::now();
        let waiters = ids.iter().enumerate().map(|(n, id)| {
            let (obs, fake, id) = (obs.clone(), fake.clone(), id.clone());
            async move {
                tokio::time::sleep(create_every * u32::try_from(n).unwrap_or(0)).await;
                let available_at = Instant::now() + creation;
                tokio::spawn({
                    let (fake, id) = (fake.clone(), id.clone());
                    async move {
                        tokio::time::sleep_until(available_at).await;
                        fake.set_creating(&id, false);
                    }
                });
                // The reconciler's loop: poll, and when still creating, requeue at the
                // merge window.
                loop {
                    let entry = ok(obs.poll(&id).await);
                    if entry.is_some_and(|e| e.volume.state != VolumeState::Creating) {
                        return Instant::now() - available_at;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        let late = futures::future::join_all(waiters).await;
        let latest = late.iter().max().copied().unwrap_or_default();
        assert!(
            latest <= Duration::from_secs(5),
            "seen at most one poll interval after it became available: {latest:?}"
        );
        // Reads at 0.2 s, then every 5 s until the last volume (created at 39.6 s,
        // available at 41.6 s) is seen at 45.2 s.
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 10);
        assert_eq!(started.elapsed(), Duration::from_millis(45_200));
        assert_eq!(
            fake.modification_calls.load(Ordering::SeqCst),
            0,
            "new volumes have no modification to read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_poll_goes_out_at_the_merge_window_and_a_refresh_takes_polls_along() {
        let fake = Arc::new(fake(3));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let (a, b) = (volume(0, "prod").volume_id, volume(1, "prod").volume_id);
        let t0 = Instant::now();
        assert!(ok(obs.poll(&a).await).is_some());
        assert_eq!(t0.elapsed(), Duration::from_millis(200));
        // The next poll waits for the poll interval after that read...
        let poll = tokio::spawn({
            let (obs, a) = (obs.clone(), a.clone());
            async move { obs.poll(&a).await.map(|e| e.is_some()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // ...unless a refresh asks sooner: one read answers both.
        assert!(ok(obs.refresh(&b).await).is_some());
        assert!(ok(poll.await.unwrap_or_else(|e| panic!("{e}"))));
        assert_eq!(t0.elapsed(), Duration::from_millis(1_400));
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_sweep_blocks_no_reader_of_the_last_one() {
        let mut f = fake(3);
        f.page_delay = Some(Duration::from_secs(30));
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let id = volume(0, "prod").volume_id;
        let t0 = Instant::now();
        assert!(ok(obs.get(&id).await).is_some());
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(30),
            "the first sweep is waited for"
        );

        tokio::time::advance(Duration::from_secs(700)).await;
        let t1 = Instant::now();
        for _ in 0..10 {
            assert!(ok(obs.get(&id).await).is_some());
        }
        assert_eq!(
            t1.elapsed(),
            Duration::ZERO,
            "the last sweep answers at once"
        );
        tokio::task::yield_now().await;
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            2,
            "one sweep runs, for all"
        );

        // A caller that needs a young sweep (a resource whose id was lost) waits for it,
        // and takes no sweep of its own.
        let found = ok(obs
            .owned_by_recently("no-such-uid", Duration::from_secs(60))
            .await);
        assert!(found.is_empty());
        assert_eq!(t1.elapsed(), Duration::from_secs(30));
        assert_eq!(fake.pages.load(Ordering::SeqCst), 2);
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 0);
    }
}
