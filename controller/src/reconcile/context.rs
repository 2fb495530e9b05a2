//! What every reconcile gets: clients, settings, counters, events and the clock. Plain
//! values and types of this layer only: the runtime builds it, and nothing here reaches
//! back into the runtime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::EventType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::aws_state::AwsState;
use super::backoff::Backoff;
use super::events::{EventPublisher, Occurrence};
use super::rechecks::Rechecks;
use super::tenancy::Tenancy;

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

/// The configuration a reconcile reads, resolved once at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Region used when a spec names none.
    pub default_region: String,
    /// How often every object is observed again when nothing else happens; also how
    /// often a rejected request is re-checked.
    pub resync_interval: Duration,
    /// How often an image's whole launch permission attribute is read (one call per image,
    /// so rarely: removed grants are found sooner by one call per account).
    pub launch_permission_read_interval: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// `status_writes{kind}`: one increment per status write sent.
pub type StatusWriteCounter = Family<KindLabels, Counter>;

/// The resourceVersion of the controller's last write to each object, so a pass never
/// acts on a cached copy older than what the controller itself already wrote.
#[derive(Debug, Default)]
pub struct WrittenVersions {
    versions: Mutex<HashMap<String, String>>,
}

impl WrittenVersions {
    pub fn record(&self, key: &str, resource_version: Option<String>) {
        if let (Ok(mut versions), Some(rv)) = (self.versions.lock(), resource_version) {
            versions.insert(key.to_owned(), rv);
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut versions) = self.versions.lock() {
            versions.remove(key);
        }
    }

    /// Whether `resource_version` is older than the controller's last write to `key`.
    ///
    /// A copy that is not older has caught up with the write, and the cache never hands out
    /// an older copy after a newer one (watch events arrive in order; a relist is current),
    /// so the write is forgotten then: at 10,000 objects, keeping one version per object
    /// written would hold about a megabyte for nothing.
    pub fn is_stale(&self, key: &str, resource_version: Option<&str>) -> bool {
        let Ok(mut versions) = self.versions.lock() else {
            return false;
        };
        let stale = match (versions.get(key), resource_version) {
            (Some(written), Some(seen)) => older(seen, written),
            (Some(_), None) => true,
            (None, _) => return false,
        };
        if !stale {
            versions.remove(key);
        }
        stale
    }
}

/// `seen` comes before `written`. resourceVersions are opaque to clients, but both come
/// from the same etcd revision counter here; a version that does not parse is treated as
/// stale unless it is the one written, so the caller reads the object afresh.
fn older(seen: &str, written: &str) -> bool {
    match (seen.parse::<u64>(), written.parse::<u64>()) {
        (Ok(seen), Ok(written)) => seen < written,
        _ => seen != written,
    }
}

/// Shared by every reconcile of every kind.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub status_writes: StatusWriteCounter,
    pub events: EventPublisher,
    pub clock: Clock,
    pub aws: AwsState,
    pub backoff: Backoff,
    pub written: WrittenVersions,
    /// Causes outside the controller that block objects, looked at again together.
    pub rechecks: Rechecks,
    /// What each namespace is granted beyond what its objects own.
    pub tenancy: Tenancy,
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
        let occurrence = Occurrence {
            type_,
            reason,
            action,
            note,
        };
        if let Err(error) = self.events.publish(reference, occurrence).await {
            tracing::debug!(%error, "could not publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_older_than_the_last_write_is_stale() {
        let written = WrittenVersions::default();
        assert!(!written.is_stale("ns/a", Some("5")), "nothing written yet");
        written.record("ns/a", Some("10".to_owned()));
        assert!(written.is_stale("ns/a", Some("9")));
        assert!(written.is_stale("ns/a", None));
        assert!(!written.is_stale("ns/b", Some("1")), "per object");
        written.forget("ns/a");
        assert!(!written.is_stale("ns/a", Some("9")));
    }

    #[test]
    fn a_copy_that_caught_up_with_the_write_forgets_it() {
        let written = WrittenVersions::default();
        written.record("ns/a", Some("10".to_owned()));
        written.record("ns/b", Some("20".to_owned()));
        assert!(
            !written.is_stale("ns/a", Some("11")),
            "a newer edit is fresh"
        );
        assert!(!written.is_stale("ns/b", Some("20")));
        assert_eq!(written.versions.lock().map(|v| v.len()).ok(), Some(0));
        // Nothing is left to compare a copy with: every copy is fresh again.
        assert!(!written.is_stale("ns/a", Some("9")));
    }

    #[test]
    fn unparsable_versions_are_fresh_only_when_equal() {
        assert!(!older("abc", "abc"));
        assert!(older("abc", "abd"));
        assert!(older("99", "100"), "compared as numbers, not strings");
    }
}
