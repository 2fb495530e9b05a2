//! CreateTags and DeleteTags, shared by every resource kind. Tags on new resources go with
//! the create call (TagSpecifications); these repair and release ownership afterwards.

use std::collections::BTreeMap;

use aws_sdk_ec2::types as ec2t;

use super::sdk::Ec2Client;
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;
use crate::aws::tags::to_sdk_tags;

pub(super) async fn create_tags(
    client: &Ec2Client,
    resource_ids: Vec<String>,
    tags: BTreeMap<String, String>,
) -> Result<(), AwsError> {
    // AWS rejects an empty list (MissingParameter); nothing to do is not an error.
    if resource_ids.is_empty() || tags.is_empty() {
        return Ok(());
    }
    let sdk_tags = to_sdk_tags(&tags);
    client
        .call(AwsAction::CreateTags, Idempotency::Safe, || {
            client
                .ec2
                .create_tags()
                .set_resources(Some(resource_ids.clone()))
                .set_tags(Some(sdk_tags.clone()))
                .send()
        })
        .await
        .map(drop)
}

pub(super) async fn delete_tags(
    client: &Ec2Client,
    resource_ids: Vec<String>,
    keys: Vec<String>,
) -> Result<(), AwsError> {
    // An empty tag list would delete every tag of the resources, ours included.
    if resource_ids.is_empty() || keys.is_empty() {
        return Ok(());
    }
    // A tag without a value deletes the key whatever its value.
    let sdk_tags: Vec<ec2t::Tag> = keys
        .iter()
        .map(|k| ec2t::Tag::builder().key(k).build())
        .collect();
    client
        .call(AwsAction::DeleteTags, Idempotency::Safe, || {
            client
                .ec2
                .delete_tags()
                .set_resources(Some(resource_ids.clone()))
                .set_tags(Some(sdk_tags.clone()))
                .send()
        })
        .await
        .map(drop)
}
