//! The reconcile of a kind whose AWS behaviour is not built yet: it holds a finalizer so
//! that deletes pass through the controller, and reports honestly that it acted on nothing.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, ResourceExt};

use super::FINALIZER;
use super::context::Context;
use super::error::{Error, Result};
use super::kind::ManagedKind;
use super::status::{apply_status, conditions_to_write};
use crate::api::conditions::{ConditionStatus, DesiredCondition, PROGRESSING, READY, SYNCED};

pub async fn reconcile<K: ManagedKind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(obj) => report_not_built(&api, &obj, &ctx).await,
            // Nothing was ever created in AWS for this object, so there is nothing to clean up.
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn report_not_built<K: ManagedKind>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action> {
    let message = format!(
        "reconciling {} is not built yet: no AWS call was made",
        K::KIND
    );
    let desired = [
        DesiredCondition::new(READY, ConditionStatus::False, "NotImplemented", &message),
        DesiredCondition::new(SYNCED, ConditionStatus::False, "NotImplemented", &message),
        DesiredCondition::new(
            PROGRESSING,
            ConditionStatus::False,
            "NotImplemented",
            &message,
        ),
    ];
    if let Some(conditions) = conditions_to_write(obj, &desired, ctx.clock.now()) {
        apply_status(api, obj, serde_json::json!({}), conditions, &ctx.metrics).await?;
    }
    Ok(Action::await_change())
}
