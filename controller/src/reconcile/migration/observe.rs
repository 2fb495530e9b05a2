//! Everything the migration planner needs from AWS, read through the batched observers
//! (merged with every other object's reads in the Region). Nothing is read once the
//! migration is over; before it starts, the volume, its instance, the instance's type and
//! the key; while it runs, afresh each pass, what it works on.

use kube::Api;

use crate::api::EbsVolume;
use crate::api::intent::find_intent;
use crate::api::migration::EncryptedVolumeMigration;
use crate::plan::migration::{COPY_STEP, Phase, ReferencedVolume, SNAPSHOT_STEP, SourceRef};
use crate::plan::observed::{ObservedInstance, ObservedSnapshot, ObservedVolume};
use crate::reconcile::aws_errors::from_aws;
use crate::reconcile::error::Result;
use crate::reconcile::pipeline::Pass;

/// How old a sweep may be when looking for a requested snapshot by its tags.
const REQUESTED_LOOKUP_AGE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
pub struct Observation {
    pub source_ref: SourceRef,
    pub source_volume: Option<ObservedVolume>,
    pub instance: Option<ObservedInstance>,
    pub instance_store_gb: Option<i64>,
    pub key_arn: Option<String>,
    pub source_snapshot: Option<ObservedSnapshot>,
    pub encrypted_snapshot: Option<ObservedSnapshot>,
    pub found_snapshots: Vec<ObservedSnapshot>,
    pub target_volume: Option<ObservedVolume>,
    /// While handing over: the volume the EbsVolume tracks now.
    pub ebs_volume_tracks: Option<String>,
}

pub async fn observe(pass: &Pass<'_, EncryptedVolumeMigration>) -> Result<Observation> {
    let status = pass.status();
    let phase = Phase::parse(status.phase.as_deref());
    let mut o = Observation {
        source_ref: SourceRef::ById,
        source_volume: None,
        instance: None,
        instance_store_gb: None,
        key_arn: None,
        source_snapshot: None,
        encrypted_snapshot: None,
        found_snapshots: Vec::new(),
        target_volume: None,
        ebs_volume_tracks: None,
    };
    // Over, or deleted before it began: nothing to read.
    if phase.is_final() || (phase == Phase::Pending && pass.deleting) {
        return Ok(o);
    }
    let source_id = if phase == Phase::Pending {
        o.source_ref = source_ref(pass).await?;
        match &o.source_ref {
            SourceRef::ById => pass.obj.spec.source.volume_id.clone(),
            SourceRef::ByRef { ebs_volume, .. } => {
                ebs_volume.as_ref().and_then(|v| v.volume_id.clone())
            }
        }
    } else {
        status.source_volume_id.clone()
    };
    let Some(source_id) = source_id else {
        return Ok(o);
    };
    o.source_volume = volume(pass, &source_id).await?;
    let instance_id = status.instance_id.clone().or_else(|| {
        let attached = o.source_volume.as_ref()?.attachments.first()?;
        (phase == Phase::Pending).then(|| attached.instance_id.clone())
    });
    if let Some(id) = &instance_id {
        o.instance = pass
            .ctx
            .aws
            .instances(&pass.scope)
            .refresh(id)
            .await
            .map_err(|e| from_aws("DescribeInstances", e))?;
    }
    if phase == Phase::Pending {
        o.instance_store_gb = instance_store(pass, o.instance.as_ref()).await?;
        o.key_arn = Some(key_arn(pass).await?);
    }
    let snapshots = pass.ctx.aws.snapshots(&pass.scope);
    if let Some(id) = &status.source_snapshot_id {
        o.source_snapshot = snapshots
            .refresh(id)
            .await
            .map_err(|e| from_aws("DescribeSnapshots", e))?;
    }
    if let Some(id) = &status.encrypted_snapshot_id {
        o.encrypted_snapshot = snapshots
            .refresh(id)
            .await
            .map_err(|e| from_aws("DescribeSnapshots", e))?;
    }
    let requested = |step: &str, id: &Option<String>| {
        id.is_none() && find_intent(&status.intents, step).is_some()
    };
    if requested(SNAPSHOT_STEP, &status.source_snapshot_id)
        || requested(COPY_STEP, &status.encrypted_snapshot_id)
    {
        o.found_snapshots = snapshots
            .owned_by_recently(&pass.owner.uid, REQUESTED_LOOKUP_AGE)
            .await
            .map_err(|e| from_aws("DescribeSnapshots", e))?;
    }
    if let Some(id) = &status.target_volume_id {
        o.target_volume = volume(pass, id).await?;
    }
    if phase == Phase::HandingOver
        && let Some(name) = &status.ebs_volume_name
    {
        o.ebs_volume_tracks = ebs_volume(pass, name)
            .await?
            .and_then(|v| v.status)
            .and_then(|s| s.volume_id);
        if o.ebs_volume_tracks != status.target_volume_id {
            super::nudge_ebs_volume(pass, &status);
        }
    }
    Ok(o)
}

async fn volume(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    id: &str,
) -> Result<Option<ObservedVolume>> {
    let entry = pass
        .ctx
        .aws
        .volumes(&pass.scope)
        .refresh(id)
        .await
        .map_err(|e| from_aws("DescribeVolumes", e))?;
    Ok(entry.map(|e| e.volume))
}

/// How the spec names the volume; a `volumeRef` is looked up in the namespace.
async fn source_ref(pass: &Pass<'_, EncryptedVolumeMigration>) -> Result<SourceRef> {
    let Some(reference) = &pass.obj.spec.source.volume_ref else {
        return Ok(SourceRef::ById);
    };
    let found = ebs_volume(pass, &reference.name).await?;
    Ok(SourceRef::ByRef {
        name: reference.name.clone(),
        ebs_volume: found.map(|v| ReferencedVolume {
            uid: v.metadata.uid.clone().unwrap_or_default(),
            volume_id: v.status.and_then(|s| s.volume_id),
        }),
    })
}

/// The EbsVolume `name` of the migration's namespace, read from the API (one GET, only
/// before the start and while handing over).
async fn ebs_volume(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    name: &str,
) -> Result<Option<EbsVolume>> {
    let api: Api<EbsVolume> = Api::namespaced(pass.ctx.client.clone(), &pass.owner.namespace);
    Ok(api.get_opt(name).await?)
}

/// The instance store of the instance's type, in GB (0 when it has none).
async fn instance_store(
    pass: &Pass<'_, EncryptedVolumeMigration>,
    instance: Option<&ObservedInstance>,
) -> Result<Option<i64>> {
    let Some(type_) = instance.and_then(|i| i.instance_type.as_deref()) else {
        return Ok(None);
    };
    let found = pass
        .ctx
        .aws
        .instance_types(&pass.scope)
        .get_recent(type_, pass.ctx.settings.resync_interval)
        .await
        .map_err(|e| from_aws("DescribeInstanceTypes", e))?;
    Ok(found.map(|t| t.instance_store_gb))
}

/// The ARN of the key to encrypt with: the spec's, or the account's default EBS key; an
/// error (and a recheck once it is usable) when it does not exist or is not enabled.
async fn key_arn(pass: &Pass<'_, EncryptedVolumeMigration>) -> Result<String> {
    let key = match &pass.obj.spec.kms_key_id {
        Some(key) => key.clone(),
        None => pass
            .ec2()
            .get_ebs_default_kms_key_id()
            .await
            .map_err(|e| from_aws("GetEbsDefaultKmsKeyId", e))?
            .unwrap_or_else(|| "alias/aws/ebs".to_owned()),
    };
    Ok(pass.usable_key(&key).await?.arn)
}
