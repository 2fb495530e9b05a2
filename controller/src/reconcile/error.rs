//! Errors of a reconcile, classified so that each class gets its own condition reason,
//! metric label and requeue policy.

use std::time::Duration;

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed; retried with backoff.
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),

    /// AWS rejected what the spec asks for: not retried in a loop, re-checked at the next
    /// resync (see `error_policy`), so an outside fix heals it.
    #[error("{message}")]
    Terminal {
        reason: &'static str,
        message: String,
    },

    /// A passing failure (throttling, a 5xx, a conflict); retried with backoff.
    #[error("{message}")]
    Retryable {
        reason: &'static str,
        message: String,
    },

    /// Not a failure: AWS is still working (a delete waiting for a detach, a snapshot in
    /// progress). Requeued after `retry_after` without a warning event.
    #[error("{message}")]
    Waiting {
        reason: &'static str,
        message: String,
        retry_after: Duration,
    },
}

impl Error {
    /// Whether this is a real failure, worth a warning event. AWS still working is not, and
    /// neither is a conflict on the controller's own write: another writer (or the
    /// controller's previous pass) got there first, and the next pass reads the newer object.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Error::Waiting { .. }) && !self.is_conflict()
    }

    /// A 409 from the Kubernetes API: the object changed since it was read.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.code == 409)
    }

    /// A bounded label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Terminal { .. } => "terminal",
            Error::Retryable { .. } => "retryable",
            Error::Waiting { .. } => "waiting",
        }
    }

    /// The condition reason to show users.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Terminal { reason, .. }
            | Error::Retryable { reason, .. }
            | Error::Waiting { reason, .. } => reason,
        }
    }

    /// How long to wait before trying again after this error (before jitter and backoff).
    /// A terminal rejection is re-checked at each resync instead (see `error_policy`).
    pub fn base_delay(&self) -> Duration {
        match self {
            _ if self.is_conflict() => Duration::from_secs(1),
            Error::Terminal { .. } => Duration::from_secs(15 * 60),
            // Throttling means the account's shared budget is spent: back off further.
            Error::Retryable {
                reason: "AwsThrottled",
                ..
            } => Duration::from_secs(15),
            Error::Kube(_) | Error::Retryable { .. } => Duration::from_secs(5),
            Error::Waiting { retry_after, .. } => *retry_after,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
