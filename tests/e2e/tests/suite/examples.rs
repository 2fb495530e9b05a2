//! The AmiImage examples converge as the demo applies them: seeded by `hack/demo-seed.py`
//! (an instance and a snapshot granted to the namespace, public base images in eu-west-1),
//! their placeholder ids replaced by the seeded ones, each one Ready and Synced.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use e2e::Bed;
use e2e::bed::is;
use ec2_reconciler::api::AmiImage;
use ec2_reconciler::api::conditions::{ConditionStatus, SYNCED};
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
