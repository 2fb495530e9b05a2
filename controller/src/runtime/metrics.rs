//! Prometheus metrics. Labels are bounded: kinds, outcomes and AWS action names, never
//! object names or error text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use crate::aws::metrics::{AwsCallLabels, AwsCallMetrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: &'static str,
    /// `success` or an error class (`terminal`, `retryable`, `kubernetes`).
    pub outcome: &'static str,
}

pub use crate::reconcile::context::KindLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: &'static str,
    /// `True`, `False` or `Unknown`.
    pub ready: &'static str,
}

/// Every metric the controller exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Handed to the AWS clients; its counter and histogram are registered here.
    pub aws_calls: AwsCallMetrics,
    pub objects: Family<ObjectLabels, Gauge>,
    pub status_writes: Family<KindLabels, Counter>,
    /// Reconciles running now, by kind: passes waiting for AWS hold memory, so this stays
    /// near zero while calls wait for rate tokens (they are deferred, not awaited).
    pub reconciles_in_flight: Family<KindLabels, Gauge>,
    /// 1 while this process acts (it holds the Lease, or runs without leader election), 0
    /// while it stands by: `sum(ec2_reconciler_leader)` is 1 in a healthy deployment.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ec2_reconciler");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let aws_calls = AwsCallMetrics::default();
        let objects = Family::<ObjectLabels, Gauge>::default();
        let status_writes = Family::<KindLabels, Counter>::default();
        let reconciles_in_flight = Family::<KindLabels, Gauge>::default();
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and outcome",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS API calls by action and outcome",
            aws_calls.calls.clone(),
        );
        registry.register(
            "aws_call_duration_seconds",
            "Time one AWS request took, by action (rate-limit waits and retry backoff excluded)",
            aws_calls.duration.clone(),
        );
        registry.register(
            "aws_calls_deferred",
            "AWS calls not sent because their client-side rate token was far off: the token is reserved and the object's next pass sends the call",
            aws_calls.deferred.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, by kind",
            reconciles_in_flight.clone(),
        );
        registry.register(
            "objects",
            "Objects by kind and Ready condition",
            objects.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes by kind",
            status_writes.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica acts on AWS, 0 while it stands by",
            leader.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            reconciles,
            reconcile_duration,
            aws_calls,
            objects,
            status_writes,
            reconciles_in_flight,
            leader,
        }
    }
}

impl Metrics {
    pub fn record_reconcile(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, outcome })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &registry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_kind_and_outcome_labels_only() {
        let m = Metrics::default();
        m.record_reconcile("EbsVolume", "success", Duration::from_millis(20));
        let text = m.render();
        assert!(
            text.contains(
                r#"ec2_reconciler_reconciles_total{kind="EbsVolume",outcome="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("ec2_reconciler_reconcile_duration_seconds_count"),
            "{text}"
        );
    }

    #[test]
    fn aws_calls_are_counted_and_timed_by_action() {
        let m = Metrics::default();
        m.aws_calls
            .record(crate::aws::AwsAction::CreateVolume, "success", 0.02);
        let text = m.render();
        assert!(
            text.contains(
                r#"ec2_reconciler_aws_calls_total{action="CreateVolume",outcome="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ec2_reconciler_aws_call_duration_seconds_count{action="CreateVolume"} 1"#
            ),
            "{text}"
        );
    }
}
