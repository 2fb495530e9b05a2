//! What of AWS's view of the image its status shows.

use super::observe::{Observation, as_spec};
use crate::api::ami_image::{AmiImageStatus, BlockDeviceMappingStatus};
use crate::api::intent::drop_intent;
use crate::plan::ami_image::CREATE_STEP;

/// Copies what AWS reports into the status.
pub fn record_observation(status: &mut AmiImageStatus, observation: &Observation) {
    if let Some(read_at) = observation.launch_permissions_read_at
        && let Some(read) = &observation.launch_permissions
    {
        status.launch_permissions = Some(as_spec(read));
        status.launch_permissions_read_at = Some(read_at);
    }
    if let Some(record) = &observation.snapshot_record {
        status.snapshot_volume_permissions = record.clone();
    }
    status.newer_source_image_id = observation
        .newest_match
        .as_ref()
        .map(|newest| newest.image_id.clone())
        .filter(|newest| {
            status
                .source_image_id
                .as_ref()
                .is_some_and(|pinned| pinned != newest)
        });
    let Some(image) = &observation.image else {
        status.state = status.image_id.as_ref().map(|_| "NotFound".to_owned());
        return;
    };
    status.image_id = Some(image.image_id.clone());
    status.state = image.state.map(|s| s.as_str().to_owned());
    status.root_device_type = image.root_device_type.clone();
    (status.instances_stoppable, status.root_device_note) =
        root_device_meaning(image.root_device_type.as_deref());
    status.root_device_name = image.root_device_name.clone();
    status.virtualization_type = image.virtualization_type.as_deref().and_then(parse);
    status.architecture = image.architecture.as_deref().and_then(parse);
    status.boot_mode = image.boot_mode.clone();
    status.imds_support = image.imds_support.clone();
    status.tpm_support = image.tpm_support.clone();
    status.last_launched_time = image.last_launched_time;
    status.progress_percent = observation.progress_percent;
    status.deprecation_time = image.deprecation_time;
    status.deregistration_protection = image.deregistration_protection.clone();
    status.block_device_mappings = image
        .block_device_mappings
        .iter()
        .map(|m| BlockDeviceMappingStatus {
            device_name: m.device_name.clone(),
            snapshot_id: m.snapshot_id.clone(),
            size_gib: m.size_gib,
            encrypted: m.encrypted,
            kms_key_id: m.kms_key_id.clone(),
        })
        .collect();
    // Once AWS shows the image, the create is done.
    drop_intent(&mut status.intents, CREATE_STEP);
}

/// What the root device type means for the instances launched from the image (EC2 user
/// guide, "Root device type"): whether they can stop, and a sentence for people.
fn root_device_meaning(root_device_type: Option<&str>) -> (Option<bool>, Option<String>) {
    match root_device_type {
        Some("ebs") => (
            Some(true),
            Some("EBS-backed: launched instances can be stopped and started; the root volume persists independently of the instance unless DeleteOnTermination removes it with the instance".to_owned()),
        ),
        Some("instance-store") => (
            Some(false),
            Some("instance store-backed: launched instances cannot be stopped (only rebooted or terminated), and their root device's data is lost when they terminate or their hardware fails".to_owned()),
        ),
        _ => (None, None),
    }
}

/// An enum from its wire word (`hvm`, `x86_64`); `None` for a word this version does not know.
fn parse<T: serde::de::DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).ok()
}
