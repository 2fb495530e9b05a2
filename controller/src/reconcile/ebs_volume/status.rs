//! The EbsVolume status: built from the observation and the plan, written only on change.

use chrono::{DateTime, Utc};
use kube::{Api, Resource, ResourceExt};

use crate::api::conditions::{DesiredCondition, merge_conditions};
use crate::api::ebs_volume::{VolumeAttachmentStatus, VolumeModificationStatus};
use crate::api::{EbsVolume, EbsVolumeStatus};
use crate::plan::observed::{ObservedModification, ObservedVolume};
use crate::reconcile::error::Result;
use crate::reconcile::status::patch_status;
use crate::runtime::metrics::Metrics;

/// Copies what AWS reports into the status.
pub fn record_observation(
    status: &mut EbsVolumeStatus,
    volume: Option<&ObservedVolume>,
    modification: Option<&ObservedModification>,
) {
    let Some(v) = volume else {
        status.state = status.volume_id.as_ref().map(|_| "NotFound".to_owned());
        status.attachments.clear();
        status.modification = None;
        return;
    };
    status.volume_id = Some(v.volume_id.clone());
    status.state = Some(v.state.as_str().to_owned());
    status.availability_zone = Some(v.availability_zone.clone());
    status.volume_type = v.volume_type;
    status.size_gib = Some(v.size_gib);
    status.iops = v.iops;
    status.throughput_mibps = v.throughput_mibps;
    status.encrypted = Some(v.encrypted);
    status.kms_key_id = v.kms_key_id.clone();
    status.multi_attach_enabled = Some(v.multi_attach_enabled);
    status.attachments = v
        .attachments
        .iter()
        .map(|a| VolumeAttachmentStatus {
            instance_id: a.instance_id.clone(),
            device: a.device.clone(),
            state: a.state.as_str().to_owned(),
        })
        .collect();
    status.modification = modification.map(|m| VolumeModificationStatus {
        state: m.state.as_str().to_owned(),
        progress: m.progress,
        start_time: m.start_time,
        status_message: m.status_message.clone(),
    });
    // Once AWS shows the volume, the create is done: its token is no longer needed.
    status.pending_create = None;
}

/// Writes the status by server-side apply when it differs from what the server has.
pub struct StatusWriter<'a> {
    api: &'a Api<EbsVolume>,
    name: String,
    generation: Option<i64>,
    written: EbsVolumeStatus,
    metrics: &'a Metrics,
}

impl<'a> StatusWriter<'a> {
    pub fn new(api: &'a Api<EbsVolume>, obj: &EbsVolume, metrics: &'a Metrics) -> Self {
        Self {
            api,
            name: obj.name_any(),
            generation: obj.meta().generation,
            written: obj.status.clone().unwrap_or_default(),
            metrics,
        }
    }

    /// Sets the conditions on `status` (transition times move only on change).
    pub fn set_conditions(
        &self,
        status: &mut EbsVolumeStatus,
        desired: &[DesiredCondition],
        now: DateTime<Utc>,
    ) {
        status.conditions =
            merge_conditions(&self.written.conditions, desired, self.generation, now);
        status.observed_generation = self.generation;
    }

    /// The status as the server has it after this writer's last write (or as read).
    pub fn last_written(&self) -> &EbsVolumeStatus {
        &self.written
    }

    pub async fn write(&mut self, status: &EbsVolumeStatus) -> Result<()> {
        let mut status = status.clone();
        if status.observed_generation.is_none() {
            status.observed_generation = self.written.observed_generation;
        }
        if status == self.written {
            return Ok(());
        }
        patch_status(self.api, &self.name, &status, self.metrics).await?;
        self.written = status;
        Ok(())
    }
}
