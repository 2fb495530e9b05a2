//! What every Describe shares: filters, pages and the API's size limits.

use aws_sdk_ec2::types as ec2t;

/// Most values AWS accepts in one filter.
pub const MAX_FILTER_VALUES: usize = 200;
/// Largest DescribeVolumes / DescribeVolumesModifications page.
pub const MAX_VOLUME_PAGE: i32 = 500;
/// Largest DescribeSnapshots page.
pub const MAX_SNAPSHOT_PAGE: i32 = 1000;
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
