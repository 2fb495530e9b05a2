//! `ec2-reconciler plan -f FILE` shows what would happen, against the live cluster and AWS,
//! and changes nothing.

use anyhow::{Result, ensure};
use e2e::bed::ZONE;
use e2e::{Bed, Emulator, shared};
use ec2_reconciler::api::EbsVolume;
use serde_json::json;
const MUTATING: [&str; 6] = [
    "CreateVolume",
    "ModifyVolume",
    "AttachVolume",
    "DeleteVolume",
    "CreateTags",
    "DeleteTags",
];

/// Runs `ec2-reconciler plan -n NS -f FILE EXTRA...`: its exit code and output.
fn plan_with(
    cp: &e2e::ControlPlane,
    emu: &Emulator,
    ns: &str,
    manifest: &str,
    extra: &[&str],
) -> Result<(i32, String)> {
    let file = cp.state_dir().join(format!("plan-{ns}.yaml"));
    std::fs::write(&file, manifest)?;
    let out = std::process::Command::new(e2e::paths::controller_binary()?)
        .args(["plan", "-n", ns, "-f"])
        .arg(&file)
        .args(extra)
        .env("KUBECONFIG", cp.admin_kubeconfig_path())
        .envs(emu.env_vars("us-east-1"))
        .output()?;
    let code = out.status.code().unwrap_or(-1);
    ensure!(
        out.stderr.is_empty() || code >= 0,
        "plan was killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn plan(cp: &e2e::ControlPlane, emu: &Emulator, ns: &str, manifest: &str) -> Result<String> {
    let (code, stdout) = plan_with(cp, emu, ns, manifest, &[])?;
    ensure!(code == 0, "plan exited {code}: {stdout}");
    Ok(stdout)
}

fn manifest(size: i64) -> String {
    format!(
        "apiVersion: ec2.reconciler.dev/v1alpha1\nkind: EbsVolume\nmetadata:\n  name: data\nspec:\n  availabilityZone: us-east-1a\n  sizeGiB: {size}\n"
    )
}

async fn mutating_calls(emu: &Emulator) -> Result<u64> {
    let calls = emu.calls().await?;
    Ok(MUTATING.iter().map(|a| calls.count(a)).sum())
}

#[tokio::test]
async fn plan_shows_a_create_and_then_a_modify_without_changing_anything() -> Result<()> {
    let cp = shared()?;
    let mut bed = Bed::start("plan", &[]).await?;
    let ns = bed.namespace()?.to_owned();
    let emu = bed.emu();

    let before = plan(cp, emu, &ns, &manifest(20))?;
    ensure!(
        before.contains(&format!("EbsVolume {ns}/data:")) && before.contains("create"),
        "{before}"
    );
    ensure!(
        mutating_calls(emu).await? == 0,
        "plan called AWS: {:?}",
        emu.calls().await?
    );

    // Let the controller create it, then stop the controller and plan a bigger size.
    bed.create::<EbsVolume>("data", json!({ "availabilityZone": ZONE, "sizeGiB": 20 }))
        .await?;
    bed.wait_ready::<EbsVolume>("data").await?;
    bed.kill_controller()?;
    let emu = bed.emu();
    let made = mutating_calls(emu).await?;

    let unchanged = plan(cp, emu, &ns, &manifest(20))?;
    ensure!(unchanged.contains("no changes"), "{unchanged}");
    let grow = plan(cp, emu, &ns, &manifest(40))?;
    ensure!(
        grow.contains("modify") && grow.contains("20 -> 40"),
        "{grow}"
    );
    ensure!(
        mutating_calls(emu).await? == made,
        "plan called AWS: {:?}",
        emu.calls().await?
    );
    Ok(())
}

#[tokio::test]
async fn plan_shows_an_amis_create_and_its_refusals_without_calling_aws() -> Result<()> {
    let cp = shared()?;
    let mut bed = Bed::start("plan-ami", &[]).await?;
    let ns = bed.namespace()?.to_owned();
    let instance = bed.run_instance(ZONE).await?;
    // The plan alone: no controller acts on the namespace meanwhile.
    bed.kill_controller()?;
    bed.clear_calls().await?;
    let manifest = |permissions: &str| {
        format!(
            "apiVersion: ec2.reconciler.dev/v1alpha1\nkind: AmiImage\nmetadata:\n  name: web\nspec:\n  name: web-1\n  source:\n    instance:\n      instanceId: {instance}\n{permissions}"
        )
    };
    let create = plan(cp, bed.emu(), &ns, &manifest(""))?;
    ensure!(
        create.contains(&format!("AmiImage {ns}/web:"))
            && create.contains(&format!("+ create image web-1 from instance {instance}")),
        "{create}"
    );
    // The plan command runs with the default settings: no sharing allowed.
    let shared = plan(
        cp,
        bed.emu(),
        &ns,
        &manifest("  launchPermissions:\n    accountIds: [\"111122223333\"]\n"),
    )?;
    ensure!(
        shared.contains("! SharingNotAllowed") && !shared.contains("+ create image"),
        "{shared}"
    );
    // Given the controller's own sharing policy, the plan allows what it allows.
    let (code, allowed) = plan_with(
        cp,
        bed.emu(),
        &ns,
        &manifest("  launchPermissions:\n    accountIds: [\"111122223333\"]\n"),
        &["--share-allow-accounts", "111122223333"],
    )?;
    ensure!(
        code == 0 && allowed.contains("+ create image") && !allowed.contains('!'),
        "exit {code}: {allowed}"
    );
    ensure!(
        bed.calls().await?.mutating().is_empty(),
        "plan called AWS: {:?}",
        bed.calls().await?
    );
    Ok(())
}

#[tokio::test]
async fn plan_gates_a_pull_request_by_exit_code_json_and_the_apis_own_rejection() -> Result<()> {
    let cp = shared()?;
    let mut bed = Bed::start("plan-gate", &[]).await?;
    let ns = bed.namespace()?.to_owned();
    let detailed = ["--detailed-exitcode", "--output", "json"];

    // A new volume: changes (2), listed for a bot.
    let (code, out) = plan_with(cp, bed.emu(), &ns, &manifest(20), &detailed)?;
    ensure!(code == 2, "exit {code}: {out}");
    let report: serde_json::Value = serde_json::from_str(&out)?;
    let object = &report["objects"][0];
    ensure!(
        object["kind"] == "EbsVolume"
            && object["name"] == "data"
            && object["changes"].as_array().is_some_and(|c| !c.is_empty())
            && object.get("rejected").is_none(),
        "{report}"
    );

    // Made, then planned unchanged: nothing to do (0).
    bed.create::<EbsVolume>("data", json!({ "availabilityZone": ZONE, "sizeGiB": 20 }))
        .await?;
    bed.wait_ready::<EbsVolume>("data").await?;
    bed.kill_controller()?;
    let (code, out) = plan_with(cp, bed.emu(), &ns, &manifest(20), &detailed)?;
    ensure!(code == 0, "exit {code}: {out}");

    // Shrinking is refused by the API (a rule on changes): the API's words, exit 1, and
    // nothing planned or stored.
    let (code, out) = plan_with(cp, bed.emu(), &ns, &manifest(10), &["--detailed-exitcode"])?;
    ensure!(code == 1, "exit {code}: {out}");
    ensure!(
        out.contains("rejected by the API") && out.contains("sizeGiB can only grow"),
        "{out}"
    );
    // Without the flag a rejection still fails the command.
    let (code, _) = plan_with(cp, bed.emu(), &ns, &manifest(10), &[])?;
    ensure!(code == 1, "exit {code} without --detailed-exitcode");
    let stored = bed.get::<EbsVolume>("data").await?;
    ensure!(stored.spec.size_gib == Some(20), "{:?}", stored.spec);

    // Every kind is planned: a migration of an EbsVolume that does not exist is a refusal (1).
    let migration = "apiVersion: ec2.reconciler.dev/v1alpha1\nkind: EncryptedVolumeMigration\nmetadata:\n  name: encrypt\nspec:\n  source:\n    volumeRef:\n      name: missing\n";
    let (code, out) = plan_with(cp, bed.emu(), &ns, migration, &detailed)?;
    let report: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        code == 1 && report["objects"][0]["problems"][0]["reason"] == "SourceNotFound",
        "exit {code}: {report}"
    );
    Ok(())
}
