//! The instance type reader: whether a type has instance store volumes, for the migration's
//! guard against stopping an instance whose instance store data a stop would destroy.
//!
//! Types are AWS's, never tagged: nothing is swept. Reads go through [`Observer::get_recent`]
//! so every migration in the Region asking within one merge window shares one
//! DescribeInstanceTypes, and a type is read again at most once per resync.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{NO_TAGS, Observer, Source, nothing_to_sweep};
use crate::aws::client::{Ec2, InstanceTypeStorage};
use crate::aws::errors::AwsError;
use crate::plan::observed_tags::Tags;

/// The batched view of one Region's instance types.
pub type InstanceTypeObserver = Observer<InstanceTypeSource>;

/// Reads instance types by name.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceTypeSource;

impl Source for InstanceTypeSource {
    type Entry = InstanceTypeStorage;
    const NOUN: &'static str = "instance type";

    fn sweep<'a>(
        &'a self,
        _: &'a dyn Ec2,
        _: &'a str,
        _: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, InstanceTypeStorage>, AwsError>> {
        nothing_to_sweep()
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, InstanceTypeStorage>, AwsError>> {
        Box::pin(async move {
            let found = ec2.describe_instance_types(ids.to_vec()).await?;
            Ok(found
                .into_iter()
                .map(|t| (t.instance_type.clone(), t))
                .collect())
        })
    }

    fn tags(_: &InstanceTypeStorage) -> &Tags {
        &NO_TAGS
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::aws::observer::ObserverConfig;
    use crate::aws::observer::fake::Fake;

    #[tokio::test(start_paused = true)]
    async fn migrations_asking_for_types_together_share_one_call_and_reuse_it() {
        let fake = Arc::new(Fake {
            instance_types: vec![
                InstanceTypeStorage {
                    instance_type: "m5d.large".to_owned(),
                    instance_store_gb: 75,
                },
                InstanceTypeStorage {
                    instance_type: "t3.micro".to_owned(),
                    instance_store_gb: 0,
                },
            ],
            ..Fake::default()
        });
        let obs = InstanceTypeObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let hour = Duration::from_secs(3600);
        let (a, b) = tokio::join!(
            obs.get_recent("m5d.large", hour),
            obs.get_recent("t3.micro", hour)
        );
        assert_eq!(fake.instance_type_calls.load(Ordering::SeqCst), 1);
        assert_eq!(a.ok().flatten().map(|t| t.instance_store_gb), Some(75));
        assert_eq!(b.ok().flatten().map(|t| t.instance_store_gb), Some(0));
        let again = obs.get_recent("m5d.large", hour).await;
        assert!(matches!(again, Ok(Some(_))), "{again:?}");
        assert_eq!(
            fake.instance_type_calls.load(Ordering::SeqCst),
            1,
            "a type read recently is not read again"
        );
    }
}
