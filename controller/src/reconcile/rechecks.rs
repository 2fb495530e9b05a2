//! Causes fixed outside the controller, watched so that an object blocked by one heals at
//! once instead of at its next resync.
//!
//! A pass that finds the world in its way (a KMS key not enabled, an instance or snapshot
//! that does not exist) records the cause here. One loop looks at every recorded cause
//! together, a few reads per Region whatever the number of objects (instance and snapshot
//! reads merge through the observers; one DescribeKey per distinct key), and only while
//! some object is blocked. When a cause is gone, its objects' holds are lifted and they are
//! reconciled at once. A pass forgets its object's causes before it looks again, so what
//! is watched is always what the last pass saw.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

use super::aws_state::AwsState;
use super::backoff::Backoff;
use super::context::Context;
use crate::aws::identity::Scope;
use crate::plan::tags::{MIGRATING_TAG, REPLACED_BY_TAG, Tags};
use crate::plan::tenancy::tag_grants;

/// What blocks an object, as something the controller can look at again.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// A KMS key (as the spec names it) that is missing or not enabled.
    KmsKeyUnusable { scope: Scope, key: String },
    /// An instance the spec names that does not exist (yet).
    InstanceMissing { scope: Scope, instance_id: String },
    /// A snapshot the spec names that does not exist (yet).
    SnapshotMissing { scope: Scope, snapshot_id: String },
    /// An image the spec names (a copy's source) that does not exist or is not visible.
    ImageMissing { scope: Scope, image_id: String },
    /// A volume an EncryptedVolumeMigration is swapping: gone once it hands the volume over
    /// (the old one marked replaced) or lifts its mark after a rollback.
    VolumeMigrating { scope: Scope, volume_id: String },
    /// A resource the namespace was not granted: an administrator may label the namespace
    /// or tag the resource.
    NotGranted {
        scope: Scope,
        namespace: String,
        resource_id: String,
    },
}

/// The object a cause blocks: enough to reconcile it again.
#[derive(Clone, Debug)]
pub struct Blocked {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

/// A blocked object to reconcile now: its namespace and name.
pub type Trigger = (String, String);

#[derive(Default)]
pub struct Rechecks {
    /// By object key: the object and what blocks it.
    blocked: Mutex<HashMap<String, (Blocked, BTreeSet<Cause>)>>,
    /// One channel per kind into its controller.
    triggers: Mutex<HashMap<&'static str, UnboundedSender<Trigger>>>,
}

impl Rechecks {
    /// The stream of objects of `kind` to reconcile because their cause is gone.
    pub fn subscribe(&self, kind: &'static str) -> UnboundedReceiver<Trigger> {
        let (sender, receiver) = unbounded();
        if let Ok(mut triggers) = self.triggers.lock() {
            triggers.insert(kind, sender);
        }
        receiver
    }

    /// Records that `cause` blocks the object with key `key`.
    pub fn watch(&self, key: &str, object: Blocked, cause: Cause) {
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked
                .entry(key.to_owned())
                .or_insert_with(|| (object, BTreeSet::new()))
                .1
                .insert(cause);
        }
    }

    /// Forgets what blocked the object: its pass is about to look again.
    pub fn forget(&self, key: &str) {
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.remove(key);
        }
    }

    /// Every cause watched now, each once.
    pub fn causes(&self) -> BTreeSet<Cause> {
        self.blocked
            .lock()
            .map(|blocked| {
                blocked
                    .values()
                    .flat_map(|(_, causes)| causes.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The objects blocked by a cause in `gone`, no longer watched: their holds are lifted
    /// and each is sent to its kind's controller. Returns how many were released.
    /// Reconciles one object of `kind` now: another object changed what it depends on (a
    /// migration marked or handed over the volume an EbsVolume tracks).
    pub fn nudge(&self, kind: &'static str, namespace: &str, name: &str) {
        if let Ok(triggers) = self.triggers.lock()
            && let Some(sender) = triggers.get(kind)
        {
            let _ = sender.unbounded_send((namespace.to_owned(), name.to_owned()));
        }
    }

    pub fn release(&self, gone: &BTreeSet<Cause>, backoff: &Backoff) -> usize {
        let released: Vec<(String, Blocked)> = match self.blocked.lock() {
            Ok(mut blocked) => {
                let keys: Vec<String> = blocked
                    .iter()
                    .filter(|(_, (_, causes))| causes.iter().any(|c| gone.contains(c)))
                    .map(|(key, _)| key.clone())
                    .collect();
                keys.into_iter()
                    .filter_map(|key| blocked.remove(&key).map(|(object, _)| (key, object)))
                    .collect()
            }
            Err(_) => return 0,
        };
        let Ok(triggers) = self.triggers.lock() else {
            return 0;
        };
        for (key, object) in &released {
            backoff.succeeded(key);
            if let Some(sender) = triggers.get(object.kind) {
                // A closed channel means the controller has stopped: nothing to wake.
                let _ = sender.unbounded_send((object.namespace.clone(), object.name.clone()));
            }
        }
        released.len()
    }
}

/// Whether `cause` is gone, as AWS (or the namespace's labels) show it now. A read that
/// fails says nothing: the cause stays watched.
async fn is_gone(ctx: &Context, cause: &Cause, max_age: Duration) -> bool {
    let aws = &ctx.aws;
    match cause {
        Cause::KmsKeyUnusable { scope, key } => aws
            .kms_key(scope, key)
            .await
            .is_ok_and(|resolved| resolved.enabled),
        Cause::InstanceMissing { scope, instance_id } => aws
            .instances(scope)
            .get_recent(instance_id, max_age)
            .await
            .is_ok_and(|found| found.is_some()),
        Cause::ImageMissing { scope, image_id } => aws
            .images(scope)
            .refresh(image_id)
            .await
            .is_ok_and(|found| found.is_some()),
        Cause::SnapshotMissing { scope, snapshot_id } => aws
            .snapshots(scope)
            .refresh(snapshot_id)
            .await
            .is_ok_and(|found| found.is_some()),
        Cause::VolumeMigrating { scope, volume_id } => aws
            .volumes(scope)
            .refresh(volume_id)
            .await
            .is_ok_and(|found| {
                found.is_none_or(|entry| {
                    let tags = &entry.volume.tags;
                    !tags.contains_key(MIGRATING_TAG) || tags.contains_key(REPLACED_BY_TAG)
                })
            }),
        Cause::NotGranted {
            scope,
            namespace,
            resource_id,
        } => {
            if ctx.tenancy.grants(namespace).trusted {
                return true;
            }
            let tags = resource_tags(aws, scope, resource_id, max_age).await;
            tags.is_some_and(|tags| tag_grants(aws.cluster(), namespace, &tags))
        }
    }
}

/// The tags of a resource by its id, read through the Region's observers.
async fn resource_tags(aws: &AwsState, scope: &Scope, id: &str, max_age: Duration) -> Option<Tags> {
    if id.starts_with("vol-") {
        let entry = aws.volumes(scope).refresh(id).await.ok()??;
        Some(entry.volume.tags)
    } else if id.starts_with("i-") {
        let instance = aws.instances(scope).get_recent(id, max_age).await.ok()??;
        Some(instance.tags)
    } else {
        None
    }
}

/// Looks at every watched cause once, concurrently (the observers merge reads of one
/// Region into one call), and releases the objects whose cause is gone.
pub async fn check_once(ctx: &Context, max_age: Duration) -> usize {
    let causes = ctx.rechecks.causes();
    if causes.is_empty() {
        return 0;
    }
    let looks = causes
        .iter()
        .map(|cause| async move { is_gone(ctx, cause, max_age).await.then(|| cause.clone()) });
    let gone: BTreeSet<Cause> = futures::future::join_all(looks)
        .await
        .into_iter()
        .flatten()
        .collect();
    if gone.is_empty() {
        return 0;
    }
    let released = ctx.rechecks.release(&gone, &ctx.backoff);
    tracing::info!(
        causes = gone.len(),
        objects = released,
        "causes fixed outside the controller are gone; reconciling the objects they blocked"
    );
    released
}

/// Checks the watched causes every `interval` until the process ends.
pub async fn run(ctx: Arc<Context>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        check_once(&ctx, interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn blocked(name: &str) -> Blocked {
        Blocked {
            kind: "EbsVolume",
            namespace: "team".to_owned(),
            name: name.to_owned(),
        }
    }

    fn key_cause(key: &str) -> Cause {
        Cause::KmsKeyUnusable {
            scope: Scope::own("us-east-1"),
            key: key.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_gone_cause_wakes_only_the_objects_it_blocked_and_lifts_their_hold() {
        let rechecks = Rechecks::default();
        let backoff = Backoff::default();
        let mut woken = rechecks.subscribe("EbsVolume");
        rechecks.watch("EbsVolume/team/a", blocked("a"), key_cause("k1"));
        rechecks.watch("EbsVolume/team/b", blocked("b"), key_cause("k2"));
        backoff.rejected("EbsVolume/team/a", Duration::from_secs(600));
        assert_eq!(rechecks.causes().len(), 2);

        let released = rechecks.release(&BTreeSet::from([key_cause("k1")]), &backoff);

        assert_eq!(released, 1);
        assert!(!backoff.holding("EbsVolume/team/a"), "the hold is lifted");
        assert_eq!(
            woken.next().await,
            Some(("team".to_owned(), "a".to_owned()))
        );
        assert_eq!(
            rechecks.causes(),
            BTreeSet::from([key_cause("k2")]),
            "b is still blocked"
        );
    }

    #[test]
    fn a_pass_forgets_what_blocked_its_object() {
        let rechecks = Rechecks::default();
        rechecks.watch("EbsVolume/team/a", blocked("a"), key_cause("k1"));
        rechecks.watch("EbsVolume/team/a", blocked("a"), key_cause("k1"));
        assert_eq!(rechecks.causes().len(), 1, "one cause is watched once");
        rechecks.forget("EbsVolume/team/a");
        assert!(rechecks.causes().is_empty());
    }
}
