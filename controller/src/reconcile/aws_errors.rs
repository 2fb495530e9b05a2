//! How an AWS error becomes a reconcile error: passing trouble is retried, a rejection of
//! what the spec asks for is terminal until the spec changes.

use std::time::Duration;

use super::error::Error;
use crate::aws::errors::AwsError;

/// Condition reasons for AWS rejections. A `Synced=False` with one of these reasons, for
/// the current generation, means the same call would be rejected again: it is not retried.
pub const REJECTION_REASONS: &[&str] = &[
    "InvalidParameter",
    "AvailabilityZoneNotFound",
    "SnapshotNotFound",
    "InstanceNotFound",
    "KmsKeyNotFound",
    "KmsKeyDisabled",
    "VolumeInUse",
    "AttachmentPointInUse",
    "ZoneMismatch",
    "AwsRejected",
];

fn rejection_reason(code: &str) -> &'static str {
    match code {
        "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "InvalidParameter"
        | "MissingParameter" => "InvalidParameter",
        "InvalidZone.NotFound" | "InvalidAvailabilityZone" => "AvailabilityZoneNotFound",
        "InvalidSnapshot.NotFound" => "SnapshotNotFound",
        "InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed" => "InstanceNotFound",
        "NotFoundException" | "InvalidKMSKey.Id" | "KMSKeyNotAccessibleFault" => "KmsKeyNotFound",
        "DisabledException" | "KMSKeyDisabled" => "KmsKeyDisabled",
        "VolumeInUse" => "VolumeInUse",
        "InvalidVolume.ZoneMismatch" => "ZoneMismatch",
        _ => "AwsRejected",
    }
}

/// Classifies an error from `action` (an AWS action name, for the message).
pub fn from_aws(action: &str, error: AwsError) -> Error {
    let message = format!("{action}: {error}");
    match &error {
        AwsError::Throttled { .. } => Error::Retryable {
            reason: "AwsThrottled",
            message,
        },
        AwsError::ServerError { .. } | AwsError::Transport { .. } => Error::Retryable {
            reason: "AwsUnavailable",
            message,
        },
        AwsError::Client {
            code,
            message: text,
        } if code == "InvalidParameterValue" && text.contains("already in use") => {
            Error::Terminal {
                reason: "AttachmentPointInUse",
                message,
            }
        }
        // AWS is still busy with an earlier change: wait, it is not the spec's fault.
        AwsError::Client { code, .. }
            if matches!(
                code.as_str(),
                "IncorrectModificationState" | "IncorrectState" | "VolumeModificationRateExceeded"
            ) =>
        {
            Error::Waiting {
                reason: "AwsBusy",
                message,
                retry_after: Duration::from_secs(30),
            }
        }
        AwsError::NotFound { code, .. } | AwsError::Client { code, .. } => Error::Terminal {
            reason: rejection_reason(code),
            message,
        },
        AwsError::IdempotentParameterMismatch { .. } => Error::Retryable {
            reason: "ClientTokenReused",
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retried_and_a_validation_error_is_terminal() {
        let throttled = from_aws(
            "CreateVolume",
            AwsError::Throttled {
                code: "RequestLimitExceeded".into(),
            },
        );
        assert_eq!(throttled.category(), "retryable");
        let invalid = from_aws(
            "CreateVolume",
            AwsError::Client {
                code: "InvalidZone.NotFound".into(),
                message: "no such zone".into(),
            },
        );
        assert_eq!(invalid.category(), "terminal");
        assert_eq!(invalid.reason(), "AvailabilityZoneNotFound");
        assert!(REJECTION_REASONS.contains(&invalid.reason()));
    }

    #[test]
    fn a_device_in_use_is_terminal_and_a_busy_volume_waits() {
        let in_use = from_aws(
            "AttachVolume",
            AwsError::Client {
                code: "InvalidParameterValue".into(),
                message: "Attachment point /dev/sdf is already in use".into(),
            },
        );
        assert_eq!(in_use.reason(), "AttachmentPointInUse");
        let busy = from_aws(
            "ModifyVolume",
            AwsError::Client {
                code: "IncorrectModificationState".into(),
                message: "busy".into(),
            },
        );
        assert!(!busy.is_failure());
    }
}
