//! What every reconcile gets: clients, configuration, metrics, events and the clock.

use chrono::{DateTime, Utc};
use kube::Client;
use kube::runtime::events::Recorder;

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
