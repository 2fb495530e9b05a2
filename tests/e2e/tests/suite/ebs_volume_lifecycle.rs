//! Issue 3, EbsVolume behaviours 1 to 3 end to end (real apiserver, the emulator, the real
//! binary): create every type with its settings, adopt an existing volume, modify in place
//! within AWS's rules; and a Ready object in steady state costs nothing per resync.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{Filter, VolumeType as SdkVolumeType};
use e2e::controller::REGION;
use e2e::{Calls, ControllerProcess, Emulator, eventually, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{
    Condition, ConditionStatus, PROGRESSING, READY, SYNCED, find,
};
use ec2_reconciler::plan::ebs_volume::MODIFICATION_WINDOW;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const ZONE: &str = "us-east-1a";
/// Longer than any test: holds a pending state until the test releases it.
const HOLD: f64 = 86_400.0;

/// One test's world: a namespace, its own emulator and controller.
struct Bed {
    api: Api<EbsVolume>,
    emu: Emulator,
    controller: ControllerProcess,
    ns: String,
}

impl Bed {
    /// A fresh namespace and emulator (pending states instant unless a test holds them) and
    /// a controller watching the namespace.
    async fn start(prefix: &str, extra_args: &[&str]) -> Result<Self> {
        let cp = shared()?;
        let client = cp.client().await?;
        let ns = new_namespace(&client, prefix).await?;
        let emu = Emulator::start().await?;
        emu.set_transitions(json!({
            "volume-create": 0, "volume-modify": 0, "volume-optimize": 0, "snapshot": 0
        }))
        .await?;
        let mut args = vec!["--namespace", ns.as_str()];
        args.extend_from_slice(extra_args);
        let controller = ControllerProcess::spawn(cp, &emu, &args)?;
        Ok(Self {
            api: Api::namespaced(client, &ns),
            emu,
            controller,
            ns,
        })
    }

    /// Replaces the controller: SIGKILL, then a new process with the same arguments.
    fn restart_controller(&mut self, extra_args: &[&str]) -> Result<()> {
        self.controller.kill_9()?;
        let mut args = vec!["--namespace", self.ns.as_str()];
        args.extend_from_slice(extra_args);
        self.controller = ControllerProcess::spawn(shared()?, &self.emu, &args)?;
        Ok(())
    }

    async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.emu.sdk_config(REGION).await)
    }

    async fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.emu.sdk_config(REGION).await)
    }

    async fn create(&self, name: &str, spec: Value) -> Result<EbsVolume> {
        let volume: EbsVolume = serde_json::from_value(json!({
            "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
            "metadata": { "name": name, "namespace": self.ns },
            "spec": spec,
        }))?;
        Ok(self.api.create(&PostParams::default(), &volume).await?)
    }

    /// Merges `spec` into the object's spec; returns the new generation.
    async fn edit(&self, name: &str, spec: Value) -> Result<i64> {
        let patched = self
            .api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await?;
        patched.metadata.generation.context("no generation")
    }

    /// The controller's events about object `name` with `reason` (a repeated event is one
    /// object with a series count, so this counts occurrences).
    async fn events(&self, name: &str, reason: &str) -> Result<u64> {
        let api: Api<Event> = Api::namespaced(self.api.clone().into_client(), &self.ns);
        let events = api.list(&ListParams::default()).await?;
        Ok(events
            .items
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .map(|e| {
                e.series
                    .as_ref()
                    .map_or(1, |s| u64::try_from(s.count).unwrap_or(1))
            })
            .sum())
    }

    /// Waits until `check` holds for the object; on timeout fails with its status and the
    /// controller's log.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&EbsVolume) -> bool,
    ) -> Result<EbsVolume> {
        let check = &check;
        let found = eventually(what, WAIT, || async move {
            let v = self.api.get(name).await?;
            Ok(check(&v).then_some(v))
        })
        .await;
        match found {
            Ok(v) => Ok(v),
            Err(e) => Err(e.context(self.dump(name).await)),
        }
    }

    async fn wait_ready(&self, name: &str) -> Result<EbsVolume> {
        self.wait_for(name, &format!("{name} to be Ready"), |v| {
            is(v, READY, ConditionStatus::True)
        })
        .await
    }

    /// The object's status and the controller's log, for failure messages.
    async fn dump(&self, name: &str) -> String {
        let status = self
            .api
            .get(name)
            .await
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v.status).ok());
        format!(
            "{name} status: {}\ncontroller log:\n{}",
            status.unwrap_or_default(),
            self.controller.log()
        )
    }

    /// Successful and failed EbsVolume reconciles so far, from /metrics.
    async fn reconciles(&self) -> Result<u64> {
        let (code, body) = self.controller.get("/metrics").await?;
        ensure!(code == 200, "GET /metrics: HTTP {code}: {body}");
        metric_sum(
            &body,
            "ec2_reconciler_reconciles_total{",
            "kind=\"EbsVolume\"",
        )
    }

    /// Waits until the controller has reconciled `n` more times than `since`.
    async fn wait_reconciles(&self, since: u64, n: u64, name: &str) -> Result<u64> {
        let found = eventually(
            &format!("{n} more reconciles than {since}"),
            WAIT,
            || async move {
                let now = self.reconciles().await?;
                Ok((now >= since + n).then_some(now))
            },
        )
        .await;
        match found {
            Ok(v) => Ok(v),
            Err(e) => Err(e.context(self.dump(name).await)),
        }
    }
}

/// Sum of the samples of the metric lines starting with `prefix` and containing `label`.
fn metric_sum(body: &str, prefix: &str, label: &str) -> Result<u64> {
    let mut sum = 0;
    for line in body.lines() {
        if line.starts_with(prefix) && line.contains(label) {
            let value = line
                .rsplit(' ')
                .next()
                .with_context(|| format!("no value in {line}"))?;
            sum += value
                .parse::<f64>()
                .with_context(|| format!("value of {line}"))? as u64;
        }
    }
    Ok(sum)
}

fn condition<'a>(v: &'a EbsVolume, type_: &str) -> Option<&'a Condition> {
    v.status.as_ref().and_then(|s| find(&s.conditions, type_))
}

fn is(v: &EbsVolume, type_: &str, status: ConditionStatus) -> bool {
    condition(v, type_).is_some_and(|c| status == c.status)
}

/// `type` = `status` with `reason`, as of the object's current generation.
fn has_condition(v: &EbsVolume, type_: &str, status: ConditionStatus, reason: &str) -> bool {
    condition(v, type_).is_some_and(|c| {
        c.status == status && c.reason == reason && c.observed_generation == v.metadata.generation
    })
}

/// The requests that change something in AWS (everything but reads).
fn mutating(calls: &Calls) -> BTreeMap<String, u64> {
    const READS: [&str; 6] = [
        "Describe",
        "Get",
        "kms:Describe",
        "kms:Get",
        "kms:List",
        "sts:",
    ];
    calls
        .calls
        .iter()
        .filter(|(action, _)| !READS.iter().any(|r| action.starts_with(r)))
        .map(|(action, n)| (action.clone(), *n))
        .collect()
}

fn volume_id(v: &EbsVolume) -> Result<String> {
    v.status
        .as_ref()
        .and_then(|s| s.volume_id.clone())
        .with_context(|| format!("{} has no status.volumeId", v.name_any()))
}

/// A volume made directly in AWS (outside the controller), `available`.
async fn outside_volume(
    ec2: &aws_sdk_ec2::Client,
    size: i32,
    tags: &[(&str, &str)],
) -> Result<String> {
    let mut req = ec2
        .create_volume()
        .availability_zone(ZONE)
        .size(size)
        .volume_type(SdkVolumeType::Gp3);
    if !tags.is_empty() {
        let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Volume);
        for (k, v) in tags {
            spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        req = req.tag_specifications(spec.build());
    }
    let id = req
        .send()
        .await?
        .volume_id()
        .context("CreateVolume returned no id")?
        .to_owned();
    eventually(&format!("{id} to be available"), WAIT, || async {
        let state = describe(ec2, &id)
            .await?
            .state()
            .map(|s| s.as_str().to_owned());
        Ok((state.as_deref() == Some("available")).then_some(()))
    })
    .await?;
    Ok(id)
}

async fn describe(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<aws_sdk_ec2::types::Volume> {
    ec2.describe_volumes()
        .volume_ids(id)
        .send()
        .await?
        .volumes()
        .first()
        .cloned()
        .with_context(|| format!("{id} not found"))
}

async fn tags_of(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<BTreeMap<String, String>> {
    Ok(describe(ec2, id)
        .await?
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect())
}

/// Every modification AWS knows for the volume (oldest first by start time).
async fn modifications(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Vec<aws_sdk_ec2::types::VolumeModification>> {
    let mut all = ec2
        .describe_volumes_modifications()
        .filters(Filter::builder().name("volume-id").values(id).build())
        .send()
        .await?
        .volumes_modifications()
        .to_vec();
    all.sort_by_key(|m| m.start_time().map(|t| t.secs()));
    Ok(all)
}

// ---------------------------------------------------------------------------------------
// 1. Create
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_volume_type_is_created_with_its_settings_and_becomes_ready() -> Result<()> {
    let bed = Bed::start("ebs-types", &[]).await?;
    // name, spec, expected (type, size, iops, throughput, multi-attach)
    type Expected = (&'static str, i64, Option<i64>, Option<i64>, bool);
    let cases: Vec<(&str, Value, Expected)> = vec![
        (
            "gp3",
            json!({"volumeType": "gp3", "sizeGiB": 100, "iops": 6000, "throughputMiBps": 500}),
            ("gp3", 100, Some(6000), Some(500), false),
        ),
        (
            "gp2",
            json!({"volumeType": "gp2", "sizeGiB": 8}),
            ("gp2", 8, None, None, false),
        ),
        (
            "io1",
            json!({"volumeType": "io1", "sizeGiB": 100, "iops": 1000, "multiAttachEnabled": true}),
            ("io1", 100, Some(1000), None, true),
        ),
        (
            "io2",
            json!({"volumeType": "io2", "sizeGiB": 100, "iops": 2000, "multiAttachEnabled": true}),
            ("io2", 100, Some(2000), None, true),
        ),
        (
            "st1",
            json!({"volumeType": "st1", "sizeGiB": 125}),
            ("st1", 125, None, None, false),
        ),
        (
            "sc1",
            json!({"volumeType": "sc1", "sizeGiB": 125}),
            ("sc1", 125, None, None, false),
        ),
        (
            "standard",
            json!({"volumeType": "standard", "sizeGiB": 10}),
            ("standard", 10, None, None, false),
        ),
    ];
    for (name, spec, _) in &cases {
        let mut spec = spec.clone();
        spec["availabilityZone"] = json!(ZONE);
        bed.create(name, spec).await?;
    }
    let ec2 = bed.ec2().await;
    for (name, _, (ty, size, iops, throughput, multi)) in &cases {
        let v = bed.wait_ready(name).await?;
        let s = v.status.clone().unwrap_or_default();
        let id = volume_id(&v)?;
        ensure!(
            has_condition(&v, READY, ConditionStatus::True, "Available")
                && has_condition(&v, SYNCED, ConditionStatus::True, "Synced")
                && has_condition(&v, PROGRESSING, ConditionStatus::False, "UpToDate"),
            "{name}: {s:?}"
        );
        ensure!(s.state.as_deref() == Some("available"), "{name}: {s:?}");
        ensure!(
            s.volume_type.map(|t| t.as_str()) == Some(*ty) && s.size_gib == Some(*size),
            "{name}: {s:?}"
        );
        ensure!(
            s.multi_attach_enabled == Some(*multi) && s.encrypted == Some(false),
            "{name}: {s:?}"
        );
        if iops.is_some() {
            ensure!(s.iops == *iops, "{name}: iops {:?}", s.iops);
        }
        ensure!(
            s.throughput_mibps == *throughput || throughput.is_none(),
            "{name}: throughput {:?}",
            s.throughput_mibps
        );
        // What AWS itself says, not only what the controller copied.
        let aws = describe(&ec2, &id).await?;
        ensure!(
            aws.volume_type().map(|t| t.as_str()) == Some(*ty)
                && i64::from(aws.size().unwrap_or_default()) == *size
                && aws.multi_attach_enabled().unwrap_or(false) == *multi,
            "{name}: AWS has {aws:?}"
        );
        if let Some(iops) = iops {
            ensure!(
                aws.iops().map(i64::from) == Some(*iops),
                "{name}: AWS has {aws:?}"
            );
        }
        if let Some(t) = throughput {
            ensure!(
                aws.throughput().map(i64::from) == Some(*t),
                "{name}: AWS has {aws:?}"
            );
        }
    }
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("CreateVolume") == 7, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 0, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_kms_key_given_by_id_arn_or_alias_encrypts_the_volume_with_the_resolved_key_arn()
-> Result<()> {
    let bed = Bed::start("ebs-kms", &[]).await?;
    let kms = bed.kms().await;
    let key = kms.create_key().description("ebs e2e").send().await?;
    let meta = key.key_metadata().context("no key metadata")?;
    let key_id = meta.key_id().to_owned();
    let key_arn = meta.arn().context("no key ARN")?.to_owned();
    kms.create_alias()
        .alias_name("alias/ebs-e2e")
        .target_key_id(&key_id)
        .send()
        .await?;
    ensure!(key_arn.ends_with(&key_id), "{key_arn} / {key_id}");

    let refs = [
        ("by-id", key_id.clone()),
        ("by-arn", key_arn.clone()),
        ("by-alias", "alias/ebs-e2e".to_owned()),
    ];
    for (name, key) in &refs {
        bed.create(
            name,
            json!({"availabilityZone": ZONE, "sizeGiB": 10, "encrypted": true, "kmsKeyId": key}),
        )
        .await?;
    }
    let ec2 = bed.ec2().await;
    for (name, _) in &refs {
        let v = bed.wait_ready(name).await?;
        let s = v.status.clone().unwrap_or_default();
        ensure!(
            has_condition(&v, READY, ConditionStatus::True, "Available")
                && has_condition(&v, SYNCED, ConditionStatus::True, "Synced"),
            "{name}: {s:?}"
        );
        ensure!(
            s.encrypted == Some(true) && s.kms_key_id.as_deref() == Some(key_arn.as_str()),
            "{name}: expected kmsKeyId {key_arn}, status {s:?}"
        );
        let aws = describe(&ec2, &volume_id(&v)?).await?;
        ensure!(
            aws.encrypted() == Some(true) && aws.kms_key_id() == Some(key_arn.as_str()),
            "{name}: AWS has {aws:?}"
        );
    }
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("CreateVolume") == 3, "{calls:?}");
    ensure!(calls.count("kms:DescribeKey") >= 3, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_volume_is_created_from_a_snapshot_with_the_snapshots_size() -> Result<()> {
    let bed = Bed::start("ebs-snap", &[]).await?;
    let ec2 = bed.ec2().await;
    let source = outside_volume(&ec2, 7, &[]).await?;
    let snapshot_id = ec2
        .create_snapshot()
        .volume_id(&source)
        .send()
        .await?
        .snapshot_id()
        .context("no snapshot id")?
        .to_owned();
    eventually("the snapshot to complete", WAIT, || async {
        let out = ec2
            .describe_snapshots()
            .snapshot_ids(&snapshot_id)
            .send()
            .await?;
        let state = out
            .snapshots()
            .first()
            .and_then(|s| s.state())
            .map(|s| s.as_str().to_owned());
        Ok((state.as_deref() == Some("completed")).then_some(()))
    })
    .await?;

    bed.create(
        "restored",
        json!({"availabilityZone": ZONE, "snapshotId": snapshot_id}),
    )
    .await?;
    let v = bed.wait_ready("restored").await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(
        s.size_gib == Some(7) && s.state.as_deref() == Some("available"),
        "{s:?}"
    );
    let aws = describe(&ec2, &volume_id(&v)?).await?;
    ensure!(
        aws.snapshot_id() == Some(snapshot_id.as_str()) && aws.size() == Some(7),
        "AWS has {aws:?}"
    );
    let calls = bed.emu.calls().await?;
    // One by this test (the source), one by the controller.
    ensure!(calls.count("CreateVolume") == 2, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 0, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn ready_stays_false_while_the_volume_is_creating_and_turns_true_once_available() -> Result<()>
{
    let bed = Bed::start("ebs-creating", &[]).await?;
    bed.emu
        .set_transitions(json!({"volume-create": HOLD}))
        .await?;
    bed.create("slow", json!({"availabilityZone": ZONE, "sizeGiB": 10}))
        .await?;

    let creating = bed
        .wait_for("slow", "the volume to be seen creating", |v| {
            v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("creating")
                && has_condition(v, READY, ConditionStatus::False, "Creating")
        })
        .await?;
    ensure!(
        has_condition(&creating, PROGRESSING, ConditionStatus::True, "Creating"),
        "{:?}",
        creating.status
    );
    // A few more passes while AWS is still creating: still not Ready, no second create.
    let before = bed.reconciles().await?;
    bed.wait_reconciles(before, 2, "slow").await?;
    let still = bed.api.get("slow").await?;
    ensure!(
        has_condition(&still, READY, ConditionStatus::False, "Creating"),
        "{:?}",
        still.status
    );

    bed.emu.set_transitions(json!({"volume-create": 0})).await?;
    let ready = bed.wait_ready("slow").await?;
    ensure!(
        has_condition(&ready, READY, ConditionStatus::True, "Available")
            && has_condition(&ready, PROGRESSING, ConditionStatus::False, "UpToDate"),
        "{:?}",
        ready.status
    );
    ensure!(volume_id(&ready)? == volume_id(&creating)?);
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("CreateVolume") == 1, "{calls:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Adopt
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn adopting_a_volume_under_manage_creates_nothing_and_converges_it_to_the_spec() -> Result<()>
{
    let bed = Bed::start("ebs-adopt", &[]).await?;
    let ec2 = bed.ec2().await;
    let id = outside_volume(&ec2, 20, &[("origin", "outside")]).await?;
    bed.emu.clear_calls().await?;

    bed.create(
        "adopted",
        json!({"volumeId": id, "volumeType": "gp3", "sizeGiB": 30, "tags": {"team": "storage"}}),
    )
    .await?;
    let v = bed
        .wait_for("adopted", "the adopted volume to be Ready at 30 GiB", |v| {
            is(v, READY, ConditionStatus::True)
                && v.status.as_ref().and_then(|s| s.size_gib) == Some(30)
        })
        .await?;
    ensure!(volume_id(&v)? == id, "{:?}", v.status);
    ensure!(
        has_condition(&v, SYNCED, ConditionStatus::True, "Synced"),
        "{:?}",
        v.status
    );
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("CreateVolume") == 0, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let tags = tags_of(&ec2, &id).await?;
    ensure!(
        tags.get("team").map(String::as_str) == Some("storage"),
        "{tags:?}"
    );
    ensure!(
        tags.get("origin").map(String::as_str) == Some("outside"),
        "a tag set outside was touched: {tags:?}"
    );
    ensure!(describe(&ec2, &id).await?.size() == Some(30));
    Ok(())
}

#[tokio::test]
async fn adopting_a_volume_under_observe_only_changes_nothing_and_reports_the_differences()
-> Result<()> {
    let bed = Bed::start("ebs-observe", &["--resync-seconds", "3"]).await?;
    let ec2 = bed.ec2().await;
    let id = outside_volume(&ec2, 20, &[("origin", "outside")]).await?;
    let tags_before = tags_of(&ec2, &id).await?;
    bed.emu.clear_calls().await?;

    bed.create(
        "watched",
        json!({"volumeId": id, "volumeType": "gp3", "sizeGiB": 30,
               "tags": {"team": "storage"}, "managementPolicy": "ObserveOnly"}),
    )
    .await?;
    let size_change = format!("modify {id}: size 20 -> 30 GiB");
    let v = bed
        .wait_for("watched", "status.plan to list the size change", |v| {
            v.status
                .as_ref()
                .is_some_and(|s| s.plan.contains(&size_change))
        })
        .await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(
        s.plan
            .iter()
            .any(|p| p.starts_with(&format!("tag {id}:")) && p.contains("team=storage")),
        "the missing tag is not in the plan: {:?}",
        s.plan
    );
    ensure!(
        has_condition(&v, READY, ConditionStatus::False, "OutOfSync")
            && has_condition(&v, PROGRESSING, ConditionStatus::False, "ObserveOnly"),
        "{s:?}"
    );
    ensure!(
        s.volume_id.as_deref() == Some(id.as_str()) && s.size_gib == Some(20),
        "{s:?}"
    );

    // Several more passes (resync every 3 s): still nothing mutating.
    let before = bed.reconciles().await?;
    bed.wait_reconciles(before, 3, "watched").await?;
    let calls = bed.emu.calls().await?;
    ensure!(
        mutating(&calls).is_empty(),
        "ObserveOnly called AWS to change something: {calls:?}"
    );
    ensure!(tags_of(&ec2, &id).await? == tags_before);
    ensure!(describe(&ec2, &id).await?.size() == Some(20));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Modify in place
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn one_spec_edit_of_size_iops_and_throughput_makes_exactly_one_modify_volume_call()
-> Result<()> {
    let bed = Bed::start("ebs-modify", &[]).await?;
    bed.create(
        "grow",
        json!({"availabilityZone": ZONE, "sizeGiB": 100, "iops": 3000, "throughputMiBps": 125}),
    )
    .await?;
    let v = bed.wait_ready("grow").await?;
    let id = volume_id(&v)?;
    ensure!(bed.emu.calls().await?.count("ModifyVolume") == 0);

    bed.edit(
        "grow",
        json!({"sizeGiB": 200, "iops": 6000, "throughputMiBps": 250}),
    )
    .await?;
    let v = bed
        .wait_for("grow", "the volume to be Ready with the new values", |v| {
            has_condition(v, READY, ConditionStatus::True, "Available")
                && v.status.as_ref().is_some_and(|s| {
                    s.size_gib == Some(200)
                        && s.iops == Some(6000)
                        && s.throughput_mibps == Some(250)
                })
        })
        .await?;
    ensure!(
        v.status.as_ref().is_some_and(|s| s.plan.is_empty()),
        "{:?}",
        v.status
    );
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let events = bed.events("grow", "ModifyingVolume").await?;
    ensure!(events == 1, "{events} ModifyingVolume events");
    let mods = modifications(&bed.ec2().await, &id).await?;
    ensure!(mods.len() == 1, "{mods:?}");
    let m = &mods[0];
    ensure!(
        m.target_size() == Some(200)
            && m.target_iops() == Some(6000)
            && m.target_throughput() == Some(250),
        "{m:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_type_change_from_gp3_to_io2_sends_the_iops_with_it() -> Result<()> {
    let bed = Bed::start("ebs-retype", &[]).await?;
    bed.create(
        "retype",
        json!({"availabilityZone": ZONE, "sizeGiB": 100, "iops": 5000}),
    )
    .await?;
    let v = bed.wait_ready("retype").await?;
    let id = volume_id(&v)?;

    // Only the type changes in the spec; without iops in the call AWS would reset them to
    // 3000, so the volume ending at 5000 proves they travelled with the type.
    bed.edit("retype", json!({"volumeType": "io2"})).await?;
    let v = bed
        .wait_for("retype", "the volume to be Ready as io2", |v| {
            has_condition(v, READY, ConditionStatus::True, "Available")
                && v.status
                    .as_ref()
                    .is_some_and(|s| s.volume_type.map(|t| t.as_str()) == Some("io2"))
        })
        .await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(s.iops == Some(5000) && s.size_gib == Some(100), "{s:?}");
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let mods = modifications(&bed.ec2().await, &id).await?;
    ensure!(mods.len() == 1, "{mods:?}");
    ensure!(
        mods[0].target_volume_type().map(|t| t.as_str()) == Some("io2")
            && mods[0].target_iops() == Some(5000),
        "{:?}",
        mods[0]
    );
    Ok(())
}

#[tokio::test]
async fn a_running_modification_is_waited_through_and_a_later_spec_edit_follows_in_one_call()
-> Result<()> {
    let bed = Bed::start("ebs-serial", &[]).await?;
    bed.create("serial", json!({"availabilityZone": ZONE, "sizeGiB": 100}))
        .await?;
    let v = bed.wait_ready("serial").await?;
    let id = volume_id(&v)?;

    bed.emu
        .set_transitions(json!({"volume-modify": HOLD, "volume-optimize": HOLD}))
        .await?;
    bed.edit("serial", json!({"sizeGiB": 150})).await?;
    let v = bed
        .wait_for("serial", "the modification to be seen modifying", |v| {
            has_condition(v, READY, ConditionStatus::False, "Modifying")
                && v.status
                    .as_ref()
                    .and_then(|s| s.modification.as_ref())
                    .is_some_and(|m| m.state == "modifying")
        })
        .await?;
    ensure!(
        has_condition(&v, PROGRESSING, ConditionStatus::True, "Modifying"),
        "{:?}",
        v.status
    );
    ensure!(bed.emu.calls().await?.count("ModifyVolume") == 1);

    // The spec changes again while AWS is modifying: nothing is sent, the condition says
    // another modification follows.
    bed.edit("serial", json!({"sizeGiB": 200, "iops": 4000}))
        .await?;
    bed.wait_for(
        "serial",
        "the condition to announce the next modification",
        |v| {
            has_condition(v, PROGRESSING, ConditionStatus::True, "Modifying")
                && condition(v, PROGRESSING)
                    .is_some_and(|c| c.message.contains("the next modification follows"))
        },
    )
    .await?;
    let before = bed.reconciles().await?;
    bed.wait_reconciles(before, 2, "serial").await?;
    ensure!(bed.emu.calls().await?.count("ModifyVolume") == 1);

    // modifying -> optimizing: still waiting.
    bed.emu
        .set_transitions(json!({"volume-modify": 0, "volume-optimize": HOLD}))
        .await?;
    bed.wait_for("serial", "the modification to be seen optimizing", |v| {
        has_condition(v, READY, ConditionStatus::False, "Optimizing")
            && has_condition(v, PROGRESSING, ConditionStatus::True, "Optimizing")
            && v.status
                .as_ref()
                .and_then(|s| s.modification.as_ref())
                .is_some_and(|m| m.state == "optimizing")
    })
    .await?;
    let before = bed.reconciles().await?;
    bed.wait_reconciles(before, 2, "serial").await?;
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");

    // Completed: the second change goes out in one more call.
    bed.emu
        .set_transitions(json!({"volume-optimize": 0}))
        .await?;
    let v = bed
        .wait_for(
            "serial",
            "the volume to be Ready at 200 GiB, 4000 iops",
            |v| {
                has_condition(v, READY, ConditionStatus::True, "Available")
                    && v.status
                        .as_ref()
                        .is_some_and(|s| s.size_gib == Some(200) && s.iops == Some(4000))
            },
        )
        .await?;
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 2, "{calls:?}");
    let mods = modifications(&bed.ec2().await, &id).await?;
    ensure!(
        mods.len() == 2
            && mods[0].target_size() == Some(150)
            && mods[1].target_size() == Some(200)
            && mods[1].target_iops() == Some(4000),
        "{mods:?}"
    );
    ensure!(
        v.status
            .as_ref()
            .is_some_and(|s| s.recent_modifications.len() == 2),
        "{:?}",
        v.status
    );
    Ok(())
}

#[tokio::test]
async fn a_fifth_modification_within_24_hours_waits_and_says_until_when_even_after_a_restart()
-> Result<()> {
    let mut bed = Bed::start("ebs-quota", &[]).await?;
    bed.create("quota", json!({"availabilityZone": ZONE, "sizeGiB": 10}))
        .await?;
    bed.wait_ready("quota").await?;

    for size in 11..=14 {
        bed.edit("quota", json!({ "sizeGiB": size })).await?;
        bed.wait_for(
            "quota",
            &format!("the volume to be Ready at {size} GiB"),
            |v| {
                has_condition(v, READY, ConditionStatus::True, "Available")
                    && v.status.as_ref().and_then(|s| s.size_gib) == Some(size)
            },
        )
        .await?;
    }
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 4, "{calls:?}");

    // The fifth change waits for the oldest of the four to leave the 24-hour window.
    bed.edit("quota", json!({ "sizeGiB": 15 })).await?;
    let v = bed
        .wait_for("quota", "the quota to be reported", |v| {
            has_condition(v, READY, ConditionStatus::False, "ModificationQuotaReached")
        })
        .await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(s.recent_modifications.len() == 4, "{s:?}");
    let until = (s.recent_modifications[0] + MODIFICATION_WINDOW).to_rfc3339();
    let expected = format!("the next may start at {until}");
    for type_ in [READY, PROGRESSING] {
        let c = condition(&v, type_).context("condition missing")?;
        ensure!(
            c.message.contains(&expected),
            "{type_} says {:?}, expected it to contain {expected:?}",
            c.message
        );
    }
    ensure!(
        has_condition(
            &v,
            PROGRESSING,
            ConditionStatus::True,
            "ModificationQuotaReached"
        ),
        "{s:?}"
    );
    ensure!(s.size_gib == Some(14), "{s:?}");
    ensure!(bed.emu.calls().await?.count("ModifyVolume") == 4);

    // A new process knows the four from status alone (AWS reports only the latest one).
    bed.restart_controller(&[])?;
    bed.controller.wait_ready(WAIT).await?;
    let generation = bed.edit("quota", json!({ "sizeGiB": 16 })).await?;
    let v = bed
        .wait_for(
            "quota",
            "the restarted controller to report the quota",
            |v| {
                has_condition(v, READY, ConditionStatus::False, "ModificationQuotaReached")
                    && v.metadata.generation == Some(generation)
            },
        )
        .await?;
    let c = condition(&v, READY).context("Ready missing")?;
    ensure!(c.message.contains(&expected), "{c:?}");
    let before = bed.reconciles().await?;
    bed.wait_reconciles(before, 1, "quota").await?;
    let calls = bed.emu.calls().await?;
    ensure!(calls.count("ModifyVolume") == 4, "{calls:?}");
    ensure!(
        describe(&bed.ec2().await, &volume_id(&v)?).await?.size() == Some(14),
        "the volume grew past the quota"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Steady state
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_ready_unchanged_volume_costs_no_status_write_and_no_mutating_call_per_resync()
-> Result<()> {
    let bed = Bed::start("ebs-steady", &["--resync-seconds", "3"]).await?;
    bed.create(
        "steady",
        json!({"availabilityZone": ZONE, "sizeGiB": 10, "tags": {"team": "storage"}}),
    )
    .await?;
    bed.wait_for("steady", "the volume to be Ready and up to date", |v| {
        has_condition(v, READY, ConditionStatus::True, "Available")
            && has_condition(v, PROGRESSING, ConditionStatus::False, "UpToDate")
    })
    .await?;
    // Let the pass that follows the last change settle before measuring.
    let settled = bed.reconciles().await?;
    bed.wait_reconciles(settled, 1, "steady").await?;

    let before_version = bed.api.get("steady").await?.resource_version();
    let before_calls = bed.emu.calls().await?;
    let before = bed.reconciles().await?;
    // Past two resyncs (every 3 s): at least two more reconciles of the object.
    bed.wait_reconciles(before, 2, "steady").await?;
    let after_version = bed.api.get("steady").await?.resource_version();
    let after_calls = bed.emu.calls().await?;

    ensure!(
        before_version == after_version,
        "the status was written in steady state ({before_version:?} -> {after_version:?}):\n{}",
        bed.dump("steady").await
    );
    ensure!(
        mutating(&before_calls) == mutating(&after_calls),
        "mutating calls in steady state: {before_calls:?} -> {after_calls:?}"
    );
    ensure!(
        after_calls.count("DescribeVolumes") > before_calls.count("DescribeVolumes"),
        "no observation happened over the resyncs: {after_calls:?}"
    );
    Ok(())
}
