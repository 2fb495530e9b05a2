//! Instance calls: DescribeInstances by id, for attachment checks.

use super::conversions::instances_from_sdk;
use super::describe::{MAX_INSTANCE_PAGE, all_pages_by_ids, sdk_filters};
use super::sdk::Ec2Client;
use super::{Filter, Page};
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;

pub use crate::plan::observed::ObservedInstance;

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
    all_pages_by_ids(&ids, "instance-id", |filters, token| {
        describe_page(client, filters, token)
    })
    .await
}
