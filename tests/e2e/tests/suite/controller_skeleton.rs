//! The controller process against a real apiserver: readiness, finalizers, conditions and
//! deletes, for every kind, before any kind's AWS behaviour exists.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::bed::has_condition;
use e2e::{Bed, ControlPlane, ControlPlaneOptions, ControllerProcess, Emulator, eventually};
use ec2_reconciler::api::EncryptedVolumeMigration;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
use ec2_reconciler::reconcile::{FINALIZER, ManagedKind};
use kube::{Resource, ResourceExt};
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

/// A migration of an EbsVolume that does not exist: a finalizer, a refusal that says why,
/// no AWS call, no hot loop, and a clean delete. (Each kind's lifecycle has its own tests.)
#[tokio::test]
async fn a_migration_of_a_missing_volume_is_refused_quietly_and_deletes_cleanly() -> Result<()> {
    let bed = Bed::start("skeleton", &[]).await?;
    bed.create::<EncryptedVolumeMigration>(
        "encrypt",
        json!({ "source": { "volumeRef": { "name": "data" } } }),
    )
    .await?;
    let current = bed
        .wait_for::<EncryptedVolumeMigration>("encrypt", "Synced=False SourceNotFound", |m| {
            m.finalizers().iter().any(|f| f == FINALIZER)
                && m.observed_generation() == m.meta().generation
                && has_condition(m, SYNCED, ConditionStatus::False, "SourceNotFound")
        })
        .await?;

    // Steady state: nothing more is written (no hot loop through our own status writes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = bed.get::<EncryptedVolumeMigration>("encrypt").await?;
    ensure!(
        later.resource_version() == current.resource_version(),
        "kept changing: {:?} -> {:?}",
        current.resource_version(),
        later.resource_version()
    );

    bed.delete::<EncryptedVolumeMigration>("encrypt").await?;
    bed.wait_gone::<EncryptedVolumeMigration>("encrypt").await?;
    ensure!(
        bed.calls().await?.total() == 0,
        "AWS was called: {:?}",
        bed.calls().await?
    );

    let metrics = bed.metrics().await?;
    let kind = "EncryptedVolumeMigration";
    let line = format!(r#"ec2_reconciler_reconciles_total{{kind="{kind}",outcome="success"}}"#);
    ensure!(metrics.contains(&line), "no {line} in\n{metrics}");
    ensure!(
        !metrics.contains("encrypt\"") && !metrics.contains(bed.namespace()?),
        "metrics carry object names:\n{metrics}"
    );
    Ok(())
}
