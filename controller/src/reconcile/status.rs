//! Status writes by server-side apply with one field manager, skipped when nothing changed.

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::context::{Context, KindLabels};
use super::error::Result;
use super::kind::ManagedKind;
use super::object_key;
use crate::api::conditions::{DesiredCondition, merge_conditions, with_kstatus_conditions};
use crate::api::status::KindStatus;

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "ec2-reconciler";

/// Writes one object's status by server-side apply when it differs from what the server
/// has, and remembers the resourceVersion each write produced.
pub struct StatusWriter<'a, K: ManagedKind> {
    api: &'a Api<K>,
    ctx: &'a Context,
    name: String,
    key: String,
    generation: Option<i64>,
    written: K::Status,
}

impl<'a, K: ManagedKind> StatusWriter<'a, K> {
    pub fn new(api: &'a Api<K>, obj: &K, ctx: &'a Context) -> Self {
        Self {
            api,
            ctx,
            name: obj.name_any(),
            key: object_key(obj),
            generation: obj.meta().generation,
            written: obj.status().cloned().unwrap_or_default(),
        }
    }

    /// Sets the conditions on `status` (transition times move only on change) for the
    /// object's current generation, with kstatus's `Reconciling` and `Stalled` derived from
    /// them (`terminal`: a `Synced=False` among them waits for a change from outside; see
    /// [`with_kstatus_conditions`]).
    pub fn set_conditions(
        &self,
        status: &mut K::Status,
        desired: &[DesiredCondition],
        terminal: bool,
        now: DateTime<Utc>,
    ) {
        status.set_conditions(merge_conditions(
            self.written.conditions(),
            &with_kstatus_conditions(desired, terminal),
            self.generation,
            now,
        ));
        status.set_observed_generation(self.generation);
    }

    /// The status as the server has it after this writer's last write (or as read).
    pub fn last_written(&self) -> &K::Status {
        &self.written
    }

    pub async fn write(&mut self, status: &K::Status) -> Result<()> {
        let mut status = status.clone();
        if status.observed_generation().is_none() {
            status.set_observed_generation(self.written.observed_generation());
        }
        if status == self.written {
            return Ok(());
        }
        tracing::debug!(changed = ?changed_fields(&self.written, &status), "writing status");
        let patch = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        // Forced: the controller owns every status field.
        let updated = self
            .api
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.ctx
            .written
            .record(&self.key, updated.resource_version());
        self.ctx
            .status_writes
            .get_or_create(&KindLabels { kind: K::KIND })
            .inc();
        self.written = status;
        Ok(())
    }
}

/// The top-level status fields that differ between two statuses (conditions by type), for
/// the debug log of each write.
fn changed_fields<S: serde::Serialize>(before: &S, after: &S) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for (key, value) in &after {
        if key == "conditions" {
            let old = before.get(key).and_then(|v| v.as_array());
            for c in value.as_array().into_iter().flatten() {
                let same = old.is_some_and(|old| old.iter().any(|o| o == c));
                if !same {
                    changed.push(format!("conditions.{}", c["type"].as_str().unwrap_or("?")));
                }
            }
        } else if before.get(key) != Some(value) {
            changed.push(key.clone());
        }
    }
    changed.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
    changed
}
