//! The container image built from `deploy/Containerfile` by `hack/build-image.sh`: it holds
//! nothing but the controller, its C runtime and the CA bundle; it runs as a non-root user;
//! and, started with the restrictions the chart sets (read-only root filesystem, no
//! capabilities, no privilege escalation), it serves its probes and drives a volume through
//! its life against the test bed.
//!
//! The image is built from the debug binary the suite already uses (stripped), not a release
//! build, to keep a release compile out of CI; the Containerfile is the same.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::controller::REGION;
use e2e::process::free_port;
use e2e::{Bed, eventually, paths};
use ec2_reconciler::api::EbsVolume;
use serde_json::{Value, json};

/// `hack/podman.sh ARGS`: podman with the project's image storage and sandbox settings.
fn podman(args: &[&str]) -> Result<Output> {
    let script = paths::repo_root().join("hack/podman.sh");
    Command::new(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {} {args:?}", script.display()))
}

/// Like [`podman`], failing with its stderr unless it exits 0; returns stdout.
fn podman_ok(args: &[&str]) -> Result<String> {
    let out = podman(args)?;
    ensure!(
        out.status.success(),
        "podman {args:?} exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A started container, removed (killed first) when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

/// Builds the image as `tag` from the suite's controller binary.
fn build_image(tag: &str, out: &Path) -> Result<()> {
    let binary = paths::controller_binary()?;
    let script = paths::repo_root().join("hack/build-image.sh");
    let result = Command::new(&script)
        .arg("--binary")
        .arg(&binary)
        .args(["--tag", tag, "--out"])
        .arg(out)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        result.status.success(),
        "{} exited with {}: {}",
        script.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    ensure!(out.is_file(), "no archive at {}", out.display());
    Ok(())
}

/// Every regular file and symlink in the image, relative to its root.
fn image_files(tag: &str) -> Result<BTreeSet<String>> {
    let root = PathBuf::from(podman_ok(&["image", "mount", tag])?);
    let mut files = BTreeSet::new();
    let walked = walk(&root, &root, &mut files);
    podman_ok(&["image", "unmount", tag])?;
    walked?;
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeSet<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, files)?;
        } else {
            files.insert(path.strip_prefix(root)?.display().to_string());
        }
    }
    Ok(())
}

/// Whether a file belongs in the image: the binary, a shared library it loads, the CA
/// bundle, or the user and group names.
fn belongs_in_image(path: &str) -> bool {
    let library = (path.starts_with("lib/") || path.starts_with("lib64/")) && path.contains(".so");
    library
        || [
            "ec2-reconciler",
            "etc/passwd",
            "etc/group",
            "etc/ssl/certs/ca-certificates.crt",
        ]
        .contains(&path)
}

#[tokio::test]
async fn the_image_holds_only_the_controller_and_runs_it_unprivileged_end_to_end() -> Result<()> {
    let tag = format!("ec2-reconciler:e2e-{}", std::process::id());
    let state = tempfile::tempdir()?;
    build_image(&tag, &state.path().join("image.oci.tar"))?;

    // What is inside, and how it starts.
    let files = image_files(&tag)?;
    let strays: Vec<&String> = files.iter().filter(|f| !belongs_in_image(f)).collect();
    ensure!(
        strays.is_empty(),
        "the image holds more than the controller: {strays:?}"
    );
    for needed in [
        "ec2-reconciler",
        "etc/ssl/certs/ca-certificates.crt",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        ensure!(
            files.contains(needed),
            "the image lacks {needed}: {files:?}"
        );
    }
    let inspect: Value = serde_json::from_str(&podman_ok(&["image", "inspect", &tag])?)?;
    let config = &inspect[0]["Config"];
    ensure!(config["User"] == "65532:65532", "image user: {config}");
    ensure!(
        config["Entrypoint"] == json!(["/ec2-reconciler"]),
        "entrypoint: {config}"
    );

    // The binary inside runs, as the image's user, with no capability.
    let restricted = [
        "--network",
        "host",
        "--ulimit",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ];
    let mut version_run = vec!["run", "--rm"];
    version_run.extend(restricted);
    version_run.extend([tag.as_str(), "--version"]);
    let host_version = Command::new(paths::controller_binary()?)
        .arg("--version")
        .output()?;
    ensure!(
        podman_ok(&version_run)? == String::from_utf8_lossy(&host_version.stdout).trim(),
        "the image's binary is not the one built"
    );

    // Started like the chart starts it, against the test bed, in place of the bed's own
    // controller process.
    let mut bed = Bed::start("image", &[]).await?;
    bed.kill_controller()?;
    let kubeconfig = state.path().join("kubeconfig");
    std::fs::copy(e2e::shared()?.admin_kubeconfig_path(), &kubeconfig)?;
    // The image's user is not the file's owner.
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644))?;
    let port = free_port()?;
    let name = format!("ec2r-e2e-{}", std::process::id());
    let volume_mount = format!("{}:/kubeconfig:ro", kubeconfig.display());
    let mut env = vec!["KUBECONFIG=/kubeconfig".to_owned()];
    env.extend(
        bed.emu()
            .env_vars(REGION)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    let mut run = vec!["run", "-d", "--name", &name, "-v", &volume_mount];
    run.extend(restricted);
    for var in &env {
        run.extend(["-e", var.as_str()]);
    }
    let health_addr = format!("127.0.0.1:{port}");
    run.extend([
        tag.as_str(),
        "run",
        "--namespace",
        bed.namespace()?,
        "--health-addr",
        &health_addr,
    ]);
    podman_ok(&run)?;
    let _container = Container(name.clone());
    let logs = || podman(&["logs", &name]).map(|o| String::from_utf8_lossy(&o.stderr).into_owned());

    // The container's process, seen from the host: its real, effective, saved and
    // filesystem uids (the `Uid:` line of /proc/PID/status).
    let pid = podman_ok(&["inspect", &name, "--format", "{{.State.Pid}}"])?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let uids: Vec<&str> = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .context("no Uid line")?
        .split_whitespace()
        .collect();
    ensure!(
        uids == ["65532"; 4],
        "the container's process runs as uids {uids:?}"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for probe in ["/healthz", "/readyz"] {
        let url = format!("http://{health_addr}{probe}");
        eventually(
            &format!("{probe} of the container to answer 200"),
            Duration::from_secs(60),
            || async {
                Ok(match http.get(&url).send().await {
                    Ok(resp) => (resp.status().as_u16() == 200).then_some(()),
                    Err(_) => None,
                })
            },
        )
        .await
        .with_context(|| logs().unwrap_or_default())?;
    }

    bed.create::<EbsVolume>(
        "data",
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 8 }),
    )
    .await?;
    bed.wait_ready::<EbsVolume>("data")
        .await
        .with_context(|| logs().unwrap_or_default())?;
    bed.delete::<EbsVolume>("data").await?;
    bed.wait_gone::<EbsVolume>("data").await?;
    let calls = bed.calls().await?;
    ensure!(
        calls.count("CreateVolume") == 1 && calls.count("DeleteVolume") == 1,
        "{calls:?}"
    );
    if podman_ok(&["inspect", &name, "--format", "{{.State.Running}}"])? != "true" {
        bail!("the container stopped: {}", logs()?);
    }
    podman_ok(&["rmi", "-f", &tag])?;
    Ok(())
}
