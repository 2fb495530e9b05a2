//! Issue 10: two controllers split one namespace by `--shard-selector`. Each reconciles only
//! the objects its selector matches, each elects its leader in its own Lease (in one Lease
//! only one of them would act), and every volume is created exactly once.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::{WAIT, ZONE, metric_sum};
use e2e::controller::ControllerProcess;
use ec2_reconciler::api::EbsVolume;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

const SHARD_LABEL: &str = "ec2.reconciler.dev/shard";

/// A controller's EbsVolumes by its own `objects` gauge (read from its cache): all of them,
/// and those Ready.
fn cached(metrics: &str) -> Result<(u64, u64)> {
    const OBJECTS: &str = "ec2_reconciler_objects";
    Ok((
        metric_sum(metrics, OBJECTS, &[("kind", "EbsVolume")])?,
        metric_sum(
            metrics,
            OBJECTS,
            &[("kind", "EbsVolume"), ("ready", "True")],
        )?,
    ))
}

async fn metrics_of(controller: &ControllerProcess) -> Result<String> {
    let (code, body) = controller.get("/metrics").await?;
    ensure!(code == 200, "GET /metrics: HTTP {code}: {body}");
    Ok(body)
}

#[tokio::test]
async fn two_shards_split_the_objects_and_each_is_created_by_exactly_one() -> Result<()> {
    let shard_a = format!("{SHARD_LABEL} in (a)");
    let rest = format!("{SHARD_LABEL} notin (a)");
    let mut bed = Bed::builder("shards")
        .leader_elect("shard-a")
        .args(&["--shard-selector", &shard_a])
        .start()
        .await?;
    let ns = bed.namespace()?.to_owned();
    let mut other = bed.spawn_controller_with(&[
        "--leader-elect",
        "--leader-election-namespace",
        &ns,
        "--identity",
        "shard-rest",
        "--shard-selector",
        &rest,
    ])?;
    bed.wait_controller_ready().await?;
    other.wait_ready(WAIT).await?;

    // Two labelled `a`, two labelled `b`, one unlabelled (`notin` matches a missing label).
    let objects = [
        ("in-a-0", Some("a")),
        ("in-a-1", Some("a")),
        ("in-b-0", Some("b")),
        ("in-b-1", Some("b")),
        ("unlabelled", None),
    ];
    let api = bed.api::<EbsVolume>()?;
    for (name, shard) in objects {
        let mut manifest =
            bed.manifest::<EbsVolume>(name, json!({ "availabilityZone": ZONE, "sizeGiB": 4 }))?;
        if let Some(shard) = shard {
            manifest["metadata"]["labels"] = json!({ SHARD_LABEL: shard });
        }
        api.create(&PostParams::default(), &serde_json::from_value(manifest)?)
            .await?;
    }
    for (name, _) in objects {
        bed.wait_ready::<EbsVolume>(name).await?;
    }

    // Each controller caches (and so reconciles) only its shard's objects, all Ready; the
    // gauges are refreshed from the caches every 15 s.
    bed.wait_until(
        "each shard's cache to hold exactly its own objects, Ready",
        || async {
            let first = cached(&bed.metrics().await?)?;
            let second = cached(&metrics_of(&other).await?)?;
            Ok((first == (2, 2) && second == (3, 3)).then_some(()))
        },
    )
    .await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateVolume") == objects.len() as u64,
        "each volume created exactly once: {calls:?}"
    );

    // Two Leases, one per shard, each held by its own controller.
    let leases: Api<Lease> = Api::namespaced(bed.client()?, &ns);
    let mut holders: Vec<String> = leases
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|l| l.spec.and_then(|s| s.holder_identity))
        .collect();
    holders.sort();
    ensure!(
        holders == ["shard-a", "shard-rest"],
        "lease holders: {holders:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_shard_selector_the_apiserver_would_refuse_stops_the_controller_at_startup() -> Result<()>
{
    let bed = Bed::start("shards-bad", &[]).await?;
    let mut bad = bed.spawn_controller_with(&["--shard-selector", "shard is (a)"])?;
    let status = bed
        .wait_until("the controller to exit", || {
            let exited = bad.exit_status();
            async move { Ok(exited) }
        })
        .await?;
    ensure!(!status.success(), "it exited with {status}");
    Ok(())
}
