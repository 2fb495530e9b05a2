//! AWS errors, classified once so that retries, conditions and metrics agree.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// An AWS call that failed, by what the caller should do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// `RequestLimitExceeded`, `Throttling`, `ThrottlingException`: retry later, slower.
    #[error("throttled by AWS ({code})")]
    Throttled { code: String },
    /// A 5xx (`InternalError`, `Unavailable`, ...): retry.
    #[error("AWS server error {code}: {message}")]
    ServerError { code: String, message: String },
    /// No usable answer (timeout, dropped connection, dispatch failure): the request may or
    /// may not have been applied.
    #[error("transport error talking to AWS: {message}")]
    Transport { message: String },
    /// Any `*.NotFound` code (`InvalidVolume.NotFound`, `InvalidInstanceID.NotFound`, KMS
    /// `NotFoundException`).
    #[error("{code}: {message}")]
    NotFound { code: String, message: String },
    /// The same ClientToken was used with other parameters: bump the attempt counter.
    #[error("IdempotentParameterMismatch: {message}")]
    IdempotentParameterMismatch { message: String },
    /// Any other 4xx (validation, `IncorrectModificationState`, `VolumeInUse`, ...).
    #[error("{code}: {message}")]
    Client { code: String, message: String },
    /// Not sent: the client-side rate token is `wait` away and reserved for this object,
    /// whose next pass makes the call (see `aws::rate::deferral`).
    #[error("waiting for the controller's AWS rate limit: sent in {}s", wait.as_secs())]
    Deferred { wait: std::time::Duration },
}

const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

const SERVER_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "KMSInternalException",
    "DependencyTimeoutException",
];

impl AwsError {
    /// Whether AWS's answer proves the call did nothing, so its intent can be dropped. After
    /// a 5xx or a lost response AWS may have acted: the intent stays, and the planner looks
    /// for the result instead of asking again. A deferred call was not sent at all.
    pub fn proves_nothing_happened(&self) -> bool {
        !matches!(
            self,
            AwsError::ServerError { .. } | AwsError::Transport { .. }
        )
    }

    /// Classifies an error response by its code, message and HTTP status.
    pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> Self {
        let message = message.unwrap_or_default().to_owned();
        let code_str = code.unwrap_or_default();
        if THROTTLING_CODES.contains(&code_str) || status == Some(429) {
            return Self::Throttled {
                code: code.unwrap_or("Throttled").to_owned(),
            };
        }
        if SERVER_CODES.contains(&code_str) || status.is_some_and(|s| s >= 500) {
            return Self::ServerError {
                code: code.unwrap_or("ServerError").to_owned(),
                message,
            };
        }
        if code_str == "IdempotentParameterMismatch" {
            return Self::IdempotentParameterMismatch { message };
        }
        if code_str.ends_with(".NotFound") || code_str == "NotFoundException" {
            return Self::NotFound {
                code: code_str.to_owned(),
                message,
            };
        }
        Self::Client {
            code: code.unwrap_or("Unknown").to_owned(),
            message,
        }
    }

    /// Throttling, 5xx and transport failures are worth retrying; the rest need a change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::ServerError { .. } | Self::Transport { .. }
        )
    }

    pub fn is_throttled(&self) -> bool {
        matches!(self, Self::Throttled { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The AWS error code (`Transport` for transport failures).
    pub fn code(&self) -> &str {
        match self {
            Self::Throttled { code }
            | Self::ServerError { code, .. }
            | Self::NotFound { code, .. }
            | Self::Client { code, .. } => code,
            Self::Transport { .. } => "Transport",
            Self::IdempotentParameterMismatch { .. } => "IdempotentParameterMismatch",
            Self::Deferred { .. } => "Deferred",
        }
    }

    /// A bounded metric label: `throttled`, `client_error`, `server_error`, `transport_error`,
    /// `deferred` (nothing sent).
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            Self::Deferred { .. } => "deferred",
            Self::Throttled { .. } => "throttled",
            Self::ServerError { .. } => "server_error",
            Self::Transport { .. } => "transport_error",
            Self::NotFound { .. }
            | Self::IdempotentParameterMismatch { .. }
            | Self::Client { .. } => "client_error",
        }
    }
}

/// Works for every SDK built on smithy (EC2 and KMS share `SdkError` and `HttpResponse`).
impl<E> From<SdkError<E, HttpResponse>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        match &err {
            SdkError::ServiceError(service) => Self::classify(
                service.err().code(),
                service.err().message(),
                Some(service.raw().status().as_u16()),
            ),
            SdkError::ResponseError(response) => {
                let status = response.raw().status().as_u16();
                if status >= 500 {
                    Self::ServerError {
                        code: format!("HTTP{status}"),
                        message: describe(&err),
                    }
                } else {
                    Self::Transport {
                        message: describe(&err),
                    }
                }
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Self::Transport {
                message: describe(&err),
            },
            // The request could not be built (a bug or a bad input): not worth retrying.
            _ => Self::Client {
                code: "RequestConstructionFailure".to_owned(),
                message: describe(&err),
            },
        }
    }
}

fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    aws_sdk_ec2::error::DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_throttled_and_retryable() {
        for code in ["RequestLimitExceeded", "Throttling", "ThrottlingException"] {
            let e = AwsError::classify(Some(code), None, Some(400));
            assert!(e.is_throttled(), "{code}");
            assert!(e.is_retryable());
            assert_eq!(e.metric_outcome(), "throttled");
            assert_eq!(e.code(), code);
        }
        // The EC2 answer is a 503 with RequestLimitExceeded: throttled, not a server error.
        let e = AwsError::classify(Some("RequestLimitExceeded"), None, Some(503));
        assert!(e.is_throttled());
    }

    #[test]
    fn five_hundreds_are_server_errors() {
        let e = AwsError::classify(Some("InternalError"), Some("oops"), Some(500));
        assert!(matches!(e, AwsError::ServerError { .. }));
        assert!(e.is_retryable());
        assert_eq!(e.metric_outcome(), "server_error");
        let e = AwsError::classify(None, None, Some(502));
        assert!(matches!(e, AwsError::ServerError { .. }));
        let e = AwsError::classify(Some("Unavailable"), None, Some(400));
        assert!(matches!(e, AwsError::ServerError { .. }));
    }

    #[test]
    fn not_found_codes_are_not_found_and_not_retried() {
        for code in [
            "InvalidVolume.NotFound",
            "InvalidInstanceID.NotFound",
            "NotFoundException",
        ] {
            let e = AwsError::classify(Some(code), Some("gone"), Some(400));
            assert!(e.is_not_found(), "{code}");
            assert!(!e.is_retryable());
            assert_eq!(e.metric_outcome(), "client_error");
        }
    }

    #[test]
    fn validation_and_state_errors_are_client_errors() {
        for code in [
            "InvalidParameterValue",
            "IncorrectModificationState",
            "VolumeInUse",
        ] {
            let e = AwsError::classify(Some(code), Some("no"), Some(400));
            assert_eq!(
                e,
                AwsError::Client {
                    code: code.to_owned(),
                    message: "no".to_owned()
                }
            );
            assert!(!e.is_retryable());
        }
        let e = AwsError::classify(Some("IdempotentParameterMismatch"), None, Some(400));
        assert!(matches!(e, AwsError::IdempotentParameterMismatch { .. }));
        assert_eq!(e.code(), "IdempotentParameterMismatch");
    }

    #[test]
    fn transport_failures_are_retryable() {
        let e = AwsError::Transport {
            message: "connection reset".to_owned(),
        };
        assert!(e.is_retryable());
        assert_eq!(e.metric_outcome(), "transport_error");
    }

    #[test]
    fn sdk_timeouts_are_transport_errors() {
        use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesError;
        let err: SdkError<DescribeVolumesError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(matches!(AwsError::from(err), AwsError::Transport { .. }));
        let err: SdkError<DescribeVolumesError, HttpResponse> =
            SdkError::construction_failure("missing field");
        assert!(!AwsError::from(err).is_retryable());
    }
}
