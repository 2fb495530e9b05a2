//! Where things are: the repository, the test-bed binaries, the emulator's python, the
//! controller binary, and the watchdog every child process is spawned through.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// Runs a `hack/` script that prints one path on stdout; caches the answer (or the error) for
/// the life of the process.
fn cached_script_output(
    cell: &'static OnceLock<std::result::Result<PathBuf, String>>,
    script: &str,
    how_to_fix: &str,
) -> Result<PathBuf> {
    cell.get_or_init(|| run_path_script(script, how_to_fix).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn run_path_script(script: &str, how_to_fix: &str) -> Result<PathBuf> {
    let path = repo_root().join("hack").join(script);
    let out = Command::new(&path)
        .current_dir(repo_root())
        .output()
        .with_context(|| format!("could not run {}", path.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{} failed ({}); {how_to_fix}\n--- last lines of its stderr ---\n{}",
            path.display(),
            out.status,
            tail.join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .with_context(|| format!("{} printed nothing on stdout", path.display()))?;
    let result = PathBuf::from(line);
    if !result.exists() {
        bail!(
            "{} printed {}, which does not exist",
            path.display(),
            result.display()
        );
    }
    Ok(result)
}

/// The directory holding `kube-apiserver`, `kubectl` and `etcd` (built once by
/// `hack/testbed-binaries.sh`, cached outside git).
pub fn binaries_dir() -> Result<PathBuf> {
    static CELL: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    cached_script_output(
        &CELL,
        "testbed-binaries.sh",
        "it builds kube-apiserver, kubectl and etcd from source the first time, which needs Go \
         (https://go.dev/dl/, on PATH) and a few GB of memory; run `hack/testbed-binaries.sh` by \
         hand to see the whole output",
    )
}

/// The `helm` binary, built once from its Go module by `hack/helm-binary.sh` (cached outside
/// git).
pub fn helm_binary() -> Result<PathBuf> {
    static CELL: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    cached_script_output(
        &CELL,
        "helm-binary.sh",
        "it builds helm from its Go module the first time, which needs Go (https://go.dev/dl/, \
         on PATH) and access to the Go module proxy; run `hack/helm-binary.sh` by hand to see \
         the whole output",
    )
}

/// The Helm chart, `<repo>/charts/ec2-reconciler`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts").join("ec2-reconciler")
}

/// `health-helper` (`tests/health`, built once by `hack/health-helper.sh`, cached outside
/// git): kstatus and Argo CD's Lua engine on objects given as JSON.
pub fn health_helper() -> Result<PathBuf> {
    static CELL: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    cached_script_output(
        &CELL,
        "health-helper.sh",
        "it builds tests/health from Go modules the first time, which needs Go (on PATH) and \
         the Go module proxy; run `hack/health-helper.sh` by hand to see the whole output",
    )
}

/// The Argo CD health script the chart ships, one for every kind.
pub fn argocd_health_script() -> PathBuf {
    repo_root().join("charts/ec2-reconciler/argocd/health.lua")
}

/// The python interpreter of the emulator's virtual environment (`hack/emulator-venv.sh`).
pub fn emulator_python() -> Result<PathBuf> {
    static CELL: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    cached_script_output(
        &CELL,
        "emulator-venv.sh",
        "it creates a Python venv with moto the first time, which needs python3 with the venv \
         module and access to the package index; run `hack/emulator-venv.sh` by hand to see the \
         whole output",
    )
}

/// The Cargo target directory (`CARGO_TARGET_DIR` if set, relative to the repository root
/// when relative; `<repo>/target` otherwise).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        _ => repo_root().join("target"),
    }
}

/// `<target dir>/debug/ec2-reconciler`, which must have been built already.
pub fn controller_binary() -> Result<PathBuf> {
    let path = target_dir().join("debug").join("ec2-reconciler");
    if !path.is_file() {
        bail!(
            "{} does not exist: run `cargo build --bin ec2-reconciler` first (make test does)",
            path.display()
        );
    }
    Ok(path)
}

/// `hack/reap-with-parent.sh`: runs a command that dies with a given parent process.
pub fn watchdog_script() -> PathBuf {
    repo_root().join("hack").join("reap-with-parent.sh")
}

/// The CustomResourceDefinitions directory, `<repo>/crds`.
pub fn crds_dir() -> PathBuf {
    repo_root().join("crds")
}
