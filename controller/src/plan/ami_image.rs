//! The AmiImage planner: (spec, status, observed AWS state, grants, now) -> an ordered plan.
//!
//! Pure: no I/O, no clock reads. The reconciler observes AWS, calls [`plan_image`], records
//! intents, runs the executable actions in order and writes the conditions.
//!
//! Contract with the caller:
//! - The `create` intent is recorded before CreateImage, RegisterImage or CopyImage. While it
//!   is recorded and the image is not found (by the id the call returned, or by its tags
//!   after a lost answer), the plan waits and never asks again. CopyImage carries the
//!   intent's client token; CreateImage and RegisterImage have the name as their key (AWS
//!   refuses a second image of one name).
//! - `launch_permissions` is the image's attribute as read this pass, or, when not read,
//!   what the status last recorded (`None`: unknown, nothing is planned for them).
//! - [`ImagePlan::managed_tag_keys`] is persisted before tag actions run.

mod create;
mod delete;
mod existing;
pub mod share;
#[cfg(test)]
#[allow(clippy::panic)] // tests fail by panicking
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use chrono::{DateTime, Utc};

use crate::api::ami_image::{AmiImageSpec, AmiImageStatus, BlockDeviceMappingSpec};
use crate::plan::core::{self, Finish, Plan, PlannedAction, PlannedWait, Summary};
use crate::plan::observed::{
    ImageState, LaunchPermissionSet, ObservedImage, ObservedInstance, ObservedSnapshot,
};
use crate::plan::tags::Owner;
use crate::plan::tenancy::Grants;

pub use share::SharingPolicy;

/// The step of an image's create (CreateImage, RegisterImage or CopyImage): its intent, and
/// the client token of a copy.
pub const CREATE_STEP: &str = "create";

/// Everything the planner looks at.
#[derive(Clone, Copy, Debug)]
pub struct ImageInput<'a> {
    pub spec: &'a AmiImageSpec,
    pub status: &'a AmiImageStatus,
    pub owner: &'a Owner,
    pub grants: Grants,
    /// Where the administrator lets images be shared.
    pub sharing: &'a SharingPolicy,
    /// The image this object tracks, as AWS reports it; `None` when AWS does not know it.
    pub observed: Option<&'a ObservedImage>,
    /// The instance of `source.instance`, when an image is still to be created from it.
    pub source_instance: Option<&'a ObservedInstance>,
    /// The image to copy (`sourceImageId`, or the selector's pinned or newest match), when
    /// a copy is still to be made.
    pub source_image: Option<&'a ObservedImage>,
    /// The newest image matching `source.copy.sourceImageSelector`, when there is one.
    pub newest_match: Option<&'a ObservedImage>,
    /// The snapshots of `source.snapshots` that exist, by id, when the image is still to be
    /// registered.
    pub source_snapshots: Option<&'a BTreeMap<String, ObservedSnapshot>>,
    /// The image's launch permissions (see the module documentation).
    pub launch_permissions: Option<&'a LaunchPermissionSet>,
    /// The accounts each of the image's snapshots lets create volumes, by snapshot id, as
    /// read this pass or last recorded; `None` when not managed (nothing is planned).
    pub snapshot_permissions: Option<&'a BTreeMap<String, BTreeSet<String>>>,
    /// The ARN of the AWS managed key (`aws/ebs`) that encrypts the image's snapshots, or
    /// would encrypt those of the image to be made; looked for only when the spec shares
    /// the image with other accounts.
    pub aws_managed_key: Option<&'a str>,
    /// While the image is pending: the slowest snapshot's percent done.
    pub progress_percent: Option<i64>,
    /// The Region's image block public access is on; `None` when not looked at.
    pub public_access_blocked: Option<bool>,
    /// Tag keys the spec asked for on earlier passes.
    pub managed_tag_keys: &'a BTreeSet<String>,
    pub deleting: bool,
    pub now: DateTime<Utc>,
}

/// One AWS change, with everything the executor needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageAction {
    /// CreateImage from an instance; the image and its snapshots tagged from the start.
    CreateFromInstance {
        instance_id: String,
        name: String,
        description: Option<String>,
        no_reboot: bool,
        tags: BTreeMap<String, String>,
        snapshot_tags: BTreeMap<String, String>,
    },
    /// RegisterImage from snapshots or an S3 manifest.
    Register(Box<Registration>),
    /// CopyImage into this object's Region, with the create intent's client token.
    Copy {
        source_image_id: String,
        source_region: String,
        name: String,
        description: Option<String>,
        encrypted: bool,
        kms_key_id: Option<String>,
        copy_image_tags: bool,
        /// A time-based copy's duration per snapshot.
        completion_duration_minutes: Option<i64>,
        tags: BTreeMap<String, String>,
        snapshot_tags: BTreeMap<String, String>,
    },
    SetTags {
        image_id: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        image_id: String,
        keys: BTreeSet<String>,
    },
    SetDescription {
        image_id: String,
        description: String,
    },
    EnableDeprecation {
        image_id: String,
        at: DateTime<Utc>,
    },
    DisableDeprecation {
        image_id: String,
    },
    /// Enable or DisableImageDeregistrationProtection.
    SetDeregistrationProtection {
        image_id: String,
        enabled: bool,
        with_cooldown: bool,
    },
    /// One ModifyImageAttribute: grants added and removed so the set matches the spec.
    ChangeLaunchPermissions {
        image_id: String,
        add: LaunchPermissionSet,
        remove: LaunchPermissionSet,
    },
    /// One ModifySnapshotAttribute `createVolumePermission` on one of the image's snapshots.
    ChangeSnapshotPermissions {
        snapshot_id: String,
        add: BTreeSet<String>,
        remove: BTreeSet<String>,
    },
    /// DeregisterImage; its snapshots deleted with it when they are this object's.
    Deregister {
        image_id: String,
        delete_snapshots: bool,
    },
}

/// RegisterImage's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub description: Option<String>,
    pub architecture: String,
    pub virtualization_type: String,
    pub boot_mode: Option<String>,
    pub ena_support: bool,
    pub imds_support: Option<String>,
    pub tpm_support: Option<String>,
    pub uefi_data: Option<String>,
    pub root_device_name: Option<String>,
    /// As the spec names them (none for a manifest).
    pub mappings: Vec<BlockDeviceMappingSpec>,
    pub image_location: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// AWS is still working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageWait {
    /// The image is `pending` (its snapshots are being taken or copied), with the slowest
    /// snapshot's percent done when AWS reports one.
    Pending {
        image_id: String,
        progress: Option<i64>,
    },
    /// A create was requested and AWS does not show its image yet.
    Requested { name: String },
}

impl PlannedWait for ImageWait {
    fn reason(&self) -> &'static str {
        match self {
            ImageWait::Pending { .. } => "Pending",
            ImageWait::Requested { .. } => "WaitingForImage",
        }
    }

    fn message(&self) -> String {
        match self {
            ImageWait::Pending {
                image_id,
                progress: None,
            } => format!("{image_id} is pending"),
            ImageWait::Pending {
                image_id,
                progress: Some(percent),
            } => format!("{image_id} is pending: its snapshots are {percent}% done"),
            ImageWait::Requested { name } => {
                format!("image {name} was requested; waiting for AWS to report it")
            }
        }
    }
}

impl PlannedAction for ImageAction {
    fn describe(&self) -> String {
        match self {
            ImageAction::CreateFromInstance {
                instance_id, name, ..
            } => format!("create image {name} from instance {instance_id}"),
            ImageAction::Register(r) => match &r.image_location {
                Some(location) => format!("register image {} from {location}", r.name),
                None => format!("register image {} from snapshots", r.name),
            },
            ImageAction::Copy {
                source_image_id,
                source_region,
                name,
                ..
            } => format!("copy {source_image_id} from {source_region} as {name}"),
            ImageAction::SetTags { image_id, tags } => {
                let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
                format!("tag {image_id}: {}", keys.join(", "))
            }
            ImageAction::RemoveTags { image_id, keys } => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                format!("untag {image_id}: {}", keys.join(", "))
            }
            ImageAction::SetDescription { image_id, .. } => {
                format!("set the description of {image_id}")
            }
            ImageAction::EnableDeprecation { image_id, at } => {
                format!("deprecate {image_id} at {}", at.to_rfc3339())
            }
            ImageAction::DisableDeprecation { image_id } => {
                format!("cancel the deprecation of {image_id}")
            }
            ImageAction::SetDeregistrationProtection {
                image_id,
                enabled,
                with_cooldown,
            } => match (enabled, with_cooldown) {
                (true, true) => format!("protect {image_id} from deregistration (with cooldown)"),
                (true, false) => format!("protect {image_id} from deregistration"),
                (false, _) => format!("lift the deregistration protection of {image_id}"),
            },
            ImageAction::ChangeLaunchPermissions {
                image_id,
                add,
                remove,
            } => format!(
                "launch permissions of {image_id}: {}",
                share::describe_change(add, remove)
            ),
            ImageAction::ChangeSnapshotPermissions {
                snapshot_id,
                add,
                remove,
            } => format!(
                "volume permissions of {snapshot_id}: {}",
                share::describe_accounts(add, remove)
            ),
            ImageAction::Deregister {
                image_id,
                delete_snapshots,
            } => match delete_snapshots {
                true => format!("deregister {image_id} and delete its snapshots"),
                false => format!("deregister {image_id}"),
            },
        }
    }

    fn event_reason(&self) -> &'static str {
        match self {
            ImageAction::CreateFromInstance { .. } => "CreatingImage",
            ImageAction::Register(_) => "RegisteredImage",
            ImageAction::Copy { .. } => "CopyingImage",
            ImageAction::SetTags { .. } => "TaggedImage",
            ImageAction::RemoveTags { .. } => "UntaggedImage",
            ImageAction::SetDescription { .. } => "DescribedImage",
            ImageAction::EnableDeprecation { .. } | ImageAction::DisableDeprecation { .. } => {
                "ChangedImageDeprecation"
            }
            ImageAction::ChangeLaunchPermissions { .. } => "SharedImage",
            ImageAction::ChangeSnapshotPermissions { .. } => "SharedSnapshot",
            ImageAction::SetDeregistrationProtection { .. } => "ChangedImageProtection",
            ImageAction::Deregister { .. } => "DeregisteredImage",
        }
    }

    fn idempotent(&self) -> bool {
        // A copy replays its client token; tags, attributes and a deregistration land once.
        // CreateImage and RegisterImage have no token (their name refuses a second one, but
        // the first would then be found only by tags): they wait for a fresh copy.
        !matches!(
            self,
            ImageAction::CreateFromInstance { .. } | ImageAction::Register(_)
        )
    }
}

/// The plan of one AmiImage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePlan {
    pub plan: Plan<ImageAction, ImageWait>,
    /// Tag keys that are ours after this plan: to persist for the next pass.
    pub managed_tag_keys: BTreeSet<String>,
    /// The observed image is not this object's to see: nothing of it goes into status.
    pub image_hidden: bool,
}

impl Deref for ImagePlan {
    type Target = Plan<ImageAction, ImageWait>;

    fn deref(&self) -> &Self::Target {
        &self.plan
    }
}

impl std::borrow::Borrow<Plan<ImageAction, ImageWait>> for ImagePlan {
    fn borrow(&self) -> &Plan<ImageAction, ImageWait> {
        &self.plan
    }
}

/// Collects a plan as the parts find its pieces.
pub(crate) struct Builder {
    core: core::Builder<ImageAction, ImageWait>,
    managed_tag_keys: BTreeSet<String>,
    image_hidden: bool,
    /// The image is available and as specified: what Ready says.
    converged: Option<ImageState>,
    /// A newer image matches the copy's selector than the one copied.
    newer_source: Option<String>,
}

impl std::ops::Deref for Builder {
    type Target = core::Builder<ImageAction, ImageWait>;

    fn deref(&self) -> &Self::Target {
        &self.core
    }
}

impl std::ops::DerefMut for Builder {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.core
    }
}

/// The PascalCase reasons of problems.
pub mod reason {
    pub use crate::plan::tenancy::reason::{
        NOT_GRANTED, OBSERVE_NOT_ALLOWED, OWNED_BY_ANOTHER_OBJECT,
    };
    pub const IMAGE_NOT_FOUND: &str = "ImageNotFound";
    pub const IMAGE_FAILED: &str = "ImageFailed";
    pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
    pub const INSTANCE_NOT_IMAGEABLE: &str = "InstanceNotImageable";
    pub const SNAPSHOT_NOT_FOUND: &str = "SnapshotNotFound";
    pub const SNAPSHOT_NOT_COMPLETED: &str = "SnapshotNotCompleted";
    pub const SOURCE_IMAGE_NOT_FOUND: &str = "SourceImageNotFound";
    pub const SHARING_NOT_ALLOWED: &str = "SharingNotAllowed";
    pub const PUBLIC_SHARING_REFUSED: &str = "PublicSharingRefused";
    pub const LAUNCH_PERMISSIONS_DIFFER: &str = "LaunchPermissionsDiffer";
    pub const SNAPSHOT_PERMISSIONS_DIFFER: &str = "SnapshotPermissionsDiffer";
    pub const AWS_MANAGED_KEY_NOT_SHAREABLE: &str = "AwsManagedKeyNotShareable";
    pub const DEREGISTRATION_PROTECTED: &str = "DeregistrationProtected";
}

/// The name of the image to make (the schema requires one unless `imageId` adopts).
pub fn image_name(spec: &AmiImageSpec) -> String {
    spec.name.clone().unwrap_or_default()
}

/// Plans one AmiImage. See the module documentation for the caller's side of the contract.
pub fn plan_image(input: &ImageInput<'_>) -> ImagePlan {
    let mut b = Builder {
        core: core::Builder::default(),
        managed_tag_keys: input.managed_tag_keys.clone(),
        image_hidden: false,
        converged: None,
        newer_source: None,
    };
    // An image AWS reports as deregistered is gone as far as planning goes.
    let image = input
        .observed
        .filter(|i| i.state != Some(ImageState::Deregistered));
    if input.deleting {
        delete::plan(input, image, &mut b);
    } else {
        match image {
            None => create::plan_missing(input, &mut b),
            Some(i) => existing::plan(input, i, &mut b),
        }
    }
    finish(input, b)
}

fn finish(input: &ImageInput<'_>, b: Builder) -> ImagePlan {
    let converged = match (b.converged, &b.newer_source) {
        (Some(ImageState::Available), None) => {
            Summary::yes("Available", "the image is available as specified")
        }
        (Some(ImageState::Available), Some(newer)) => Summary::yes(
            "Available",
            format!(
                "the image is available as specified; {newer} is a newer match of the selector (a new AmiImage copies it)"
            ),
        ),
        _ => Summary::no("Pending", ""),
    };
    let plan = b.core.finish(Finish {
        policy: input.spec.management_policy,
        deleting: input.deleting,
        now: input.now,
        waiting_since: input.status.intents.iter().map(|i| i.requested_at).min(),
        noun: "the image",
        converged,
    });
    ImagePlan {
        plan,
        managed_tag_keys: b.managed_tag_keys,
        image_hidden: b.image_hidden,
    }
}
