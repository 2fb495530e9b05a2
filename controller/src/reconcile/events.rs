//! Events on the managed objects, as `events.k8s.io/v1` Events.
//!
//! An event repeated within six minutes (same object version, type, reason and action)
//! becomes a series count on the first one, as kube's `Recorder` makes it. Unlike the
//! `Recorder`, which keeps a copy of every Event it published for those six minutes (about
//! 1.5 KiB each, so 15 MB after 10,000 objects were created at once), this remembers only a
//! fingerprint, the Event's name and its count: memory per object is what limits how many
//! objects one controller carries.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{EventType, Reporter};
use kube::{Api, Client};
use serde_json::json;

/// How long a published event can still be counted as repeated (kube's `Recorder` uses
/// the same span).
const SERIES_SPAN: Duration = Duration::from_secs(6 * 60);

/// How often events older than [`SERIES_SPAN`] are forgotten: a walk over every remembered
/// event, so not on every publish.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Publishes events and counts their repeats.
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
    recent: Mutex<Recent>,
}

/// One event to publish on an object.
pub struct Occurrence<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: String,
}

impl EventPublisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            recent: Mutex::new(Recent::new(Instant::now())),
        }
    }

    /// Creates the event, or counts it on the one published before when it repeats.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        occurrence: Occurrence<'_>,
    ) -> Result<(), kube::Error> {
        let key = fingerprint(regarding, &occurrence);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let repeat = self
            .recent
            .lock()
            .ok()
            .and_then(|mut recent| recent.repeat_of(key, Instant::now()));
        let now = Timestamp::now();
        let (name, count) = match repeat {
            Some(Published { name, count, .. }) => {
                let count = count.saturating_add(1);
                let series = json!({ "series": EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                }});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                    .await?;
                (name, count)
            }
            None => {
                let event = self.event(regarding, occurrence, now);
                api.create(&PostParams::default(), &event).await?;
                (event.metadata.name.unwrap_or_default(), 1)
            }
        };
        if let Ok(mut recent) = self.recent.lock() {
            recent.remember(key, name, count, Instant::now());
        }
        Ok(())
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        occurrence: Occurrence<'_>,
        now: Timestamp,
    ) -> Event {
        let controller = &self.reporter.controller;
        let object = regarding.name.as_deref().unwrap_or(controller);
        Event {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_name(occurrence.type_).to_owned()),
            reason: Some(occurrence.reason.to_owned()),
            action: Some(occurrence.action.to_owned()),
            note: Some(occurrence.note),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            ..Event::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes two events the same event: the object (at its version), the type, the
/// reason and the action. The note is not part of it: a repeat with another note is
/// counted on the first, as Kubernetes' own recorders do.
fn fingerprint(regarding: &ObjectReference, occurrence: &Occurrence<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    regarding.api_version.hash(&mut hasher);
    regarding.kind.hash(&mut hasher);
    regarding.namespace.hash(&mut hasher);
    regarding.name.hash(&mut hasher);
    regarding.uid.hash(&mut hasher);
    regarding.resource_version.hash(&mut hasher);
    regarding.field_path.hash(&mut hasher);
    type_name(occurrence.type_).hash(&mut hasher);
    occurrence.reason.hash(&mut hasher);
    occurrence.action.hash(&mut hasher);
    hasher.finish()
}

/// An event published within the series span.
#[derive(Clone, Debug, PartialEq)]
struct Published {
    name: String,
    count: i32,
    at: Instant,
}

/// The events published within the series span, by fingerprint.
struct Recent {
    by_key: HashMap<u64, Published>,
    pruned_at: Instant,
}

impl Recent {
    fn new(now: Instant) -> Self {
        Self {
            by_key: HashMap::new(),
            pruned_at: now,
        }
    }

    /// The event this one repeats, if one was published within the span.
    fn repeat_of(&mut self, key: u64, now: Instant) -> Option<Published> {
        self.prune(now);
        self.by_key
            .get(&key)
            .filter(|published| now.saturating_duration_since(published.at) < SERIES_SPAN)
            .cloned()
    }

    fn remember(&mut self, key: u64, name: String, count: i32, now: Instant) {
        self.by_key.insert(
            key,
            Published {
                name,
                count,
                at: now,
            },
        );
    }

    fn prune(&mut self, now: Instant) {
        if now.saturating_duration_since(self.pruned_at) < PRUNE_EVERY {
            return;
        }
        self.pruned_at = now;
        self.by_key
            .retain(|_, published| now.saturating_duration_since(published.at) < SERIES_SPAN);
        self.by_key.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, version: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("EbsVolume".to_owned()),
            namespace: Some("team-a".to_owned()),
            name: Some(name.to_owned()),
            resource_version: Some(version.to_owned()),
            ..ObjectReference::default()
        }
    }

    fn occurrence<'a>(reason: &'a str, note: &str) -> Occurrence<'a> {
        Occurrence {
            type_: EventType::Warning,
            reason,
            action: "Reconcile",
            note: note.to_owned(),
        }
    }

    #[test]
    fn the_same_event_on_the_same_object_version_is_a_repeat_whatever_its_note() {
        let a = fingerprint(&reference("a", "7"), &occurrence("AccessDenied", "first"));
        assert_eq!(
            a,
            fingerprint(&reference("a", "7"), &occurrence("AccessDenied", "second"))
        );
        assert_ne!(
            a,
            fingerprint(&reference("b", "7"), &occurrence("AccessDenied", "first"))
        );
        assert_ne!(
            a,
            fingerprint(&reference("a", "8"), &occurrence("AccessDenied", "first"))
        );
        assert_ne!(
            a,
            fingerprint(&reference("a", "7"), &occurrence("Throttled", "first"))
        );
        let mut normal = occurrence("AccessDenied", "first");
        normal.type_ = EventType::Normal;
        assert_ne!(a, fingerprint(&reference("a", "7"), &normal));
    }

    #[test]
    fn a_repeat_within_the_span_counts_on_the_first_event() {
        let start = Instant::now();
        let mut recent = Recent::new(start);
        assert_eq!(recent.repeat_of(1, start), None, "nothing published yet");
        recent.remember(1, "a.17".to_owned(), 1, start);
        let later = start + SERIES_SPAN - Duration::from_secs(1);
        let repeat = recent.repeat_of(1, later);
        assert_eq!(
            repeat.map(|p| (p.name, p.count)),
            Some(("a.17".to_owned(), 1))
        );
        assert_eq!(recent.repeat_of(2, later), None, "another event");
        assert_eq!(
            recent.repeat_of(1, start + SERIES_SPAN),
            None,
            "past the span it is a new event"
        );
    }

    #[test]
    fn events_past_the_span_are_forgotten_at_most_once_a_minute() {
        let start = Instant::now();
        let mut recent = Recent::new(start);
        recent.remember(1, "old".to_owned(), 1, start);
        let fresh_at = start + SERIES_SPAN;
        recent.remember(2, "fresh".to_owned(), 3, fresh_at);
        recent.prune(start + Duration::from_secs(30));
        assert_eq!(recent.by_key.len(), 2, "pruned less than a minute ago");
        recent.prune(fresh_at + Duration::from_secs(1));
        assert_eq!(recent.by_key.len(), 1);
        assert!(recent.by_key.contains_key(&2));
    }
}
