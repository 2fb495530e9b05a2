//! The instance reader: instances that EbsVolumes want attached, read by id in batches.
//!
//! Instances are not ours and carry no cluster tag, so there is nothing to sweep: the sweep is
//! empty and costs no call, and every read goes through [`Observer::refresh`], which merges
//! the reads of every object within the window into one DescribeInstances filtered on
//! `instance-id` (a missing instance is absent, not an error for the batch).

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{NO_TAGS, Observer, Source, nothing_to_sweep};
use crate::aws::client::{Ec2, ObservedInstance};
use crate::aws::errors::AwsError;
use crate::plan::observed_tags::Tags;

/// The batched view of one Region's instances.
pub type InstanceObserver = Observer<InstanceSource>;

/// Reads instances by id.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceSource;

impl Source for InstanceSource {
    type Entry = ObservedInstance;
    const NOUN: &'static str = "instance";

    fn sweep<'a>(
        &'a self,
        _: &'a dyn Ec2,
        _: &'a str,
        _: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedInstance>, AwsError>> {
        nothing_to_sweep()
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedInstance>, AwsError>> {
        Box::pin(async move {
            let found = ec2.describe_instances_by_ids(ids.to_vec()).await?;
            Ok(found
                .into_iter()
                .map(|i| (i.instance_id.clone(), i))
                .collect())
        })
    }

    fn tags(_: &ObservedInstance) -> &Tags {
        &NO_TAGS
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::observer::ObserverConfig;
    use crate::aws::observer::fake::{Fake, instance};

    #[tokio::test(start_paused = true)]
    async fn thirty_objects_reading_instances_in_one_window_make_one_call() {
        let fake = Arc::new(Fake {
            instances: (0..30).map(instance).collect(),
            ..Fake::default()
        });
        let obs = InstanceObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let mut ids: Vec<String> = (0..30).map(|i| instance(i).instance_id).collect();
        ids.push("i-0000000000000dead".to_owned());
        let reads = ids.iter().map(|id| {
            let obs = obs.clone();
            async move { obs.refresh(id).await }
        });
        let results = futures::future::join_all(reads).await;
        assert_eq!(fake.instance_calls.load(Ordering::SeqCst), 1);
        for r in &results[..30] {
            assert!(matches!(r, Ok(Some(_))), "{r:?}");
        }
        assert!(
            matches!(results[30], Ok(None)),
            "a missing instance is None"
        );
        assert_eq!(
            fake.pages.load(Ordering::SeqCst) + fake.snapshot_calls.load(Ordering::SeqCst),
            0,
            "instances are never swept"
        );
    }
}
