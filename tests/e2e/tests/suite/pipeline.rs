//! The reconcile pipeline every kind shares: an outside fix heals without a spec edit (at
//! once when the recheck of what blocks an object sees it gone),
//! progress ticks cost no extra pass, and a stale cached copy never repeats a call.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use e2e::Bed;
use e2e::bed::{ZONE, has_condition, is_ready};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
use ec2_reconciler::aws::client::{AwsClients, ClientTimeouts};
use ec2_reconciler::aws::observer::ObserverConfig;
use ec2_reconciler::aws::rate::RateConfig;
use ec2_reconciler::reconcile::aws_state::AwsState;
use ec2_reconciler::reconcile::events::EventPublisher;
use ec2_reconciler::reconcile::{Clock, Context, Settings, reconcile};
use kube::runtime::events::Reporter;
use serde_json::json;

/// A new KMS key, disabled: to be enabled "outside the controller" by the test.
async fn disabled_key(bed: &Bed) -> Result<String> {
    let key_id = bed
        .kms()
        .create_key()
        .description("disabled, then enabled outside the controller")
        .send()
        .await?
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("CreateKey returned no key")?;
    bed.kms().disable_key().key_id(&key_id).send().await?;
    Ok(key_id)
}

#[tokio::test]
async fn a_disabled_key_enabled_outside_heals_within_one_resync_without_a_spec_edit() -> Result<()>
{
    const RESYNC: u64 = 8;
    let bed = Bed::start("heal", &["--resync-seconds", &RESYNC.to_string()]).await?;
    let key_id = disabled_key(&bed).await?;

    bed.create::<EbsVolume>(
        "healed",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key_id }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("healed", "Synced=False KmsKeyDisabled", |v| {
        has_condition(v, SYNCED, ConditionStatus::False, "KmsKeyDisabled")
    })
    .await?;
    ensure!(bed.calls().await?.count("CreateVolume") == 0);

    bed.kms().enable_key().key_id(&key_id).send().await?;
    // Within one resync of the fix (plus the create itself): no spec edit.
    let ready = bed
        .wait_until_within(
            "the volume to be Ready after the key was enabled",
            Duration::from_secs(RESYNC + 20),
            || async {
                let v = bed.get::<EbsVolume>("healed").await?;
                Ok(is_ready(&v).then_some(v))
            },
        )
        .await?;
    ensure!(ready.metadata.generation == Some(1), "the spec was edited");
    ensure!(bed.calls().await?.count("CreateVolume") == 1);
    Ok(())
}

#[tokio::test]
async fn a_key_enabled_outside_heals_when_the_recheck_sees_it_not_at_the_next_resync() -> Result<()>
{
    // A resync far beyond the test's wait: only the recheck of what blocks the object can
    // heal it in time.
    const RESYNC: u64 = 3_600;
    let bed = Bed::start(
        "recheck",
        &[
            "--resync-seconds",
            &RESYNC.to_string(),
            "--recheck-seconds",
            "2",
        ],
    )
    .await?;
    let key_id = disabled_key(&bed).await?;
    bed.create::<EbsVolume>(
        "rechecked",
        json!({ "availabilityZone": ZONE, "sizeGiB": 8, "encrypted": true, "kmsKeyId": key_id }),
    )
    .await?;
    bed.wait_for::<EbsVolume>("rechecked", "Synced=False KmsKeyDisabled", |v| {
        has_condition(v, SYNCED, ConditionStatus::False, "KmsKeyDisabled")
    })
    .await?;
    let reconciles = bed.reconciles::<EbsVolume>().await?;

    bed.kms().enable_key().key_id(&key_id).send().await?;
    let ready = bed
        .wait_until_within(
            "the volume to be Ready, long before the next resync",
            Duration::from_secs(60),
            || async {
                let v = bed.get::<EbsVolume>("rechecked").await?;
                Ok(is_ready(&v).then_some(v))
            },
        )
        .await?;
    ensure!(ready.metadata.generation == Some(1), "the spec was edited");
    ensure!(bed.calls().await?.count("CreateVolume") == 1);
    ensure!(
        bed.reconciles::<EbsVolume>().await? > reconciles,
        "the heal came from a reconcile the recheck started"
    );
    Ok(())
}

#[tokio::test]
async fn progress_ticks_of_a_long_modification_wake_no_extra_pass() -> Result<()> {
    // Modifying for 40 s, its progress moving on every read.
    let bed = Bed::builder("ticks")
        .transitions(json!({ "volume-modify": 40, "volume-optimize": 0 }))
        .start()
        .await?;
    bed.create::<EbsVolume>("grows", json!({ "availabilityZone": ZONE, "sizeGiB": 10 }))
        .await?;
    bed.wait_ready::<EbsVolume>("grows").await?;
    bed.edit::<EbsVolume>("grows", json!({ "sizeGiB": 20 }))
        .await?;
    bed.wait_for::<EbsVolume>("grows", "the modification to be under way", |v| {
        v.status
            .as_ref()
            .and_then(|s| s.modification.as_ref())
            .is_some_and(|m| m.state == "modifying")
    })
    .await?;

    let reconciles = bed.reconciles::<EbsVolume>().await?;
    let writes = bed.status_writes::<EbsVolume>().await?;
    const WINDOW: Duration = Duration::from_secs(25);
    tokio::time::sleep(WINDOW).await;
    let passes = bed.reconciles::<EbsVolume>().await? - reconciles;
    let written = bed.status_writes::<EbsVolume>().await? - writes;
    // A pass looks again after at least 5 s while AWS works (longer as it works longer),
    // so 25 s hold at most 6 passes; each may write its progress once. Were the
    // controller woken by its own progress writes, every write would start another pass
    // at once, and the reads would follow the emulator's progress in a loop.
    ensure!((1..=6).contains(&passes), "{passes} passes in {WINDOW:?}");
    ensure!(
        written <= passes,
        "{written} status writes in {passes} passes"
    );
    Ok(())
}

/// A reconcile context of our own, on the bed's apiserver and emulator, so a test can hand
/// the pipeline an object of its choosing.
async fn context(bed: &Bed) -> Result<Arc<Context>> {
    let client = bed.client()?;
    let clients = AwsClients::new(
        bed.emu().sdk_config("us-east-1").await,
        RateConfig::default(),
        ClientTimeouts::default(),
        Default::default(),
    );
    Ok(Arc::new(Context {
        client: client.clone(),
        settings: Settings {
            default_region: "us-east-1".to_owned(),
            resync_interval: Duration::from_secs(600),
            launch_permission_read_interval: Duration::from_secs(86_400),
        },
        status_writes: Default::default(),
        events: EventPublisher::new(
            client,
            Reporter {
                controller: "stale-cache-test".into(),
                instance: None,
            },
        ),
        clock: Clock::default(),
        aws: AwsState::new(clients, "default", ObserverConfig::default()),
        backoff: Default::default(),
        written: Default::default(),
        rechecks: Default::default(),
        tenancy: Default::default(),
    }))
}

#[tokio::test]
async fn a_pass_on_a_copy_older_than_our_last_write_repeats_no_call() -> Result<()> {
    // No controller process: the test drives the pipeline itself, with copies it keeps.
    let mut bed = Bed::start("stale", &[]).await?;
    bed.kill_controller()?;
    let ctx = context(&bed).await?;
    bed.create::<EbsVolume>("once", json!({ "availabilityZone": ZONE, "sizeGiB": 6 }))
        .await?;
    // The first pass adds the finalizer; the second creates the volume.
    let fresh = bed.get::<EbsVolume>("once").await?;
    reconcile(Arc::new(fresh), ctx.clone()).await?;
    let before_create = bed.get::<EbsVolume>("once").await?;
    reconcile(Arc::new(before_create.clone()), ctx.clone()).await?;
    ensure!(bed.calls().await?.count("CreateVolume") == 1);

    // A cache that lags behind: the copy from before the create, without its intent.
    ensure!(
        before_create
            .status
            .as_ref()
            .is_none_or(|s| s.volume_id.is_none() && s.intents.is_empty()),
        "the copy must predate the create"
    );
    reconcile(Arc::new(before_create), ctx.clone()).await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateVolume") == 1,
        "a stale copy sent CreateVolume again: {calls:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_second_ebs_volume_adopting_an_owned_volume_reports_it_and_acts_on_nothing() -> Result<()>
{
    let bed = Bed::start("twice", &[]).await?;
    let id = bed.outside_volume(5, &[]).await?;
    bed.create::<EbsVolume>("first", json!({ "volumeId": id, "tags": { "team": "a" } }))
        .await?;
    bed.wait_ready::<EbsVolume>("first").await?;
    let first = bed.get::<EbsVolume>("first").await?;
    let before = bed.calls().await?;

    bed.create::<EbsVolume>("second", json!({ "volumeId": id, "tags": { "team": "b" } }))
        .await?;
    let second = bed
        .wait_for::<EbsVolume>("second", "Synced=False OwnedByAnotherObject", |v| {
            has_condition(v, SYNCED, ConditionStatus::False, "OwnedByAnotherObject")
        })
        .await?;
    let message = e2e::bed::condition_message(&second, SYNCED);
    ensure!(message.contains("EbsVolume first"), "{message}");
    let after = bed.calls().await?;
    ensure!(
        after.mutating() == before.mutating(),
        "the second adopter changed AWS: {before:?} -> {after:?}"
    );
    // The volume still belongs to the first, tags and all.
    let tags = bed.volume_tags(&id).await?;
    ensure!(
        tags.get("ec2.reconciler.dev/uid") == first.metadata.uid.as_ref()
            && tags.get("team").map(String::as_str) == Some("a"),
        "{tags:?}"
    );
    Ok(())
}
