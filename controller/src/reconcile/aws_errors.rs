//! How an AWS error becomes a reconcile error: passing trouble is retried, a rejection of
//! what the spec asks for is terminal until the spec changes.

use std::time::Duration;

use super::error::Error;
use crate::aws::errors::AwsError;

/// AWS error codes and the condition reason each rejection gets. A `Synced=False` with one
/// of these reasons, for the current generation, means the same call would be rejected
/// again: it is re-checked at the next resync, not retried in a loop. This is the one list.
const REJECTIONS: &[(&[&str], &str)] = &[
    (
        &[
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "InvalidParameter",
            "MissingParameter",
        ],
        "InvalidParameter",
    ),
    (
        &["InvalidZone.NotFound", "InvalidAvailabilityZone"],
        "AvailabilityZoneNotFound",
    ),
    (&["InvalidSnapshot.NotFound"], SNAPSHOT_NOT_FOUND),
    (
        &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"],
        INSTANCE_NOT_FOUND,
    ),
    (
        &[
            "NotFoundException",
            "InvalidKMSKey.Id",
            "KMSKeyNotAccessibleFault",
        ],
        "KmsKeyNotFound",
    ),
    (&["DisabledException", "KMSKeyDisabled"], "KmsKeyDisabled"),
    (&["VolumeInUse"], "VolumeInUse"),
    (&["InvalidVolume.ZoneMismatch"], "ZoneMismatch"),
    (
        &[
            "UnauthorizedOperation",
            "AccessDenied",
            "AccessDeniedException",
        ],
        ACCESS_DENIED,
    ),
];

/// The snapshot a request names does not exist (yet).
pub const SNAPSHOT_NOT_FOUND: &str = "SnapshotNotFound";
/// The instance a request names does not exist (yet).
pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
/// The reason of a call IAM refused; its message names the action to grant.
pub const ACCESS_DENIED: &str = "AccessDenied";
/// The device name is taken on the instance: the spec must name another.
const ATTACHMENT_POINT_IN_USE: &str = "AttachmentPointInUse";
/// Any other 4xx.
const AWS_REJECTED: &str = "AwsRejected";

fn rejection_reason(code: &str) -> &'static str {
    REJECTIONS
        .iter()
        .find(|(codes, _)| codes.contains(&code))
        .map_or(AWS_REJECTED, |(_, reason)| reason)
}

/// Whether a `Synced` reason says AWS rejected the request (as opposed to a passing
/// failure, or a problem the planner found before any call).
pub fn is_rejection(reason: &str) -> bool {
    reason == AWS_REJECTED
        || reason == ATTACHMENT_POINT_IN_USE
        || REJECTIONS.iter().any(|(_, r)| *r == reason)
}

/// The IAM action behind an API action name (`CreateVolume` -> `ec2:CreateVolume`).
fn iam_action(action: &str) -> String {
    if action.contains(':') {
        action.to_owned()
    } else {
        format!("ec2:{action}")
    }
}

/// Classifies an error from `action` (an AWS action name, for the message).
pub fn from_aws(action: &str, error: AwsError) -> Error {
    let message = format!("{action}: {error}");
    match &error {
        // Our own pacing, not a failure: the pass ends and the object comes back when the
        // token reserved for it is due.
        AwsError::Deferred { wait } => Error::Waiting {
            reason: "AwsRateLimitQueued",
            message,
            retry_after: *wait,
        },
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
                reason: ATTACHMENT_POINT_IN_USE,
                message,
            }
        }
        AwsError::Client { code, .. } if rejection_reason(code) == ACCESS_DENIED => {
            Error::Terminal {
                reason: ACCESS_DENIED,
                message: format!(
                    "{action}: AWS denied {} to the controller's identity (grant it in the controller's IAM policy): {error}",
                    iam_action(action)
                ),
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
        assert!(is_rejection(invalid.reason()));
        assert!(!is_rejection(throttled.reason()));
    }

    #[test]
    fn an_unauthorized_operation_names_the_iam_action_to_grant() {
        let denied = from_aws(
            "CreateVolume",
            AwsError::Client {
                code: "UnauthorizedOperation".into(),
                message: "You are not authorized to perform this operation.".into(),
            },
        );
        assert_eq!(denied.reason(), ACCESS_DENIED);
        assert!(denied.to_string().contains("ec2:CreateVolume"), "{denied}");
        assert!(is_rejection(denied.reason()));
        let kms = from_aws(
            "kms:DescribeKey",
            AwsError::Client {
                code: "AccessDeniedException".into(),
                message: "denied".into(),
            },
        );
        assert!(kms.to_string().contains("kms:DescribeKey"), "{kms}");
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
