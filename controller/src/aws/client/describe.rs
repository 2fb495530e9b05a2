//! What every Describe shares: filters, pages, the API's size limits, and the two loops
//! (over pages, and over chunks of ids) that every paginated read is made of.

use std::future::Future;

use aws_sdk_ec2::types as ec2t;

use crate::aws::errors::AwsError;

/// Most values AWS accepts in one filter.
pub const MAX_FILTER_VALUES: usize = 200;
/// Largest DescribeVolumes / DescribeVolumesModifications page.
pub const MAX_VOLUME_PAGE: i32 = 500;
/// Largest DescribeSnapshots page.
pub const MAX_SNAPSHOT_PAGE: i32 = 1000;
/// Largest DescribeImages page.
pub const MAX_IMAGE_PAGE: i32 = 1000;
/// Largest DescribeInstances page.
pub const MAX_INSTANCE_PAGE: i32 = 1000;

/// A Describe filter (`tag:ec2.reconciler.dev/cluster` = [`prod`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `tag:<key>` = `value`.
    pub fn tag(key: &str, value: impl Into<String>) -> Self {
        Self::new(format!("tag:{key}"), [value.into()])
    }

    fn to_sdk(&self) -> ec2t::Filter {
        ec2t::Filter::builder()
            .name(&self.name)
            .set_values(Some(self.values.clone()))
            .build()
    }
}

pub(super) fn sdk_filters(filters: &[Filter]) -> Option<Vec<ec2t::Filter>> {
    if filters.is_empty() {
        None
    } else {
        Some(filters.iter().map(Filter::to_sdk).collect())
    }
}

/// One page of a paginated Describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

impl<T> Page<T> {
    /// A page from an SDK answer. AWS ends a listing with no token, but some endpoints send
    /// an empty one instead; both mean "last page", or the loop would ask again forever.
    pub(super) fn new(items: Vec<T>, next_token: Option<&str>) -> Self {
        Self {
            items,
            next_token: next_token.filter(|t| !t.is_empty()).map(str::to_owned),
        }
    }
}

/// Every item of a paginated read: `page(token)` is called with `None`, then with each
/// page's `next_token` until a page has none.
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, AwsError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let p = page(token).await?;
        items.extend(p.items);
        match p.next_token {
            Some(t) => token = Some(t),
            None => return Ok(items),
        }
    }
}

/// Every item among `ids` that exists, read with a `filter_name` filter of at most
/// [`MAX_FILTER_VALUES`] ids per call. A filter (rather than the ids parameter) makes a
/// missing id simply absent instead of failing the whole batch with `*.NotFound`.
pub async fn all_pages_by_ids<T, F, Fut>(
    ids: &[String],
    filter_name: &str,
    mut page: F,
) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Vec<Filter>, Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, AwsError>>,
{
    let mut found = Vec::new();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        let filters = vec![Filter::new(filter_name, chunk.iter().cloned())];
        found.extend(all_pages(|token| page(filters.clone(), token)).await?);
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn all_pages_follows_tokens_until_the_last_page() {
        let seen = Mutex::new(Vec::new());
        let items = all_pages(|token: Option<String>| {
            seen.lock()
                .unwrap_or_else(|e| panic!("{e}"))
                .push(token.clone());
            async move {
                let n: usize = token.map_or(0, |t| t.parse().unwrap_or(0));
                Ok(Page::new(
                    vec![n],
                    (n < 2).then(|| (n + 1).to_string()).as_deref(),
                ))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(items, vec![0, 1, 2]);
        assert_eq!(
            *seen.lock().unwrap_or_else(|e| panic!("{e}")),
            vec![None, Some("1".to_owned()), Some("2".to_owned())]
        );
    }

    #[tokio::test]
    async fn an_empty_token_ends_the_listing() {
        let items = all_pages(|_| async { Ok(Page::new(vec![1], Some(""))) })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(items, vec![1]);
    }

    #[tokio::test]
    async fn ids_are_read_200_per_filter_and_none_means_no_call() {
        let ids: Vec<String> = (0..450).map(|i| format!("snap-{i}")).collect();
        let sizes = Mutex::new(Vec::new());
        let found = all_pages_by_ids(&ids, "snapshot-id", |filters: Vec<Filter>, _| {
            assert_eq!(filters[0].name, "snapshot-id");
            sizes
                .lock()
                .unwrap_or_else(|e| panic!("{e}"))
                .push(filters[0].values.len());
            let values = filters[0].values.clone();
            async move { Ok(Page::new(values, None)) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found, ids);
        assert_eq!(
            *sizes.lock().unwrap_or_else(|e| panic!("{e}")),
            vec![200, 200, 50]
        );

        let none: Vec<String> = all_pages_by_ids(&[], "snapshot-id", |_, _| async {
            Err(AwsError::Transport {
                message: "no ids, no call".to_owned(),
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_empty());
    }
}
