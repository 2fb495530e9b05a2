//! EbsVolume: load -> observe -> plan -> record intent -> execute -> status.

mod execute;
mod observe;
mod status;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::aws_errors::REJECTION_REASONS;
use super::context::Context;
use super::error::{Error, Result};
use super::finalizers::{add_finalizer, has_finalizer, remove_finalizer};
use crate::api::common::ManagementPolicy;
use crate::api::conditions::{ConditionStatus, DesiredCondition, PROGRESSING, READY, SYNCED, find};
use crate::api::{EbsVolume, EbsVolumeStatus};
use crate::aws::client::Ec2;
use crate::aws::observer::VolumeObserver;
use crate::aws::tags::{Owner, ownership_repairs};
use crate::plan::ebs_volume::{VolumeAction, VolumeInput, VolumePlan, describe, plan_volume};
use observe::{Observation, observe};
use status::{StatusWriter, record_observation};

/// How soon to look again after changing something in AWS.
const AFTER_CHANGE: Duration = Duration::from_secs(2);

/// One reconcile of one object: what every step shares.
pub struct Pass<'a> {
    pub obj: &'a EbsVolume,
    pub ctx: &'a Context,
    pub region: String,
    pub ec2: Arc<dyn Ec2>,
    pub observer: Arc<VolumeObserver>,
    pub owner: Owner,
    pub reference: ObjectReference,
    pub deleting: bool,
    pub now: DateTime<Utc>,
}

impl<'a> Pass<'a> {
    pub fn new(obj: &'a EbsVolume, ctx: &'a Context) -> Self {
        let region = obj
            .spec
            .region
            .clone()
            .unwrap_or_else(|| ctx.config.default_region.clone());
        Pass {
            obj,
            ctx,
            ec2: ctx.aws.ec2(&region),
            observer: ctx.aws.volumes(&region),
            owner: Owner {
                cluster: ctx.aws.cluster().to_owned(),
                kind: "EbsVolume".to_owned(),
                namespace: obj.namespace().unwrap_or_default(),
                name: obj.name_any(),
                uid: obj.uid().unwrap_or_default(),
            },
            reference: obj.object_ref(&()),
            region,
            deleting: obj.meta().deletion_timestamp.is_some(),
            now: ctx.clock.now(),
        }
    }
}

/// What the controller would do for `obj` now, in words, without doing any of it: the
/// same observation and planner as a reconcile, and no mutating call.
pub async fn preview(obj: &EbsVolume, ctx: &Context) -> Result<VolumePlan> {
    let pass = Pass::new(obj, ctx);
    let observation = observe(&pass).await?;
    let status = obj.status.clone().unwrap_or_default();
    let mut plan = plan_for(&pass, &observation, &status);
    plan.actions = with_ownership_repairs(&pass, &plan, &observation);
    Ok(plan)
}

pub async fn reconcile(obj: Arc<EbsVolume>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<EbsVolume> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = obj.meta().deletion_timestamp.is_some();
    if !has_finalizer(obj.as_ref()) {
        if !deleting {
            // The patch wakes the controller again with the finalizer in place.
            add_finalizer(&api, obj.as_ref()).await?;
        }
        return Ok(Action::await_change());
    }

    let pass = Pass::new(obj.as_ref(), ctx.as_ref());
    let mut writer = StatusWriter::new(&api, obj.as_ref(), &ctx.metrics);
    match converge(&pass, &mut writer).await {
        Ok(Converged::Finished) => {
            remove_finalizer(&api, obj.as_ref()).await?;
            Ok(Action::await_change())
        }
        Ok(Converged::Requeue(after)) => Ok(Action::requeue(after)),
        Err(error) => {
            report_failure(&pass, &mut writer, &error).await?;
            Err(error)
        }
    }
}

enum Converged {
    /// Deleting and nothing is left in AWS: the finalizer can go.
    Finished,
    Requeue(Duration),
}

async fn converge(pass: &Pass<'_>, writer: &mut StatusWriter<'_>) -> Result<Converged> {
    let obj = pass.obj;
    let observation = observe(pass).await?;
    let mut status = obj.status.clone().unwrap_or_default();
    let plan = plan_for(pass, &observation, &status);
    let actions = with_ownership_repairs(pass, &plan, &observation);

    record_observation(
        &mut status,
        observation.volume.as_ref(),
        observation.modification.as_ref(),
    );
    status.recent_modifications = plan.recent_modifications.clone();
    status.managed_tag_keys = plan.managed_tag_keys.iter().cloned().collect();
    status.plan = actions.iter().map(describe).collect();

    // ObserveOnly runs nothing: the plan is only reported.
    let executable: &[VolumeAction] = match plan.policy {
        ManagementPolicy::Manage => &actions,
        ManagementPolicy::ObserveOnly => &[],
    };
    let blocked = rejected_for_this_generation(obj);
    let mut changed = false;
    if !blocked {
        for action in executable {
            execute::run(
                pass,
                action,
                &mut status,
                writer,
                observation.volume.as_ref(),
            )
            .await?;
            changed = true;
        }
    }
    if changed && let Some(volume_id) = status.volume_id.clone() {
        // Read it again (merged with other objects' reads) so the next pass sees it. A
        // failed read is no loss: the next pass reads it again.
        let _ = pass.observer.refresh(&volume_id).await;
    }

    let mut conditions = plan.conditions();
    if blocked && !executable.is_empty() {
        // Keep the rejection on Synced until the spec changes; do not call AWS again.
        if let Some(synced) = obj
            .status
            .as_ref()
            .and_then(|s| find(&s.conditions, SYNCED))
        {
            conditions.retain(|c| c.type_ != SYNCED);
            conditions.push(DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                synced.reason.clone(),
                synced.message.clone(),
            ));
        }
    }
    if changed {
        mark_progressing(&mut conditions, &status);
    }
    writer.set_conditions(&mut status, &conditions, pass.now);
    writer.write(&status).await?;
    report_new_problems(pass, &plan).await;

    if pass.deleting && plan.finished {
        // Nothing is left to do in AWS once this plan's actions have succeeded.
        return Ok(Converged::Finished);
    }
    let after = match (changed, plan.requeue_after) {
        (true, _) => AFTER_CHANGE,
        (false, Some(wait)) => wait,
        (false, None) => jittered(pass.ctx.config.resync_interval),
    };
    if pass.deleting {
        // Deleting waits for AWS without counting as a failure.
        return Err(Error::Waiting {
            reason: "Deleting",
            message: status
                .plan
                .first()
                .cloned()
                .unwrap_or_else(|| "waiting for AWS to finish".to_owned()),
            retry_after: after,
        });
    }
    Ok(Converged::Requeue(after))
}

/// The planner's answer for this pass.
fn plan_for(pass: &Pass<'_>, observation: &Observation, status: &EbsVolumeStatus) -> VolumePlan {
    let managed_tag_keys: BTreeSet<String> = status.managed_tag_keys.iter().cloned().collect();
    plan_volume(&VolumeInput {
        spec: &pass.obj.spec,
        status,
        observed: observation.volume.as_ref(),
        modification: observation.modification.as_ref(),
        kms_key_arn: observation.kms_key_arn.as_deref(),
        managed_tag_keys: &managed_tag_keys,
        instance_zones: observation.instance_zones.as_ref(),
        final_snapshot: observation.final_snapshot.as_ref(),
        deleting: pass.deleting,
        now: pass.now,
    })
}

/// The resync interval, give or take 10 %, so objects created together spread out.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.9..1.1))
}

/// Puts back ownership tags removed outside the controller, so the batched sweep keeps
/// finding the volume. Only for volumes this object manages.
fn with_ownership_repairs(
    pass: &Pass<'_>,
    plan: &VolumePlan,
    observation: &Observation,
) -> Vec<VolumeAction> {
    let mut actions = plan.actions.clone();
    if let Some(volume) = &observation.volume
        && !pass.deleting
    {
        let repairs = ownership_repairs(&pass.owner, None, &volume.tags).to_set;
        if !repairs.is_empty() {
            actions.insert(
                0,
                VolumeAction::SetTags {
                    volume_id: volume.volume_id.clone(),
                    tags: repairs,
                },
            );
        }
    }
    actions
}

/// Whether AWS already rejected this generation's spec: the same call would be rejected
/// again, so nothing is retried until the spec changes.
fn rejected_for_this_generation(obj: &EbsVolume) -> bool {
    let generation = obj.meta().generation;
    obj.status
        .as_ref()
        .and_then(|s| find(&s.conditions, SYNCED))
        .is_some_and(|c| {
            c.status == ConditionStatus::False
                && c.observed_generation == generation
                && REJECTION_REASONS.contains(&c.reason.as_str())
        })
}

fn mark_progressing(conditions: &mut Vec<DesiredCondition>, status: &EbsVolumeStatus) {
    conditions.retain(|c| c.type_ != PROGRESSING);
    let message = status.plan.join("; ");
    conditions.push(DesiredCondition::new(
        PROGRESSING,
        ConditionStatus::True,
        "Applying",
        message,
    ));
}

/// A failed pass: Synced=False with the reason (Ready untouched), written once.
async fn report_failure(
    pass: &Pass<'_>,
    writer: &mut StatusWriter<'_>,
    error: &Error,
) -> Result<()> {
    if !error.is_failure() {
        return Ok(());
    }
    // From what this pass last wrote, not from the object as read: intent recorded before
    // the failed call (a modification's start, a bumped client-token attempt) must survive.
    let mut status = writer.last_written().clone();
    let desired = [DesiredCondition::new(
        SYNCED,
        ConditionStatus::False,
        error.reason(),
        error.to_string(),
    )];
    let keep: Vec<DesiredCondition> = status
        .conditions
        .iter()
        .filter(|c| c.type_ == READY || c.type_ == PROGRESSING)
        .map(|c| {
            let type_ = if c.type_ == READY { READY } else { PROGRESSING };
            DesiredCondition::new(type_, c.status, c.reason.clone(), c.message.clone())
        })
        .chain(desired)
        .collect();
    writer.set_conditions(&mut status, &keep, pass.now);
    writer.write(&status).await
}

/// One warning event per new problem (a problem already on Synced is not repeated).
async fn report_new_problems(pass: &Pass<'_>, plan: &VolumePlan) {
    let previous = pass
        .obj
        .status
        .as_ref()
        .and_then(|s| find(&s.conditions, SYNCED))
        .map(|c| c.reason.clone());
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
