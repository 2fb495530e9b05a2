//! What of AWS's view of the volume its status shows.

use crate::api::EbsVolumeStatus;
use crate::api::ebs_volume::{VolumeAttachmentStatus, VolumeModificationStatus};
use crate::api::intent::drop_intent;
use crate::plan::ebs_volume::CREATE_STEP;
use crate::plan::observed::{ObservedModification, ObservedVolume};

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
    drop_intent(&mut status.intents, CREATE_STEP);
}
