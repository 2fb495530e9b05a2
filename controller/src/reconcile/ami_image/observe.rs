//! Everything the AmiImage planner needs from AWS, read through the batched observers: the
//! image (sweep, or on demand while AWS works on it, with its snapshots' progress), the
//! source while there is no image yet, the launch permissions (and the snapshots' volume
//! permissions) only after the spec changed or on their slow cadence, and the keys of what
//! is to be shared.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::api::ami_image::{AmiImage, LaunchPermissions, SnapshotVolumePermissions};
use crate::api::intent::find_intent;
use crate::aws::identity::Scope;
use crate::plan::ami_image::CREATE_STEP;
use crate::plan::ami_image::share::{desired, difference};
use crate::plan::observed::{
    ImageState, LaunchPermissionSet, ObservedImage, ObservedInstance, ObservedSnapshot,
};
use crate::plan::tenancy::{self, Standing};
use crate::reconcile::aws_errors::from_aws;
use crate::reconcile::aws_state::ImageQuery;
use crate::reconcile::error::Result;
use crate::reconcile::pipeline::Pass;
use crate::reconcile::rechecks::Cause;

/// How old a sweep may be when looking for a requested image by its tags.
const REQUESTED_LOOKUP_AGE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Observation {
    pub image: Option<ObservedImage>,
    pub source_instance: Option<ObservedInstance>,
    pub source_image: Option<ObservedImage>,
    /// The newest image matching the copy's selector.
    pub newest_match: Option<ObservedImage>,
    pub source_snapshots: Option<BTreeMap<String, ObservedSnapshot>>,
    /// Read this pass, or as the status last recorded it.
    pub launch_permissions: Option<LaunchPermissionSet>,
    /// When `launch_permissions` was read from AWS, if this pass read them (then they go
    /// to status); `None` when they come from the status.
    pub launch_permissions_read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The accounts each snapshot of the image lets create volumes: read with the launch
    /// permissions, or as the status recorded them; `None` when not managed.
    pub snapshot_permissions: Option<BTreeMap<String, BTreeSet<String>>>,
    /// What the status records of `snapshot_permissions`, when read this pass.
    pub snapshot_record: Option<Vec<SnapshotVolumePermissions>>,
    pub public_access_blocked: Option<bool>,
    /// The AWS managed key that encrypts what the spec would share with other accounts.
    pub aws_managed_key: Option<String>,
    /// While the image is pending: the slowest snapshot's percent done.
    pub progress_percent: Option<i64>,
}

pub async fn observe(pass: &Pass<'_, AmiImage>) -> Result<Observation> {
    let mut observation = Observation {
        image: tracked_image(pass).await?,
        ..Observation::default()
    };
    if !pass.deleting {
        observation.newest_match = newest_match(pass).await?;
    }
    if observation.image.is_none() && !pass.deleting {
        source(pass, &mut observation).await?;
    }
    observation.progress_percent = progress(pass, observation.image.as_ref()).await?;
    launch_permissions(pass, &mut observation).await?;
    if !pass.deleting {
        observation.aws_managed_key = aws_managed_key(pass, &observation).await?;
    }
    Ok(observation)
}

/// While the image is pending, how far its snapshots are: each read afresh (merged with
/// every other object's reads in the Region), the slowest one counting.
async fn progress(pass: &Pass<'_, AmiImage>, image: Option<&ObservedImage>) -> Result<Option<i64>> {
    let Some(image) = image.filter(|i| i.state == Some(ImageState::Pending)) else {
        return Ok(None);
    };
    let snapshots = pass.ctx.aws.snapshots(&pass.scope);
    let ids = image.snapshot_ids();
    let read = try_join_all(ids.iter().map(|id| snapshots.refresh(id)))
        .await
        .map_err(|e| from_aws("DescribeSnapshots", e))?;
    Ok(read.into_iter().flatten().filter_map(|s| s.progress).min())
}

/// The image this object tracks: by the id it recorded or adopts, or, after a create whose
/// answer was lost, by its tags in the Region's sweep.
async fn tracked_image(pass: &Pass<'_, AmiImage>) -> Result<Option<ObservedImage>> {
    let images = pass.ctx.aws.images(&pass.scope);
    let status = pass.obj.status.as_ref();
    let id = status
        .and_then(|s| s.image_id.clone())
        .or_else(|| pass.obj.spec.image_id.clone());
    if let Some(id) = id {
        let pending = status.and_then(|s| s.state.as_deref()) == Some(ImageState::Pending.as_str());
        let requested = status.is_some_and(|s| find_intent(&s.intents, CREATE_STEP).is_some());
        // While AWS works on it, read it afresh each pass (merged with other objects').
        let image = if pending || requested {
            images.refresh(&id).await
        } else {
            images.get(&id).await
        };
        return image.map_err(|e| from_aws("DescribeImages", e));
    }
    if status.is_some_and(|s| find_intent(&s.intents, CREATE_STEP).is_some()) {
        let found = images
            .owned_by_recently(&pass.owner.uid, REQUESTED_LOOKUP_AGE)
            .await
            .map_err(|e| from_aws("DescribeImages", e))?;
        return Ok(found.into_iter().next());
    }
    Ok(None)
}

/// What the image is to be made from, read only while there is no image.
async fn source(pass: &Pass<'_, AmiImage>, observation: &mut Observation) -> Result<()> {
    let Some(source) = &pass.obj.spec.source else {
        return Ok(());
    };
    if let Some(instance) = &source.instance {
        let found = pass
            .ctx
            .aws
            .instances(&pass.scope)
            .get_recent(&instance.instance_id, pass.ctx.settings.resync_interval)
            .await
            .map_err(|e| from_aws("DescribeInstances", e))?;
        if found.is_none() {
            pass.recheck_when(Cause::InstanceMissing {
                scope: pass.scope.clone(),
                instance_id: instance.instance_id.clone(),
            });
        }
        observation.source_instance = found;
    }
    if let Some(snapshots) = &source.snapshots {
        let reader = pass.ctx.aws.snapshots(&pass.scope);
        let mut found = BTreeMap::new();
        for id in snapshots
            .block_device_mappings
            .iter()
            .filter_map(|m| m.snapshot_id.as_ref())
        {
            match reader
                .get(id)
                .await
                .map_err(|e| from_aws("DescribeSnapshots", e))?
            {
                Some(snapshot) => {
                    found.insert(id.clone(), snapshot);
                }
                None => pass.recheck_when(Cause::SnapshotMissing {
                    scope: pass.scope.clone(),
                    snapshot_id: id.clone(),
                }),
            }
        }
        observation.source_snapshots = Some(found);
    }
    if let Some(copy) = &source.copy {
        // The image named, or the one the selector was pinned to, or its newest match.
        let named = copy
            .source_image_id
            .clone()
            .or_else(|| pass.obj.status.as_ref()?.source_image_id.clone());
        observation.source_image = match named {
            Some(id) => {
                let scope = source_scope(pass, &copy.source_region);
                let found = pass
                    .ctx
                    .aws
                    .images(&scope)
                    .get(&id)
                    .await
                    .map_err(|e| from_aws("DescribeImages", e))?;
                if found.is_none() {
                    // Shared or made later: the copy goes ahead as soon as it is visible.
                    pass.recheck_when(Cause::ImageMissing {
                        scope,
                        image_id: id,
                    });
                }
                found
            }
            None => observation.newest_match.clone(),
        };
    }
    observation.public_access_blocked = public_access_blocked(pass).await?;
    Ok(())
}

/// The source Region, read as the object's own identity.
fn source_scope(pass: &Pass<'_, AmiImage>, region: &str) -> Scope {
    Scope {
        region: region.to_owned(),
        role: pass.scope.role.clone(),
    }
}

/// The newest available image the copy's selector matches, shared by every object naming
/// the same selector and read at most once per resync.
async fn newest_match(pass: &Pass<'_, AmiImage>) -> Result<Option<ObservedImage>> {
    let Some(copy) = pass.obj.spec.source.as_ref().and_then(|s| s.copy.as_ref()) else {
        return Ok(None);
    };
    let Some(selector) = &copy.source_image_selector else {
        return Ok(None);
    };
    let mut owners: Vec<String> = selector.owners.iter().map(|o| o.0.clone()).collect();
    owners.sort();
    owners.dedup();
    let query = ImageQuery {
        scope: source_scope(pass, &copy.source_region),
        owners,
        name_pattern: selector.name_pattern.clone(),
    };
    pass.ctx
        .aws
        .newest_image(&query)
        .await
        .map_err(|e| from_aws("DescribeImages", e))
}

/// Whether the Region's image block public access is on, asked only when the spec wants
/// the image public.
async fn public_access_blocked(pass: &Pass<'_, AmiImage>) -> Result<Option<bool>> {
    if !wants_public(pass) {
        return Ok(None);
    }
    let blocked = pass
        .ec2()
        .image_block_public_access_blocked()
        .await
        .map_err(|e| from_aws("GetImageBlockPublicAccessState", e))?;
    Ok(Some(blocked))
}

fn wants_public(pass: &Pass<'_, AmiImage>) -> bool {
    pass.obj
        .spec
        .launch_permissions
        .as_ref()
        .is_some_and(|l| l.public)
}

/// The image's launch permissions: read from AWS (DescribeImageAttribute) only when the
/// spec changed since the last complete pass or nothing is recorded yet; otherwise as the
/// status recorded them after the controller's own last change.
async fn launch_permissions(
    pass: &Pass<'_, AmiImage>,
    observation: &mut Observation,
) -> Result<()> {
    let Some(image) = &observation.image else {
        return Ok(());
    };
    let Some(spec) = &pass.obj.spec.launch_permissions else {
        return Ok(());
    };
    if image.state != Some(ImageState::Available)
        || tenancy::standing(&pass.owner, &image.tags) != Standing::Ours
    {
        return Ok(());
    }
    let status = pass.obj.status.as_ref();
    let recorded = status.and_then(|s| s.launch_permissions.as_ref());
    let recorded_snapshots = status.map_or(&[][..], |s| &s.snapshot_volume_permissions[..]);
    // Volume permissions are managed while the spec asks for them, and until the grants
    // the controller made are gone once it no longer does.
    let manage_snapshots =
        spec.snapshot_create_volume_permissions || !recorded_snapshots.is_empty();
    let spec_changed = status.and_then(|s| s.observed_generation) != pass.obj.metadata.generation;
    let read_at = status.and_then(|s| s.launch_permissions_read_at);
    if let Some(recorded) = recorded
        && !(spec.snapshot_create_volume_permissions && recorded_snapshots.is_empty())
        && !spec_changed
        && !read_is_due(pass, read_at)
        && !grant_removed(pass, image, recorded).await?
    {
        observation.launch_permissions = Some(desired(recorded));
        observation.snapshot_permissions = manage_snapshots.then(|| {
            recorded_snapshots
                .iter()
                .map(|s| {
                    (
                        s.snapshot_id.clone(),
                        s.account_ids.iter().cloned().collect(),
                    )
                })
                .collect()
        });
        return Ok(());
    }
    let ec2 = pass.ec2();
    let read = ec2
        .describe_launch_permissions(image.image_id.clone())
        .await
        .map_err(|e| from_aws("DescribeImageAttribute", e))?;
    observation.launch_permissions = Some(read);
    observation.launch_permissions_read_at = Some(pass.now);
    if manage_snapshots {
        let ids = image.snapshot_ids();
        let granted = try_join_all(
            ids.iter()
                .map(|id| ec2.describe_snapshot_volume_permissions(id.clone())),
        )
        .await
        .map_err(|e| from_aws("DescribeSnapshotAttribute", e))?;
        let read: BTreeMap<String, BTreeSet<String>> = ids.into_iter().zip(granted).collect();
        observation.snapshot_record = Some(snapshot_record(
            &read,
            spec.snapshot_create_volume_permissions,
        ));
        observation.snapshot_permissions = Some(read);
    }
    observation.public_access_blocked = public_access_blocked(pass).await?;
    Ok(())
}

/// The AWS managed key that encrypts what the spec shares with other accounts, looked up
/// only while a grant to another account is still to be made: such an image cannot be
/// shared, and a copy that would be encrypted with it is better not made at all. A copy's
/// own key is checked before the copy (a missing or disabled key is a clear condition
/// instead of a copy that fails later).
async fn aws_managed_key(
    pass: &Pass<'_, AmiImage>,
    observation: &Observation,
) -> Result<Option<String>> {
    let copy = pass.obj.spec.source.as_ref().and_then(|s| s.copy.as_ref());
    let creating = observation.image.is_none()
        && pass
            .obj
            .status
            .as_ref()
            .is_none_or(|s| s.image_id.is_none() && s.intents.is_empty());
    let copy_key = match copy.filter(|_| creating) {
        Some(copy) => match &copy.kms_key_id {
            Some(key) => Some(pass.usable_key(key).await?),
            None => None,
        },
        None => None,
    };
    if (observation.image.is_none() && !creating) || !grants_to_add(pass, observation) {
        return Ok(None);
    }
    let keys: Vec<String> = match (&observation.image, copy_key) {
        (Some(image), _) => snapshot_keys(pass, &image.snapshot_ids()).await?,
        (None, Some(key)) => vec![key.arn],
        // Encrypted without a key: the account's EBS default key, aws/ebs unless changed.
        (None, None) if copy.is_some_and(|c| c.encrypted) => pass
            .ec2()
            .get_ebs_default_kms_key_id()
            .await
            .map_err(|e| from_aws("GetEbsDefaultKmsKeyId", e))?
            .into_iter()
            .collect(),
        (None, None) => observation
            .source_snapshots
            .iter()
            .flat_map(|found| found.values())
            .filter_map(|s| s.kms_key_id.clone())
            .collect(),
    };
    for key in keys {
        // A key that cannot be described is not known to be AWS managed: AWS has the last
        // word when the grant is made.
        if let Ok(resolved) = pass.ctx.aws.kms_key(&pass.scope, &key).await
            && resolved.aws_managed
        {
            return Ok(Some(resolved.arn));
        }
    }
    Ok(None)
}

/// Whether the spec grants other accounts something the image (or the snapshots) does not
/// grant yet; for an image still to be made, whether the spec shares it at all.
fn grants_to_add(pass: &Pass<'_, AmiImage>, observation: &Observation) -> bool {
    let Some(spec) = &pass.obj.spec.launch_permissions else {
        return false;
    };
    let wanted = desired(spec);
    if !wanted.grants_accounts() {
        return false;
    }
    if observation.image.is_none() {
        return true;
    }
    let launch = observation
        .launch_permissions
        .as_ref()
        .is_some_and(|current| difference(&wanted, current).grants_accounts());
    let snapshots = spec.snapshot_create_volume_permissions
        && observation
            .snapshot_permissions
            .as_ref()
            .is_some_and(|all| {
                all.values()
                    .any(|granted| !wanted.account_ids.is_subset(granted))
            });
    launch || snapshots
}

/// The keys of encrypted snapshots, read through the Region's snapshot observer.
async fn snapshot_keys(pass: &Pass<'_, AmiImage>, ids: &[String]) -> Result<Vec<String>> {
    let snapshots = pass.ctx.aws.snapshots(&pass.scope);
    let read = try_join_all(ids.iter().map(|id| snapshots.get(id)))
        .await
        .map_err(|e| from_aws("DescribeSnapshots", e))?;
    Ok(read
        .into_iter()
        .flatten()
        .filter(|s| s.encrypted)
        .filter_map(|s| s.kms_key_id)
        .collect())
}

/// The status's record of the snapshots' volume permissions after a read: entries with no
/// account are dropped once the spec no longer asks for them (nothing left to remove).
fn snapshot_record(
    read: &BTreeMap<String, BTreeSet<String>>,
    wanted: bool,
) -> Vec<SnapshotVolumePermissions> {
    read.iter()
        .filter(|(_, accounts)| wanted || !accounts.is_empty())
        .map(|(id, accounts)| SnapshotVolumePermissions {
            snapshot_id: id.clone(),
            account_ids: accounts.iter().cloned().collect(),
        })
        .collect()
}

/// Whether this image's slow, spread-out full read is due: once per
/// `launch_permission_read_interval`, each image at its own point of the interval (from its
/// UID) so that images created together are not read together.
fn read_is_due(pass: &Pass<'_, AmiImage>, read_at: Option<chrono::DateTime<chrono::Utc>>) -> bool {
    let Some(read_at) = read_at else {
        return true;
    };
    let interval = pass.ctx.settings.launch_permission_read_interval;
    let spread = pass
        .owner
        .uid
        .bytes()
        .fold(0_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    // Between three quarters of the interval and the whole of it.
    let due_after = interval.mul_f64(0.75 + f64::from(spread % 1000) / 4000.0);
    let elapsed = (pass.now - read_at).to_std().unwrap_or_default();
    elapsed >= due_after
}

/// Whether an account the status records as granted can no longer launch the image: one
/// DescribeImages (ExecutableUsers) per account per resync for every image shared with it.
async fn grant_removed(
    pass: &Pass<'_, AmiImage>,
    image: &ObservedImage,
    recorded: &LaunchPermissions,
) -> Result<bool> {
    for account in &recorded.account_ids {
        let launchable = pass
            .ctx
            .aws
            .launchable_by(&pass.scope, &account.0)
            .await
            .map_err(|e| from_aws("DescribeImages", e))?;
        if !launchable.contains(&image.image_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A launch permission set as the status (and spec) write it.
pub fn as_spec(set: &LaunchPermissionSet) -> LaunchPermissions {
    use crate::api::ami_image::{AccountId, OrganizationArn, OrganizationalUnitArn};
    LaunchPermissions {
        account_ids: set.account_ids.iter().cloned().map(AccountId).collect(),
        organization_arns: set
            .organization_arns
            .iter()
            .cloned()
            .map(OrganizationArn)
            .collect(),
        organizational_unit_arns: set
            .organizational_unit_arns
            .iter()
            .cloned()
            .map(OrganizationalUnitArn)
            .collect(),
        public: set.public,
        // The snapshots' permissions have their own record.
        snapshot_create_volume_permissions: false,
    }
}
