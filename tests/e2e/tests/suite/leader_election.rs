//! Two replicas with leader election: one acts, the other stands by (and reports ready),
//! and when the leader is killed the standby takes over without duplicating anything.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::{ZONE, metric_sum};
use ec2_reconciler::api::EbsVolume;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("ec2-reconciler")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

/// Reconciles and AWS calls by a replica's own `/metrics`.
fn acted(metrics: &str) -> Result<(u64, u64)> {
    Ok((
        metric_sum(metrics, "ec2_reconciler_reconciles_total", &[])?,
        metric_sum(metrics, "ec2_reconciler_aws_calls_total", &[])?,
    ))
}

#[tokio::test]
async fn only_the_leader_acts_and_a_standby_takes_over_when_it_dies() -> Result<()> {
    let mut bed = Bed::builder("leader").leader_elect("first").start().await?;
    let leases: Api<Lease> = Api::namespaced(bed.client()?, bed.namespace()?);
    bed.wait_until("the first replica to lead", || async {
        Ok((holder(&leases).await?.as_deref() == Some("first")).then_some(()))
    })
    .await?;
    let mut second = bed.spawn_replica("second")?;

    // The standby is healthy and ready (a rolling update can proceed) but does not act.
    bed.wait_until("the standby to report ready", || async {
        let (code, body) = second.get("/readyz").await?;
        Ok((code == 200 && body.contains("standby")).then_some(()))
    })
    .await?;

    bed.create::<EbsVolume>("before", json!({ "availabilityZone": ZONE, "sizeGiB": 8 }))
        .await?;
    bed.wait_ready::<EbsVolume>("before").await?;
    // The standby did not act: the Lease is still the first replica's, and by its own
    // /metrics the second has reconciled nothing and called AWS not once, while the first's
    // /metrics count the reconciles it made under the same names.
    let leading = holder(&leases).await?;
    ensure!(
        leading.as_deref() == Some("first"),
        "the Lease moved to {leading:?} while the first replica was alive"
    );
    let leader_metrics = bed.metrics().await?;
    let (leader_reconciles, leader_calls) = acted(&leader_metrics)?;
    ensure!(
        leader_reconciles >= 1 && leader_calls >= 1,
        "the leader's /metrics show {leader_reconciles} reconciles and {leader_calls} AWS calls:\n{leader_metrics}"
    );
    let (code, standby_metrics) = second.get("/metrics").await?;
    ensure!(code == 200, "GET /metrics of the standby: HTTP {code}");
    let (standby_reconciles, standby_calls) = acted(&standby_metrics)?;
    ensure!(
        standby_reconciles == 0 && standby_calls == 0,
        "the standby acted: {standby_reconciles} reconciles, {standby_calls} AWS calls:\n{standby_metrics}\n{}",
        second.log()
    );

    bed.kill_controller()?;
    bed.wait_until("the second replica to take over", || async {
        Ok((holder(&leases).await?.as_deref() == Some("second")).then_some(()))
    })
    .await?;
    bed.create::<EbsVolume>("after", json!({ "availabilityZone": ZONE, "sizeGiB": 8 }))
        .await?;
    bed.wait_ready::<EbsVolume>("after").await?;
    let creates = bed.calls().await?.count("CreateVolume");
    ensure!(
        creates == 2,
        "expected exactly 2 CreateVolume calls, saw {creates}"
    );
    ensure!(
        second.exit_status().is_none(),
        "the new leader exited:\n{}",
        second.log()
    );
    Ok(())
}
