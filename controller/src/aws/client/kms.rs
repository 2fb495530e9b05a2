//! Key calls: KMS DescribeKey (to compare keys by ARN, whatever name the spec uses) and EC2's
//! GetEbsDefaultKmsKeyId (the key an encrypted volume gets when the spec names none).

use super::conversions::key_from_sdk;
use super::sdk::Ec2Client;
use crate::aws::actions::AwsAction;
use crate::aws::errors::AwsError;
use crate::aws::rate::Idempotency;

/// A KMS key, resolved from an id, ARN, alias name or alias ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// The key ARN: compare specs with observed volumes by this.
    pub arn: String,
    pub key_id: String,
    pub enabled: bool,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: Option<String>,
    /// An AWS managed key (`aws/ebs`): it cannot be shared, so neither can what it encrypts.
    pub aws_managed: bool,
}

pub(super) async fn describe_key(client: &Ec2Client, key: String) -> Result<KmsKey, AwsError> {
    let out = client
        .call(AwsAction::KmsDescribeKey, Idempotency::Safe, || {
            client.kms.describe_key().key_id(&key).send()
        })
        .await?;
    out.key_metadata()
        .map(key_from_sdk)
        .ok_or_else(|| AwsError::Client {
            code: "EmptyResponse".to_owned(),
            message: "DescribeKey returned no key metadata".to_owned(),
        })
}

pub(super) async fn ebs_default_key_id(client: &Ec2Client) -> Result<Option<String>, AwsError> {
    let out = client
        .call(AwsAction::GetEbsDefaultKmsKeyId, Idempotency::Safe, || {
            client.ec2.get_ebs_default_kms_key_id().send()
        })
        .await?;
    Ok(out.kms_key_id().map(str::to_owned))
}
