//! The `ec2-reconciler` binary as a child process pointed at a test bed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::control_plane::ControlPlane;
use crate::emulator::Emulator;
use crate::paths;
use crate::process::{ChildProcess, SpawnMode, Spec, free_port};

/// The Region the controller is started with.
pub const REGION: &str = "us-east-1";

/// A running `ec2-reconciler run`. Dropping it kills it (SIGKILL).
#[derive(Debug)]
pub struct ControllerProcess {
    child: ChildProcess,
    health_port: u16,
    http: reqwest::Client,
}

impl ControllerProcess {
    /// Runs `ec2-reconciler run --health-addr 127.0.0.1:<free port> ARGS...` with
    /// `KUBECONFIG` = the control plane's admin kubeconfig, the emulator's AWS variables
    /// (Region `us-east-1`) and `RUST_LOG=info,ec2_reconciler=debug`; output goes to
    /// `<control plane state dir>/controller-<n>.log`. Does not wait for readiness (see
    /// [`Self::wait_ready`]).
    pub fn spawn(cp: &ControlPlane, emu: &Emulator, args: &[&str]) -> Result<Self> {
        Self::spawn_with_kubeconfig(cp, emu, cp.admin_kubeconfig_path(), args)
    }

    /// Like [`Self::spawn`], authenticating to the apiserver with `kubeconfig` (to run the
    /// controller as a less privileged user, e.g. the chart's ServiceAccount).
    pub fn spawn_with_kubeconfig(
        cp: &ControlPlane,
        emu: &Emulator,
        kubeconfig: &std::path::Path,
        args: &[&str],
    ) -> Result<Self> {
        Self::spawn_with_env(cp, emu, kubeconfig, args, &[])
    }

    /// Like [`Self::spawn_with_kubeconfig`], with environment variables that override the
    /// emulator's (e.g. an IAM user's AWS credentials).
    pub fn spawn_with_env(
        cp: &ControlPlane,
        emu: &Emulator,
        kubeconfig: &std::path::Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        Self::spawn_binary(&paths::controller_binary()?, cp, emu, kubeconfig, args, env)
    }

    /// Like [`Self::spawn_with_env`], running `binary` instead of the debug build (the
    /// benchmark runs the release build).
    pub fn spawn_binary(
        binary: &std::path::Path,
        cp: &ControlPlane,
        emu: &Emulator,
        kubeconfig: &std::path::Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let health_port = free_port()?;
        let log = cp
            .state_dir()
            .join(format!("controller-{}-{n}.log", std::process::id()));
        let spec = Spec::new(binary, log)
            .arg("run")
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{health_port}"))
            .args(args.iter().copied())
            .envs(emu.env_vars(REGION))
            .envs([
                ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
                (
                    "RUST_LOG".to_owned(),
                    "info,ec2_reconciler=debug".to_owned(),
                ),
            ])
            .envs(env.iter().cloned());
        let child = ChildProcess::spawn(
            "ec2-reconciler",
            &spec,
            &SpawnMode::Watched { rm_dir: None },
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building an HTTP client")?;
        Ok(Self {
            child,
            health_port,
            http,
        })
    }

    /// `http://127.0.0.1:<health port><path>` (`/healthz`, `/readyz`, `/metrics`).
    pub fn health_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.health_port)
    }

    /// GETs a path of the health server: `(status, body)`.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let url = self.health_url(path);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .with_context(|| format!("reading the body of GET {url}"))?;
        Ok((status, body))
    }

    /// Polls `/readyz` until it answers 200; fails (with the log's tail) on timeout or exit.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            if let Some(status) = self.child.try_exit_status() {
                bail!(
                    "ec2-reconciler exited ({status}); last lines of its log:\n{}",
                    self.child.log_tail(40)
                );
            }
            match self.get("/readyz").await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("HTTP {status}: {}", body.trim()),
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "ec2-reconciler not ready after {timeout:?} ({last}); last lines of its log:\n{}",
                    self.child.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_exit_status()
    }

    /// SIGKILL: a crash, no shutdown path runs.
    pub fn kill_9(&mut self) -> Result<()> {
        self.child.kill_9()
    }

    /// SIGTERM, then SIGKILL after `grace`: the graceful shutdown path.
    pub fn terminate(&mut self, grace: Duration) -> Result<()> {
        self.child.terminate(grace)
    }

    /// Its log (stdout and stderr) so far.
    pub fn log(&self) -> String {
        self.child.log()
    }
}
