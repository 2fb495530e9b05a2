//! What every reconcile gets: clients, configuration, metrics, events and the clock.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};

use super::aws_state::AwsState;
use super::backoff::Backoff;
use crate::runtime::config::Config;
use crate::runtime::metrics::Metrics;

/// Where "now" comes from, so tests can fix it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self { fixed: Some(at) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

/// Shared by every reconcile of every kind.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub clock: Clock,
    pub aws: AwsState,
    pub backoff: Backoff,
}

impl Context {
    /// Publishes an event on the object. Events are best effort: a failure to publish is
    /// logged, never a reason to fail the reconcile.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, reference).await {
            tracing::debug!(%error, "could not publish event");
        }
    }
}
