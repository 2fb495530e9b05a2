//! Health as GitOps tools read it (issue 9, item 4): objects of every kind, driven by the
//! controller into each phase on the test bed, fetched from the API server and handed to
//! `tests/health`, which runs kstatus (what Flux's health checks use) and the chart's Argo
//! CD health scripts in gopher-lua (the Lua engine Argo CD embeds). Each test asserts what
//! an operator expects: InProgress/Progressing while work goes on, Current/Healthy once done,
//! Failed/Degraded when nothing goes on until something outside changes, and
//! Terminating/Progressing while being deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use e2e::bed::{ZONE, has_current_condition, is, is_ready};
use e2e::paths::{argocd_health_script, health_helper, repo_root};
use e2e::{Bed, Fault};
use ec2_reconciler::api::conditions::{
    ConditionStatus, PROGRESSING, READY, RECONCILING, STALLED, find,
};
use ec2_reconciler::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use ec2_reconciler::reconcile::ManagedKind;
use kube::api::{Api, ApiResource, DynamicObject};
use serde::Deserialize;
use serde_json::{Value, json};

/// Long enough that a pending state lasts for the whole test.
const HOLD: f64 = 86_400.0;
/// How long a slowed AWS call stays in flight: the object is fetched meanwhile.
const IN_FLIGHT_MS: u64 = 6_000;
const KINDS: [&str; 3] = ["EbsVolume", "AmiImage", "EncryptedVolumeMigration"];

/// One tool's answer, as the helper prints it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct Verdict {
    status: String,
    message: String,
}

/// The helper's line for one object.
#[derive(Debug, Deserialize)]
struct Verdicts {
    kind: String,
    name: String,
    kstatus: Option<Verdict>,
    argo: Option<Verdict>,
    lua: Option<Verdict>,
    error: Option<String>,
}

/// What an operator expects in one phase: kstatus's status, what Argo CD shows, and what
/// the script itself answers (the same, but for an object being deleted, whose script Argo
/// CD does not run).
struct Expected {
    kstatus: &'static str,
    argo: &'static str,
    lua: &'static str,
}

fn expected(phase: Phase) -> Expected {
    let (kstatus, argo, lua) = match phase {
        Phase::Creating | Phase::Modifying => ("InProgress", "Progressing", "Progressing"),
        Phase::Ready => ("Current", "Healthy", "Healthy"),
        Phase::Failed => ("Failed", "Degraded", "Degraded"),
        Phase::Deleting => ("Terminating", "Progressing", "Progressing"),
        // Nothing is applied on purpose: Argo CD has a word for it, kstatus does not (it
        // reads `Ready=False`).
        Phase::ObserveOnlyDrift => ("InProgress", "Suspended", "Suspended"),
    };
    Expected { kstatus, argo, lua }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Creating,
    Ready,
    Modifying,
    Failed,
    Deleting,
    /// `managementPolicy: ObserveOnly` and AWS differs from the spec.
    ObserveOnlyDrift,
}

/// An object as the API server had it in one phase.
struct Seen {
    phase: Phase,
    object: Value,
}

/// The object `name` of kind `K` as the API server serves it (every field, not just those
/// the Rust type knows).
async fn fetch<K: ManagedKind>(bed: &Bed, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        bed.client()?,
        bed.namespace()?,
        &ApiResource::erase::<K>(&()),
    );
    let obj = api
        .get(name)
        .await
        .with_context(|| format!("fetching {} {name}", K::KIND))?;
    Ok(serde_json::to_value(obj)?)
}

async fn seen<K: ManagedKind>(bed: &Bed, phase: Phase, name: &str) -> Result<Seen> {
    Ok(Seen {
        phase,
        object: fetch::<K>(bed, name).await?,
    })
}

/// Runs the helper on `objects`; one answer per object, in order.
fn evaluate(objects: &[&Value]) -> Result<Vec<Verdicts>> {
    let helper = health_helper()?;
    let mut child = Command::new(&helper)
        .arg("-script")
        .arg(argocd_health_script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", helper.display()))?;
    let input = serde_json::to_vec(objects)?;
    child
        .stdin
        .take()
        .context("no stdin for the helper")?
        .write_all(&input)?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdicts = stdout
        .lines()
        .map(|line| serde_json::from_str::<Verdicts>(line).with_context(|| line.to_owned()))
        .collect::<Result<Vec<_>>>()?;
    if let Some(failed) = verdicts.iter().find(|v| v.error.is_some()) {
        bail!(
            "the helper could not evaluate {} {}: {:?}",
            failed.kind,
            failed.name,
            failed.error
        );
    }
    ensure!(
        out.status.success() && verdicts.len() == objects.len(),
        "{} exited with {} and {} answers for {} objects; stderr: {}",
        helper.display(),
        out.status,
        verdicts.len(),
        objects.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(verdicts)
}

/// The object's condition `type_` as fetched: (reason, message).
fn condition_of(object: &Value, type_: &str) -> Option<(String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// The status of the object's condition `type_` as fetched.
fn status_of<'a>(object: &'a Value, type_: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// Evaluates every object seen and checks each answer against [`expected`]; a failure lists
/// every mismatch with the object.
fn check(kind: &str, seen: &[Seen]) -> Result<()> {
    let objects: Vec<&Value> = seen.iter().map(|s| &s.object).collect();
    let verdicts = evaluate(&objects)?;
    let mut wrong = Vec::new();
    for (s, v) in seen.iter().zip(&verdicts) {
        // The table, for `--nocapture`.
        eprintln!(
            "{kind} {:?} ({}): kstatus {:?}, argo {:?}, lua {:?}",
            s.phase, v.name, v.kstatus, v.argo, v.lua
        );
        let want = expected(s.phase);
        let status = |v: &Option<Verdict>| v.as_ref().map(|v| v.status.clone());
        let got = (status(&v.kstatus), status(&v.argo), status(&v.lua));
        let wanted = (
            Some(want.kstatus.to_owned()),
            Some(want.argo.to_owned()),
            Some(want.lua.to_owned()),
        );
        if v.kind != kind || got != wanted {
            wrong.push(format!(
                "{kind} {:?} ({}): kstatus/argo/lua {got:?}, expected {wanted:?}; {v:?}; object: {}",
                s.phase, v.name, s.object
            ));
            continue;
        }
        // A failure names its cause to both tools: the Stalled condition's reason and message;
        // and nothing claims to be in progress beside it.
        if s.phase == Phase::Failed {
            for type_ in [PROGRESSING, RECONCILING] {
                if status_of(&s.object, type_) != Some("False") {
                    wrong.push(format!(
                        "{kind} failed ({}): {type_} is not False beside Stalled: {}",
                        v.name, s.object["status"]
                    ));
                }
            }
            let (reason, message) = condition_of(&s.object, STALLED).unwrap_or_default();
            let kstatus_message = v.kstatus.as_ref().map(|k| k.message.as_str());
            let lua_message = v.lua.as_ref().map(|l| l.message.clone());
            if reason.is_empty()
                || kstatus_message != Some(message.as_str())
                || lua_message != Some(format!("{reason}: {message}"))
            {
                wrong.push(format!(
                    "{kind} {:?} ({}): messages do not name Stalled {reason:?} {message:?}: {v:?}",
                    s.phase, v.name
                ));
            }
        }
        // Argo CD answers for an object being deleted before any script runs.
        if s.phase == Phase::Deleting
            && v.argo.as_ref().map(|a| a.message.as_str()) != Some("Pending deletion")
        {
            wrong.push(format!("{kind} deleting ({}): {v:?}", v.name));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

fn is_current<K: ManagedKind>(obj: &K, type_: &str, status: ConditionStatus) -> bool {
    find(obj.conditions(), type_)
        .is_some_and(|c| c.status == status && c.observed_generation == obj.meta().generation)
}

fn deleting<K: ManagedKind>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

#[tokio::test]
async fn ebs_volumes_read_in_progress_current_failed_and_terminating_as_operators_expect()
-> Result<()> {
    let bed = Bed::builder("health-ebs")
        .transitions(json!({
            "volume-create": HOLD, "volume-modify": 0, "volume-optimize": 0, "volume-delete": HOLD,
        }))
        .start()
        .await?;
    let mut seen_in = Vec::new();

    bed.create::<EbsVolume>("data", json!({ "availabilityZone": ZONE, "sizeGiB": 10 }))
        .await?;
    bed.wait_for::<EbsVolume>("data", "the volume to be seen creating", |v| {
        has_current_condition(v, PROGRESSING, ConditionStatus::True, "Creating")
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::Creating, "data").await?);

    bed.emu()
        .set_transitions(json!({ "volume-create": 0 }))
        .await?;
    bed.wait_for::<EbsVolume>("data", "the volume to be Ready", |v| {
        is_ready(v) && is_current(v, READY, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::Ready, "data").await?);

    bed.emu()
        .set_transitions(json!({ "volume-modify": HOLD }))
        .await?;
    bed.edit::<EbsVolume>("data", json!({ "sizeGiB": 20 }))
        .await?;
    bed.wait_for::<EbsVolume>("data", "the volume to be seen modifying", |v| {
        has_current_condition(v, PROGRESSING, ConditionStatus::True, "Modifying")
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::Modifying, "data").await?);

    // A key that does not exist: AWS would refuse it until someone creates it.
    bed.create::<EbsVolume>(
        "locked",
        json!({
            "availabilityZone": ZONE, "sizeGiB": 10,
            "encrypted": true, "kmsKeyId": "alias/nobody-made-this-key",
        }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("locked", "the volume to be Stalled", |v| {
        is_current(v, STALLED, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::Failed, "locked").await?);

    // Observe-only, and AWS has 20 GiB where the spec says 30: reported, never applied.
    let outside = bed.outside_volume(20, &[]).await?;
    bed.create::<EbsVolume>(
        "watched",
        json!({ "volumeId": outside, "sizeGiB": 30, "managementPolicy": "ObserveOnly" }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("watched", "the difference to be reported", |v| {
        has_current_condition(v, PROGRESSING, ConditionStatus::False, "ObserveOnly")
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::ObserveOnlyDrift, "watched").await?);

    bed.emu()
        .set_transitions(json!({ "volume-modify": 0, "volume-optimize": 0 }))
        .await?;
    bed.delete::<EbsVolume>("data").await?;
    bed.wait_for::<EbsVolume>("data", "the volume to be seen deleting", |v| {
        deleting(v) && is(v, RECONCILING, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<EbsVolume>(&bed, Phase::Deleting, "data").await?);

    check("EbsVolume", &seen_in)
}

#[tokio::test]
async fn ami_images_read_in_progress_current_failed_and_terminating_as_operators_expect()
-> Result<()> {
    let bed = Bed::builder("health-ami")
        .transitions(json!({ "image": HOLD, "snapshot": 0 }))
        .start()
        .await?;
    let instance = bed.run_instance(ZONE).await?;
    let from_instance = |name: &str| {
        json!({
            "name": name,
            "source": { "instance": { "instanceId": instance, "noReboot": true } },
        })
    };
    let mut seen_in = Vec::new();

    bed.create::<AmiImage>("web", from_instance("web-1"))
        .await?;
    bed.wait_for::<AmiImage>("web", "the image to be seen pending", |i| {
        is_current(i, PROGRESSING, ConditionStatus::True)
            && i.status.as_ref().is_some_and(|s| s.image_id.is_some())
    })
    .await?;
    seen_in.push(seen::<AmiImage>(&bed, Phase::Creating, "web").await?);

    bed.emu().set_transitions(json!({ "image": 0 })).await?;
    bed.wait_for::<AmiImage>("web", "the image to be Ready", |i| {
        is_ready(i) && is_current(i, READY, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<AmiImage>(&bed, Phase::Ready, "web").await?);

    // A description change: the object is seen while its ModifyImageAttribute is in flight.
    bed.clear_calls().await?;
    bed.emu()
        .inject(Fault::slow("ModifyImageAttribute", IN_FLIGHT_MS))
        .await?;
    bed.edit::<AmiImage>(
        "web",
        json!({ "description": "web server, second edition" }),
    )
    .await?;
    bed.wait_for_calls("ModifyImageAttribute", 1).await?;
    seen_in.push(seen::<AmiImage>(&bed, Phase::Modifying, "web").await?);
    bed.wait_for::<AmiImage>("web", "the description to be applied", |i| {
        is_ready(i) && is_current(i, READY, ConditionStatus::True)
    })
    .await?;

    // AWS refuses the CreateImage for good (as it would an invalid parameter).
    bed.emu()
        .inject(Fault::error("CreateImage", "InvalidParameterValue"))
        .await?;
    bed.create::<AmiImage>("refused", from_instance("refused-1"))
        .await?;
    bed.wait_for::<AmiImage>("refused", "the image to be Stalled", |i| {
        is_current(i, STALLED, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<AmiImage>(&bed, Phase::Failed, "refused").await?);

    // Seen while its DeregisterImage is in flight (the finalizer goes once it returns).
    bed.clear_calls().await?;
    bed.emu()
        .inject(Fault::slow("DeregisterImage", IN_FLIGHT_MS))
        .await?;
    bed.delete::<AmiImage>("web").await?;
    bed.wait_for_calls("DeregisterImage", 1).await?;
    let deleting_web = seen::<AmiImage>(&bed, Phase::Deleting, "web").await?;
    ensure!(
        deleting_web.object["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        deleting_web.object
    );
    seen_in.push(deleting_web);

    check("AmiImage", &seen_in)
}

/// A new KMS key with `alias`.
async fn key(bed: &Bed, alias: &str) -> Result<()> {
    let key = bed.kms().create_key().send().await.context("CreateKey")?;
    let id = key.key_metadata().context("no key metadata")?.key_id();
    bed.kms()
        .create_alias()
        .alias_name(alias)
        .target_key_id(id)
        .send()
        .await
        .context("CreateAlias")?;
    Ok(())
}

fn migration_phase(m: &EncryptedVolumeMigration) -> &str {
    m.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// Waits until the migration `name` is in `phase` with conditions for its generation
/// (`Ready` is True only once completed).
async fn wait_migration(bed: &Bed, name: &str, phase: &str) -> Result<()> {
    let ready = if phase == "Completed" {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    bed.wait_for::<EncryptedVolumeMigration>(name, &format!("{name} to be {phase}"), |m| {
        migration_phase(m) == phase && is_current(m, READY, ready)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn migrations_read_in_progress_current_failed_and_terminating_as_operators_expect()
-> Result<()> {
    let bed = Bed::builder("health-evm")
        .transitions(json!({ "volume-create": 0, "snapshot": 0, "copy-snapshot": 0 }))
        .start()
        .await?;
    key(&bed, "alias/health").await?;
    let migrate = |source: &str, extra: Value| {
        let mut spec = json!({ "source": { "volumeId": source }, "kmsKeyId": "alias/health" });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        spec
    };
    let mut seen_in = Vec::new();

    // Unattached volumes: the migration snapshots, copies, creates and swaps no instance.
    let sources: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(bed.outside_volume(8, &[]).await?);
        }
        ids
    };

    bed.create::<EncryptedVolumeMigration>("done", migrate(&sources[0], json!({})))
        .await?;
    wait_migration(&bed, "done", "Completed").await?;
    seen_in.push(seen::<EncryptedVolumeMigration>(&bed, Phase::Ready, "done").await?);

    // The new volume refused for good: rolled back (and, without rollback, left Failed).
    for (name, extra, phase) in [
        ("rolled-back", json!({}), "RolledBack"),
        ("failed", json!({ "rollbackOnFailure": false }), "Failed"),
    ] {
        bed.emu()
            .inject(Fault::error("CreateVolume", "InvalidParameterValue"))
            .await?;
        let source = if name == "failed" {
            &sources[2]
        } else {
            &sources[1]
        };
        bed.create::<EncryptedVolumeMigration>(name, migrate(source, extra))
            .await?;
        wait_migration(&bed, name, phase).await?;
        bed.wait_for::<EncryptedVolumeMigration>(name, "the migration to be Stalled", |m| {
            is_current(m, STALLED, ConditionStatus::True)
        })
        .await?;
        seen_in.push(seen::<EncryptedVolumeMigration>(&bed, Phase::Failed, name).await?);
    }

    // Held while AWS makes the first snapshot; then deleted, which waits for it too.
    bed.emu()
        .set_transitions(json!({ "snapshot": HOLD }))
        .await?;
    bed.create::<EncryptedVolumeMigration>("running", migrate(&sources[3], json!({})))
        .await?;
    bed.wait_for::<EncryptedVolumeMigration>("running", "the migration to be snapshotting", |m| {
        migration_phase(m) == "Snapshotting" && is_current(m, PROGRESSING, ConditionStatus::True)
    })
    .await?;
    seen_in.push(seen::<EncryptedVolumeMigration>(&bed, Phase::Creating, "running").await?);

    bed.delete::<EncryptedVolumeMigration>("running").await?;
    bed.wait_for::<EncryptedVolumeMigration>("running", "the migration to be seen deleting", |m| {
        deleting(m)
            && is(m, READY, ConditionStatus::False)
            && find(m.conditions(), READY).is_some_and(|c| c.reason == "Deleting")
    })
    .await?;
    seen_in.push(seen::<EncryptedVolumeMigration>(&bed, Phase::Deleting, "running").await?);

    // A migration's spec cannot change once it has started (the API refuses the edit), so
    // there is no "modifying" phase to look at.
    check("EncryptedVolumeMigration", &seen_in)
}

/// `argocd-cm.yaml`, the copy-paste form of the health check, holds `health.lua` verbatim for
/// every kind.
#[test]
fn the_argocd_configmap_holds_every_health_script_verbatim() -> Result<()> {
    let path = repo_root().join("charts/ec2-reconciler/argocd/argocd-cm.yaml");
    let cm: Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| path.display().to_string())?;
    let data: BTreeMap<String, String> = serde_json::from_value(cm["data"].clone())?;
    let keys: Vec<String> = KINDS
        .iter()
        .map(|kind| format!("resource.customizations.health.ec2.reconciler.dev_{kind}"))
        .collect();
    ensure!(
        data.keys().cloned().collect::<BTreeSet<String>>()
            == keys.iter().cloned().collect::<BTreeSet<String>>(),
        "argocd-cm.yaml has {:?}, expected {keys:?}",
        data.keys().collect::<Vec<_>>()
    );
    let script = std::fs::read_to_string(argocd_health_script())?;
    for key in &keys {
        ensure!(
            data.get(key) == Some(&script),
            "{key} in argocd-cm.yaml differs from health.lua"
        );
    }
    Ok(())
}
