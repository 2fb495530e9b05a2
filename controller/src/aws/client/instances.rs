//! Instance calls: DescribeInstances by id, for attachment checks.

use super::conversions::instances_from_sdk;
use super::describe::{MAX_FILTER_VALUES, MAX_INSTANCE_PAGE, sdk_filters};
use super::sdk::Ec2Client;
use super::{Filter, Page};
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;

/// What attachment checks need to know about an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInstance {
    pub instance_id: String,
    pub availability_zone: Option<String>,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: Option<String>,
}

async fn describe_page(
    client: &Ec2Client,
    filters: Vec<Filter>,
    next_token: Option<String>,
) -> Result<Page<ObservedInstance>, AwsError> {
    let out = client
        .call(AwsAction::DescribeInstances, Idempotency::Safe, || {
            client
                .ec2
                .describe_instances()
                .set_filters(sdk_filters(&filters))
                .max_results(MAX_INSTANCE_PAGE)
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
    Ok(Page::new(
        instances_from_sdk(out.reservations()),
        out.next_token(),
    ))
}

pub(super) async fn describe_by_ids(
    client: &Ec2Client,
    ids: Vec<String>,
) -> Result<Vec<ObservedInstance>, AwsError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        let filters = vec![Filter::new("instance-id", chunk.iter().cloned())];
        let mut token = None;
        loop {
            let page = describe_page(client, filters.clone(), token).await?;
            found.extend(page.items);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(found)
}
