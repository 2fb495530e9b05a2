//! EbsVolume safety: deletion (issue 3, behaviour 7), bad input the schema cannot catch (8),
//! a controller killed between an AWS call and the status write after it (9), and batched
//! observation at 1,200 objects.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ec2::types::{Filter, ResourceType, Snapshot, Tag, TagSpecification, Volume};
use e2e::{ControllerProcess, Emulator, Fault, eventually, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, PROGRESSING, READY, SYNCED, find};
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const REGION: &str = "us-east-1";
const ZONE: &str = "us-east-1a";
const CLUSTER_TAG: &str = "ec2.reconciler.dev/cluster";
const OWNER_TAG: &str = "ec2.reconciler.dev/owner";
const UID_TAG: &str = "ec2.reconciler.dev/uid";
const KIND_TAG: &str = "ec2.reconciler.dev/kind";
const STEP_TAG: &str = "ec2.reconciler.dev/step";
const RELEASED_TAG: &str = "ec2.reconciler.dev/released";

/// EC2 actions that change something in AWS.
const MUTATING: &[&str] = &[
    "CreateVolume",
    "ModifyVolume",
    "AttachVolume",
    "DetachVolume",
    "DeleteVolume",
    "CreateSnapshot",
    "DeleteSnapshot",
    "CreateTags",
    "DeleteTags",
];

/// A namespace, an emulator and a controller watching that namespace.
struct Bed {
    cp: &'static e2e::ControlPlane,
    ns: String,
    emu: Emulator,
    controller: ControllerProcess,
    api: Api<EbsVolume>,
    ec2: aws_sdk_ec2::Client,
    extra_args: Vec<String>,
}

impl Bed {
    async fn start(prefix: &str, extra_args: &[&str]) -> Result<Self> {
        let cp = shared()?;
        let client = cp.client().await?;
        let ns = new_namespace(&client, prefix).await?;
        let emu = Emulator::start().await?;
        let extra_args: Vec<String> = extra_args.iter().map(|s| (*s).to_owned()).collect();
        let controller = spawn(cp, &emu, &ns, &extra_args)?;
        let ec2 = aws_sdk_ec2::Client::new(&emu.sdk_config(REGION).await);
        Ok(Self {
            cp,
            api: Api::namespaced(client, &ns),
            ns,
            emu,
            controller,
            ec2,
            extra_args,
        })
    }

    /// SIGKILL the controller, then start a new one with the same arguments.
    fn crash_and_restart(&mut self) -> Result<()> {
        self.controller.kill_9()?;
        let log = self.controller.log();
        self.controller = spawn(self.cp, &self.emu, &self.ns, &self.extra_args)?;
        eprintln!("--- log of the killed controller ---\n{log}");
        Ok(())
    }

    async fn create(&self, name: &str, spec: Value) -> Result<EbsVolume> {
        let obj: EbsVolume = serde_json::from_value(json!({
            "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
            "metadata": { "name": name, "namespace": self.ns },
            "spec": spec,
        }))?;
        Ok(self.api.create(&PostParams::default(), &obj).await?)
    }

    /// Waits until `check` accepts the object; on timeout the error carries its status and
    /// the controller's log.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&EbsVolume) -> bool,
    ) -> Result<EbsVolume> {
        let result = eventually(what, WAIT, || async {
            let v = self.api.get(name).await?;
            Ok(check(&v).then_some(v))
        })
        .await;
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.explain(e, name).await),
        }
    }

    async fn wait_gone(&self, name: &str) -> Result<()> {
        let result = eventually("the object to be gone", WAIT, || async {
            Ok(self.api.get_opt(name).await?.is_none().then_some(()))
        })
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.explain(e, name).await),
        }
    }

    /// Adds the object's status and the controller's log to an error.
    async fn explain(&self, e: anyhow::Error, name: &str) -> anyhow::Error {
        let seen = match self.api.get_opt(name).await {
            Ok(Some(v)) => serde_json::to_string_pretty(&v.status).unwrap_or_default(),
            Ok(None) => "(object gone)".to_owned(),
            Err(e) => format!("(could not read it: {e})"),
        };
        e.context(format!(
            "status of {name}: {seen}\ncontroller log:\n{}",
            self.controller.log()
        ))
    }

    async fn delete(&self, name: &str) -> Result<()> {
        self.api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// Volumes carrying the owner tag `namespace/name`.
    async fn volumes_of(&self, name: &str) -> Result<Vec<Volume>> {
        let out = self
            .ec2
            .describe_volumes()
            .filters(tag_filter(OWNER_TAG, &format!("{}/{name}", self.ns)))
            .send()
            .await?;
        Ok(out.volumes.unwrap_or_default())
    }

    /// Snapshots carrying the owner tag `namespace/name`.
    async fn snapshots_of(&self, name: &str) -> Result<Vec<Snapshot>> {
        let out = self
            .ec2
            .describe_snapshots()
            .filters(tag_filter(OWNER_TAG, &format!("{}/{name}", self.ns)))
            .send()
            .await?;
        Ok(out.snapshots.unwrap_or_default())
    }

    /// An instance in `ZONE`.
    async fn instance(&self) -> Result<String> {
        let out = self
            .ec2
            .run_instances()
            .image_id("ami-12345678")
            .min_count(1)
            .max_count(1)
            .placement(
                aws_sdk_ec2::types::Placement::builder()
                    .availability_zone(ZONE)
                    .build(),
            )
            .send()
            .await?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned)
            .context("RunInstances returned no instance")
    }

    /// Waits until the emulator has counted `n` requests for `action` (the call is in flight
    /// or done).
    async fn wait_for_call(&self, action: &str, n: u64) -> Result<()> {
        let result = eventually(&format!("{n} {action} call(s)"), WAIT, || async {
            Ok((self.emu.calls().await?.count(action) >= n).then_some(()))
        })
        .await;
        result.with_context(|| self.controller.log())
    }

    /// Counts `action` now, waits `window`, and checks it was called at most once more:
    /// no retry storm.
    async fn at_most_one_more(&self, action: &str, window: Duration) -> Result<u64> {
        let before = self.emu.calls().await?.count(action);
        tokio::time::sleep(window).await;
        let after = self.emu.calls().await?.count(action);
        ensure!(
            after <= before + 1,
            "{action} went from {before} to {after} in {window:?}: a retry storm\nstatus: {}\n{}",
            self.api
                .list(&ListParams::default())
                .await
                .map(|l| l
                    .items
                    .iter()
                    .map(|o| serde_json::to_string_pretty(&o.status).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n"))
                .unwrap_or_default(),
            self.controller.log()
        );
        Ok(after)
    }
}

fn spawn(
    cp: &e2e::ControlPlane,
    emu: &Emulator,
    ns: &str,
    extra: &[String],
) -> Result<ControllerProcess> {
    let mut args: Vec<&str> = vec!["--namespace", ns];
    args.extend(extra.iter().map(String::as_str));
    ControllerProcess::spawn(cp, emu, &args)
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// `(status, reason)` of a condition.
fn condition(v: &EbsVolume, type_: &str) -> Option<(ConditionStatus, String)> {
    v.status
        .as_ref()
        .and_then(|s| find(&s.conditions, type_))
        .map(|c| (c.status, c.reason.clone()))
}

fn is_ready(v: &EbsVolume) -> bool {
    condition(v, READY).is_some_and(|(s, _)| s == ConditionStatus::True)
}

fn synced_false_with(v: &EbsVolume, reason: &str) -> bool {
    condition(v, SYNCED).is_some_and(|(s, r)| s == ConditionStatus::False && r == reason)
}

fn synced_message(v: &EbsVolume) -> String {
    v.status
        .as_ref()
        .and_then(|s| find(&s.conditions, SYNCED))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The sum of the mutating calls in `calls`, by action, for messages.
fn mutating(calls: &e2e::Calls) -> BTreeMap<&'static str, u64> {
    MUTATING
        .iter()
        .map(|a| (*a, calls.count(a)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = None;
    for _ in 0..5 {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    match last {
        Some(e) => Err(e.context(format!("{what} failed 5 times"))),
        None => bail!("{what}: no attempt"),
    }
}

// ---------------------------------------------------------------------------------------
// 7. Delete
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_an_attached_volume_detaches_it_waits_for_the_final_snapshot_then_deletes_it()
-> Result<()> {
    let bed = Bed::start("del-snap", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0, "volume-attach": 0, "volume-detach": 0.5 }))
        .await?;
    let instance = bed.instance().await?;
    bed.create(
        "data",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 10,
            "attachments": [{ "instanceId": instance, "device": "/dev/sdf" }],
            "finalSnapshot": true, "forceDetach": true, "tags": { "team": "storage" },
        }),
    )
    .await?;
    let ready = bed
        .wait_for("data", "the volume to be Ready and in use", |v| {
            is_ready(v) && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("in-use")
        })
        .await?;
    let uid = ready.uid().context("no uid")?;
    let volume_id = ready
        .status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .context("no volumeId")?;

    // Hold the snapshot pending: the volume must not be deleted before it completes.
    bed.emu
        .set_transitions(json!({ "snapshot": 100000 }))
        .await?;
    bed.emu.clear_calls().await?;
    bed.delete("data").await?;
    let waiting = bed
        .wait_for(
            "data",
            "the final snapshot to be taken and waited for",
            |v| {
                v.status
                    .as_ref()
                    .is_some_and(|s| s.final_snapshot_id.is_some())
            },
        )
        .await?;
    let snapshot_id = waiting
        .status
        .as_ref()
        .and_then(|s| s.final_snapshot_id.clone())
        .context("no finalSnapshotId")?;
    // Several passes while the snapshot is pending.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = bed.emu.calls().await?;
    ensure!(
        calls.count("DetachVolume") == 1
            && calls.count("CreateSnapshot") == 1
            && calls.count("DeleteVolume") == 0,
        "{calls:?}"
    );
    ensure!(
        bed.api.get_opt("data").await?.is_some(),
        "the object went away while its final snapshot was pending"
    );
    let snapshots = bed.snapshots_of("data").await?;
    ensure!(snapshots.len() == 1, "{snapshots:?}");
    let snapshot = &snapshots[0];
    ensure!(
        snapshot.snapshot_id() == Some(snapshot_id.as_str())
            && snapshot.volume_id() == Some(volume_id.as_str()),
        "{snapshot:?}"
    );
    let tags = tags_of(snapshot.tags());
    ensure!(
        tags.get(UID_TAG) == Some(&uid)
            && tags.get(OWNER_TAG) == Some(&format!("{}/data", bed.ns))
            && tags.get(KIND_TAG).map(String::as_str) == Some("EbsVolume")
            && tags.get(CLUSTER_TAG).map(String::as_str) == Some("default")
            && tags.get(STEP_TAG).map(String::as_str) == Some("final-snapshot"),
        "{tags:?}"
    );

    bed.emu.set_transitions(json!({ "snapshot": 0 })).await?;
    bed.wait_gone("data").await?;
    let calls = bed.emu.calls().await?;
    ensure!(
        calls.count("DetachVolume") == 1
            && calls.count("CreateSnapshot") == 1
            && calls.count("DeleteVolume") == 1,
        "{calls:?}"
    );
    let left = bed.volumes_of("data").await?;
    ensure!(
        left.iter()
            .all(|v| v.state().map(|s| s.as_str()) == Some("deleted")),
        "{left:?}"
    );
    let snapshots = bed.snapshots_of("data").await?;
    ensure!(
        snapshots.len() == 1 && snapshots[0].state().map(|s| s.as_str()) == Some("completed"),
        "{snapshots:?}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_retained_volume_leaves_it_in_aws_and_marks_our_tags_released() -> Result<()> {
    let bed = Bed::start("del-retain", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;
    bed.create(
        "kept",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "deletionPolicy": "Retain" }),
    )
    .await?;
    let ready = bed
        .wait_for("kept", "the volume to be Ready", is_ready)
        .await?;
    let volume_id = ready
        .status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .context("no volumeId")?;

    bed.emu.clear_calls().await?;
    bed.delete("kept").await?;
    bed.wait_gone("kept").await?;
    let calls = bed.emu.calls().await?;
    ensure!(
        calls.count("DeleteVolume") == 0
            && calls.count("DetachVolume") == 0
            && calls.count("CreateSnapshot") == 0,
        "{calls:?}"
    );
    let volumes = bed.volumes_of("kept").await?;
    ensure!(volumes.len() == 1, "{volumes:?}");
    let volume = &volumes[0];
    ensure!(
        volume.volume_id() == Some(volume_id.as_str())
            && volume.state().map(|s| s.as_str()) == Some("available"),
        "{volume:?}"
    );
    let tags = tags_of(volume.tags());
    ensure!(
        tags.get(RELEASED_TAG).map(String::as_str) == Some("true")
            && !tags.contains_key(UID_TAG)
            && tags.get(OWNER_TAG) == Some(&format!("{}/kept", bed.ns))
            && tags.get(CLUSTER_TAG).map(String::as_str) == Some("default"),
        "{tags:?}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_an_object_whose_create_aws_rejected_finishes_at_once_without_mutating_calls()
-> Result<()> {
    let bed = Bed::start("del-never", &[]).await?;
    bed.create(
        "nowhere",
        json!({ "availabilityZone": "us-east-1z", "sizeGiB": 8 }),
    )
    .await?;
    let rejected = bed
        .wait_for("nowhere", "Synced=False AvailabilityZoneNotFound", |v| {
            synced_false_with(v, "AvailabilityZoneNotFound")
        })
        .await?;
    ensure!(
        synced_message(&rejected).contains("us-east-1z"),
        "{:?}",
        rejected.status
    );
    ensure!(bed.emu.calls().await?.count("CreateVolume") == 1);

    bed.emu.clear_calls().await?;
    bed.delete("nowhere").await?;
    bed.wait_gone("nowhere").await?;
    let calls = bed.emu.calls().await?;
    ensure!(mutating(&calls).is_empty(), "{calls:?}");
    ensure!(bed.volumes_of("nowhere").await?.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 8. Bad input the schema cannot catch
// ---------------------------------------------------------------------------------------

/// How long a rejected object is watched for retries.
const STORM_WINDOW: Duration = Duration::from_secs(10);

/// A rejected object goes away on delete without another AWS change.
async fn deleting_it_finishes_without_mutating_calls(bed: &Bed, name: &str) -> Result<()> {
    bed.emu.clear_calls().await?;
    bed.delete(name).await?;
    bed.wait_gone(name).await?;
    let calls = bed.emu.calls().await?;
    ensure!(mutating(&calls).is_empty(), "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_kms_key_that_does_not_exist_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-kms", &[]).await?;
    let key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    bed.create(
        "secret",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key }),
    )
    .await?;
    let v = bed
        .wait_for("secret", "Synced=False KmsKeyNotFound", |v| {
            synced_false_with(v, "KmsKeyNotFound")
        })
        .await?;
    ensure!(
        synced_message(&v).contains("00000000-0000-0000-0000-000000000000"),
        "{:?}",
        v.status
    );
    let describes = bed
        .at_most_one_more("kms:DescribeKey", STORM_WINDOW)
        .await?;
    let calls = bed.emu.calls().await?;
    ensure!(
        describes >= 1 && mutating(&calls).is_empty(),
        "{calls:?}\n{}",
        bed.controller.log()
    );
    ensure!(bed.volumes_of("secret").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "secret").await
}

#[tokio::test]
async fn a_disabled_kms_key_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-kms-off", &[]).await?;
    let kms = aws_sdk_kms::Client::new(&bed.emu.sdk_config(REGION).await);
    let key = kms
        .create_key()
        .description("disabled for a test")
        .send()
        .await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("CreateKey returned no key")?;
    kms.disable_key().key_id(&key_id).send().await?;
    bed.emu.clear_calls().await?;

    bed.create(
        "secret",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key_id }),
    )
    .await?;
    let v = bed
        .wait_for("secret", "Synced=False KmsKeyDisabled", |v| {
            synced_false_with(v, "KmsKeyDisabled")
        })
        .await?;
    ensure!(synced_message(&v).contains(&key_id), "{:?}", v.status);
    bed.at_most_one_more("kms:DescribeKey", STORM_WINDOW)
        .await?;
    let calls = bed.emu.calls().await?;
    ensure!(mutating(&calls).is_empty(), "{calls:?}");
    ensure!(bed.volumes_of("secret").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "secret").await
}

#[tokio::test]
async fn a_snapshot_that_does_not_exist_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-snap", &[]).await?;
    bed.create(
        "restored",
        json!({ "availabilityZone": ZONE, "snapshotId": "snap-0123456789abcdef0" }),
    )
    .await?;
    let v = bed
        .wait_for("restored", "Synced=False SnapshotNotFound", |v| {
            synced_false_with(v, "SnapshotNotFound")
        })
        .await?;
    ensure!(
        synced_message(&v).contains("snap-0123456789abcdef0"),
        "{:?}",
        v.status
    );
    let creates = bed.at_most_one_more("CreateVolume", STORM_WINDOW).await?;
    ensure!(creates <= 2, "{creates} CreateVolume calls");
    ensure!(bed.volumes_of("restored").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "restored").await
}

#[tokio::test]
async fn a_snapshot_in_another_region_ends_in_synced_false_without_a_retry_storm() -> Result<()> {
    let bed = Bed::start("bad-snap-region", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0, "snapshot": 0 }))
        .await?;
    // A real snapshot, but in us-west-2.
    let west = aws_sdk_ec2::Client::new(&bed.emu.sdk_config("us-west-2").await);
    let vol = west
        .create_volume()
        .availability_zone("us-west-2a")
        .size(4)
        .send()
        .await?;
    let snap = west
        .create_snapshot()
        .volume_id(vol.volume_id().context("no volume id")?)
        .send()
        .await?;
    let snapshot_id = snap.snapshot_id().context("no snapshot id")?.to_owned();
    bed.emu.clear_calls().await?;

    bed.create(
        "restored",
        json!({ "availabilityZone": ZONE, "snapshotId": snapshot_id }),
    )
    .await?;
    let v = bed
        .wait_for("restored", "Synced=False SnapshotNotFound", |v| {
            synced_false_with(v, "SnapshotNotFound")
        })
        .await?;
    ensure!(synced_message(&v).contains(&snapshot_id), "{:?}", v.status);
    let creates = bed.at_most_one_more("CreateVolume", STORM_WINDOW).await?;
    ensure!(creates <= 2, "{creates} CreateVolume calls");
    ensure!(bed.volumes_of("restored").await?.is_empty());
    deleting_it_finishes_without_mutating_calls(&bed, "restored").await
}

#[tokio::test]
async fn an_attachment_to_an_instance_that_does_not_exist_ends_in_synced_false_without_a_retry_storm()
-> Result<()> {
    let bed = Bed::start("bad-instance", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;
    bed.create(
        "orphan",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 8,
            "attachments": [{ "instanceId": "i-0123456789abcdef0", "device": "/dev/sdf" }],
        }),
    )
    .await?;
    let v = bed
        .wait_for(
            "orphan",
            "Synced=False InstanceNotFound, Progressing=False Blocked",
            |v| {
                synced_false_with(v, "InstanceNotFound")
                    && v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("available")
                    && condition(v, PROGRESSING)
                        == Some((ConditionStatus::False, "Blocked".to_owned()))
            },
        )
        .await?;
    ensure!(
        synced_message(&v).contains("i-0123456789abcdef0"),
        "{:?}",
        v.status
    );
    let describes = bed
        .at_most_one_more("DescribeInstances", STORM_WINDOW)
        .await?;
    let calls = bed.emu.calls().await?;
    ensure!(
        calls.count("AttachVolume") == 0 && calls.count("CreateVolume") == 1 && describes >= 1,
        "{calls:?}"
    );
    ensure!(bed.volumes_of("orphan").await?.len() == 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 9. SIGKILL between an AWS call and the status write after it
// ---------------------------------------------------------------------------------------

/// How long a slowed call stays in flight: the controller is killed inside it.
const IN_FLIGHT_MS: u64 = 3000;

/// Opens the window on `action` with `fault`, waits until the emulator has the call, then
/// SIGKILLs the controller and starts a new one.
async fn crash_inside(bed: &mut Bed, fault: Fault, action: &str) -> Result<()> {
    let before = bed.emu.calls().await?.count(action);
    bed.emu.inject(fault).await?;
    bed.wait_for_call(action, before + 1).await?;
    bed.crash_and_restart()
}

fn slow(action: &str) -> Fault {
    Fault::slow(action, IN_FLIGHT_MS)
}

async fn killed_during_create_volume_converges_to_one_volume(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-create", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0.5 }))
        .await?;
    // Armed before the object exists, so the very first CreateVolume gets it.
    bed.emu.inject(fault).await?;
    bed.create("one", json!({ "availabilityZone": ZONE, "sizeGiB": 12 }))
        .await?;
    bed.wait_for_call("CreateVolume", 1).await?;
    bed.crash_and_restart()?;

    let ready = bed
        .wait_for("one", "the volume to be Ready", is_ready)
        .await?;
    let volumes = bed.volumes_of("one").await?;
    ensure!(volumes.len() == 1, "{} volumes: {volumes:?}", volumes.len());
    let status = ready.status.clone().unwrap_or_default();
    ensure!(
        status.volume_id.as_deref() == volumes[0].volume_id()
            && status.size_gib == Some(12)
            && status.intents.is_empty(),
        "{status:?}"
    );
    let tags = tags_of(volumes[0].tags());
    ensure!(tags.get(UID_TAG) == ready.uid().as_ref(), "{tags:?}");
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_create_volume_is_in_flight_converges_to_exactly_one_volume()
-> Result<()> {
    killed_during_create_volume_converges_to_one_volume(slow("CreateVolume")).await
}

#[tokio::test]
async fn a_controller_killed_after_create_volume_lost_its_response_converges_to_exactly_one_volume()
-> Result<()> {
    killed_during_create_volume_converges_to_one_volume(Fault::drop_after("CreateVolume")).await
}

async fn killed_during_modify_volume_applies_one_modification(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-modify", &[]).await?;
    bed.emu
        .set_transitions(
            json!({ "volume-create": 0, "volume-modify": 0.5, "volume-optimize": 0.5 }),
        )
        .await?;
    bed.create("grow", json!({ "availabilityZone": ZONE, "sizeGiB": 10 }))
        .await?;
    let ready = bed
        .wait_for("grow", "the volume to be Ready", is_ready)
        .await?;
    let volume_id = ready
        .status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .context("no volumeId")?;

    bed.api
        .patch(
            "grow",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "sizeGiB": 20 } })),
        )
        .await?;
    crash_inside(&mut bed, fault, "ModifyVolume").await?;

    let done = bed
        .wait_for("grow", "the volume to be Ready at 20 GiB", |v| {
            is_ready(v)
                && v.status.as_ref().is_some_and(|s| {
                    s.size_gib == Some(20)
                        && s.modification.as_ref().map(|m| m.state.as_str()) == Some("completed")
                })
        })
        .await?;
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let modifications = bed
        .ec2
        .describe_volumes_modifications()
        .volume_ids(&volume_id)
        .send()
        .await?;
    let modifications = modifications.volumes_modifications();
    ensure!(
        modifications.len() == 1 && modifications[0].target_size() == Some(20),
        "{modifications:?}"
    );
    let status = done.status.unwrap_or_default();
    ensure!(
        status.recent_modifications.len() == 1,
        "the 24-hour history counts {} modifications: {:?}",
        status.recent_modifications.len(),
        status.recent_modifications
    );
    ensure!(bed.volumes_of("grow").await?.len() == 1);
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_modify_volume_is_in_flight_applies_exactly_one_modification()
-> Result<()> {
    killed_during_modify_volume_applies_one_modification(slow("ModifyVolume")).await
}

#[tokio::test]
async fn a_controller_killed_after_modify_volume_lost_its_response_applies_exactly_one_modification()
-> Result<()> {
    killed_during_modify_volume_applies_one_modification(Fault::drop_after("ModifyVolume")).await
}

async fn killed_during_the_final_snapshot_takes_one_snapshot(fault: Fault) -> Result<()> {
    let mut bed = Bed::start("crash-snap", &[]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0, "snapshot": 1, "volume-delete": 0.5 }))
        .await?;
    bed.create(
        "last",
        json!({ "availabilityZone": ZONE, "sizeGiB": 6, "finalSnapshot": true }),
    )
    .await?;
    bed.wait_for("last", "the volume to be Ready", is_ready)
        .await?;

    bed.delete("last").await?;
    crash_inside(&mut bed, fault, "CreateSnapshot").await?;
    bed.wait_gone("last").await?;

    let snapshots = bed.snapshots_of("last").await?;
    let requests = bed.emu.calls().await?.count("CreateSnapshot");
    ensure!(requests == 1, "{requests} CreateSnapshot requests");
    ensure!(
        snapshots.len() == 1,
        "{} snapshots: {snapshots:?}",
        snapshots.len()
    );
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("DeleteVolume") == 1, "{calls:?}");
    let left = bed.volumes_of("last").await?;
    ensure!(
        left.iter()
            .all(|v| v.state().map(|s| s.as_str()) == Some("deleted")),
        "{left:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_while_the_final_snapshot_is_being_requested_takes_exactly_one_snapshot()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(slow("CreateSnapshot")).await
}

#[tokio::test]
async fn a_controller_killed_after_the_final_snapshot_lost_its_response_takes_exactly_one_snapshot()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(Fault::drop_after("CreateSnapshot")).await
}

/// The restarted controller looks for the snapshot by its tags while AWS has not made it
/// visible yet (the first request is still in flight): it must wait for it, not take a
/// second one.
#[tokio::test]
async fn a_restarted_controller_waits_for_a_final_snapshot_it_cannot_see_yet_instead_of_taking_another()
-> Result<()> {
    killed_during_the_final_snapshot_takes_one_snapshot(Fault::slow("CreateSnapshot", 10_000)).await
}

// ---------------------------------------------------------------------------------------
// Batched observation at scale
// ---------------------------------------------------------------------------------------

const SCALE: usize = 1200;
const RESYNC_SECONDS: u64 = 20;

/// `ec2_reconciler_reconciles_total{kind="EbsVolume",outcome="success"}`.
async fn successful_reconciles(controller: &ControllerProcess) -> Result<u64> {
    let (code, body) = controller.get("/metrics").await?;
    ensure!(code == 200, "GET /metrics: HTTP {code}");
    let prefix = r#"ec2_reconciler_reconciles_total{kind="EbsVolume",outcome="success"} "#;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

#[tokio::test]
async fn one_resync_of_1200_volumes_reads_them_in_three_describe_volumes_pages() -> Result<()> {
    let resync = RESYNC_SECONDS.to_string();
    let bed = Bed::start("scale", &["--resync-seconds", &resync]).await?;
    bed.emu
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;

    // 1,200 volumes made directly, tagged with the controller's cluster (so its sweep sees
    // them), adopted by ObserveOnly objects: no mutating call from the controller.
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Volume)
        .tags(Tag::builder().key(CLUSTER_TAG).value("default").build())
        .build();
    let ids: Vec<String> = futures::stream::iter(0..SCALE)
        .map(|_| {
            let ec2 = bed.ec2.clone();
            let tags = tags.clone();
            async move {
                retry("CreateVolume", || async {
                    let out = ec2
                        .create_volume()
                        .availability_zone(ZONE)
                        .size(1)
                        .tag_specifications(tags.clone())
                        .send()
                        .await?;
                    out.volume_id().map(str::to_owned).context("no volume id")
                })
                .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<Result<String>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    ensure!(ids.len() == SCALE);

    let created: Vec<Result<()>> = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let bed = &bed;
            async move {
                let spec = json!({ "volumeId": id, "managementPolicy": "ObserveOnly" });
                retry("creating an EbsVolume", || async {
                    match bed.create(&format!("v{i:04}"), spec.clone()).await {
                        Ok(_) => Ok(()),
                        // A retry after a lost answer finds the first attempt's object.
                        Err(e) if e.to_string().contains("already exists") => Ok(()),
                        Err(e) => Err(e),
                    }
                })
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    created.into_iter().collect::<Result<Vec<()>>>()?;

    let observed = eventually(
        "every EbsVolume to have status.volumeId",
        Duration::from_secs(300),
        || async {
            let list = bed.api.list(&ListParams::default()).await?;
            let done = list
                .items
                .iter()
                .filter(|v| v.status.as_ref().is_some_and(|s| s.volume_id.is_some()))
                .count();
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok((done == SCALE).then_some(done))
        },
    )
    .await
    .with_context(|| bed.controller.log())?;
    ensure!(observed == SCALE);

    // One resync: from now until every object has been reconciled once more.
    bed.emu.clear_calls().await?;
    let start = successful_reconciles(&bed.controller).await?;
    let deadline = Duration::from_secs(RESYNC_SECONDS * 3);
    let after = eventually(
        "every object to be reconciled once more",
        deadline,
        || async {
            let n = successful_reconciles(&bed.controller).await?;
            Ok((n >= start + SCALE as u64).then_some(n))
        },
    )
    .await
    .with_context(|| bed.controller.log())?;
    let calls = bed.emu.calls().await?;
    eprintln!(
        "{} reconciles, AWS calls over the resync: {calls:?}",
        after - start
    );
    let pages = SCALE.div_ceil(500) as u64;
    ensure!(
        calls.count("DescribeVolumes") <= pages,
        "{} DescribeVolumes for {SCALE} volumes (at most {pages} pages): {calls:?}",
        calls.count("DescribeVolumes")
    );
    ensure!(
        calls.count("DescribeVolumesModifications") <= pages,
        "{calls:?}"
    );
    ensure!(mutating(&calls).is_empty(), "{calls:?}");
    let other = calls.total()
        - calls.count("DescribeVolumes")
        - calls.count("DescribeVolumesModifications");
    ensure!(other <= 5, "{other} other AWS calls: {calls:?}");
    Ok(())
}
