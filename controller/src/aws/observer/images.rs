//! The image observer: AMIs this account owns that carry our cluster tag.
//!
//! - Sweep: DescribeImages (owner `self`) filtered on the cluster tag, 1,000 per page.
//! - On demand: [`Ec2::describe_images_by_ids`] (DescribeImages filtered on `image-id`, 200
//!   values per filter, no owner), which answers a missing image by its absence instead of
//!   failing the batch with `InvalidAMIID.NotFound`, and also finds images other accounts
//!   share with this one or make public (a copy's source, say).

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{Observer, Source};
use crate::aws::client::{Ec2, Filter, MAX_IMAGE_PAGE, all_pages};
use crate::aws::errors::AwsError;
use crate::aws::tags::CLUSTER_TAG;
use crate::plan::observed::ObservedImage;
use crate::plan::observed_tags::Tags;

/// The cached view of one Region's images.
pub type ImageObserver = Observer<ImageSource>;

/// Reads images.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageSource;

impl Source for ImageSource {
    type Entry = ObservedImage;
    const NOUN: &'static str = "image";

    fn sweep<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        cluster: &'a str,
        page_size: Option<i32>,
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedImage>, AwsError>> {
        Box::pin(async move {
            let owners = vec!["self".to_owned()];
            let filters = vec![Filter::tag(CLUSTER_TAG, cluster)];
            let page_size = page_size.unwrap_or(MAX_IMAGE_PAGE);
            let images = all_pages(|token| {
                ec2.describe_images_page(owners.clone(), filters.clone(), page_size, token)
            })
            .await?;
            Ok(by_id(images))
        })
    }

    fn read_ids<'a>(
        &'a self,
        ec2: &'a dyn Ec2,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, ObservedImage>, AwsError>> {
        Box::pin(async move { Ok(by_id(ec2.describe_images_by_ids(ids.to_vec()).await?)) })
    }

    fn tags(entry: &ObservedImage) -> &Tags {
        &entry.tags
    }
}

fn by_id(images: Vec<ObservedImage>) -> HashMap<String, ObservedImage> {
    images
        .into_iter()
        .map(|i| (i.image_id.clone(), i))
        .collect()
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::observer::ObserverConfig;
    use crate::aws::observer::fake::{Fake, image};
    use crate::plan::observed::ImageState;

    /// `n` images of cluster `prod`, one of another cluster, and a public image of another
    /// account (visible, but never ours).
    fn fake_with_images(n: usize) -> Arc<Fake> {
        let mut images: Vec<_> = (0..n).map(|i| image(i, "prod")).collect();
        images.push(image(n, "other-cluster"));
        let mut public = image(n + 1, "prod");
        public.owner_id = "137112412989".to_owned();
        public.public = true;
        images.push(public);
        Arc::new(Fake {
            images,
            ..Fake::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn one_sweep_reads_2500_own_images_in_three_pages_and_skips_the_others() {
        let fake = fake_with_images(2500);
        let obs = ImageObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let sweep = obs.sweep().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.entries.len(), 2500);
        assert!(
            !sweep.entries.contains_key(&image(2501, "prod").image_id),
            "another account's image is not ours, whatever its tags"
        );
        assert_eq!(fake.image_calls.load(Ordering::SeqCst), 3);
        let found = obs
            .get(&image(7, "prod").image_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.and_then(|i| i.state), Some(ImageState::Available));
        assert_eq!(
            fake.image_calls.load(Ordering::SeqCst),
            3,
            "a read within the resync interval reuses the sweep"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_within_the_window_are_read_200_ids_per_call_and_find_public_images() {
        let fake = fake_with_images(450);
        let obs = ImageObserver::new(fake.clone(), "prod", ObserverConfig::default());
        let mut ids: Vec<String> = (0..448).map(|i| image(i, "prod").image_id).collect();
        ids.push(image(451, "prod").image_id); // the other account's public image
        ids.push("ami-0000000000000dead".to_owned());
        let reads = ids.iter().map(|id| {
            let obs = obs.clone();
            async move { obs.refresh(id).await }
        });
        let results = futures::future::join_all(reads).await;
        assert_eq!(
            fake.image_calls.load(Ordering::SeqCst),
            3,
            "450 ids: three filters of at most 200 values"
        );
        for r in &results[..449] {
            assert!(matches!(r, Ok(Some(_))), "{r:?}");
        }
        assert!(
            matches!(&results[448], Ok(Some(i)) if i.public),
            "by id, a public image of another account is found"
        );
        assert!(matches!(results[449], Ok(None)), "a missing image is None");
    }

    #[tokio::test(start_paused = true)]
    async fn owned_by_finds_the_images_tagged_with_the_owner_uid() {
        let mut f = Fake::default();
        let mut mine = image(1, "prod");
        mine.tags.insert(crate::aws::tags::UID_TAG, "uid-1");
        f.images = vec![mine.clone(), image(2, "prod")];
        let obs = ImageObserver::new(Arc::new(f), "prod", ObserverConfig::default());
        let owned = obs
            .owned_by("uid-1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(owned, vec![mine]);
    }
}
