//! The one reconcile pass every kind goes through:
//! finalizer -> observe -> plan -> record -> execute (each action recording its intent
//! first) -> status -> events -> requeue.
//!
//! A kind supplies only what differs ([`Reconciler`]): what it observes, how it plans,
//! what of the observation its status shows, and how one action becomes one AWS call.

use std::borrow::Borrow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::aws_errors::{from_aws, is_rejection};
use super::context::Context;
use super::error::{Error, Result};
use super::finalizers::{add_finalizer, has_finalizer, remove_finalizer};
use super::kind::ManagedKind;
use super::object_key;
use super::rechecks::{Blocked, Cause};
use super::status::StatusWriter;
use crate::api::conditions::{ConditionStatus, DesiredCondition, PROGRESSING, READY, SYNCED, find};
use crate::api::status::KindStatus;
use crate::aws::actions::AwsAction;
use crate::aws::client::{Ec2, KmsKey};
use crate::aws::identity::Scope;
use crate::aws::rate::deferral;
use crate::plan::core::{BLOCKED, Plan, PlannedAction, PlannedWait};
use crate::plan::tags::Owner;
use crate::plan::tenancy::{self, Grants};

/// How soon to look again after changing something in AWS.
const AFTER_CHANGE: Duration = Duration::from_secs(2);

/// What one kind adds to the pipeline.
pub trait Reconciler: ManagedKind {
    /// Everything the planner needs from AWS for one object.
    type Observation: Send + Sync;
    type Action: PlannedAction;
    type Wait: PlannedWait;
    /// The kind's plan: the shared [`Plan`], plus whatever the kind keeps beside it.
    type Plan: Borrow<Plan<Self::Action, Self::Wait>> + Send + Sync;

    /// Reads AWS through the batched observers (never one Describe per object in steady
    /// state).
    fn observe(pass: &Pass<'_, Self>) -> impl Future<Output = Result<Self::Observation>> + Send;

    /// The pure planner, on the status as last written.
    fn plan(
        pass: &Pass<'_, Self>,
        observation: &Self::Observation,
        status: &Self::Status,
    ) -> Self::Plan;

    /// Copies what the observation and the plan show into the status (the pipeline adds
    /// `plan` and the conditions).
    fn record(status: &mut Self::Status, observation: &Self::Observation, plan: &Self::Plan);

    /// The AWS call `action` sends (the first, when it sends more than one): its rate token
    /// is taken before the action records anything (see `aws::rate::deferral`).
    fn first_call(action: &Self::Action) -> AwsAction;

    /// Runs one action as one AWS call, recording its intent in `status` (through
    /// `writer`) first when the call is not idempotent by itself.
    fn execute(
        pass: &Pass<'_, Self>,
        action: &Self::Action,
        status: &mut Self::Status,
        writer: &mut StatusWriter<'_, Self>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// After the pass changed AWS: ask for a fresh read, merged with other objects', so the
    /// next pass sees the change.
    fn after_changes(
        _pass: &Pass<'_, Self>,
        _status: &Self::Status,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// After the pass changed AWS: the object's observation as AWS shows it now (read
    /// afresh, merged with other objects' reads), when the kind can tell. The pass then
    /// writes once what it sees after its changes (a new volume `creating`, a modification
    /// under way) instead of an interim view the next pass would write again. `None` (the
    /// default, or a read that failed): the pass writes what it did, and the next pass
    /// observes.
    fn observe_after_changes(
        _pass: &Pass<'_, Self>,
        _status: &Self::Status,
        _observation: &Self::Observation,
    ) -> impl Future<Output = Option<Self::Observation>> + Send {
        async { None }
    }
}

/// One reconcile of one object: what every step shares.
pub struct Pass<'a, K: ManagedKind> {
    pub obj: &'a K,
    pub ctx: &'a Context,
    pub region: String,
    /// The Region and the identity this object acts as in AWS.
    pub scope: Scope,
    pub owner: Owner,
    pub reference: ObjectReference,
    pub deleting: bool,
    pub now: DateTime<Utc>,
    /// What the administrator granted the object's namespace.
    pub grants: Grants,
}

impl<'a, K: ManagedKind> Pass<'a, K> {
    /// A pass of a stored object: it has a UID, which ownership tags and tokens carry.
    pub fn new(obj: &'a K, ctx: &'a Context) -> Result<Self> {
        let uid = obj.uid().ok_or_else(|| Error::Terminal {
            reason: "MissingUid",
            message: "the object has no UID: ownership tags and client tokens need one".to_owned(),
        })?;
        Ok(Self::with_uid(obj, ctx, uid))
    }

    fn with_uid(obj: &'a K, ctx: &'a Context, uid: String) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let region = obj
            .spec_region()
            .map(str::to_owned)
            .unwrap_or_else(|| ctx.settings.default_region.clone());
        Pass {
            obj,
            ctx,
            owner: Owner {
                cluster: ctx.aws.cluster().to_owned(),
                kind: K::KIND.to_owned(),
                namespace: namespace.clone(),
                name: obj.name_any(),
                uid,
            },
            grants: ctx.tenancy.grants(&namespace),
            scope: Scope {
                region: region.clone(),
                role: ctx.tenancy.role(&namespace),
            },
            reference: obj.object_ref(&()),
            region,
            deleting: obj.meta().deletion_timestamp.is_some(),
            now: ctx.clock.now(),
        }
    }

    /// The EC2 client of the object's Region.
    pub fn ec2(&self) -> Arc<dyn Ec2> {
        self.ctx.aws.ec2(&self.scope)
    }

    /// The status as last written (empty for a new object).
    pub fn status(&self) -> K::Status {
        self.obj.status().cloned().unwrap_or_default()
    }

    /// Records that `cause` blocks this object: once it is gone, the object is reconciled
    /// at once rather than at its next resync.
    pub fn recheck_when(&self, cause: Cause) {
        let blocked = Blocked {
            kind: K::KIND,
            namespace: self.owner.namespace.clone(),
            name: self.owner.name.clone(),
        };
        self.ctx
            .rechecks
            .watch(&object_key(self.obj), blocked, cause);
    }

    /// The KMS key `key` names (id, ARN, alias), in this object's scope, when it exists
    /// and is enabled. Otherwise a terminal error that says so, and the object is looked at
    /// again as soon as the key is usable (created, re-enabled or granted outside).
    pub async fn usable_key(&self, key: &str) -> Result<KmsKey> {
        let key_unusable = || Cause::KmsKeyUnusable {
            scope: self.scope.clone(),
            key: key.to_owned(),
        };
        let resolved = match self.ctx.aws.kms_key(&self.scope, key).await {
            Ok(resolved) => resolved,
            Err(e) => {
                let error = from_aws("DescribeKey", e);
                if matches!(error, Error::Terminal { .. }) {
                    self.recheck_when(key_unusable());
                }
                return Err(error);
            }
        };
        if !resolved.enabled {
            self.recheck_when(key_unusable());
            return Err(Error::Terminal {
                reason: "KmsKeyDisabled",
                message: format!("KMS key {key} ({}) is not enabled", resolved.arn),
            });
        }
        Ok(resolved)
    }
}

/// What the controller would do for `obj` now, without doing any of it: the same
/// observation and planner as a reconcile, and no mutating call.
pub async fn preview<K: Reconciler>(obj: &K, ctx: &Context) -> Result<K::Plan> {
    // An object only in a file has no UID yet; nothing is sent, so none is needed.
    let pass = Pass::with_uid(obj, ctx, obj.uid().unwrap_or_default());
    let observation = K::observe(&pass).await?;
    Ok(K::plan(&pass, &observation, &pass.status()))
}

/// The reconcile of every kind.
pub async fn reconcile<K: Reconciler>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile",
        kind = K::KIND,
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        generation = obj.meta().generation.unwrap_or_default(),
    );
    // A mutating call whose rate token is far off ends the pass instead of holding it open
    // (`Error::Waiting` until the token reserved for this object is due).
    let key = object_key(obj.as_ref());
    deferral::for_object(key, run(obj, ctx).instrument(span)).await
}

async fn run<K: Reconciler>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(obj.as_ref());
    // The cache may lag behind the controller's own last write (the watch is behind):
    // acting on it could repeat a call whose intent that write recorded.
    let obj = if ctx
        .written
        .is_stale(&key, obj.resource_version().as_deref())
    {
        tracing::debug!("cached copy is older than our last write; reading it afresh");
        match api.get_opt(&obj.name_any()).await? {
            Some(fresh) => Arc::new(fresh),
            None => return Ok(Action::await_change()),
        }
    } else {
        obj
    };
    let deleting = obj.meta().deletion_timestamp.is_some();
    if !has_finalizer(obj.as_ref()) {
        if !deleting {
            // The patch wakes the controller again with the finalizer in place.
            let updated = add_finalizer(&api, obj.as_ref()).await?;
            ctx.written.record(&key, updated.resource_version());
        }
        return Ok(Action::await_change());
    }

    let pass = Pass::new(obj.as_ref(), ctx.as_ref())?;
    let mut writer = StatusWriter::new(&api, obj.as_ref(), ctx.as_ref());
    // The status this pass builds: what it observed and every intent it recorded, which a
    // failure report must keep.
    let mut status = pass.status();
    match converge(&pass, &mut status, &mut writer).await {
        Ok(Converged::Finished) => {
            remove_finalizer(&api, obj.as_ref()).await?;
            ctx.written.forget(&key);
            Ok(Action::await_change())
        }
        Ok(Converged::Requeue(after)) => Ok(Action::requeue(after)),
        Err(error) => {
            report_failure(&pass, status, &mut writer, &error).await?;
            Err(error)
        }
    }
}

enum Converged {
    /// Deleting and nothing is left in AWS: the finalizer can go.
    Finished,
    Requeue(Duration),
}

async fn converge<K: Reconciler>(
    pass: &Pass<'_, K>,
    status: &mut K::Status,
    writer: &mut StatusWriter<'_, K>,
) -> Result<Converged> {
    // What blocked the object is looked at again now; the pass records what still does.
    pass.ctx.rechecks.forget(&object_key(pass.obj));
    let observation = K::observe(pass).await?;
    let kind_plan = K::plan(pass, &observation, status);
    let plan: &Plan<K::Action, K::Wait> = kind_plan.borrow();
    watch_grants(pass, plan);
    K::record(status, &observation, &kind_plan);
    status.set_plan(plan.in_words());

    let held = held_after_rejection(pass);
    let mut changed = false;
    if !held {
        for action in plan.executable() {
            // The call's rate token first: when it is far off, the action is deferred
            // before it records or writes anything.
            let call = K::first_call(action);
            if let Err(deferred) = pass.ec2().admit(call).await {
                if !changed {
                    return Err(from_aws(call.as_str(), deferred));
                }
                // What the earlier actions did is written now; the next pass (soon after
                // a change) finds this one's reservation.
                break;
            }
            K::execute(pass, action, status, writer).await?;
            changed = true;
            pass.ctx
                .publish(
                    &pass.reference,
                    EventType::Normal,
                    action.event_reason(),
                    action.describe(),
                    action.event_reason(),
                )
                .await;
        }
    }
    // What AWS shows after the changes, planned again, is what this pass writes: one write
    // for "created" (or "modifying") rather than one for the call and one more when the
    // next pass sees the same thing. A deletion keeps its plan: whether the finalizer can
    // go is decided on what the pass itself did.
    let replanned = if changed {
        K::after_changes(pass, status).await;
        match K::observe_after_changes(pass, status, &observation).await {
            Some(fresh) if !pass.deleting => {
                let fresh_plan = K::plan(pass, &fresh, status);
                K::record(status, &fresh, &fresh_plan);
                status.set_plan(fresh_plan.borrow().in_words());
                Some(fresh_plan)
            }
            _ => None,
        }
    } else {
        None
    };
    let shown: &Plan<K::Action, K::Wait> = replanned.as_ref().map_or(plan, Borrow::borrow);

    let (mut conditions, still_applying) = shown_conditions(shown, changed, replanned.is_some());
    let held_back = held && !plan.executable().is_empty();
    if held_back {
        keep_rejection(pass, &mut conditions);
    }
    // A problem the planner found, or a rejection held back, waits for a change from outside.
    let terminal = held_back || !shown.problems.is_empty();
    // The actions may have waited long for their rate tokens (a CreateVolume queued behind
    // hundreds): what they started, started now, not when the pass began.
    let acted_at = if changed {
        pass.ctx.clock.now()
    } else {
        pass.now
    };
    writer.set_conditions(status, &conditions, terminal, acted_at);
    writer.write(status).await?;
    report_new_problems(pass, shown).await;

    if pass.deleting && plan.finished {
        // Nothing is left to do in AWS once this plan's actions have succeeded.
        return Ok(Converged::Finished);
    }
    let after = requeue_delay(
        still_applying,
        shown,
        jittered(pass.ctx.settings.resync_interval),
        pass.ctx.aws.merge_window(),
    );
    Ok(Converged::Requeue(after))
}

/// The conditions a pass writes from the plan it shows, and whether the controller still
/// has something to apply. After changes, `Progressing` says what was applied unless the
/// pass looked again (`looked_again`) and that plan has nothing left to do: then the
/// plan's own view (a volume `Creating`) is written, the same the next pass will see.
fn shown_conditions<A: PlannedAction, W: PlannedWait>(
    shown: &Plan<A, W>,
    changed: bool,
    looked_again: bool,
) -> (Vec<DesiredCondition>, bool) {
    let mut conditions = shown.conditions();
    let still_applying = changed && (!looked_again || !shown.executable().is_empty());
    if still_applying {
        mark_progressing(&mut conditions, shown);
    }
    (conditions, still_applying)
}

/// When to look again: soon after a change; at the next merged read while AWS ends a wait
/// soon (requeued at the merge window, the look then waits in the observer for the next
/// paced read of every creating volume: see `aws::observer`); after the plan's growing delay
/// for longer waits; and at least once per resync, however long a wait may last.
fn requeue_delay<A: PlannedAction, W: PlannedWait>(
    changed: bool,
    plan: &Plan<A, W>,
    resync: Duration,
    merge_window: Duration,
) -> Duration {
    if changed {
        return AFTER_CHANGE;
    }
    let after = plan.requeue_after.map_or(resync, |wait| wait.min(resync));
    if plan.look_soon {
        after.min(merge_window)
    } else {
        after
    }
}

/// A refusal a grant would lift (a namespace label, a tag on the resource) is watched, so
/// the object heals as soon as the administrator grants it.
fn watch_grants<K: ManagedKind, A: PlannedAction, W: PlannedWait>(
    pass: &Pass<'_, K>,
    plan: &Plan<A, W>,
) {
    for problem in &plan.problems {
        if problem.reason == tenancy::reason::NOT_GRANTED
            && let Some(resource_id) = &problem.resource
        {
            pass.recheck_when(Cause::NotGranted {
                scope: pass.scope.clone(),
                namespace: pass.owner.namespace.clone(),
                resource_id: resource_id.clone(),
            });
        }
    }
}

/// AWS rejected this generation's request, and its re-check (at the next resync) has not
/// come yet: a pass woken by anything else does not send the same call again.
fn held_after_rejection<K: ManagedKind>(pass: &Pass<'_, K>) -> bool {
    let generation = pass.obj.meta().generation;
    let rejected = find(pass.obj.conditions(), SYNCED).is_some_and(|c| {
        c.status == ConditionStatus::False
            && c.observed_generation == generation
            && is_rejection(&c.reason)
    });
    rejected && pass.ctx.backoff.holding(&object_key(pass.obj))
}

/// While held, `Synced` keeps showing the rejection rather than the plan's view, and nothing
/// is in progress: the actions the plan lists wait for the re-check.
fn keep_rejection<K: ManagedKind>(pass: &Pass<'_, K>, conditions: &mut Vec<DesiredCondition>) {
    if let Some(synced) = find(pass.obj.conditions(), SYNCED) {
        conditions.retain(|c| c.type_ != SYNCED);
        conditions.push(DesiredCondition::new(
            SYNCED,
            ConditionStatus::False,
            synced.reason.clone(),
            synced.message.clone(),
        ));
    }
    mark_blocked(conditions);
}

/// `Progressing=False`: the controller waits for a change from outside (see `Synced`).
fn mark_blocked(conditions: &mut Vec<DesiredCondition>) {
    conditions.retain(|c| c.type_ != PROGRESSING);
    conditions.push(DesiredCondition::new(
        PROGRESSING,
        ConditionStatus::False,
        BLOCKED,
        "waiting for the cause to go away (see Synced); looked at again at the next resync",
    ));
}

fn mark_progressing<A: PlannedAction, W: PlannedWait>(
    conditions: &mut Vec<DesiredCondition>,
    plan: &Plan<A, W>,
) {
    conditions.retain(|c| c.type_ != PROGRESSING);
    conditions.push(DesiredCondition::new(
        PROGRESSING,
        ConditionStatus::True,
        "Applying",
        plan.in_words().join("; "),
    ));
}

/// The resync interval, give or take 10 %, so objects created together spread out.
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.9..1.1))
}

/// A failed pass: `Synced=False` with the reason, written once; `Ready` stays as last
/// written, and so does `Progressing` unless the failure is terminal (nothing goes on until
/// the cause is gone).
async fn report_failure<K: Reconciler>(
    pass: &Pass<'_, K>,
    mut status: K::Status,
    writer: &mut StatusWriter<'_, K>,
    error: &Error,
) -> Result<()> {
    if !error.is_failure() {
        return Ok(());
    }
    // Conditions other than Synced stay as last written: the pass did not finish.
    let terminal = matches!(error, Error::Terminal { .. });
    let mut keep = writer
        .last_written()
        .conditions()
        .iter()
        .filter_map(|c| {
            let type_ = match c.type_.as_str() {
                READY => READY,
                PROGRESSING => PROGRESSING,
                _ => return None,
            };
            Some(DesiredCondition::new(
                type_,
                c.status,
                c.reason.clone(),
                c.message.clone(),
            ))
        })
        .chain([DesiredCondition::new(
            SYNCED,
            ConditionStatus::False,
            error.reason(),
            error.to_string(),
        )])
        .collect::<Vec<_>>();
    if terminal {
        mark_blocked(&mut keep);
    }
    // Stamped after whatever the pass waited for (rate tokens, retries) before it failed.
    writer.set_conditions(&mut status, &keep, terminal, pass.ctx.clock.now());
    writer.write(&status).await
}

/// One warning event per new problem (a problem already on Synced is not repeated).
async fn report_new_problems<K: ManagedKind, A: PlannedAction, W: PlannedWait>(
    pass: &Pass<'_, K>,
    plan: &Plan<A, W>,
) {
    let previous = find(pass.obj.conditions(), SYNCED).map(|c| c.reason.clone());
    for problem in &plan.problems {
        if previous.as_deref() == Some(problem.reason) {
            continue;
        }
        pass.ctx
            .publish(
                &pass.reference,
                EventType::Warning,
                problem.reason,
                problem.message.clone(),
                "Plan",
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;
    use crate::api::common::ManagementPolicy;
    use crate::plan::core::{Builder, Finish, Summary};
    use crate::plan::ebs_volume::{VolumeAction, Wait};
    use crate::plan::observed::ModificationState;

    const RESYNC: Duration = Duration::from_secs(600);
    const MERGE_WINDOW: Duration = Duration::from_millis(200);

    /// The plan of an object that has waited `waited` for `wait`.
    fn waiting(wait: Wait, waited: TimeDelta) -> Plan<VolumeAction, Wait> {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut b = Builder::<VolumeAction, Wait>::default();
        b.wait(wait);
        b.finish(Finish {
            policy: ManagementPolicy::Manage,
            deleting: false,
            now,
            waiting_since: Some(now - waited),
            noun: "the volume",
            converged: Summary::yes("Available", ""),
        })
    }

    fn creating() -> Wait {
        Wait::Creating {
            volume_id: "vol-0123456789abcdef0".to_owned(),
        }
    }

    fn progressing(
        conditions: &[DesiredCondition],
    ) -> Option<(&'static str, ConditionStatus, String)> {
        conditions
            .iter()
            .find(|c| c.type_ == PROGRESSING)
            .map(|c| (c.type_, c.status, c.reason.clone()))
    }

    #[test]
    fn a_pass_that_looked_after_its_create_writes_what_the_next_pass_will_see() {
        let plan = waiting(creating(), TimeDelta::zero());
        let (looked, applying) = shown_conditions(&plan, true, true);
        assert!(!applying, "nothing left to apply: the next look is a wait");
        assert_eq!(
            looked,
            plan.conditions(),
            "the plan's own view, as a later pass has it"
        );
        assert_eq!(
            requeue_delay(applying, &plan, RESYNC, MERGE_WINDOW),
            MERGE_WINDOW,
            "a creating volume is looked at again at the next merged read"
        );
    }

    #[test]
    fn a_pass_that_could_not_look_again_says_what_it_applied() {
        let plan = waiting(creating(), TimeDelta::zero());
        let (unseen, applying) = shown_conditions(&plan, true, false);
        assert!(applying);
        assert_eq!(
            progressing(&unseen),
            Some((PROGRESSING, ConditionStatus::True, "Applying".to_owned()))
        );
        let (idle, applying) = shown_conditions(&plan, false, false);
        assert!(!applying, "no change, nothing applied");
        assert_eq!(idle, plan.conditions());
    }

    #[test]
    fn a_volume_still_creating_is_requeued_at_the_merge_window_not_at_a_fraction_of_its_age() {
        for waited in [
            TimeDelta::seconds(1),
            TimeDelta::minutes(5),
            TimeDelta::hours(1),
        ] {
            let plan = waiting(creating(), waited);
            assert_eq!(
                requeue_delay(false, &plan, RESYNC, MERGE_WINDOW),
                MERGE_WINDOW,
                "creating for {waited}"
            );
        }
    }

    #[test]
    fn a_long_modification_keeps_its_growing_delay_and_a_change_its_own() {
        let optimizing = Wait::Modification {
            volume_id: "vol-0123456789abcdef0".to_owned(),
            state: ModificationState::Optimizing,
            progress: Some(10),
            since: None,
            more_to_do: false,
        };
        let plan = waiting(optimizing, TimeDelta::hours(2));
        assert_eq!(
            requeue_delay(false, &plan, RESYNC, MERGE_WINDOW),
            Duration::from_secs(300)
        );
        assert_eq!(
            requeue_delay(false, &plan, Duration::from_secs(60), MERGE_WINDOW),
            Duration::from_secs(60),
            "at least once per resync"
        );
        assert_eq!(
            requeue_delay(
                true,
                &waiting(creating(), TimeDelta::zero()),
                RESYNC,
                MERGE_WINDOW
            ),
            AFTER_CHANGE
        );
    }
}
