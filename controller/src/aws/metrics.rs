//! The AWS call counter's labels: bounded (action names and outcome classes only).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// The API action (`DescribeVolumes`, `kms:DescribeKey`).
    pub action: &'static str,
    /// `success`, `throttled`, `client_error`, `server_error` or `transport_error`.
    pub outcome: &'static str,
}

/// `aws_calls{action, outcome}`: one increment per request sent (each retry counts).
pub type AwsCallCounter = Family<AwsCallLabels, Counter>;
