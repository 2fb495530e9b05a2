//! Issue 3, EbsVolume behaviours 1 to 3 end to end (real apiserver, the emulator, the real
//! binary): create every type with its settings, adopt an existing volume, modify in place
//! within AWS's rules; and a Ready object in steady state costs nothing per resync.

use anyhow::{Context, Result, ensure};
use e2e::Bed;
use e2e::bed::{ZONE, condition, has_current_condition, is, volume_id};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, PROGRESSING, READY, SYNCED};
use ec2_reconciler::plan::ebs_volume::MODIFICATION_WINDOW;
use kube::ResourceExt;
use serde_json::{Value, json};

/// Longer than any test: holds a pending state until the test releases it.
const HOLD: f64 = 86_400.0;

/// A bed whose emulator makes every pending state instant unless a test holds it.
async fn start(prefix: &str, extra_args: &[&str]) -> Result<Bed> {
    Bed::builder(prefix)
        .args(extra_args)
        .transitions(json!({
            "volume-create": 0, "volume-modify": 0, "volume-optimize": 0, "snapshot": 0
        }))
        .start()
        .await
}

// ---------------------------------------------------------------------------------------
// 1. Create
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_volume_type_is_created_with_its_settings_and_becomes_ready() -> Result<()> {
    let bed = start("ebs-types", &[]).await?;
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
        bed.create::<EbsVolume>(name, spec).await?;
    }
    for (name, _, (ty, size, iops, throughput, multi)) in &cases {
        let v = bed.wait_ready::<EbsVolume>(name).await?;
        let s = v.status.clone().unwrap_or_default();
        let id = volume_id(&v)?;
        ensure!(
            has_current_condition(&v, READY, ConditionStatus::True, "Available")
                && has_current_condition(&v, SYNCED, ConditionStatus::True, "Synced")
                && has_current_condition(&v, PROGRESSING, ConditionStatus::False, "UpToDate"),
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
        let aws = bed.describe_volume(&id).await?;
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
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("CreateVolume") == 7, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 0, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_kms_key_given_by_id_arn_or_alias_encrypts_the_volume_with_the_resolved_key_arn()
-> Result<()> {
    let bed = start("ebs-kms", &[]).await?;
    let kms = bed.kms();
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
        bed.create::<EbsVolume>(
            name,
            json!({"availabilityZone": ZONE, "sizeGiB": 10, "encrypted": true, "kmsKeyId": key}),
        )
        .await?;
    }
    for (name, _) in &refs {
        let v = bed.wait_ready::<EbsVolume>(name).await?;
        let s = v.status.clone().unwrap_or_default();
        ensure!(
            has_current_condition(&v, READY, ConditionStatus::True, "Available")
                && has_current_condition(&v, SYNCED, ConditionStatus::True, "Synced"),
            "{name}: {s:?}"
        );
        ensure!(
            s.encrypted == Some(true) && s.kms_key_id.as_deref() == Some(key_arn.as_str()),
            "{name}: expected kmsKeyId {key_arn}, status {s:?}"
        );
        let aws = bed.describe_volume(&volume_id(&v)?).await?;
        ensure!(
            aws.encrypted() == Some(true) && aws.kms_key_id() == Some(key_arn.as_str()),
            "{name}: AWS has {aws:?}"
        );
    }
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("CreateVolume") == 3, "{calls:?}");
    ensure!(calls.count("kms:DescribeKey") >= 3, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_volume_is_created_from_a_snapshot_with_the_snapshots_size() -> Result<()> {
    let bed = start("ebs-snap", &[]).await?;
    let source = bed.outside_volume(7, &[]).await?;
    let snapshot_id = bed.completed_snapshot(&source).await?;

    bed.create::<EbsVolume>(
        "restored",
        json!({"availabilityZone": ZONE, "snapshotId": snapshot_id}),
    )
    .await?;
    let v = bed.wait_ready::<EbsVolume>("restored").await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(
        s.size_gib == Some(7) && s.state.as_deref() == Some("available"),
        "{s:?}"
    );
    let aws = bed.describe_volume(&volume_id(&v)?).await?;
    ensure!(
        aws.snapshot_id() == Some(snapshot_id.as_str()) && aws.size() == Some(7),
        "AWS has {aws:?}"
    );
    let calls = bed.emu().calls().await?;
    // One by this test (the source), one by the controller.
    ensure!(calls.count("CreateVolume") == 2, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 0, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn ready_stays_false_while_the_volume_is_creating_and_turns_true_once_available() -> Result<()>
{
    let bed = start("ebs-creating", &[]).await?;
    bed.emu()
        .set_transitions(json!({"volume-create": HOLD}))
        .await?;
    bed.create::<EbsVolume>("slow", json!({"availabilityZone": ZONE, "sizeGiB": 10}))
        .await?;

    let creating = bed
        .wait_for::<EbsVolume>("slow", "the volume to be seen creating", |v| {
            v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("creating")
                && has_current_condition(v, READY, ConditionStatus::False, "Creating")
        })
        .await?;
    ensure!(
        has_current_condition(&creating, PROGRESSING, ConditionStatus::True, "Creating"),
        "{:?}",
        creating.status
    );
    // A few more passes while AWS is still creating: still not Ready, no second create.
    let before = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(before, 2).await?;
    let still = bed.get::<EbsVolume>("slow").await?;
    ensure!(
        has_current_condition(&still, READY, ConditionStatus::False, "Creating"),
        "{:?}",
        still.status
    );

    bed.emu()
        .set_transitions(json!({"volume-create": 0}))
        .await?;
    let ready = bed.wait_ready::<EbsVolume>("slow").await?;
    ensure!(
        has_current_condition(&ready, READY, ConditionStatus::True, "Available")
            && has_current_condition(&ready, PROGRESSING, ConditionStatus::False, "UpToDate"),
        "{:?}",
        ready.status
    );
    ensure!(volume_id(&ready)? == volume_id(&creating)?);
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("CreateVolume") == 1, "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_creating_volume_is_looked_at_again_at_each_merged_read_without_writing_status()
-> Result<()> {
    // Polled every second (5 s by default), so ten looks take ten seconds.
    let bed = start("ebs-creating-looks", &["--creating-poll-seconds", "1"]).await?;
    bed.emu()
        .set_transitions(json!({"volume-create": HOLD}))
        .await?;
    bed.create::<EbsVolume>("slow", json!({"availabilityZone": ZONE, "sizeGiB": 10}))
        .await?;
    bed.wait_for::<EbsVolume>("slow", "the volume to be seen creating", |v| {
        v.status.as_ref().and_then(|s| s.state.as_deref()) == Some("creating")
            && has_current_condition(v, PROGRESSING, ConditionStatus::True, "Creating")
    })
    .await?;
    // One more pass, so the write that showed `creating` is counted before counting starts.
    let settled = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(settled, 1).await?;

    let writes = bed.status_writes::<EbsVolume>().await?;
    bed.emu().clear_calls().await?;
    let before = bed.reconciles::<EbsVolume>().await?;
    // Looked at again at every poll of the Region's creating volumes (a growing delay would
    // space ten looks over minutes): each look is one read by id and finds nothing new to
    // write.
    let after = bed.wait_reconciles::<EbsVolume>(before, 10).await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        bed.status_writes::<EbsVolume>().await? == writes,
        "a look that finds the volume still creating writes no status"
    );
    let looks = after - before;
    // A look in flight when the calls were cleared may add one read.
    ensure!(
        calls.count("DescribeVolumes") <= looks + 1,
        "at most one read per look ({looks} looks): {calls:?}"
    );
    ensure!(calls.count("CreateVolume") == 0, "{calls:?}");

    bed.emu()
        .set_transitions(json!({"volume-create": 0}))
        .await?;
    let ready = bed.wait_ready::<EbsVolume>("slow").await?;
    ensure!(
        has_current_condition(&ready, READY, ConditionStatus::True, "Available"),
        "{:?}",
        ready.status
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Adopt
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn adopting_a_volume_under_manage_creates_nothing_and_converges_it_to_the_spec() -> Result<()>
{
    let bed = start("ebs-adopt", &[]).await?;
    let id = bed.outside_volume(20, &[("origin", "outside")]).await?;
    bed.emu().clear_calls().await?;

    bed.create::<EbsVolume>(
        "adopted",
        json!({"volumeId": id, "volumeType": "gp3", "sizeGiB": 30, "tags": {"team": "storage"}}),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("adopted", "the adopted volume to be Ready at 30 GiB", |v| {
            is(v, READY, ConditionStatus::True)
                && v.status.as_ref().and_then(|s| s.size_gib) == Some(30)
        })
        .await?;
    ensure!(volume_id(&v)? == id, "{:?}", v.status);
    ensure!(
        has_current_condition(&v, SYNCED, ConditionStatus::True, "Synced"),
        "{:?}",
        v.status
    );
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("CreateVolume") == 0, "{calls:?}");
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let tags = bed.volume_tags(&id).await?;
    ensure!(
        tags.get("team").map(String::as_str) == Some("storage"),
        "{tags:?}"
    );
    ensure!(
        tags.get("origin").map(String::as_str) == Some("outside"),
        "a tag set outside was touched: {tags:?}"
    );
    ensure!(bed.describe_volume(&id).await?.size() == Some(30));
    Ok(())
}

#[tokio::test]
async fn adopting_a_volume_under_observe_only_changes_nothing_and_reports_the_differences()
-> Result<()> {
    let bed = start("ebs-observe", &["--resync-seconds", "3"]).await?;
    let id = bed.outside_volume(20, &[("origin", "outside")]).await?;
    let tags_before = bed.volume_tags(&id).await?;
    bed.emu().clear_calls().await?;

    bed.create::<EbsVolume>(
        "watched",
        json!({"volumeId": id, "volumeType": "gp3", "sizeGiB": 30,
               "tags": {"team": "storage"}, "managementPolicy": "ObserveOnly"}),
    )
    .await?;
    let size_change = format!("modify {id}: size 20 -> 30 GiB");
    let v = bed
        .wait_for::<EbsVolume>("watched", "status.plan to list the size change", |v| {
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
        has_current_condition(&v, READY, ConditionStatus::False, "OutOfSync")
            && has_current_condition(&v, PROGRESSING, ConditionStatus::False, "ObserveOnly"),
        "{s:?}"
    );
    ensure!(
        s.volume_id.as_deref() == Some(id.as_str()) && s.size_gib == Some(20),
        "{s:?}"
    );

    // Several more passes (resync every 3 s): still nothing mutating.
    let before = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(before, 3).await?;
    let calls = bed.emu().calls().await?;
    ensure!(
        calls.mutating().is_empty(),
        "ObserveOnly called AWS to change something: {calls:?}"
    );
    ensure!(bed.volume_tags(&id).await? == tags_before);
    ensure!(bed.describe_volume(&id).await?.size() == Some(20));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Modify in place
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn one_spec_edit_of_size_iops_and_throughput_makes_exactly_one_modify_volume_call()
-> Result<()> {
    let bed = start("ebs-modify", &[]).await?;
    bed.create::<EbsVolume>(
        "grow",
        json!({"availabilityZone": ZONE, "sizeGiB": 100, "iops": 3000, "throughputMiBps": 125}),
    )
    .await?;
    let v = bed.wait_ready::<EbsVolume>("grow").await?;
    let id = volume_id(&v)?;
    ensure!(bed.emu().calls().await?.count("ModifyVolume") == 0);

    bed.edit::<EbsVolume>(
        "grow",
        json!({"sizeGiB": 200, "iops": 6000, "throughputMiBps": 250}),
    )
    .await?;
    let v = bed
        .wait_for::<EbsVolume>("grow", "the volume to be Ready with the new values", |v| {
            has_current_condition(v, READY, ConditionStatus::True, "Available")
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
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let events = bed.events::<EbsVolume>("grow", "ModifyingVolume").await?;
    ensure!(events == 1, "{events} ModifyingVolume events");
    let mods = bed.modifications(&id).await?;
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
    let bed = start("ebs-retype", &[]).await?;
    bed.create::<EbsVolume>(
        "retype",
        json!({"availabilityZone": ZONE, "sizeGiB": 100, "iops": 5000}),
    )
    .await?;
    let v = bed.wait_ready::<EbsVolume>("retype").await?;
    let id = volume_id(&v)?;

    // Only the type changes in the spec; without iops in the call AWS would reset them to
    // 3000, so the volume ending at 5000 proves they travelled with the type.
    bed.edit::<EbsVolume>("retype", json!({"volumeType": "io2"}))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>("retype", "the volume to be Ready as io2", |v| {
            has_current_condition(v, READY, ConditionStatus::True, "Available")
                && v.status
                    .as_ref()
                    .is_some_and(|s| s.volume_type.map(|t| t.as_str()) == Some("io2"))
        })
        .await?;
    let s = v.status.clone().unwrap_or_default();
    ensure!(s.iops == Some(5000) && s.size_gib == Some(100), "{s:?}");
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");
    let mods = bed.modifications(&id).await?;
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
    let bed = start("ebs-serial", &[]).await?;
    bed.create::<EbsVolume>("serial", json!({"availabilityZone": ZONE, "sizeGiB": 100}))
        .await?;
    let v = bed.wait_ready::<EbsVolume>("serial").await?;
    let id = volume_id(&v)?;

    bed.emu()
        .set_transitions(json!({"volume-modify": HOLD, "volume-optimize": HOLD}))
        .await?;
    bed.edit::<EbsVolume>("serial", json!({"sizeGiB": 150}))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>("serial", "the modification to be seen modifying", |v| {
            has_current_condition(v, READY, ConditionStatus::False, "Modifying")
                && v.status
                    .as_ref()
                    .and_then(|s| s.modification.as_ref())
                    .is_some_and(|m| m.state == "modifying")
        })
        .await?;
    ensure!(
        has_current_condition(&v, PROGRESSING, ConditionStatus::True, "Modifying"),
        "{:?}",
        v.status
    );
    ensure!(bed.emu().calls().await?.count("ModifyVolume") == 1);

    // The spec changes again while AWS is modifying: nothing is sent, the condition says
    // another modification follows.
    bed.edit::<EbsVolume>("serial", json!({"sizeGiB": 200, "iops": 4000}))
        .await?;
    bed.wait_for::<EbsVolume>(
        "serial",
        "the condition to announce the next modification",
        |v| {
            has_current_condition(v, PROGRESSING, ConditionStatus::True, "Modifying")
                && condition(v, PROGRESSING)
                    .is_some_and(|c| c.message.contains("the next modification follows"))
        },
    )
    .await?;
    let before = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(before, 2).await?;
    ensure!(bed.emu().calls().await?.count("ModifyVolume") == 1);

    // modifying -> optimizing: still waiting.
    bed.emu()
        .set_transitions(json!({"volume-modify": 0, "volume-optimize": HOLD}))
        .await?;
    bed.wait_for::<EbsVolume>("serial", "the modification to be seen optimizing", |v| {
        has_current_condition(v, READY, ConditionStatus::False, "Optimizing")
            && has_current_condition(v, PROGRESSING, ConditionStatus::True, "Optimizing")
            && v.status
                .as_ref()
                .and_then(|s| s.modification.as_ref())
                .is_some_and(|m| m.state == "optimizing")
    })
    .await?;
    let before = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(before, 2).await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 1, "{calls:?}");

    // Completed: the second change goes out in one more call.
    bed.emu()
        .set_transitions(json!({"volume-optimize": 0}))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>(
            "serial",
            "the volume to be Ready at 200 GiB, 4000 iops",
            |v| {
                has_current_condition(v, READY, ConditionStatus::True, "Available")
                    && v.status
                        .as_ref()
                        .is_some_and(|s| s.size_gib == Some(200) && s.iops == Some(4000))
            },
        )
        .await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 2, "{calls:?}");
    // AWS reports the latest of the two: the second change, in one call.
    let mods = bed.modifications(&id).await?;
    ensure!(
        mods.len() == 1
            && mods[0].target_size() == Some(200)
            && mods[0].target_iops() == Some(4000),
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
    let mut bed = start("ebs-quota", &[]).await?;
    bed.create::<EbsVolume>("quota", json!({"availabilityZone": ZONE, "sizeGiB": 10}))
        .await?;
    bed.wait_ready::<EbsVolume>("quota").await?;

    for size in 11..=14 {
        bed.edit::<EbsVolume>("quota", json!({ "sizeGiB": size }))
            .await?;
        bed.wait_for::<EbsVolume>(
            "quota",
            &format!("the volume to be Ready at {size} GiB"),
            |v| {
                has_current_condition(v, READY, ConditionStatus::True, "Available")
                    && v.status.as_ref().and_then(|s| s.size_gib) == Some(size)
            },
        )
        .await?;
    }
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 4, "{calls:?}");

    // The fifth change waits for the oldest of the four to leave the 24-hour window.
    bed.edit::<EbsVolume>("quota", json!({ "sizeGiB": 15 }))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>("quota", "the quota to be reported", |v| {
            has_current_condition(v, READY, ConditionStatus::False, "ModificationQuotaReached")
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
        has_current_condition(
            &v,
            PROGRESSING,
            ConditionStatus::True,
            "ModificationQuotaReached"
        ),
        "{s:?}"
    );
    ensure!(s.size_gib == Some(14), "{s:?}");
    ensure!(bed.emu().calls().await?.count("ModifyVolume") == 4);

    // A new process knows the four from status alone (AWS reports only the latest one).
    bed.restart_controller()?;
    bed.wait_controller_ready().await?;
    let generation = bed
        .edit::<EbsVolume>("quota", json!({ "sizeGiB": 16 }))
        .await?;
    let v = bed
        .wait_for::<EbsVolume>(
            "quota",
            "the restarted controller to report the quota",
            |v| {
                has_current_condition(v, READY, ConditionStatus::False, "ModificationQuotaReached")
                    && v.metadata.generation == Some(generation)
            },
        )
        .await?;
    let c = condition(&v, READY).context("Ready missing")?;
    ensure!(c.message.contains(&expected), "{c:?}");
    // The next look is due when the quota frees up (or at the resync); an annotation wakes
    // a pass now, and it must not modify either.
    let before = bed.reconciles::<EbsVolume>().await?;
    bed.api::<EbsVolume>()?
        .patch(
            "quota",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "metadata": { "annotations": { "poke": "1" } } })),
        )
        .await?;
    bed.wait_reconciles::<EbsVolume>(before, 1).await?;
    let calls = bed.emu().calls().await?;
    ensure!(calls.count("ModifyVolume") == 4, "{calls:?}");
    ensure!(
        bed.describe_volume(&volume_id(&v)?).await?.size() == Some(14),
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
    let bed = start("ebs-steady", &["--resync-seconds", "3"]).await?;
    bed.create::<EbsVolume>(
        "steady",
        json!({"availabilityZone": ZONE, "sizeGiB": 10, "tags": {"team": "storage"}}),
    )
    .await?;
    bed.wait_for::<EbsVolume>("steady", "the volume to be Ready and up to date", |v| {
        has_current_condition(v, READY, ConditionStatus::True, "Available")
            && has_current_condition(v, PROGRESSING, ConditionStatus::False, "UpToDate")
    })
    .await?;
    // Let the pass that follows the last change settle before measuring.
    let settled = bed.reconciles::<EbsVolume>().await?;
    bed.wait_reconciles::<EbsVolume>(settled, 1).await?;

    let before_version = bed.get::<EbsVolume>("steady").await?.resource_version();
    let before_calls = bed.emu().calls().await?;
    let before = bed.reconciles::<EbsVolume>().await?;
    // Past two resyncs (every 3 s): at least two more reconciles of the object.
    bed.wait_reconciles::<EbsVolume>(before, 2).await?;
    let after_version = bed.get::<EbsVolume>("steady").await?.resource_version();
    let after_calls = bed.emu().calls().await?;

    ensure!(
        before_version == after_version,
        "the status was written in steady state ({before_version:?} -> {after_version:?}):\n{}",
        bed.dump().await
    );
    ensure!(
        before_calls.mutating() == after_calls.mutating(),
        "mutating calls in steady state: {before_calls:?} -> {after_calls:?}"
    );
    ensure!(
        after_calls.count("DescribeVolumes") > before_calls.count("DescribeVolumes"),
        "no observation happened over the resyncs: {after_calls:?}"
    );
    Ok(())
}
