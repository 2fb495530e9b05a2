//! The volume observer: volumes carrying our cluster tag, each with its latest modification.
//!
//! - Sweep: DescribeVolumes filtered on the cluster tag (500 per page), then ONE
//!   DescribeVolumesModifications for the whole Region, filtered on `modification-state`
//!   `modifying`, `optimizing` or `failed` (no volume ids, paginated; entries of volumes
//!   that are not ours are dropped). An idle resync of 10,000 volumes is 20 pages plus one
//!   call, instead of 20 more calls by id.
//! - On demand: DescribeVolumes filtered on `volume-id` (200 values per filter, so one call per
//!   200 ids), which answers a missing volume by its absence instead of failing the batch with
//!   `InvalidVolume.NotFound`; a DescribeVolumesModifications by id only for the volumes whose
//!   modification may have changed (below).
//!
//! What the planner needs from the latest modification, and where it comes from:
//! - one in flight (`modifying`/`optimizing`: wait, start nothing) and one that `failed` (the
//!   same targets are not sent again): both are in the filtered call, for every volume;
//! - a `completed` one: its start time counts toward AWS's four a day when status does not
//!   record it, and status shows it. AWS's latest record of a volume changes only when a
//!   modification starts (it is then in flight, so in the filtered call) or moves on. So a
//!   record is carried over from the volume's previous entry: a completed one as it is, and
//!   one that was in flight or failed and is no longer listed is read by id (it completed,
//!   or a newer one did). One started and completed between two reads (outside the
//!   controller) is never listed, but it changed the volume: a volume whose size, type,
//!   IOPS, throughput or Multi-Attach differ from its previous entry is read by id. A volume
//!   this observer has never seen (the first sweep after a start; an adopted volume) is read
//!   by id once, like before.
//!
//! By id (500 ids per call), only for: volumes read in full (after a ModifyVolume:
//! [`VolumeObserver::refresh_in_full`]), volumes whose previous entry shows a modification in
//! flight, and volumes never seen before that are neither `creating` nor polled as new (a
//! volume being created has no modification: reading new volumes costs no modifications
//! call).

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;

use super::{Known, Observer, Source};
use crate::aws::client::{Ec2, Filter, MAX_VOLUME_PAGE, all_pages};
use crate::aws::errors::AwsError;
use crate::aws::tags::CLUSTER_TAG;
use crate::plan::observed::{ModificationState, ObservedModification, ObservedVolume, VolumeState};
use crate::plan::observed_tags::Tags;

/// Most volume ids in one DescribeVolumesModifications call.
pub const MODIFICATION_BATCH: usize = 500;

/// The modification states the sweep lists for the whole Region: every state the planner
/// acts on that a carried-over record could miss.
pub const LISTED_STATES: [ModificationState; 3] = [
    ModificationState::Modifying,
    ModificationState::Optimizing,
    ModificationState::Failed,
];

/// The cached view of one Region's volumes.
pub type VolumeObserver = Observer<VolumeSource>;

/// A volume and its latest modification, if it ever had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeEntry {
    pub volume: ObservedVolume,
    /// Boxed: most volumes never had one, and inline it would add about 150 bytes to every
    /// slot of a sweep's map (16,384 slots for 10,000 volumes).
    pub modification: Option<Box<ObservedModification>>,
}

/// Reads volumes and their modifications.
#[derive(Clone, Copy, Debug, Default)]
pub struct VolumeSource;

/// What is known of a volume's latest modification before reading it.
enum Latest {
    /// This record (or none) stands.
    Known(Option<Box<ObservedModification>>),
    /// It may have changed: read it by id.
    Read,
}

fn in_flight(m: &ObservedModification) -> bool {
    matches!(
        m.state,
        ModificationState::Modifying | ModificationState::Optimizing
    )
}

/// Whether a modification changed the volume since `before` was read: one started and
/// completed between two reads (outside the controller) is never listed in flight, but it
/// counts toward AWS's four a day, so it is read by id.
fn reshaped(before: &ObservedVolume, now: &ObservedVolume) -> bool {
    before.size_gib != now.size_gib
        || before.volume_type != now.volume_type
        || before.iops != now.iops
        || before.throughput_mibps != now.throughput_mibps
        || before.multi_attach_enabled != now.multi_attach_enabled
}

impl Source for VolumeSource {
    type Entry = VolumeEntry;
    const NOUN: &'static str = "volume";

    fn sweep<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, VolumeEntry>, AwsError>> {
        Box::pin(async move {
            let none = HashSet::new();
            let known = Known {
                previous: &|_: &str| None,
                in_full: &none,
                polled: &none,
            };
            self.sweep_knowing(ec2, cluster, page_size, &known).await
        })
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, VolumeEntry>, AwsError>> {
        Box::pin(async move {
            let in_full: HashSet<String> = ids.iter().cloned().collect();
            let none = HashSet::new();
            let known = Known {
                previous: &|_: &str| None,
                in_full: &in_full,
                polled: &none,
            };
            self.read_ids_knowing(ec2, ids, &known).await
        })
    }

    fn sweep_knowing<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
        known: &'a Known<'a, VolumeEntry>,
    ) -> BoxFuture<'a, Result<HashMap<String, VolumeEntry>, AwsError>> {
        Box::pin(async move {
            let filters = vec![Filter::tag(CLUSTER_TAG, cluster)];
            let page_size = page_size.unwrap_or(MAX_VOLUME_PAGE);
            let volumes =
                all_pages(|token| ec2.describe_volumes_page(filters.clone(), page_size, token))
                    .await?;
            let mut listed: HashMap<String, ObservedModification> = ec2
                .describe_volumes_modifications_in_states(LISTED_STATES.to_vec())
                .await?
                .into_iter()
                .map(|m| (m.volume_id.clone(), m))
                .collect();
            let mut latest = |v: &ObservedVolume| match listed.remove(&v.volume_id) {
                Some(m) => Latest::Known(Some(Box::new(m))),
                None => match known.previous(&v.volume_id) {
                    // Listed last time, not now: it moved on.
                    Some(VolumeEntry {
                        modification: Some(m),
                        ..
                    }) if m.state != ModificationState::Completed => Latest::Read,
                    Some(previous) if reshaped(&previous.volume, v) => Latest::Read,
                    Some(previous) => Latest::Known(previous.modification),
                    None => Latest::Read,
                },
            };
            with_modifications(ec2, volumes, &mut latest).await
        })
    }

    fn read_ids_knowing<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
        known: &'a Known<'a, VolumeEntry>,
    ) -> BoxFuture<'a, Result<HashMap<String, VolumeEntry>, AwsError>> {
        Box::pin(async move {
            let volumes = ec2.describe_volumes_by_ids(ids.to_vec()).await?;
            let mut latest = |v: &ObservedVolume| {
                if known.in_full(&v.volume_id) {
                    return Latest::Read;
                }
                match known.previous(&v.volume_id) {
                    Some(VolumeEntry {
                        modification: Some(m),
                        ..
                    }) if in_flight(&m) => Latest::Read,
                    Some(previous) if reshaped(&previous.volume, v) => Latest::Read,
                    Some(previous) => Latest::Known(previous.modification),
                    // Being made: no modification yet, even if it is available by now.
                    None if known.polled(&v.volume_id) || v.state == VolumeState::Creating => {
                        Latest::Known(None)
                    }
                    None => Latest::Read,
                }
            };
            with_modifications(ec2, volumes, &mut latest).await
        })
    }

    fn tags(entry: &VolumeEntry) -> &Tags {
        &entry.volume.tags
    }
}

/// Pairs each volume with its latest modification: the one `latest` knows, or one read by
/// id (500 ids per call) where it says so.
async fn with_modifications(
    ec2: &dyn Ec2,
    volumes: Vec<ObservedVolume>,
    latest: &mut (dyn FnMut(&ObservedVolume) -> Latest + Send),
) -> Result<HashMap<String, VolumeEntry>, AwsError> {
    let mut entries = HashMap::with_capacity(volumes.len());
    let mut to_read = Vec::new();
    for volume in volumes {
        let modification = match latest(&volume) {
            Latest::Known(m) => m,
            Latest::Read => {
                to_read.push(volume.volume_id.clone());
                None
            }
        };
        entries.insert(
            volume.volume_id.clone(),
            VolumeEntry {
                volume,
                modification,
            },
        );
    }
    for (id, m) in modifications_by_id(ec2, &to_read).await? {
        if let Some(entry) = entries.get_mut(&id) {
            entry.modification = Some(Box::new(m));
        }
    }
    Ok(entries)
}

/// The latest modification of each of `ids` that has one (500 ids per call). A volume
/// deleted since it was listed fails its batch with `InvalidVolume.NotFound` naming it: the
/// batch is sent again without the ids the message names.
async fn modifications_by_id(
    ec2: &dyn Ec2,
    ids: &[String],
) -> Result<HashMap<String, ObservedModification>, AwsError> {
    let mut modifications = HashMap::new();
    for chunk in ids.chunks(MODIFICATION_BATCH) {
        let mut batch = chunk.to_vec();
        for _ in 0..3 {
            if batch.is_empty() {
                break;
            }
            match ec2.describe_volumes_modifications(batch.clone()).await {
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
    Ok(modifications)
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
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::aws::observer::fake::{fake, volume};
    use crate::aws::observer::{FAILED_SWEEP_HOLD, ObserverConfig};
    use crate::plan::observed::ModificationState;

    fn ok<T>(r: Result<T, AwsError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_sweep_reads_1200_volumes_in_three_pages_and_their_modifications_by_id() {
        let fake = Arc::new(fake(1200));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.entries.len(), 1200);
        assert_eq!(fake.pages.load(Ordering::SeqCst), 3);
        assert_eq!(fake.modification_calls.load(Ordering::SeqCst), 3);
        assert_eq!(fake.listed_modification_calls.load(Ordering::SeqCst), 1);
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
        // Past 600 s + 10 %: the reader is answered from the last sweep while the next one
        // runs in the background.
        tokio::time::sleep(Duration::from_millis(1)).await;
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
        assert_eq!(sweep.entries.len(), 10);
        assert_eq!(fake.modification_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_sweep_answers_its_waiters_instead_of_each_taking_another() {
        let f = fake(10);
        f.throttled.store(true, Ordering::SeqCst);
        let fake = Arc::new(f);
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let reads = (0..20).map(|i| {
            let obs = obs.clone();
            async move { obs.get(&volume(i, "prod").volume_id).await }
        });
        for r in futures::future::join_all(reads).await {
            assert!(matches!(r, Err(AwsError::Throttled { .. })), "{r:?}");
        }
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            1,
            "one sweep for 20 readers"
        );

        fake.throttled.store(false, Ordering::SeqCst);
        tokio::time::advance(FAILED_SWEEP_HOLD + Duration::from_millis(1)).await;
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.entries.len(), 10);
        assert_eq!(
            fake.pages.load(Ordering::SeqCst),
            2,
            "retried after the hold"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_resync_costs_its_pages_and_one_listed_modifications_call() {
        let fake = Arc::new(fake(1200));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let calls = || {
            (
                fake.pages.load(Ordering::SeqCst),
                fake.listed_modification_calls.load(Ordering::SeqCst),
                fake.modification_calls.load(Ordering::SeqCst),
            )
        };
        let resync = |obs: Arc<VolumeObserver>| async move {
            tokio::time::advance(Duration::from_secs(700)).await;
            // The stale sweep answers; the next one runs in the background.
            let _ = obs.sweep().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let first = volume(0, "prod").volume_id;
        let state = |obs: &Arc<VolumeObserver>| {
            let obs = obs.clone();
            let id = first.clone();
            async move {
                obs.sweep()
                    .await
                    .ok()
                    .and_then(|s| s.entries.get(&id).cloned())
                    .and_then(|e| e.modification)
                    .map(|m| m.state)
            }
        };

        let _ = obs.sweep().await;
        assert_eq!(
            calls(),
            (3, 1, 3),
            "the first sweep reads every modification once"
        );
        assert_eq!(state(&obs).await, Some(ModificationState::Optimizing));

        resync(obs.clone()).await;
        assert_eq!(
            calls(),
            (6, 2, 3),
            "idle: three pages and one listed call, nothing by id"
        );

        // The listed modification of the first volume completes: it is no longer listed, so
        // it is read by id once, and carried over from then on.
        fake.set_modification(&first, ModificationState::Completed);
        resync(obs.clone()).await;
        assert_eq!(calls(), (9, 3, 4));
        assert_eq!(state(&obs).await, Some(ModificationState::Completed));
        resync(obs.clone()).await;
        assert_eq!(calls(), (12, 4, 4));
        assert_eq!(state(&obs).await, Some(ModificationState::Completed));

        // A modification started outside the controller is listed while in flight.
        fake.set_modification(&first, ModificationState::Modifying);
        resync(obs.clone()).await;
        assert_eq!(calls(), (15, 5, 4));
        assert_eq!(state(&obs).await, Some(ModificationState::Modifying));
    }

    #[tokio::test(start_paused = true)]
    async fn a_modification_made_and_completed_outside_between_two_sweeps_is_read_by_id() {
        let fake = Arc::new(fake(10));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let _ = obs.sweep().await;
        let by_id = || fake.modification_calls.load(Ordering::SeqCst);
        assert_eq!(by_id(), 1);
        let id = volume(5, "prod").volume_id;
        // Never listed in flight: only the new size shows it happened.
        fake.resize(&id, 200);
        fake.set_modification(&id, ModificationState::Completed);
        tokio::time::advance(Duration::from_secs(700)).await;
        let _ = obs.sweep().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(by_id(), 2);
        let entry = ok(obs.get(&id).await);
        assert_eq!(
            entry.and_then(|e| e.modification).map(|m| m.state),
            Some(ModificationState::Completed)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_volume_is_read_without_its_modification_until_one_is_started() {
        let fake = Arc::new(fake(10));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let _ = obs.sweep().await;
        let by_id = || fake.modification_calls.load(Ordering::SeqCst);
        assert_eq!(
            by_id(),
            1,
            "the first sweep: ten volumes never seen, one call"
        );
        // Created since the sweep (the volume of another cluster stands for it).
        let new = volume(10, "other-cluster").volume_id;
        let state = |e: Option<VolumeEntry>| e.and_then(|e| e.modification).map(|m| m.state);
        fake.set_creating(&new, true);

        assert_eq!(state(ok(obs.poll(&new).await)), None);
        fake.set_creating(&new, false);
        assert_eq!(state(ok(obs.poll(&new).await)), None);
        assert_eq!(state(ok(obs.refresh(&new).await)), None);
        assert_eq!(by_id(), 1, "creating, then seen without one: never asked");

        // A ModifyVolume: the read after it asks, and so does every read while in flight.
        fake.set_modification(&new, ModificationState::Modifying);
        assert_eq!(
            state(ok(obs.refresh_in_full(&new).await)),
            Some(ModificationState::Modifying)
        );
        assert_eq!(by_id(), 2);
        fake.set_modification(&new, ModificationState::Completed);
        assert_eq!(
            state(ok(obs.refresh(&new).await)),
            Some(ModificationState::Completed)
        );
        assert_eq!(by_id(), 3);
        assert_eq!(
            state(ok(obs.refresh(&new).await)),
            Some(ModificationState::Completed),
            "a completed one is carried over"
        );
        assert_eq!(by_id(), 3);
        assert_eq!(fake.by_ids.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn volume_ids_are_found_in_error_messages() {
        let ids = volume_ids_in("The volume 'vol-0123abcd' does not exist. (vol-x, vol-)");
        assert_eq!(ids, HashSet::from(["vol-0123abcd".to_owned()]));
    }
}
