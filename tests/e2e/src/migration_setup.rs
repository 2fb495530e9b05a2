//! What an EncryptedVolumeMigration starts from, made directly in AWS (outside the
//! controller) as a user's would be: running instances, a data volume attached to one, a KMS
//! key. Shared by the migration tests and the benchmark.

use anyhow::{Context, Result};
use aws_sdk_ec2::types::{
    EbsInstanceBlockDeviceSpecification, InstanceBlockDeviceMappingSpecification, InstanceType,
    Placement,
};

use crate::Bed;
use crate::bed::{IMAGE, ZONE};

/// The device data volumes are attached at.
pub const DEVICE: &str = "/dev/sdf";

/// The calls that change something, in order, which migrating an attached volume in place
/// makes once each.
pub const MIGRATION_STEPS: [&str; 7] = [
    "StopInstances",
    "CreateSnapshot",
    "CopySnapshot",
    "CreateVolume",
    "DetachVolume",
    "AttachVolume",
    "StartInstances",
];

/// One running instance of `type_` from `image`, in [`ZONE`].
pub async fn running_instance(bed: &Bed, type_: InstanceType, image: &str) -> Result<String> {
    let out = bed
        .ec2()
        .run_instances()
        .image_id(image)
        .instance_type(type_)
        .min_count(1)
        .max_count(1)
        .placement(Placement::builder().availability_zone(ZONE).build())
        .send()
        .await
        .context("RunInstances")?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("no instance")
}

/// Attaches `volume` at [`DEVICE`] with DeleteOnTermination, outside the controller.
pub async fn attach(bed: &Bed, volume: &str, instance: &str) -> Result<()> {
    bed.ec2()
        .attach_volume()
        .volume_id(volume)
        .instance_id(instance)
        .device(DEVICE)
        .send()
        .await
        .context("AttachVolume")?;
    bed.wait_until("the attachment", || async {
        let v = bed.describe_volume(volume).await?;
        Ok((v.state().map(|s| s.as_str()) == Some("in-use")).then_some(()))
    })
    .await?;
    bed.ec2()
        .modify_instance_attribute()
        .instance_id(instance)
        .block_device_mappings(
            InstanceBlockDeviceMappingSpecification::builder()
                .device_name(DEVICE)
                .ebs(
                    EbsInstanceBlockDeviceSpecification::builder()
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .context("ModifyInstanceAttribute")?;
    Ok(())
}

/// A new KMS key with `alias`; its ARN.
pub async fn key(bed: &Bed, alias: &str) -> Result<String> {
    let key = bed.kms().create_key().send().await.context("CreateKey")?;
    let meta = key.key_metadata().context("no key metadata")?;
    bed.kms()
        .create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .context("CreateAlias")?;
    meta.arn().map(str::to_owned).context("no key arn")
}

/// A running t3.micro instance (no instance store, so stopping it loses nothing) with an
/// unencrypted 8 GiB volume of `tags` attached at [`DEVICE`]: (instance, volume).
pub async fn instance_with_volume(bed: &Bed, tags: &[(&str, &str)]) -> Result<(String, String)> {
    let instance = running_instance(bed, InstanceType::T3Micro, IMAGE).await?;
    let volume = bed.outside_volume(8, tags).await?;
    attach(bed, &volume, &instance).await?;
    Ok((instance, volume))
}
