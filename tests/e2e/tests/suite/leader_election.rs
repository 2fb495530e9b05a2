//! Two replicas with leader election: one acts, the other stands by (and reports ready),
//! and when the leader is killed the standby takes over without duplicating anything.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{ControllerProcess, Emulator, eventually, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("ec2-reconciler")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

async fn create_and_wait_ready(api: &Api<EbsVolume>, ns: &str, name: &str) -> Result<()> {
    let volume: EbsVolume = serde_json::from_value(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "availabilityZone": "us-east-1a", "sizeGiB": 8 }
    }))?;
    api.create(&PostParams::default(), &volume).await?;
    e2e::objects::volume_ready(api, name, WAIT)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn only_the_leader_acts_and_a_standby_takes_over_when_it_dies() -> Result<()> {
    let cp = shared()?;
    let client = cp.client().await?;
    let ns = new_namespace(&client, "leader").await?;
    let emu = Emulator::start().await?;
    let args = [
        "--namespace",
        ns.as_str(),
        "--leader-elect",
        "--leader-election-namespace",
        ns.as_str(),
    ];
    let mut first = ControllerProcess::spawn(
        cp,
        &emu,
        &["--identity", "first"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    )?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    eventually("the first replica to lead", WAIT, || async {
        Ok((holder(&leases).await?.as_deref() == Some("first")).then_some(()))
    })
    .await
    .with_context(|| first.log())?;
    let mut second = ControllerProcess::spawn(
        cp,
        &emu,
        &["--identity", "second"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    )?;

    // The standby is healthy and ready (a rolling update can proceed) but does not act.
    eventually("the standby to report ready", WAIT, || async {
        let (code, body) = second.get("/readyz").await?;
        Ok((code == 200 && body.contains("standby")).then_some(()))
    })
    .await
    .with_context(|| second.log())?;

    let api: Api<EbsVolume> = Api::namespaced(client.clone(), &ns);
    create_and_wait_ready(&api, &ns, "before")
        .await
        .with_context(|| first.log())?;
    ensure!(
        !second.log().contains("CreatedVolume") && !second.log().contains(" leading"),
        "the standby acted:\n{}",
        second.log()
    );

    first.kill_9()?;
    eventually("the second replica to take over", WAIT, || async {
        Ok((holder(&leases).await?.as_deref() == Some("second")).then_some(()))
    })
    .await
    .with_context(|| second.log())?;
    create_and_wait_ready(&api, &ns, "after")
        .await
        .with_context(|| second.log())?;
    let creates = emu.calls().await?.count("CreateVolume");
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
