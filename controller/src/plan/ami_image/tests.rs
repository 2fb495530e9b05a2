//! Planner tests: plain values in, a plan out, one rule per test.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};

use super::*;
use crate::api::ami_image::{AccountId, AmiSource, CopySource, InstanceSource, LaunchPermissions};
use crate::api::common::{DeletionPolicy, ManagementPolicy};
use crate::api::intent::Intent;
use crate::plan::tags::{Tags, UID_TAG, ownership_tags};
use crate::plan::tenancy::GRANT_TAG;

const IMAGE: &str = "ami-0123456789abcdef0";
const INSTANCE: &str = "i-0123456789abcdef0";

fn owner() -> Owner {
    Owner {
        cluster: "test".into(),
        kind: "AmiImage".into(),
        namespace: "team-a".into(),
        name: "web".into(),
        uid: "uid-web".into(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn from_instance() -> AmiImageSpec {
    AmiImageSpec {
        region: None,
        name: Some("web-1".into()),
        description: None,
        source: Some(AmiSource {
            instance: Some(InstanceSource {
                instance_id: INSTANCE.into(),
                no_reboot: false,
            }),
            ..AmiSource::default()
        }),
        launch_permissions: None,
        tags: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
        snapshot_tags: BTreeMap::new(),
        deprecation_time: None,
        deregistration_protection: None,
        image_id: None,
        management_policy: ManagementPolicy::Manage,
        deletion_policy: DeletionPolicy::Delete,
        delete_snapshots: true,
    }
}

/// A copy of [`IMAGE`] from eu-west-1; tests change what they look at.
fn copy_of_image(encrypted: bool) -> CopySource {
    CopySource {
        source_image_id: Some(IMAGE.into()),
        source_image_selector: None,
        source_region: "eu-west-1".into(),
        encrypted,
        kms_key_id: None,
        copy_image_tags: false,
        completion_duration_minutes: None,
    }
}

/// [`from_instance`], with `copy` as its source instead.
fn copying(copy: CopySource) -> AmiImageSpec {
    AmiImageSpec {
        source: Some(AmiSource {
            copy: Some(copy),
            ..AmiSource::default()
        }),
        ..from_instance()
    }
}

fn instance(tags: &[(&str, &str)]) -> ObservedInstance {
    ObservedInstance {
        instance_id: INSTANCE.into(),
        availability_zone: Some("us-east-1a".into()),
        state: Some("running".into()),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ObservedInstance::default()
    }
}

fn ours(state: ImageState) -> ObservedImage {
    let mut tags = ownership_tags(&owner(), None);
    tags.insert("team".into(), "web".into());
    ObservedImage {
        image_id: IMAGE.into(),
        name: "web-1".into(),
        state: Some(state),
        owner_id: "123456789012".into(),
        tags: tags.into(),
        ..ObservedImage::default()
    }
}

struct Case {
    spec: AmiImageSpec,
    status: AmiImageStatus,
    grants: Grants,
    sharing: SharingPolicy,
    observed: Option<ObservedImage>,
    source_instance: Option<ObservedInstance>,
    source_image: Option<ObservedImage>,
    newest_match: Option<ObservedImage>,
    launch_permissions: Option<LaunchPermissionSet>,
    snapshot_permissions: Option<BTreeMap<String, BTreeSet<String>>>,
    aws_managed_key: Option<String>,
    progress_percent: Option<i64>,
    public_access_blocked: Option<bool>,
    deleting: bool,
}

impl Case {
    fn new(spec: AmiImageSpec) -> Self {
        Self {
            spec,
            status: AmiImageStatus::default(),
            grants: Grants::SINGLE_TENANT,
            sharing: SharingPolicy::default(),
            observed: None,
            source_instance: Some(instance(&[])),
            source_image: None,
            newest_match: None,
            launch_permissions: None,
            snapshot_permissions: None,
            aws_managed_key: None,
            progress_percent: None,
            public_access_blocked: None,
            deleting: false,
        }
    }

    fn existing(state: ImageState) -> Self {
        Self {
            observed: Some(ours(state)),
            status: AmiImageStatus {
                image_id: Some(IMAGE.into()),
                ..AmiImageStatus::default()
            },
            ..Self::new(from_instance())
        }
    }

    fn plan(&self) -> ImagePlan {
        plan_image(&ImageInput {
            spec: &self.spec,
            status: &self.status,
            owner: &owner(),
            grants: self.grants,
            sharing: &self.sharing,
            observed: self.observed.as_ref(),
            source_instance: self.source_instance.as_ref(),
            source_image: self.source_image.as_ref(),
            newest_match: self.newest_match.as_ref(),
            source_snapshots: None,
            launch_permissions: self.launch_permissions.as_ref(),
            snapshot_permissions: self.snapshot_permissions.as_ref(),
            aws_managed_key: self.aws_managed_key.as_deref(),
            progress_percent: self.progress_percent,
            public_access_blocked: self.public_access_blocked,
            managed_tag_keys: &BTreeSet::new(),
            deleting: self.deleting,
            now: now(),
        })
    }
}

fn reasons(plan: &ImagePlan) -> Vec<&'static str> {
    plan.problems.iter().map(|p| p.reason).collect()
}

fn accounts(ids: &[&str]) -> LaunchPermissionSet {
    LaunchPermissionSet {
        account_ids: ids.iter().map(|a| (*a).to_owned()).collect(),
        ..LaunchPermissionSet::default()
    }
}

fn sharing_with(ids: &[&str]) -> LaunchPermissions {
    LaunchPermissions {
        account_ids: ids.iter().map(|a| AccountId((*a).to_owned())).collect(),
        ..LaunchPermissions::default()
    }
}

#[test]
fn an_image_of_an_instance_is_created_with_our_tags_on_it_and_its_snapshots() {
    let plan = Case::new(from_instance()).plan();
    let Some(ImageAction::CreateFromInstance {
        instance_id, tags, ..
    }) = plan.actions.first()
    else {
        panic!("{:?}", plan.actions);
    };
    assert_eq!(instance_id, INSTANCE);
    assert_eq!(tags.get(UID_TAG).map(String::as_str), Some("uid-web"));
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    assert!(!plan.ready.status);
}

#[test]
fn imaging_an_instance_needs_a_grant() {
    let ungranted = Case {
        grants: Grants::DEFAULT,
        ..Case::new(from_instance())
    };
    let plan = ungranted.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::NOT_GRANTED]);

    let tagged = Case {
        grants: Grants::DEFAULT,
        source_instance: Some(instance(&[(GRANT_TAG, "team-a")])),
        ..Case::new(from_instance())
    };
    assert!(matches!(
        tagged.plan().actions.first(),
        Some(ImageAction::CreateFromInstance { .. })
    ));
}

#[test]
fn a_missing_or_terminated_instance_is_a_problem_not_a_create() {
    let missing = Case {
        source_instance: None,
        ..Case::new(from_instance())
    };
    assert_eq!(reasons(&missing.plan()), vec![reason::INSTANCE_NOT_FOUND]);
    let mut terminated = instance(&[]);
    terminated.state = Some("terminated".into());
    let plan = Case {
        source_instance: Some(terminated),
        ..Case::new(from_instance())
    }
    .plan();
    assert_eq!(reasons(&plan), vec![reason::INSTANCE_NOT_IMAGEABLE]);
    assert!(plan.actions.is_empty());
}

#[test]
fn a_recorded_create_is_waited_for_never_sent_again() {
    let plan = Case {
        status: AmiImageStatus {
            intents: vec![Intent {
                step: CREATE_STEP.into(),
                client_token: None,
                attempt: 0,
                requested_at: now(),
                lookup_tags: BTreeMap::new(),
            }],
            ..AmiImageStatus::default()
        },
        ..Case::new(from_instance())
    }
    .plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(matches!(
        plan.waits.first(),
        Some(ImageWait::Requested { .. })
    ));
}

#[test]
fn a_pending_image_is_waited_for_and_an_available_one_is_ready() {
    let pending = Case::existing(ImageState::Pending).plan();
    assert!(matches!(
        pending.waits.first(),
        Some(ImageWait::Pending { .. })
    ));
    assert!(!pending.ready.status);
    let available = Case::existing(ImageState::Available).plan();
    assert!(available.actions.is_empty(), "{:?}", available.actions);
    assert!(available.ready.status);
}

#[test]
fn a_failed_image_reports_awss_reason() {
    let mut case = Case::existing(ImageState::Failed);
    if let Some(image) = &mut case.observed {
        image.state_reason = Some("Server.InternalError".into());
    }
    let plan = case.plan();
    assert_eq!(reasons(&plan), vec![reason::IMAGE_FAILED]);
    assert!(plan.synced().message.contains("Server.InternalError"));
}

#[test]
fn an_image_deregistered_outside_is_reported_not_made_again() {
    let plan = Case {
        status: AmiImageStatus {
            image_id: Some(IMAGE.into()),
            ..AmiImageStatus::default()
        },
        ..Case::new(from_instance())
    }
    .plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::IMAGE_NOT_FOUND]);
}

#[test]
fn launch_permissions_converge_to_the_spec_exactly() {
    let plan = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(sharing_with(&["111122223333"])),
            ..from_instance()
        },
        sharing: SharingPolicy {
            any: true,
            ..SharingPolicy::default()
        },
        launch_permissions: Some(accounts(&["444455556666"])),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert_eq!(
        plan.actions,
        vec![ImageAction::ChangeLaunchPermissions {
            image_id: IMAGE.into(),
            add: accounts(&["111122223333"]),
            remove: accounts(&["444455556666"]),
        }]
    );
}

#[test]
fn sharing_outside_the_allowlist_is_refused_before_the_image_is_made() {
    let spec = AmiImageSpec {
        launch_permissions: Some(sharing_with(&["111122223333", "444455556666"])),
        ..from_instance()
    };
    let refused = Case {
        sharing: SharingPolicy {
            accounts: BTreeSet::from(["111122223333".to_owned()]),
            ..SharingPolicy::default()
        },
        ..Case::new(spec.clone())
    }
    .plan();
    assert!(refused.actions.is_empty(), "{:?}", refused.actions);
    assert_eq!(reasons(&refused), vec![reason::SHARING_NOT_ALLOWED]);
    assert!(refused.synced().message.contains("444455556666"));
    assert!(!refused.synced().message.contains("111122223333"));
}

#[test]
fn public_images_need_the_administrator_and_no_block_and_no_encryption() {
    let public = AmiImageSpec {
        launch_permissions: Some(LaunchPermissions {
            public: true,
            ..LaunchPermissions::default()
        }),
        ..from_instance()
    };
    let not_allowed = Case::new(public.clone()).plan();
    assert_eq!(reasons(&not_allowed), vec![reason::PUBLIC_SHARING_REFUSED]);
    let allowed = SharingPolicy {
        public: true,
        ..SharingPolicy::default()
    };
    let blocked = Case {
        sharing: allowed.clone(),
        public_access_blocked: Some(true),
        ..Case::new(public.clone())
    }
    .plan();
    assert_eq!(reasons(&blocked), vec![reason::PUBLIC_SHARING_REFUSED]);
    assert!(blocked.actions.is_empty());
    let encrypted_copy = AmiImageSpec {
        source: copying(copy_of_image(true)).source,
        ..public
    };
    let plan = Case {
        sharing: allowed,
        public_access_blocked: Some(false),
        source_image: Some(ObservedImage {
            public: true,
            ..ours(ImageState::Available)
        }),
        ..Case::new(encrypted_copy)
    }
    .plan();
    assert_eq!(reasons(&plan), vec![reason::PUBLIC_SHARING_REFUSED]);
    assert!(
        plan.actions.is_empty(),
        "nothing is copied: {:?}",
        plan.actions
    );
}

#[test]
fn another_namespaces_image_is_refused_and_survives_the_refused_object() {
    let mut theirs = ours(ImageState::Available);
    theirs.tags = ownership_tags(
        &Owner {
            namespace: "team-b".into(),
            name: "golden".into(),
            uid: "uid-b".into(),
            ..owner()
        },
        None,
    )
    .into();
    let adopting = AmiImageSpec {
        image_id: Some(IMAGE.into()),
        source: None,
        ..from_instance()
    };
    let plan = Case {
        observed: Some(theirs.clone()),
        ..Case::new(adopting.clone())
    }
    .plan();
    assert_eq!(reasons(&plan), vec![reason::OWNED_BY_ANOTHER_OBJECT]);
    assert!(plan.image_hidden);
    assert!(!plan.synced().message.contains("team-b"));
    let deleting = Case {
        observed: Some(theirs),
        deleting: true,
        ..Case::new(adopting)
    }
    .plan();
    assert!(deleting.actions.is_empty(), "{:?}", deleting.actions);
    assert!(deleting.finished);
}

#[test]
fn deleting_deregisters_with_the_snapshots_it_made_and_retain_releases() {
    let delete = Case {
        deleting: true,
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert_eq!(
        delete.actions,
        vec![ImageAction::Deregister {
            image_id: IMAGE.into(),
            delete_snapshots: true,
        }]
    );
    let retain = Case {
        deleting: true,
        spec: AmiImageSpec {
            deletion_policy: DeletionPolicy::Retain,
            ..from_instance()
        },
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert!(retain.finished);
    assert!(
        retain.actions.iter().all(|a| matches!(
            a,
            ImageAction::SetTags { .. } | ImageAction::RemoveTags { .. }
        )),
        "{:?}",
        retain.actions
    );
    assert!(
        !retain
            .actions
            .iter()
            .any(|a| matches!(a, ImageAction::Deregister { .. }))
    );
}

#[test]
fn an_adopted_images_snapshots_are_never_deleted() {
    let plan = Case {
        deleting: true,
        spec: AmiImageSpec {
            image_id: Some(IMAGE.into()),
            source: None,
            ..from_instance()
        },
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert_eq!(
        plan.actions,
        vec![ImageAction::Deregister {
            image_id: IMAGE.into(),
            delete_snapshots: false,
        }]
    );
}

#[test]
fn a_private_image_of_the_account_is_copied_only_when_granted() {
    let copy = copying(copy_of_image(false));
    let unowned = ObservedImage {
        tags: Tags::default(),
        ..ours(ImageState::Available)
    };
    let refused = Case {
        grants: Grants::DEFAULT,
        source_image: Some(unowned.clone()),
        ..Case::new(copy.clone())
    }
    .plan();
    assert_eq!(reasons(&refused), vec![reason::NOT_GRANTED]);
    let public = Case {
        grants: Grants::DEFAULT,
        source_image: Some(ObservedImage {
            public: true,
            ..unowned
        }),
        ..Case::new(copy)
    }
    .plan();
    assert!(
        matches!(public.actions.first(), Some(ImageAction::Copy { .. })),
        "{:?} {:?}",
        public.actions,
        public.problems
    );
}

#[test]
fn a_selectors_newest_match_is_copied_and_a_newer_one_only_reported() {
    use crate::api::ami_image::{ImageSelector, Owner as ImageOwner};
    let by_selector = copying(CopySource {
        source_image_id: None,
        source_image_selector: Some(ImageSelector {
            owners: vec![ImageOwner("amazon".into())],
            name_pattern: "base-*".into(),
        }),
        ..copy_of_image(false)
    });
    let newest = ObservedImage {
        image_id: "ami-0000000000000newe".into(),
        public: true,
        tags: Tags::default(),
        ..ours(ImageState::Available)
    };
    let copy = Case {
        source_image: Some(newest.clone()),
        newest_match: Some(newest.clone()),
        ..Case::new(by_selector.clone())
    }
    .plan();
    assert!(
        matches!(copy.actions.first(), Some(ImageAction::Copy { source_image_id, .. }) if *source_image_id == newest.image_id),
        "{:?}",
        copy.actions
    );

    let mut copied = Case::existing(ImageState::Available);
    copied.spec = by_selector;
    copied.status.source_image_id = Some("ami-00000000000older".into());
    copied.newest_match = Some(newest.clone());
    let plan = copied.plan();
    assert!(
        plan.actions.is_empty(),
        "never acted on: {:?}",
        plan.actions
    );
    assert!(plan.ready.status);
    assert!(
        plan.ready.message.contains(&newest.image_id),
        "{}",
        plan.ready.message
    );
}

#[test]
fn a_protected_image_is_never_unprotected_by_a_deletion_alone() {
    let mut protected = Case {
        deleting: true,
        ..Case::existing(ImageState::Available)
    };
    if let Some(image) = &mut protected.observed {
        image.deregistration_protection = Some("enabled-without-cooldown".into());
    }
    let plan = protected.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(!plan.finished, "the finalizer stays");
    assert_eq!(reasons(&plan), vec![reason::DEREGISTRATION_PROTECTED]);

    protected.spec.deregistration_protection =
        Some(crate::api::ami_image::DeregistrationProtection {
            enabled: false,
            with_cooldown: false,
        });
    let plan = protected.plan();
    assert_eq!(
        plan.actions,
        vec![ImageAction::SetDeregistrationProtection {
            image_id: IMAGE.into(),
            enabled: false,
            with_cooldown: false,
        }]
    );
    assert!(!plan.finished);
}

const AWS_EBS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/aws-ebs";

fn allow_any() -> SharingPolicy {
    SharingPolicy {
        any: true,
        ..SharingPolicy::default()
    }
}

#[test]
fn an_image_under_the_aws_managed_key_is_not_shared_with_other_accounts() {
    let plan = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(sharing_with(&["111122223333"])),
            ..from_instance()
        },
        sharing: allow_any(),
        launch_permissions: Some(LaunchPermissionSet::default()),
        aws_managed_key: Some(AWS_EBS_KEY.into()),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec![reason::AWS_MANAGED_KEY_NOT_SHAREABLE]);
    assert!(plan.synced().message.contains(AWS_EBS_KEY));
    assert!(plan.synced().message.contains("customer managed kmsKeyId"));
}

#[test]
fn a_copy_that_would_be_under_the_aws_managed_key_and_shared_is_not_made() {
    let spec = AmiImageSpec {
        launch_permissions: Some(sharing_with(&["111122223333"])),
        ..copying(CopySource {
            completion_duration_minutes: Some(30),
            ..copy_of_image(true)
        })
    };
    let source = ObservedImage {
        image_id: IMAGE.into(),
        public: true,
        state: Some(ImageState::Available),
        ..ObservedImage::default()
    };
    let refused = Case {
        sharing: allow_any(),
        source_image: Some(source.clone()),
        aws_managed_key: Some(AWS_EBS_KEY.into()),
        ..Case::new(spec.clone())
    }
    .plan();
    assert!(refused.actions.is_empty(), "{:?}", refused.actions);
    assert_eq!(
        reasons(&refused),
        vec![reason::AWS_MANAGED_KEY_NOT_SHAREABLE]
    );
    assert!(refused.synced().message.contains("would be encrypted"));
    // A customer managed key (nothing AWS managed found): the time-based copy is made.
    let made = Case {
        sharing: allow_any(),
        source_image: Some(source),
        ..Case::new(spec)
    }
    .plan();
    assert!(
        matches!(
            made.actions.first(),
            Some(ImageAction::Copy {
                completion_duration_minutes: Some(30),
                ..
            })
        ),
        "{:?}",
        made.actions
    );
}

#[test]
fn the_aws_managed_key_does_not_matter_to_an_image_shared_with_nobody() {
    let plan = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(LaunchPermissions::default()),
            ..from_instance()
        },
        launch_permissions: Some(accounts(&["444455556666"])),
        aws_managed_key: Some(AWS_EBS_KEY.into()),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(
        plan.actions,
        vec![ImageAction::ChangeLaunchPermissions {
            image_id: IMAGE.into(),
            add: LaunchPermissionSet::default(),
            remove: accounts(&["444455556666"]),
        }]
    );
}

fn snapshot_grants(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    entries
        .iter()
        .map(|(id, accounts)| {
            (
                (*id).to_owned(),
                accounts.iter().map(|a| (*a).to_owned()).collect(),
            )
        })
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|a| (*a).to_owned()).collect()
}

#[test]
fn snapshot_volume_permissions_follow_the_accounts_while_asked_and_go_when_not() {
    let shared = LaunchPermissions {
        snapshot_create_volume_permissions: true,
        ..sharing_with(&["111122223333"])
    };
    let current = snapshot_grants(&[
        ("snap-0000000000000000a", &["111122223333"]),
        ("snap-0000000000000000b", &["999988887777"]),
    ]);
    let on = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(shared.clone()),
            ..from_instance()
        },
        sharing: allow_any(),
        launch_permissions: Some(accounts(&["111122223333"])),
        snapshot_permissions: Some(current.clone()),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert_eq!(
        on.actions,
        vec![ImageAction::ChangeSnapshotPermissions {
            snapshot_id: "snap-0000000000000000b".into(),
            add: set(&["111122223333"]),
            remove: set(&["999988887777"]),
        }]
    );
    let off = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(sharing_with(&["111122223333"])),
            ..from_instance()
        },
        sharing: allow_any(),
        launch_permissions: Some(accounts(&["111122223333"])),
        snapshot_permissions: Some(current.clone()),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert_eq!(off.actions.len(), 2, "{:?}", off.actions);
    assert!(off.actions.iter().all(|a| matches!(
        a,
        ImageAction::ChangeSnapshotPermissions { add, .. } if add.is_empty()
    )));
    let observed_only = Case {
        spec: AmiImageSpec {
            launch_permissions: Some(shared),
            management_policy: ManagementPolicy::ObserveOnly,
            image_id: Some(IMAGE.into()),
            ..from_instance()
        },
        sharing: allow_any(),
        launch_permissions: Some(accounts(&["111122223333"])),
        snapshot_permissions: Some(current),
        ..Case::existing(ImageState::Available)
    }
    .plan();
    assert!(observed_only.actions.is_empty());
    assert_eq!(
        reasons(&observed_only),
        vec![reason::SNAPSHOT_PERMISSIONS_DIFFER]
    );
}

#[test]
fn a_pending_image_reports_how_far_its_snapshots_are() {
    let plan = Case {
        progress_percent: Some(42),
        ..Case::existing(ImageState::Pending)
    }
    .plan();
    assert_eq!(
        plan.waits,
        vec![ImageWait::Pending {
            image_id: IMAGE.into(),
            progress: Some(42),
        }]
    );
    assert!(plan.progressing.status);
    assert!(plan.progressing.message.contains("42% done"));
}
