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

/// What a migration needs to know of an instance type: whether it has instance store
/// volumes (their data is lost when an instance stops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceTypeStorage {
    pub instance_type: String,
    /// Total instance store size in GB; 0 for a type without instance store.
    pub instance_store_gb: i64,
}

pub(super) async fn describe_types(
    client: &Ec2Client,
    types: Vec<String>,
) -> Result<Vec<InstanceTypeStorage>, AwsError> {
    let out = client
        .call(AwsAction::DescribeInstanceTypes, Idempotency::Safe, || {
            client
                .ec2
                .describe_instance_types()
                .set_instance_types(Some(
                    types
                        .iter()
                        .map(|t| aws_sdk_ec2::types::InstanceType::from(t.as_str()))
                        .collect(),
                ))
                .send()
        })
        .await?;
    Ok(out
        .instance_types()
        .iter()
        .filter_map(|t| {
            Some(InstanceTypeStorage {
                instance_type: t.instance_type()?.as_str().to_owned(),
                instance_store_gb: if t.instance_storage_supported().unwrap_or(false) {
                    t.instance_storage_info()
                        .and_then(|i| i.total_size_in_gb())
                        .unwrap_or(1)
                } else {
                    0
                },
            })
        })
        .collect())
}

/// StopInstances of one instance: stopping a stopping or stopped one changes nothing.
pub(super) async fn stop(client: &Ec2Client, instance_id: String) -> Result<(), AwsError> {
    client
        .call(AwsAction::StopInstances, Idempotency::Safe, || {
            client
                .ec2
                .stop_instances()
                .instance_ids(&instance_id)
                .send()
        })
        .await?;
    Ok(())
}

/// StartInstances of one instance: starting a pending or running one changes nothing.
pub(super) async fn start(client: &Ec2Client, instance_id: String) -> Result<(), AwsError> {
    client
        .call(AwsAction::StartInstances, Idempotency::Safe, || {
            client
                .ec2
                .start_instances()
                .instance_ids(&instance_id)
                .send()
        })
        .await?;
    Ok(())
}

/// ModifyInstanceAttribute: the DeleteOnTermination of the volume at `device`.
pub(super) async fn set_delete_on_termination(
    client: &Ec2Client,
    instance_id: String,
    device: String,
    delete_on_termination: bool,
) -> Result<(), AwsError> {
    let mapping = aws_sdk_ec2::types::InstanceBlockDeviceMappingSpecification::builder()
        .device_name(&device)
        .ebs(
            aws_sdk_ec2::types::EbsInstanceBlockDeviceSpecification::builder()
                .delete_on_termination(delete_on_termination)
                .build(),
        )
        .build();
    client
        .call(
            AwsAction::ModifyInstanceAttribute,
            Idempotency::Safe,
            || {
                client
                    .ec2
                    .modify_instance_attribute()
                    .instance_id(&instance_id)
                    .block_device_mappings(mapping.clone())
                    .send()
            },
        )
        .await?;
    Ok(())
}
