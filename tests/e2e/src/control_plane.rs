//! A real etcd + kube-apiserver, started the way controller-runtime's envtest starts them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Deserialize as _;

use crate::certs::TestbedCerts;
use crate::paths;
use crate::process::{ChildProcess, SpawnMode, Spec, free_port};

/// The admin identity every harness client uses by default.
pub const ADMIN_USER: &str = "admin";
/// Its group, which bypasses RBAC.
pub const ADMIN_GROUP: &str = "system:masters";

const READY_DEADLINE: Duration = Duration::from_secs(90);
const ESTABLISHED_DEADLINE: Duration = Duration::from_secs(30);

/// How to start a control plane.
#[derive(Debug, Clone, Default)]
pub struct ControlPlaneOptions {
    /// Outlive this process (`make env-up`): own session, no watchdog, pids recorded in
    /// `<state_dir>/pids`. Requires `state_dir`.
    pub detached: bool,
    /// Where certificates, etcd's data, logs and the admin kubeconfig go; a temporary
    /// directory (removed on drop) when `None`.
    pub state_dir: Option<PathBuf>,
}

/// A running etcd + kube-apiserver. Dropping it kills both unless it was started detached.
pub struct ControlPlane {
    // Fields drop in order: the apiserver, then etcd, then the temporary directory.
    apiserver: ChildProcess,
    etcd: ChildProcess,
    _temp_dir: Option<tempfile::TempDir>,
    state_dir: PathBuf,
    certs: TestbedCerts,
    port: u16,
    etcd_url: String,
    bin_dir: PathBuf,
    admin_kubeconfig: PathBuf,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url())
            .field("etcd_url", &self.etcd_url)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// The kube-apiserver's process id (for its memory and CPU, read from `/proc`).
    pub fn apiserver_pid(&self) -> u32 {
        self.apiserver.id()
    }

    /// etcd's process id.
    pub fn etcd_pid(&self) -> u32 {
        self.etcd.id()
    }

    /// Starts etcd and kube-apiserver and waits until `/readyz` answers `ok`.
    pub async fn start(opts: ControlPlaneOptions) -> Result<Self> {
        crate::install_crypto_provider();
        let bin_dir = paths::binaries_dir()?;
        let (temp_dir, state_dir) = match (&opts.state_dir, opts.detached) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let dir = std::path::absolute(dir)
                    .with_context(|| format!("making {} absolute", dir.display()))?;
                (None, dir)
            }
            (None, true) => bail!("a detached control plane needs a state_dir"),
            (None, false) => {
                let temp = tempfile::Builder::new()
                    .prefix("ec2r-testbed-")
                    .tempdir()
                    .context("creating a temporary state directory")?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        // A test binary's shared control plane is never dropped: its watchdog removes the
        // temporary directory once the test process is gone.
        let spawn_mode = if opts.detached {
            SpawnMode::Detached
        } else {
            SpawnMode::Watched {
                rm_dir: temp_dir.as_ref().map(|_| state_dir.clone()),
            }
        };

        let certs = TestbedCerts::generate()?;
        let cert_dir = state_dir.join("certs");
        certs.write_to(&cert_dir)?;

        // etcd
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_spec = Spec::new(bin_dir.join("etcd"), state_dir.join("etcd.log")).args([
            "--name=testbed".to_owned(),
            format!("--data-dir={}", state_dir.join("etcd-data").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=testbed={peer_url}"),
            "--unsafe-no-fsync=true".to_owned(),
            "--log-level=warn".to_owned(),
        ]);
        let mut etcd = ChildProcess::spawn("etcd", &etcd_spec, &spawn_mode)?;
        wait_for_etcd(&mut etcd, &etcd_url).await?;

        // kube-apiserver
        let port = free_port()?;
        let cert = |f: &str| cert_dir.join(f).display().to_string();
        let apiserver_spec = Spec::new(
            bin_dir.join("kube-apiserver"),
            state_dir.join("kube-apiserver.log"),
        )
        .args([
            format!("--etcd-servers={etcd_url}"),
            format!("--cert-dir={}", cert_dir.display()),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--disable-admission-plugins=ServiceAccount".to_owned(),
            "--authorization-mode=RBAC".to_owned(),
            format!("--service-account-issuer=https://127.0.0.1:{port}/"),
            format!("--service-account-key-file={}", cert("sa-signer.pub")),
            format!(
                "--service-account-signing-key-file={}",
                cert("sa-signer.key")
            ),
            format!("--client-ca-file={}", cert("client-ca.crt")),
        ]);
        let apiserver = ChildProcess::spawn("kube-apiserver", &apiserver_spec, &spawn_mode)?;

        if opts.detached {
            record_pids(&state_dir, &[&etcd, &apiserver])?;
        }

        let mut cp = Self {
            apiserver,
            etcd,
            _temp_dir: temp_dir,
            state_dir: state_dir.clone(),
            certs,
            port,
            etcd_url,
            bin_dir,
            admin_kubeconfig: state_dir.join("kubeconfig"),
        };
        cp.write_kubeconfig(&cp.admin_kubeconfig, ADMIN_USER, &[ADMIN_GROUP])?;
        cp.wait_ready().await?;
        Ok(cp)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let (cert, key) = self.certs.client_cert(ADMIN_USER, &[ADMIN_GROUP])?;
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.certs.serving_ca.cert_pem().as_bytes())
                    .context("loading the serving CA into reqwest")?,
            )
            .identity(
                reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                    .context("loading the admin client certificate into reqwest")?,
            )
            .timeout(Duration::from_secs(5))
            .build()
            .context("building an HTTPS client")?;
        let url = format!("{}/readyz", self.server_url());
        let deadline = Instant::now() + READY_DEADLINE;
        let mut last: String;
        loop {
            if let Some(status) = self.apiserver.try_exit_status() {
                bail!(
                    "kube-apiserver exited ({status}) before it was ready; last lines of {}:\n{}",
                    self.apiserver.log_path().display(),
                    self.apiserver.log_tail(30)
                );
            }
            match http.get(&url).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    if status.is_success() && body.trim() == "ok" {
                        return Ok(());
                    }
                    last = format!("HTTP {status}: {}", body.trim());
                }
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver was not ready after {:?} (last answer from {url}: {last}); \
                     last lines of {}:\n{}",
                    READY_DEADLINE,
                    self.apiserver.log_path().display(),
                    self.apiserver.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The kube-apiserver's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// etcd's client URL.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// Certificates, logs, etcd's data and the admin kubeconfig live here.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The admin kubeconfig the harness wrote (`<state_dir>/kubeconfig`).
    pub fn admin_kubeconfig_path(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The test bed's PKI (to issue more client certificates, read CA PEMs).
    pub fn certs(&self) -> &TestbedCerts {
        &self.certs
    }

    /// Pids of (etcd, kube-apiserver).
    pub fn pids(&self) -> (u32, u32) {
        (self.etcd.id(), self.apiserver.id())
    }

    /// The apiserver's log so far.
    pub fn apiserver_log(&self) -> String {
        self.apiserver.log()
    }

    /// A kubeconfig authenticating as `user` in `groups` (at most two; see
    /// [`TestbedCerts::client_cert`]) with a fresh client certificate; CA data embedded.
    pub fn kubeconfig_yaml(&self, user: &str, groups: &[&str]) -> Result<String> {
        let (cert, key) = self.certs.client_cert(user, groups)?;
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "testbed",
                "cluster": {
                    "server": self.server_url(),
                    "certificate-authority-data": BASE64.encode(self.certs.serving_ca.cert_pem()),
                },
            }],
            "users": [{
                "name": user,
                "user": {
                    "client-certificate-data": BASE64.encode(cert),
                    "client-key-data": BASE64.encode(key),
                },
            }],
            "contexts": [{
                "name": "testbed",
                "context": {"cluster": "testbed", "user": user},
            }],
            "current-context": "testbed",
        });
        serde_yaml::to_string(&doc).context("serialising a kubeconfig")
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path, user: &str, groups: &[&str]) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let yaml = self.kubeconfig_yaml(user, groups)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(yaml.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// A client as `admin` in `system:masters`.
    pub async fn client(&self) -> Result<Client> {
        self.client_as(ADMIN_USER, &[ADMIN_GROUP]).await
    }

    /// A client authenticating with a client certificate for `user` in `groups`.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<Client> {
        crate::install_crypto_provider();
        let yaml = self.kubeconfig_yaml(user, groups)?;
        let kubeconfig = Kubeconfig::from_yaml(&yaml).context("parsing our own kubeconfig")?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .context("building a kube client config")?;
        Client::try_from(config).context("building a kube client")
    }

    /// Server-side applies (field manager `e2e`) every CustomResourceDefinition in the
    /// `*.yaml`/`*.yml` files of `dir`, then waits until each is Established.
    pub async fn install_crds(&self, dir: &Path) -> Result<()> {
        let client = self.client().await?;
        install_crds(&client, dir).await
    }

    /// `kubectl --kubeconfig <admin kubeconfig> ARGS...`.
    pub fn kubectl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .args(args);
        cmd
    }
}

async fn wait_for_etcd(etcd: &mut ChildProcess, url: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last: String;
    loop {
        if let Some(status) = etcd.try_exit_status() {
            bail!(
                "etcd exited ({status}) before it was healthy; last lines of {}:\n{}",
                etcd.log_path().display(),
                etcd.log_tail(30)
            );
        }
        match http.get(format!("{url}/health")).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => last = format!("HTTP {}", resp.status()),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!(
                "etcd was not healthy after 30 s ({last}); last lines of {}:\n{}",
                etcd.log_path().display(),
                etcd.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Appends `<pid> <name>` lines to `<state_dir>/pids`.
pub(crate) fn record_pids(state_dir: &Path, children: &[&ChildProcess]) -> Result<()> {
    use std::io::Write as _;
    let path = state_dir.join("pids");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    for child in children {
        writeln!(file, "{} {}", child.id(), child.name())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Server-side applies every CustomResourceDefinition found in `dir` (`*.yaml`, `*.yml`;
/// several documents per file allowed) with field manager `e2e`, then waits until each has
/// condition Established=True. An empty directory is fine.
pub async fn install_crds(client: &Client, dir: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("e2e").force();
    let mut names = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc)
                .with_context(|| format!("parsing {}", file.display()))?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_yaml::from_value(value)
                .with_context(|| format!("{} is not a CustomResourceDefinition", file.display()))?;
            let name = crd
                .metadata
                .name
                .clone()
                .with_context(|| format!("a CRD in {} has no metadata.name", file.display()))?;
            api.patch(&name, &params, &Patch::Apply(&crd))
                .await
                .with_context(|| format!("applying CRD {name} from {}", file.display()))?;
            names.push(name);
        }
    }
    for name in &names {
        wait_established(&api, name).await?;
    }
    Ok(())
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    let deadline = Instant::now() + ESTABLISHED_DEADLINE;
    loop {
        let crd = api
            .get(name)
            .await
            .with_context(|| format!("reading CRD {name}"))?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conds| {
                conds
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "CRD {name} not Established after {ESTABLISHED_DEADLINE:?}; status: {:?}",
                crd.status
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The control plane shared by every test of one test binary: started on first use (on its
/// own thread and tokio runtime, so no test's runtime owns it), with the CRDs of
/// `<repo>/crds` installed. Never dropped: the watchdog stops it when the test binary exits.
pub fn shared() -> Result<&'static ControlPlane> {
    static SHARED: OnceLock<std::result::Result<ControlPlane, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| start_shared().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("starting the shared control plane failed: {e}"))
}

fn start_shared() -> Result<ControlPlane> {
    let handle = std::thread::Builder::new()
        .name("testbed-control-plane".to_owned())
        .spawn(|| -> Result<ControlPlane> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a tokio runtime")?;
            runtime.block_on(async {
                let cp = ControlPlane::start(ControlPlaneOptions::default()).await?;
                let crds = paths::crds_dir();
                if crds.is_dir() {
                    cp.install_crds(&crds).await?;
                }
                Ok(cp)
            })
        })
        .context("spawning the control-plane thread")?;
    handle
        .join()
        .map_err(|_| anyhow!("the control-plane thread panicked"))?
}

/// Creates a namespace named `<prefix>-<unique suffix>` and returns its name.
pub async fn new_namespace(client: &Client, prefix: &str) -> Result<String> {
    new_labelled_namespace(client, prefix, &[]).await
}

/// Like [`new_namespace`], with these labels (an administrator's grants, for example).
pub async fn new_labelled_namespace(
    client: &Client,
    prefix: &str,
    labels: &[(&str, &str)],
) -> Result<String> {
    new_annotated_namespace(client, prefix, labels, &[]).await
}

/// Like [`new_namespace`], with these labels and annotations.
pub async fn new_annotated_namespace(
    client: &Client,
    prefix: &str,
    labels: &[(&str, &str)],
    annotations: &[(String, String)],
) -> Result<String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    let prefix = if prefix.is_empty() { "test" } else { prefix };
    let name = format!("{prefix}-{n}-{:06x}", nanos & 0xff_ffff);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            annotations: Some(annotations.iter().cloned().collect()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(name)
}
