//! The controller process against a real apiserver: readiness, finalizers, conditions and
//! deletes, for every kind, before any kind's AWS behaviour exists.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{
    ControlPlane, ControlPlaneOptions, ControllerProcess, Emulator, eventually, new_namespace,
    shared,
};
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED, find};
use ec2_reconciler::api::{AmiImage, EncryptedVolumeMigration};
use ec2_reconciler::reconcile::{FINALIZER, ManagedKind};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn readiness_waits_for_the_crds_and_the_process_does_not_exit() -> Result<()> {
    e2e::install_crypto_provider();
    let cp = ControlPlane::start(ControlPlaneOptions::default()).await?;
    let emu = Emulator::start().await?;
    let mut controller = ControllerProcess::spawn(&cp, &emu, &[])?;

    let body = eventually("/healthz to answer", WAIT, || async {
        let (code, _) = controller.get("/healthz").await?;
        let (ready_code, body) = controller.get("/readyz").await?;
        Ok((code == 200 && body.contains("waiting for its CRD")).then_some((ready_code, body)))
    })
    .await
    .with_context(|| controller.log())?;
    ensure!(
        body.0 == 503,
        "readyz without CRDs answered {}: {}",
        body.0,
        body.1
    );
    ensure!(
        controller.exit_status().is_none(),
        "the controller exited without its CRDs:\n{}",
        controller.log()
    );

    cp.install_crds(&e2e::paths::crds_dir()).await?;
    controller
        .wait_ready(WAIT)
        .await
        .with_context(|| controller.log())?;
    let (code, body) = controller.get("/readyz").await?;
    ensure!(code == 200, "readyz after the CRDs answered {code}: {body}");
    for kind in ["EbsVolume", "AmiImage", "EncryptedVolumeMigration"] {
        ensure!(
            body.contains(&format!("{kind}: ready")),
            "{kind} not ready in {body}"
        );
    }
    Ok(())
}

/// Creates the object, waits for the finalizer and the conditions, checks that no AWS call
/// was made and that the status stays still, then deletes it.
async fn lifecycle<K: ManagedKind>(
    api: &Api<K>,
    object: K,
    emu: &Emulator,
    controller: &ControllerProcess,
) -> Result<()> {
    let name = object.name_any();
    api.create(&PostParams::default(), &object).await?;
    let settled = eventually(
        &format!("{} {name} to be reconciled", K::KIND),
        WAIT,
        || async {
            let current = api.get(&name).await?;
            let has_finalizer = current.finalizers().iter().any(|f| f == FINALIZER);
            let synced = find(current.conditions(), SYNCED).cloned();
            Ok(match synced {
                Some(c)
                    if has_finalizer
                        && current.observed_generation() == current.meta().generation =>
                {
                    Some((current, c))
                }
                _ => None,
            })
        },
    )
    .await
    .with_context(|| controller.log())?;
    let (current, synced) = settled;
    ensure!(
        synced.status == ConditionStatus::False && synced.reason == "NotImplemented",
        "{synced:?}"
    );
    ensure!(
        synced.observed_generation == current.meta().generation,
        "{synced:?}"
    );

    // Steady state: nothing more is written (no hot loop through our own status writes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = api.get(&name).await?;
    ensure!(
        later.resource_version() == current.resource_version(),
        "{} {name} kept changing: {:?} -> {:?}",
        K::KIND,
        current.resource_version(),
        later.resource_version()
    );

    api.delete(&name, &DeleteParams::default()).await?;
    eventually(
        &format!("{} {name} to be deleted", K::KIND),
        WAIT,
        || async { Ok(api.get_opt(&name).await?.is_none().then_some(())) },
    )
    .await
    .with_context(|| controller.log())?;
    ensure!(
        emu.calls().await?.total() == 0,
        "AWS was called: {:?}",
        emu.calls().await?
    );
    Ok(())
}

fn from_json<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<K> {
    Ok(serde_json::from_value(value)?)
}

/// AmiImage and EncryptedVolumeMigration have no AWS behaviour yet: they must say so and
/// act on nothing. (EbsVolume's lifecycle has its own tests.)
#[tokio::test]
async fn kinds_not_built_yet_get_a_finalizer_and_honest_conditions_and_delete_cleanly() -> Result<()>
{
    let cp = shared()?;
    let client = cp.client().await?;
    let ns = new_namespace(&client, "skeleton").await?;
    let emu = Emulator::start().await?;
    let controller = ControllerProcess::spawn(cp, &emu, &["--namespace", &ns])?;

    let meta = |name: &str| json!({ "name": name, "namespace": ns });
    let image: AmiImage = from_json(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "AmiImage", "metadata": meta("web"),
        "spec": { "name": "web-1", "source": { "instance": { "instanceId": "i-0123456789abcdef0" } } }
    }))?;
    let migration: EncryptedVolumeMigration = from_json(json!({
        "apiVersion": "ec2.reconciler.dev/v1alpha1", "kind": "EncryptedVolumeMigration", "metadata": meta("encrypt"),
        "spec": { "source": { "volumeRef": { "name": "data" } } }
    }))?;

    lifecycle(
        &Api::namespaced(client.clone(), &ns),
        image,
        &emu,
        &controller,
    )
    .await?;
    lifecycle(
        &Api::namespaced(client.clone(), &ns),
        migration,
        &emu,
        &controller,
    )
    .await?;

    let (code, metrics) = controller.get("/metrics").await?;
    ensure!(code == 200, "metrics answered {code}");
    for kind in ["AmiImage", "EncryptedVolumeMigration"] {
        let line = format!(r#"ec2_reconciler_reconciles_total{{kind="{kind}",outcome="success"}}"#);
        ensure!(metrics.contains(&line), "no {line} in\n{metrics}");
        let gauge = format!(r#"ec2_reconciler_objects{{kind="{kind}",ready="False"}}"#);
        ensure!(metrics.contains(&gauge), "no {gauge} in\n{metrics}");
    }
    ensure!(
        !metrics.contains("data") && !metrics.contains(&ns),
        "metrics carry object names:\n{metrics}"
    );
    Ok(())
}
