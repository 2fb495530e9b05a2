//! The examples converge as the demo applies them. The AmiImage ones on what
//! `hack/demo-seed.py` seeds (an instance and a snapshot granted to the namespace, public base
//! images in eu-west-1), their placeholder ids replaced by the seeded ones, each one Ready and
//! Synced; the migration one on the EbsVolume example it names.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use e2e::Bed;
use e2e::bed::is;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
use ec2_reconciler::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use serde_json::Value;

/// The account the demo's controller may share with (`hack/demo.sh`).
const DEMO_SHARE_ALLOWED: &str = "111122223333";

/// Runs the demo's seed against the bed's emulator; its `NAME=value` lines.
fn seed(bed: &Bed) -> Result<BTreeMap<String, String>> {
    let root = e2e::paths::repo_root();
    let out = Command::new(e2e::paths::emulator_python()?)
        .arg(root.join("hack/demo-seed.py"))
        .args(["--namespace", bed.namespace()?])
        .envs(bed.emu().env_vars("us-east-1"))
        .env("EC2EMU_URL", bed.emu().endpoint())
        .output()
        .context("running hack/demo-seed.py")?;
    ensure!(
        out.status.success(),
        "hack/demo-seed.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

#[tokio::test]
async fn every_amiimage_example_converges_on_what_the_demo_seeds() -> Result<()> {
    let bed = Bed::start("examples", &["--share-allow-accounts", DEMO_SHARE_ALLOWED]).await?;
    let seeded = seed(&bed)?;
    let instance = seeded.get("INSTANCE_ID").context("no INSTANCE_ID")?;
    let snapshot = seeded.get("SNAPSHOT_ID").context("no SNAPSHOT_ID")?;
    let dir = e2e::paths::repo_root().join("examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        if !text.contains("kind: AmiImage") {
            continue;
        }
        // What hack/demo.sh does on the way to kubectl.
        let text = text
            .replace("i-0123456789abcdef0", instance)
            .replace("snap-0123456789abcdef0", snapshot);
        let manifest: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let name = manifest["metadata"]["name"]
            .as_str()
            .context("an example without metadata.name")?
            .to_owned();
        bed.create::<AmiImage>(&name, manifest["spec"].clone())
            .await
            .with_context(|| path.display().to_string())?;
        names.push(name);
    }
    ensure!(
        names.len() >= 3,
        "one AmiImage example per source (instance, snapshots, copy) expected, found {names:?}"
    );
    for name in &names {
        let ready = bed.wait_ready::<AmiImage>(name).await?;
        ensure!(
            is(&ready, SYNCED, ConditionStatus::True),
            "{name} is Ready but not Synced"
        );
    }
    Ok(())
}

/// The migration example, applied with the EbsVolume it names as the demo applies them
/// (together, in no particular order): it waits for the volume, encrypts it, and the
/// EbsVolume tracks the encrypted one.
#[tokio::test]
async fn the_migration_example_encrypts_the_volume_example_applied_with_it() -> Result<()> {
    let bed = Bed::start("examples-evm", &[]).await?;
    let dir = e2e::paths::repo_root().join("examples");
    let read = |file: &str| -> Result<Value> {
        let text = std::fs::read_to_string(dir.join(file))?;
        Ok(serde_yaml::from_str(&text)?)
    };
    let migration = read("encryptedvolumemigration.yaml")?;
    let volume = read("ebsvolume-gp3.yaml")?;
    let migration_name = migration["metadata"]["name"].as_str().context("no name")?;
    let volume_name = volume["metadata"]["name"].as_str().context("no name")?;
    bed.create::<EncryptedVolumeMigration>(migration_name, migration["spec"].clone())
        .await?;
    bed.create::<EbsVolume>(volume_name, volume["spec"].clone())
        .await?;
    let done = bed
        .wait_for::<EncryptedVolumeMigration>(migration_name, "phase Completed", |m| {
            m.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Completed")
        })
        .await?;
    let target = done
        .status
        .and_then(|s| s.target_volume_id)
        .context("no target volume")?;
    let v = bed.describe_volume(&target).await?;
    ensure!(
        v.encrypted() == Some(true) && v.iops() == Some(6000),
        "{v:?}"
    );
    bed.wait_for::<EbsVolume>(volume_name, "the EbsVolume on the new volume", |v| {
        v.status.as_ref().and_then(|s| s.volume_id.as_deref()) == Some(target.as_str())
            && is(v, SYNCED, ConditionStatus::False)
    })
    .await?;
    Ok(())
}
