//! The volume observer: volumes carrying our cluster tag, each with its latest modification.
//!
//! - Sweep: DescribeVolumes filtered on the cluster tag (500 per page), then
//!   DescribeVolumesModifications for those ids (500 per call).
//! - On demand: DescribeVolumes filtered on `volume-id` (200 values per filter, so one call per
//!   200 ids), which answers a missing volume by its absence instead of failing the batch with
//!   `InvalidVolume.NotFound`.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::future::BoxFuture;

use super::{Observer, Source};
use crate::aws::client::{Ec2, Filter, MAX_VOLUME_PAGE, all_pages};
use crate::aws::errors::AwsError;
use crate::aws::tags::CLUSTER_TAG;
use crate::plan::observed::{ObservedModification, ObservedVolume};

/// Most volume ids in one DescribeVolumesModifications call.
pub const MODIFICATION_BATCH: usize = 500;

/// The cached view of one Region's volumes.
pub type VolumeObserver = Observer<VolumeSource>;

/// A volume and its latest modification, if it ever had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeEntry {
    pub volume: ObservedVolume,
    pub modification: Option<ObservedModification>,
}

/// Reads volumes and their modifications.
#[derive(Clone, Copy, Debug, Default)]
pub struct VolumeSource;

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
            let filters = vec![Filter::tag(CLUSTER_TAG, cluster)];
            let page_size = page_size.unwrap_or(MAX_VOLUME_PAGE);
            let volumes =
                all_pages(|token| ec2.describe_volumes_page(filters.clone(), page_size, token))
                    .await?;
            with_modifications(ec2, volumes).await
        })
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, VolumeEntry>, AwsError>> {
        Box::pin(async move {
            let volumes = ec2.describe_volumes_by_ids(ids.to_vec()).await?;
            with_modifications(ec2, volumes).await
        })
    }

    fn tags(entry: &VolumeEntry) -> &BTreeMap<String, String> {
        &entry.volume.tags
    }
}

/// Adds each volume's latest modification (500 ids per call). A volume deleted since it was
/// listed fails its batch with `InvalidVolume.NotFound` naming it: the batch is sent again
/// without the ids the message names.
async fn with_modifications(
    ec2: &dyn Ec2,
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

    #[tokio::test(start_paused = true)]
    async fn one_sweep_reads_1200_volumes_in_three_pages_and_three_modification_calls() {
        let fake = Arc::new(fake(1200));
        let obs = VolumeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.entries.len(), 1200);
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

    #[test]
    fn volume_ids_are_found_in_error_messages() {
        let ids = volume_ids_in("The volume 'vol-0123abcd' does not exist. (vol-x, vol-)");
        assert_eq!(ids, HashSet::from(["vol-0123abcd".to_owned()]));
    }
}
