//! The snapshot observer: snapshots this account owns that carry our cluster tag.
//!
//! - Sweep: DescribeSnapshots (owner `self`) filtered on the cluster tag, 1,000 per page.
//! - On demand: [`Ec2::describe_snapshots_by_ids`] (DescribeSnapshots filtered on
//!   `snapshot-id`, 200 values per filter), which answers a missing snapshot by its absence
//!   instead of failing the batch with `InvalidSnapshot.NotFound`.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{Observer, Source};
use crate::aws::client::{Ec2, Filter, MAX_SNAPSHOT_PAGE, all_pages};
use crate::aws::errors::AwsError;
use crate::aws::tags::CLUSTER_TAG;
use crate::plan::observed::ObservedSnapshot;
use crate::plan::observed_tags::Tags;

/// The cached view of one Region's snapshots.
pub type SnapshotObserver = Observer<SnapshotSource>;

/// Reads snapshots.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotSource;

impl Source for SnapshotSource {
    type Entry = ObservedSnapshot;
    const NOUN: &'static str = "snapshot";

    fn sweep<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedSnapshot>, AwsError>> {
        Box::pin(async move {
            let filters = vec![Filter::tag(CLUSTER_TAG, cluster)];
            let page_size = page_size.unwrap_or(MAX_SNAPSHOT_PAGE);
            let snapshots =
                all_pages(|token| ec2.describe_snapshots_page(filters.clone(), page_size, token))
                    .await?;
            Ok(by_id(snapshots))
        })
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedSnapshot>, AwsError>> {
        Box::pin(async move { Ok(by_id(ec2.describe_snapshots_by_ids(ids.to_vec()).await?)) })
    }

    fn tags(entry: &ObservedSnapshot) -> &Tags {
        &entry.tags
    }
}

fn by_id(snapshots: Vec<ObservedSnapshot>) -> HashMap<String, ObservedSnapshot> {
    snapshots
        .into_iter()
        .map(|s| (s.snapshot_id.clone(), s))
        .collect()
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::observer::ObserverConfig;
    use crate::aws::observer::fake::{Fake, snapshot};

    fn fake_with_snapshots(n: usize) -> Arc<Fake> {
        let mut snapshots: Vec<_> = (0..n).map(|i| snapshot(i, "prod")).collect();
        snapshots.push(snapshot(n, "other-cluster"));
        Arc::new(Fake {
            snapshots,
            ..Fake::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn one_sweep_reads_2500_snapshots_in_three_pages_and_skips_other_clusters() {
        let fake = fake_with_snapshots(2500);
        let obs = SnapshotObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.entries.len(), 2500);
        assert_eq!(fake.snapshot_calls.load(Ordering::SeqCst), 3);
        let found = obs
            .get(&snapshot(7, "prod").snapshot_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.map(|s| s.state), Some("completed".to_owned()));
        assert_eq!(
            fake.snapshot_calls.load(Ordering::SeqCst),
            3,
            "a read within the resync interval reuses the sweep"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_within_the_window_are_read_200_ids_per_call() {
        let fake = fake_with_snapshots(450);
        let obs = SnapshotObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let mut ids: Vec<String> = (0..449).map(|i| snapshot(i, "prod").snapshot_id).collect();
        ids.push("snap-0000000000000dead".to_owned());
        let reads = ids.iter().map(|id| {
            let obs = obs.clone();
            async move { obs.refresh(id).await }
        });
        let results = futures::future::join_all(reads).await;
        assert_eq!(
            fake.snapshot_calls.load(Ordering::SeqCst),
            3,
            "450 ids: three filters of at most 200 values"
        );
        for r in &results[..449] {
            assert!(matches!(r, Ok(Some(_))), "{r:?}");
        }
        assert!(
            matches!(results[449], Ok(None)),
            "a missing snapshot is None"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn owned_by_finds_the_snapshots_tagged_with_the_owner_uid() {
        let mut f = Fake::default();
        let mut mine = snapshot(1, "prod");
        mine.tags.insert(crate::aws::tags::UID_TAG, "uid-1");
        f.snapshots = vec![mine.clone(), snapshot(2, "prod")];
        let obs = SnapshotObserver::new(Arc::new(f), "prod", ObserverConfig::default());
        let owned = obs
            .owned_by("uid-1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(owned, vec![mine]);
    }
}
