//! The AWS call metrics: a counter by action and outcome, a latency histogram by action, and
//! a counter of calls deferred to a later pass (waiting for a client-side rate token).
//! Labels are bounded (action names and outcome classes only).
//!
//! Both travel together in [`AwsCallMetrics`], the one value the runtime hands to
//! `AwsClients`, so a new AWS metric does not change how clients are built; the runtime
//! registers them (this module never sees the registry's owner).

use std::ops::Deref;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::actions::AwsAction;
use super::rate::ActionClass;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// The API action (`DescribeVolumes`, `kms:DescribeKey`): `AwsAction::as_str`.
    pub action: &'static str,
    /// `success`, `throttled`, `client_error`, `server_error` or `transport_error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsActionLabels {
    /// The API action, as in [`AwsCallLabels::action`].
    pub action: &'static str,
}

/// `aws_call_duration_seconds{action}`: the time of one request, from send to answer. Rate
/// limiter waits and retry backoff are left out: they are our own pacing, and mixing them in
/// would hide how AWS itself is answering.
pub type AwsCallDuration = Family<AwsActionLabels, Histogram>;

/// The AWS call metrics, cloned into every Region's client (clones share the series).
#[derive(Clone, Debug)]
pub struct AwsCallMetrics {
    /// `aws_calls{action, outcome}`: one increment per request sent (each retry counts).
    pub calls: Family<AwsCallLabels, Counter>,
    pub duration: AwsCallDuration,
    /// `aws_calls_deferred{action}`: one increment each time a pass ends because its call's
    /// rate token was far off (nothing sent; see `aws::rate::deferral`).
    pub deferred: Family<AwsActionLabels, Counter>,
}

/// The name these metrics had when they were a counter alone; kept so callers that build
/// clients with `AwsCallCounter::default()` and read counts keep compiling.
pub type AwsCallCounter = AwsCallMetrics;

impl Default for AwsCallMetrics {
    fn default() -> Self {
        // Every action that can be deferred starts at zero, so a dashboard's rate() sees
        // the series before the first deferral.
        let deferred = Family::<AwsActionLabels, Counter>::default();
        for action in AwsAction::ALL {
            if ActionClass::of(action).is_deferrable() {
                drop(deferred.get_or_create(&AwsActionLabels {
                    action: action.as_str(),
                }));
            }
        }
        Self {
            calls: Family::default(),
            // 5 ms .. about 41 s: the attempt timeout (30 s) falls in the last bucket.
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            deferred,
        }
    }
}

impl AwsCallMetrics {
    /// The counter of one action and outcome (created at zero on first use).
    pub fn get_or_create(&self, labels: &AwsCallLabels) -> impl Deref<Target = Counter> + '_ {
        self.calls.get_or_create(labels)
    }

    /// Counts one request and its latency.
    pub fn record(&self, action: AwsAction, outcome: &'static str, seconds: f64) {
        let action = action.as_str();
        self.calls
            .get_or_create(&AwsCallLabels { action, outcome })
            .inc();
        self.duration
            .get_or_create(&AwsActionLabels { action })
            .observe(seconds);
    }

    /// Counts one call deferred to a later pass.
    pub fn record_deferred(&self, action: AwsAction) {
        self.deferred
            .get_or_create(&AwsActionLabels {
                action: action.as_str(),
            })
            .inc();
    }
}
