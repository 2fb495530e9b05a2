//! Status writes by server-side apply with one field manager, skipped when nothing changed.

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::error::Result;
use super::kind::ManagedKind;
use crate::api::conditions::{Condition, DesiredCondition, merge_conditions};
use crate::runtime::metrics::{KindLabels, Metrics};

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "ec2-reconciler";

/// The conditions to write, or `None` when the object already shows them (so a steady
/// state costs no write and wakes nothing).
pub fn conditions_to_write<K: ManagedKind>(
    obj: &K,
    desired: &[DesiredCondition],
    now: DateTime<Utc>,
) -> Option<Vec<Condition>> {
    let current = obj.conditions();
    let generation = obj.meta().generation;
    let merged = merge_conditions(current, desired, generation, now);
    let unchanged = merged == current && obj.observed_generation() == generation;
    (!unchanged).then_some(merged)
}

/// Applies `status` fields (merged with the conditions) as the controller's field manager.
pub async fn apply_status<K: ManagedKind>(
    api: &Api<K>,
    obj: &K,
    mut status: serde_json::Value,
    conditions: Vec<Condition>,
    metrics: &Metrics,
) -> Result<()> {
    if let Some(map) = status.as_object_mut() {
        map.insert(
            "conditions".into(),
            serde_json::to_value(conditions).unwrap_or_default(),
        );
        map.insert("observedGeneration".into(), json!(obj.meta().generation));
    }
    patch_status(api, &obj.name_any(), &status, metrics).await
}

/// Writes `status` by server-side apply as the controller's field manager (forcing
/// ownership: the controller owns every status field), and counts the write.
pub async fn patch_status<K: ManagedKind>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
    metrics: &Metrics,
) -> Result<()> {
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    metrics
        .status_writes
        .get_or_create(&KindLabels { kind: K::KIND })
        .inc();
    Ok(())
}
