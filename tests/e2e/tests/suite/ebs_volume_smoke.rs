//! The shortest path through an EbsVolume's life: created, Ready, deleted, with exactly
//! one volume made and none left.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{ControllerProcess, Emulator, eventually, new_namespace, shared};
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, READY, find};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_gp3_volume_is_created_becomes_ready_and_is_deleted() -> Result<()> {
    let cp = shared()?;
    let client = cp.client().await?;
    let ns = new_namespace(&client, "smoke").await?;
    let emu = Emulator::start().await?;
    let controller = ControllerProcess::spawn(cp, &emu, &["--namespace", &ns])?;
    let api: Api<EbsVolume> = Api::namespaced(client, &ns);
    let volume: EbsVolume = serde_json::from_value(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EbsVolume",
        "metadata": { "name": "data", "namespace": ns },
        "spec": { "availabilityZone": "us-east-1a", "sizeGiB": 20, "iops": 4000, "tags": { "team": "storage" } }
    }))?;
    api.create(&PostParams::default(), &volume).await?;

    let ready = eventually("the volume to be Ready", WAIT, || async {
        let v = api.get("data").await?;
        let ready = v
            .status
            .as_ref()
            .and_then(|s| find(&s.conditions, READY))
            .map(|c| c.status);
        Ok((ready == Some(ConditionStatus::True)).then_some(v))
    })
    .await;
    let ready = match ready {
        Ok(v) => v,
        Err(e) => {
            let seen = api
                .get("data")
                .await
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v.status).ok());
            return Err(e.context(format!(
                "status: {}\ncontroller log:\n{}",
                seen.unwrap_or_default(),
                controller.log()
            )));
        }
    };
    let status = ready.status.clone().unwrap_or_default();
    ensure!(status.state.as_deref() == Some("available"), "{status:?}");
    ensure!(
        status.size_gib == Some(20) && status.iops == Some(4000),
        "{status:?}"
    );
    ensure!(
        emu.calls().await?.count("CreateVolume") == 1,
        "{:?}",
        emu.calls().await?
    );

    api.delete("data", &DeleteParams::default()).await?;
    e2e::objects::volume_gone(&api, "data", WAIT)
        .await
        .with_context(|| controller.log())?;
    ensure!(
        emu.calls().await?.count("DeleteVolume") == 1,
        "{:?}",
        emu.calls().await?
    );
    Ok(())
}
