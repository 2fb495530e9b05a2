//! Spawning the test bed's child processes: through the watchdog (they die with the test
//! process) or detached in their own session (they outlive `testbed up`).

use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::paths;

/// How a child is tied to the current process.
#[derive(Debug, Clone)]
pub enum SpawnMode {
    /// Through `hack/reap-with-parent.sh`: dies when this process dies, even by SIGKILL. With
    /// `rm_dir`, the watchdog also removes that directory once this process is gone.
    Watched { rm_dir: Option<PathBuf> },
    /// In its own session (`setsid`), no watchdog: outlives this process.
    Detached,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub current_dir: Option<PathBuf>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

impl Spec {
    pub fn new(program: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            log: log.into(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
}

/// A running child. Unless detached, dropping it kills it (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
    detached: bool,
}

impl ChildProcess {
    /// Spawns `spec` in `mode`; `name` is for messages.
    pub fn spawn(name: &str, spec: &Spec, mode: &SpawnMode) -> Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", spec.log.display()))?;
        let mut cmd = match mode {
            SpawnMode::Watched { rm_dir } => {
                let mut cmd = Command::new(paths::watchdog_script());
                cmd.arg(std::process::id().to_string()).arg(&spec.program);
                if let Some(dir) = rm_dir {
                    cmd.env("REAP_RM_DIR", dir);
                }
                cmd
            }
            SpawnMode::Detached => {
                // Not a process-group leader here, so setsid(1) calls setsid(2) and execs the
                // program: the pid we record is the program's.
                let mut cmd = Command::new("setsid");
                cmd.arg(&spec.program);
                cmd
            }
        };
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(dir) = &spec.current_dir {
            cmd.current_dir(dir);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({})", spec.program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: spec.log.clone(),
            detached: matches!(mode, SpawnMode::Detached),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8; empty if unreadable).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// `Some(status)` once it has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL (no chance to clean up), then reap.
    pub fn kill_9(&mut self) -> Result<()> {
        if self.try_exit_status().is_none() {
            self.child
                .kill()
                .with_context(|| format!("killing {}", self.name))?;
        }
        self.child
            .wait()
            .with_context(|| format!("reaping {}", self.name))?;
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps it.
    pub fn terminate(&mut self, grace: Duration) -> Result<()> {
        if self.try_exit_status().is_some() {
            return Ok(());
        }
        send_signal(self.id(), "TERM")?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.try_exit_status().is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_9()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released: another process may take it first,
/// which is unlikely enough for a test bed).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound address")?
        .port())
}

/// Sends a signal (`TERM`, `KILL`, ...) with kill(1).
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill(1)")?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed ({status})");
    Ok(())
}

/// Whether `pid` is a live (non-zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = read_lossy(path);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
