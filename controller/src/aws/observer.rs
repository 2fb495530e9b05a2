//! Batched observation of volumes: one cached view per Region, never one Describe per object.
//!
//! - The sweep: every volume carrying our cluster tag, by one paginated, tag-filtered
//!   DescribeVolumes (500 per page) plus DescribeVolumesModifications for those ids (500 per
//!   call). Single-flight: concurrent callers share one sweep. A sweep is reused until it is
//!   older than the resync interval (jittered per sweep, so Regions and replicas drift apart).
//! - On demand: [`VolumeObserver::refresh`] (right after a write, or for an adopted volume
//!   without our tags) queues the id; ids queued within the merge window (default 200 ms) are
//!   read together by DescribeVolumes filtered on `volume-id` (at most 200 values per filter,
//!   so one call per 200 ids), which answers a missing volume by its absence instead of failing
//!   the batch with `InvalidVolume.NotFound`. Results are kept until the next sweep.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::client::{Ec2, Filter, MAX_VOLUME_PAGE};
use super::errors::AwsError;
use super::tags::CLUSTER_TAG;
use crate::plan::observed::{ObservedModification, ObservedVolume};

/// Most volume ids in one DescribeVolumesModifications call.
pub const MODIFICATION_BATCH: usize = 500;

/// How the observer batches and caches.
#[derive(Clone, Debug)]
pub struct ObserverConfig {
    /// A sweep is reused until it is this old (default 10 minutes)...
    pub resync_interval: Duration,
    /// ...give or take this fraction, drawn per sweep (default 0.1).
    pub resync_jitter: f64,
    /// How long on-demand reads wait for company (default 200 ms).
    pub merge_window: Duration,
    /// DescribeVolumes page size (5..=500, default 500).
    pub page_size: i32,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(600),
            resync_jitter: 0.1,
            merge_window: Duration::from_millis(200),
            page_size: MAX_VOLUME_PAGE,
        }
    }
}

/// A volume and its latest modification, if it ever had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeEntry {
    pub volume: ObservedVolume,
    pub modification: Option<ObservedModification>,
}

/// One sweep's result.
#[derive(Debug)]
pub struct Sweep {
    pub volumes: HashMap<String, VolumeEntry>,
    pub taken_at: Instant,
    max_age: Duration,
}

impl Sweep {
    fn is_fresh(&self) -> bool {
        self.taken_at.elapsed() < self.max_age
    }
}

type BatchResult = Result<Arc<HashMap<String, VolumeEntry>>, AwsError>;

#[derive(Default)]
struct Pending {
    ids: HashSet<String>,
    waiters: Vec<oneshot::Sender<BatchResult>>,
    scheduled: bool,
}

/// The cached view of one Region's volumes for one cluster.
pub struct VolumeObserver {
    ec2: Arc<dyn Ec2>,
    cluster: String,
    config: ObserverConfig,
    /// Held across a sweep: that is what makes it single-flight.
    sweep: tokio::sync::Mutex<Option<Arc<Sweep>>>,
    /// On-demand reads: when, and what (`None`: no such volume).
    on_demand: Mutex<HashMap<String, (Instant, Option<VolumeEntry>)>>,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for VolumeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeObserver")
            .field("region", &self.ec2.region())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl VolumeObserver {
    pub fn new(ec2: Arc<dyn Ec2>, cluster: impl Into<String>, config: ObserverConfig) -> Arc<Self> {
        Arc::new(Self {
            ec2,
            cluster: cluster.into(),
            config,
            sweep: tokio::sync::Mutex::new(None),
            on_demand: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The current sweep, taking one if there is none or it is too old. Concurrent callers
    /// share one sweep.
    pub async fn sweep(&self) -> Result<Arc<Sweep>, AwsError> {
        let mut guard = self.sweep.lock().await;
        if let Some(sweep) = guard.as_ref()
            && sweep.is_fresh()
        {
            return Ok(sweep.clone());
        }
        let sweep = Arc::new(self.take_sweep().await?);
        *guard = Some(sweep.clone());
        Ok(sweep)
    }

    /// Forgets the current sweep: the next read takes a new one.
    pub async fn invalidate(&self) {
        *self.sweep.lock().await = None;
    }

    /// The volume as last observed (within the resync interval), reading it on demand when
    /// the sweep does not have it (an adopted volume without our tags). `None`: no such volume.
    pub async fn get(self: &Arc<Self>, volume_id: &str) -> Result<Option<VolumeEntry>, AwsError> {
        let sweep = self.sweep().await?;
        let on_demand = self.on_demand_entry(volume_id);
        match (sweep.volumes.get(volume_id), on_demand) {
            // An on-demand read newer than the sweep wins (it follows a write).
            (_, Some((at, entry))) if at >= sweep.taken_at => Ok(entry),
            (Some(entry), _) => Ok(Some(entry.clone())),
            // Not in the sweep: an on-demand read of the same age as the sweep will do.
            (None, Some((at, entry))) if at.elapsed() < self.config.resync_interval => Ok(entry),
            (None, _) => self.refresh(volume_id).await,
        }
    }

    /// Every swept volume owned by the object with this UID (crash recovery looks here).
    pub async fn owned_by(&self, uid: &str) -> Result<Vec<VolumeEntry>, AwsError> {
        let sweep = self.sweep().await?;
        Ok(sweep
            .volumes
            .values()
            .filter(|e| super::tags::is_ours(&e.volume.tags, uid))
            .cloned()
            .collect())
    }

    /// Reads the volume now (merged with other refreshes within the window); the answer is
    /// kept for later `get` calls. `None`: no such volume.
    pub async fn refresh(
        self: &Arc<Self>,
        volume_id: &str,
    ) -> Result<Option<VolumeEntry>, AwsError> {
        let (tx, rx) = oneshot::channel();
        let schedule = {
            let Ok(mut pending) = self.pending.lock() else {
                return Err(poisoned());
            };
            pending.ids.insert(volume_id.to_owned());
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
            Ok(result) => Ok(result?.get(volume_id).cloned()),
            Err(_) => Err(AwsError::Transport {
                message: "the batched volume read was cancelled".to_owned(),
            }),
        }
    }

    fn on_demand_entry(&self, volume_id: &str) -> Option<(Instant, Option<VolumeEntry>)> {
        self.on_demand
            .lock()
            .ok()
            .and_then(|m| m.get(volume_id).cloned())
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
        let result = self.read_ids(&ids).await.map(Arc::new);
        if let Ok(found) = &result
            && let Ok(mut on_demand) = self.on_demand.lock()
        {
            let now = Instant::now();
            let horizon = self.config.resync_interval.mul_f64(2.0);
            on_demand.retain(|_, (at, _)| now.saturating_duration_since(*at) < horizon);
            for id in &ids {
                on_demand.insert(id.clone(), (now, found.get(id).cloned()));
            }
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }

    async fn read_ids(&self, ids: &[String]) -> Result<HashMap<String, VolumeEntry>, AwsError> {
        let volumes = self.ec2.describe_volumes_by_ids(ids.to_vec()).await?;
        self.with_modifications(volumes).await
    }

    async fn take_sweep(&self) -> Result<Sweep, AwsError> {
        let filters = vec![Filter::tag(CLUSTER_TAG, self.cluster.clone())];
        let mut volumes = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ec2
                .describe_volumes_page(filters.clone(), self.config.page_size, token)
                .await?;
            volumes.extend(page.items);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let count = volumes.len();
        let volumes = self.with_modifications(volumes).await?;
        tracing::debug!(region = self.ec2.region(), count, "swept volumes");
        Ok(Sweep {
            volumes,
            taken_at: Instant::now(),
            max_age: jittered(self.config.resync_interval, self.config.resync_jitter),
        })
    }

    /// Adds each volume's latest modification (500 ids per call). A volume deleted since it
    /// was listed fails its batch with `InvalidVolume.NotFound` naming it: the batch is sent
    /// again without the ids the message names.
    async fn with_modifications(
        &self,
        volumes: Vec<ObservedVolume>,
    ) -> Result<HashMap<String, VolumeEntry>, AwsError> {
        let ids: Vec<String> = volumes.iter().map(|v| v.volume_id.clone()).collect();
        let mut modifications = HashMap::new();
        for chunk in ids.chunks(MODIFICATION_BATCH) {
            let mut batch = chunk.to_vec();
            for _ in 0..3 {
                if batch.is_empty() {
                    break;
                }
                match self.ec2.describe_volumes_modifications(batch.clone()).await {
                    Ok(found) => {
                        modifications.extend(found.into_iter().map(|m| (m.volume_id.clone(), m)));
                        break;
                    }
                    Err(err @ AwsError::NotFound { .. }) => {
                        let missing = volume_ids_in(&err.to_string());
                        if missing.is_empty() {
                            return Err(err);
                        }
                        batch.retain(|id| !missing.contains(id));
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(volumes
            .into_iter()
            .map(|volume| {
                let modification = modifications.remove(&volume.volume_id);
                (
                    volume.volume_id.clone(),
                    VolumeEntry {
                        volume,
                        modification,
                    },
                )
            })
            .collect())
    }
}

fn poisoned() -> AwsError {
    AwsError::Transport {
        message: "the volume observer's lock is poisoned".to_owned(),
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

/// The `vol-...` ids named in an error message.
fn volume_ids_in(message: &str) -> HashSet<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            w.strip_prefix("vol-")
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::future::BoxFuture;

    use super::*;
    use crate::aws::client::*;
    use crate::plan::observed::{ModificationState, VolumeState};

    #[derive(Default)]
    struct Fake {
        volumes: Vec<ObservedVolume>,
        modified: HashSet<String>,
        pages: AtomicU32,
        by_ids: AtomicU32,
        modification_calls: AtomicU32,
        /// Ids that "were deleted": DescribeVolumesModifications fails naming them.
        deleted: HashSet<String>,
    }

    fn volume(n: usize, cluster: &str) -> ObservedVolume {
        ObservedVolume {
            volume_id: format!("vol-{n:017x}"),
            state: VolumeState::Available,
            availability_zone: "us-east-1a".to_owned(),
            volume_type: None,
            size_gib: 1,
            iops: None,
            throughput_mibps: None,
            encrypted: false,
            kms_key_id: None,
            multi_attach_enabled: false,
            snapshot_id: None,
            attachments: Vec::new(),
            tags: BTreeMap::from([(CLUSTER_TAG.to_owned(), cluster.to_owned())]),
            create_time: None,
        }
    }

    fn unsupported<T>() -> BoxFuture<'static, Result<T, AwsError>> {
        Box::pin(async {
            Err(AwsError::Client {
                code: "Unsupported".to_owned(),
                message: String::new(),
            })
        })
    }

    impl Ec2 for Fake {
        fn region(&self) -> &str {
            "us-east-1"
        }
        fn describe_volumes_page(
            &self,
            filters: Vec<Filter>,
            max_results: i32,
            next_token: Option<String>,
        ) -> BoxFuture<'_, Result<Page<ObservedVolume>, AwsError>> {
            self.pages.fetch_add(1, Ordering::SeqCst);
            let cluster = filters[0].values[0].clone();
            let matching: Vec<_> = self
                .volumes
                .iter()
                .filter(|v| v.tags.get(CLUSTER_TAG) == Some(&cluster))
                .cloned()
                .collect();
            let start: usize = next_token.map_or(0, |t| t.parse().unwrap_or(0));
            let end = (start + max_results as usize).min(matching.len());
            let page = Page {
                items: matching[start..end].to_vec(),
                next_token: (end < matching.len()).then(|| end.to_string()),
            };
            Box::pin(async move { Ok(page) })
        }
        fn describe_volumes_by_ids(
            &self,
            ids: Vec<String>,
        ) -> BoxFuture<'_, Result<Vec<ObservedVolume>, AwsError>> {
            self.by_ids.fetch_add(1, Ordering::SeqCst);
            let found = self
                .volumes
                .iter()
                .filter(|v| ids.contains(&v.volume_id))
                .cloned()
                .collect();
            Box::pin(async move { Ok(found) })
        }
        fn describe_volumes_modifications(
            &self,
            ids: Vec<String>,
        ) -> BoxFuture<'_, Result<Vec<ObservedModification>, AwsError>> {
            self.modification_calls.fetch_add(1, Ordering::SeqCst);
            assert!(ids.len() <= MODIFICATION_BATCH);
            if let Some(gone) = ids.iter().find(|id| self.deleted.contains(*id)) {
                let err = AwsError::NotFound {
                    code: "InvalidVolume.NotFound".to_owned(),
                    message: format!("The volume '{gone}' does not exist."),
                };
                return Box::pin(async move { Err(err) });
            }
            let found = ids
                .iter()
                .filter(|id| self.modified.contains(*id))
                .map(|id| ObservedModification {
                    volume_id: id.clone(),
                    state: ModificationState::Optimizing,
                    progress: Some(50),
                    start_time: None,
                    end_time: None,
                    status_message: None,
                    target_size_gib: Some(2),
                    target_volume_type: None,
                    target_iops: None,
                    target_throughput_mibps: None,
                })
                .collect();
            Box::pin(async move { Ok(found) })
        }
        fn describe_snapshots_page(
            &self,
            _: Vec<Filter>,
            _: i32,
            _: Option<String>,
        ) -> BoxFuture<'_, Result<Page<crate::plan::observed::ObservedSnapshot>, AwsError>>
        {
            unsupported()
        }
        fn create_volume(
            &self,
            _: CreateVolumeRequest,
        ) -> BoxFuture<'_, Result<ObservedVolume, AwsError>> {
            unsupported()
        }
        fn modify_volume(
            &self,
            _: ModifyVolumeRequest,
        ) -> BoxFuture<'_, Result<ObservedModification, AwsError>> {
            unsupported()
        }
        fn attach_volume(
            &self,
            _: AttachVolumeRequest,
        ) -> BoxFuture<'_, Result<Option<crate::plan::observed::AttachmentState>, AwsError>>
        {
            unsupported()
        }
        fn detach_volume(
            &self,
            _: DetachVolumeRequest,
        ) -> BoxFuture<'_, Result<Option<crate::plan::observed::AttachmentState>, AwsError>>
        {
            unsupported()
        }
        fn delete_volume(&self, _: String) -> BoxFuture<'_, Result<(), AwsError>> {
            unsupported()
        }
        fn create_snapshot(
            &self,
            _: CreateSnapshotRequest,
        ) -> BoxFuture<'_, Result<crate::plan::observed::ObservedSnapshot, AwsError>> {
            unsupported()
        }
        fn create_tags(
            &self,
            _: Vec<String>,
            _: BTreeMap<String, String>,
        ) -> BoxFuture<'_, Result<(), AwsError>> {
            unsupported()
        }
        fn delete_tags(
            &self,
            _: Vec<String>,
            _: Vec<String>,
        ) -> BoxFuture<'_, Result<(), AwsError>> {
            unsupported()
        }
        fn describe_instances_by_ids(
            &self,
            _: Vec<String>,
        ) -> BoxFuture<'_, Result<Vec<ObservedInstance>, AwsError>> {
            unsupported()
        }
        fn describe_key(&self, _: String) -> BoxFuture<'_, Result<KmsKey, AwsError>> {
            unsupported()
        }
        fn get_ebs_default_kms_key_id(&self) -> BoxFuture<'_, Result<Option<String>, AwsError>> {
            unsupported()
        }
    }

    fn fake(n: usize) -> Fake {
        let mut volumes: Vec<_> = (0..n).map(|i| volume(i, "prod")).collect();
        volumes.push(volume(n, "other-cluster"));
        let modified = volumes
            .iter()
            .take(3)
            .map(|v| v.volume_id.clone())
            .collect();
        Fake {
            volumes,
            modified,
            ..Fake::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_sweep_reads_1200_volumes_in_three_pages_and_three_modification_calls() {
        let fake = Arc::new(fake(1200));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.volumes.len(), 1200);
        assert_eq!(fake.pages.load(Ordering::SeqCst), 3);
        assert_eq!(fake.modification_calls.load(Ordering::SeqCst), 3);
        let first = volume(0, "prod").volume_id;
        let entry = obs.get(&first).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entry.and_then(|e| e.modification).map(|m| m.state),
            Some(ModificationState::Optimizing)
        );
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            3,
            "a second read reuses the sweep"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_share_one_sweep() {
        let fake = Arc::new(fake(700));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let reads = (0..10).map(|i| {
            let obs = obs.clone();
            async move { obs.get(&volume(i, "prod").volume_id).await }
        });
        for r in futures::future::join_all(reads).await {
            assert!(r.unwrap_or_else(|e| panic!("{e}")).is_some());
        }
        assert_eq!(fake.pages.load(Ordering::SeqCst), 2);
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_older_than_the_resync_interval_is_taken_again() {
        let fake = Arc::new(fake(10));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let _ = obs.sweep().await;
        tokio::time::advance(Duration::from_secs(530)).await;
        let _ = obs.sweep().await;
        assert_eq!(fake.pages.load(Ordering::SeqCst), 1, "within 600 s - 10 %");
        tokio::time::advance(Duration::from_secs(140)).await;
        let _ = obs.sweep().await;
        assert_eq!(fake.pages.load(Ordering::SeqCst), 2, "past 600 s + 10 %");
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_within_the_window_make_one_read_and_missing_ids_are_none() {
        let fake = Arc::new(fake(20));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let mut ids: Vec<String> = (0..9).map(|i| volume(i, "prod").volume_id).collect();
        ids.push("vol-0000000000000dead".to_owned());
        let reads = ids.iter().map(|id| {
            let obs = obs.clone();
            async move { obs.refresh(id).await }
        });
        let results = futures::future::join_all(reads).await;
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 1);
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            0,
            "a refresh takes no sweep"
        );
        for r in &results[..9] {
            assert!(matches!(r, Ok(Some(_))));
        }
        assert!(matches!(results[9], Ok(None)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_adopted_volume_outside_the_sweep_is_read_on_demand_once() {
        let fake = Arc::new(fake(5));
        // The volume of another cluster stands for an adopted volume without our tags.
        let adopted = volume(5, "other-cluster").volume_id;
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        assert!(
            obs.get(&adopted)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_some()
        );
        assert!(
            obs.get(&adopted)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_some()
        );
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_volume_deleted_between_pages_does_not_fail_the_modification_read() {
        let mut f = fake(10);
        f.deleted.insert(volume(4, "prod").volume_id);
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.volumes.len(), 10);
        assert_eq!(fake.modification_calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn volume_ids_are_found_in_error_messages() {
        let ids = volume_ids_in("The volume 'vol-0123abcd' does not exist. (vol-x, vol-)");
        assert_eq!(ids, HashSet::from(["vol-0123abcd".to_owned()]));
    }
}
