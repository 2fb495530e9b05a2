//! `testbed`: a long-lived test bed for development (`make env-up` / `make env-down`).
//!
//! `testbed up` starts etcd, kube-apiserver and the EC2/KMS emulator detached (own session,
//! pids in `<state-dir>/pids`), writes `<state-dir>/kubeconfig` (admin) and
//! `<state-dir>/aws.env`, and installs the CRDs of `<repo>/crds`. `testbed down` stops them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use e2e::control_plane::{ControlPlane, ControlPlaneOptions};
use e2e::emulator::Emulator;
use e2e::paths;
use e2e::process::{pid_alive, send_signal};

const REGION: &str = "us-east-1";

#[derive(Parser)]
#[command(
    name = "testbed",
    about = "Start and stop a local kube-apiserver + etcd + AWS emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args)]
struct StateDir {
    /// Where pids, logs, certificates, etcd's data, the kubeconfig and aws.env live.
    #[arg(long, default_value = ".local")]
    state_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the test bed in the background (fresh etcd data each time).
    Up(StateDir),
    /// Stop the processes `up` recorded (SIGTERM, SIGKILL after 5 s).
    Down(StateDir),
    /// Show whether the recorded processes run, and where things are.
    Status(StateDir),
}

/// One line of `<state-dir>/pids`: `<pid> <name>`.
struct Recorded {
    pid: u32,
    name: String,
}

impl Recorded {
    /// Alive, and still the process we started (not a recycled pid).
    fn is_ours_and_alive(&self) -> bool {
        if !pid_alive(self.pid) {
            return false;
        }
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .is_ok_and(|cmdline| cmdline.contains(&self.name))
    }
}

fn read_pids(state_dir: &Path) -> Result<Vec<Recorded>> {
    let path = state_dir.join("pids");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (pid, name) = line
                .trim()
                .split_once(' ')
                .with_context(|| format!("malformed line in {}: {line:?}", path.display()))?;
            Ok(Recorded {
                pid: pid
                    .parse()
                    .with_context(|| format!("malformed pid in {}: {line:?}", path.display()))?,
                name: name.trim().to_owned(),
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Cmd::Up(s) => up(&s.state_dir).await,
        Cmd::Down(s) => down(&s.state_dir),
        Cmd::Status(s) => status(&s.state_dir),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn up(state_dir: &Path) -> Result<()> {
    let live: Vec<Recorded> = read_pids(state_dir)?
        .into_iter()
        .filter(Recorded::is_ours_and_alive)
        .collect();
    if !live.is_empty() {
        let list: Vec<String> = live
            .iter()
            .map(|r| format!("{} (pid {})", r.name, r.pid))
            .collect();
        bail!(
            "a test bed is already running from {}: {}; stop it first with `testbed down --state-dir {}`",
            state_dir.display(),
            list.join(", "),
            state_dir.display()
        );
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let state_dir = std::path::absolute(state_dir)
        .with_context(|| format!("making {} absolute", state_dir.display()))?;
    let _ = std::fs::remove_file(state_dir.join("pids"));
    for stale in ["etcd-data", "certs"] {
        let dir = state_dir.join(stale);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the stale {}", dir.display()))?;
        }
    }

    match start(&state_dir).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("testbed: start failed, stopping what was started");
            if let Err(stop) = down(&state_dir) {
                eprintln!("testbed: {stop:#}");
            }
            Err(e)
        }
    }
}

async fn start(state_dir: &Path) -> Result<()> {
    let cp = ControlPlane::start(ControlPlaneOptions {
        detached: true,
        state_dir: Some(state_dir.to_path_buf()),
    })
    .await?;
    let emu = Emulator::start_detached(state_dir).await?;

    let crds = paths::crds_dir();
    let installed = if crds.is_dir() {
        cp.install_crds(&crds).await?;
        std::fs::read_dir(&crds)
            .map(|entries| {
                entries
                    .filter_map(std::result::Result::ok)
                    .filter(|e| {
                        e.path()
                            .extension()
                            .is_some_and(|x| x == "yaml" || x == "yml")
                    })
                    .count()
            })
            .unwrap_or(0)
    } else {
        0
    };

    let mut env = String::new();
    for (key, value) in emu.env_vars(REGION) {
        env.push_str(&format!("export {key}={value}\n"));
    }
    env.push_str(&format!("export EC2EMU_URL={}\n", emu.endpoint()));
    let env_path = state_dir.join("aws.env");
    std::fs::write(&env_path, env).with_context(|| format!("writing {}", env_path.display()))?;

    let kubeconfig = cp.admin_kubeconfig_path().display();
    let dir = state_dir.display();
    println!(
        "test bed up (state in {dir})
  kube-apiserver  {server}   (admin kubeconfig: {kubeconfig})
  etcd            {etcd}
  AWS emulator    {endpoint}
  CRD files installed from {crds}: {installed}
  logs            {dir}/kube-apiserver.log, {dir}/etcd.log, {dir}/emulator.log

Use it:
  export KUBECONFIG={kubeconfig}
  source {dir}/aws.env
  {controller} run --health-addr 127.0.0.1:8080   (as `make build` built it)
  curl -s $EC2EMU_URL/_emulator/calls

Stop it: make env-down (testbed down --state-dir {dir})",
        server = cp.server_url(),
        etcd = cp.etcd_url(),
        endpoint = emu.endpoint(),
        crds = crds.display(),
        controller = controller_beside_this_binary().display(),
    );
    Ok(())
}

/// The controller `make build` built next to this binary (both land in cargo's target
/// directory, `CARGO_TARGET_DIR` when set), for the "Use it" hint.
fn controller_beside_this_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ec2-reconciler")))
        .unwrap_or_else(|| PathBuf::from("target/debug/ec2-reconciler"))
}

fn down(state_dir: &Path) -> Result<()> {
    let recorded = read_pids(state_dir)?;
    if recorded.is_empty() {
        println!("nothing recorded in {}", state_dir.join("pids").display());
        return Ok(());
    }
    let live: Vec<&Recorded> = recorded.iter().filter(|r| r.is_ours_and_alive()).collect();
    for r in &live {
        if let Err(e) = send_signal(r.pid, "TERM") {
            eprintln!("testbed: {e:#}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && live.iter().any(|r| pid_alive(r.pid)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for r in &live {
        if pid_alive(r.pid) {
            println!(
                "{} (pid {}) still running 5 s after SIGTERM: SIGKILL",
                r.name, r.pid
            );
            if let Err(e) = send_signal(r.pid, "KILL") {
                eprintln!("testbed: {e:#}");
            }
        }
    }
    for r in &recorded {
        let what = if live.iter().any(|l| l.pid == r.pid) {
            "stopped"
        } else {
            "was not running"
        };
        println!("{} (pid {}): {what}", r.name, r.pid);
    }
    let pids = state_dir.join("pids");
    match std::fs::remove_file(&pids) {
        // Another `down` (the demo's own, on exit) removed it meanwhile.
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", pids.display()))
        }
        _ => Ok(()),
    }
}

fn status(state_dir: &Path) -> Result<()> {
    let recorded = read_pids(state_dir)?;
    if recorded.is_empty() {
        println!(
            "no test bed recorded in {} (start one with `testbed up --state-dir {}`)",
            state_dir.display(),
            state_dir.display()
        );
        return Ok(());
    }
    for r in &recorded {
        let state = if r.is_ours_and_alive() {
            "running"
        } else {
            "NOT running"
        };
        println!("{:<15} pid {:<8} {state}", r.name, r.pid);
    }
    let kubeconfig = state_dir.join("kubeconfig");
    if let Ok(config) = kube::config::Kubeconfig::read_from(&kubeconfig)
        && let Some(server) = config
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
    {
        println!(
            "kube-apiserver  {server} (KUBECONFIG={})",
            kubeconfig.display()
        );
    }
    if let Ok(port) = std::fs::read_to_string(state_dir.join("emulator.port")) {
        println!(
            "AWS emulator    http://127.0.0.1:{} (source {})",
            port.trim(),
            state_dir.join("aws.env").display()
        );
    }
    Ok(())
}
