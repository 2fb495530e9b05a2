//! The EC2/KMS emulator (`tests/emulator`, moto underneath) as a child process, and a client
//! for its `/_emulator/` control API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_ec2::config::{Credentials, Region};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::control_plane::record_pids;
use crate::paths;
use crate::process::{ChildProcess, SpawnMode, Spec};

/// Static credentials the emulator accepts (any would do).
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running emulator. Dropping it kills it unless it was started detached.
pub struct Emulator {
    child: ChildProcess,
    _temp_dir: Option<tempfile::TempDir>,
    port: u16,
    http: reqwest::Client,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("endpoint", &self.endpoint())
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// `GET /_emulator/calls`: requests per action (`CreateVolume`, `kms:DescribeKey`), faulted or
/// not, how many of them were faulted, and how many Describe requests named their resources by
/// id (on-demand reads, as opposed to filtered sweeps).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Calls {
    #[serde(default)]
    pub calls: BTreeMap<String, u64>,
    #[serde(default)]
    pub faulted: BTreeMap<String, u64>,
    #[serde(default)]
    pub by_ids: BTreeMap<String, u64>,
}

impl Calls {
    /// Requests seen for `action` (0 if none).
    pub fn count(&self, action: &str) -> u64 {
        self.calls.get(action).copied().unwrap_or(0)
    }

    /// Requests for `action` that got a fault.
    pub fn faulted_count(&self, action: &str) -> u64 {
        self.faulted.get(action).copied().unwrap_or(0)
    }

    /// All requests seen.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The requests that change something in AWS, by action: every action but the reads
    /// (`Describe*`, `Get*`, `kms:Describe*`, `kms:Get*`, `kms:List*`, `sts:*`).
    pub fn mutating(&self) -> BTreeMap<String, u64> {
        const READS: [&str; 6] = [
            "Describe",
            "Get",
            "kms:Describe",
            "kms:Get",
            "kms:List",
            "sts:",
        ];
        self.calls
            .iter()
            .filter(|(action, _)| !READS.iter().any(|r| action.starts_with(r)))
            .map(|(action, n)| (action.clone(), *n))
            .collect()
    }
}

/// Who signed some of the emulator's requests: an access key, its calls by action, and the
/// STS session it came from (`None`: a key not issued by AssumeRole).
#[derive(Debug, Clone, Deserialize)]
pub struct Principal {
    pub session: Option<Session>,
    pub calls: BTreeMap<String, u64>,
}

/// An AssumeRole session: the role, the session name and the session tags asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub role_arn: String,
    pub session_name: String,
    pub tags: BTreeMap<String, String>,
}

/// An IAM user of the emulator (`POST /_emulator/iam-users`): requests signed with its key
/// are held to its policy (`tests/emulator/ec2emu/iam.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct IamUser {
    #[serde(default)]
    pub name: String,
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl IamUser {
    /// The AWS variables that make a process sign as this user.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                self.secret_access_key.clone(),
            ),
        ]
    }
}

/// The kinds of fault the emulator scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 503 `RequestLimitExceeded` (KMS: 400 `ThrottlingException`).
    Throttle,
    /// HTTP 500 `InternalError` (KMS: `KMSInternalException`).
    ServerError,
    /// Sleep `delay_ms`, then serve normally.
    Slow,
    /// Close the connection without applying the request.
    Drop,
    /// Apply the request, then close the connection without a response.
    DropAfter,
    /// Answer the chosen AWS error (`code`) without applying the request.
    Error,
}

/// A fault rule, `POST /_emulator/faults`: the next `count` requests for `action` (or `"*"`)
/// after letting `skip` through get the fault. `Fault::throttle("CreateVolume").count(2)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub action: String,
    pub fault: FaultKind,
    pub count: u32,
    pub skip: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// The AWS error code of [`FaultKind::Error`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Fault {
    pub fn new(action: impl Into<String>, fault: FaultKind) -> Self {
        Self {
            action: action.into(),
            fault,
            count: 1,
            skip: 0,
            delay_ms: None,
            code: None,
        }
    }

    /// Answers the AWS error `code` (HTTP 400) without applying the request.
    pub fn error(action: impl Into<String>, code: &str) -> Self {
        Self {
            code: Some(code.to_owned()),
            ..Self::new(action, FaultKind::Error)
        }
    }

    pub fn throttle(action: impl Into<String>) -> Self {
        Self::new(action, FaultKind::Throttle)
    }

    pub fn server_error(action: impl Into<String>) -> Self {
        Self::new(action, FaultKind::ServerError)
    }

    /// Delays the request by `delay_ms` (then serves it).
    pub fn slow(action: impl Into<String>, delay_ms: u64) -> Self {
        Self::new(action, FaultKind::Slow).delay_ms(delay_ms)
    }

    pub fn drop(action: impl Into<String>) -> Self {
        Self::new(action, FaultKind::Drop)
    }

    pub fn drop_after(action: impl Into<String>) -> Self {
        Self::new(action, FaultKind::DropAfter)
    }

    /// How many matching requests get the fault (default 1).
    #[must_use]
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// How many matching requests to let through first (default 0).
    #[must_use]
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }

    #[must_use]
    pub fn delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = Some(delay_ms);
        self
    }
}

impl Emulator {
    /// Starts a private emulator for the caller (it dies with this process; drop kills it).
    pub async fn start() -> Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix("ec2r-emulator-")
            .tempdir()
            .context("creating a temporary directory for the emulator")?;
        let dir = temp.path().to_path_buf();
        let mode = SpawnMode::Watched {
            rm_dir: Some(dir.clone()),
        };
        Self::start_in(&dir, &mode, Some(temp)).await
    }

    /// Starts an emulator that outlives this process (`make env-up`): log and port file in
    /// `state_dir`, its pid appended to `<state_dir>/pids`.
    pub async fn start_detached(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let emu = Self::start_in(state_dir, &SpawnMode::Detached, None).await?;
        record_pids(state_dir, &[&emu.child])?;
        Ok(emu)
    }

    async fn start_in(
        dir: &Path,
        mode: &SpawnMode,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Self> {
        let python = paths::emulator_python()?;
        let ready_file = dir.join("emulator.port");
        let _ = std::fs::remove_file(&ready_file);
        let spec = Spec::new(&python, dir.join("emulator.log"))
            .args(["-m", "ec2emu", "--host", "127.0.0.1", "--port", "0"])
            .arg("--ready-file")
            .arg(&ready_file)
            .envs([(
                "PYTHONPATH",
                paths::repo_root()
                    .join("tests")
                    .join("emulator")
                    .display()
                    .to_string(),
            )]);
        let mut child = ChildProcess::spawn("ec2emu", &spec, mode)?;
        let deadline = Instant::now() + START_DEADLINE;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file)
                && let Ok(port) = text.trim().parse::<u16>()
            {
                break port;
            }
            if let Some(status) = child.try_exit_status() {
                bail!(
                    "the emulator exited ({status}) before it was serving; last lines of {}:\n{}",
                    child.log_path().display(),
                    child.log_tail(30)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the emulator wrote no port to {} within {START_DEADLINE:?}; last lines of {}:\n{}",
                    ready_file.display(),
                    child.log_path().display(),
                    child.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building an HTTP client")?;
        let emu = Self {
            child,
            _temp_dir: temp,
            port,
            http,
        };
        emu.control(reqwest::Method::GET, "health", None)
            .await
            .context("the emulator's health check")?;
        Ok(emu)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The emulator's log (stderr/stdout) so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    pub fn log_path(&self) -> PathBuf {
        self.child.log_path().to_path_buf()
    }

    async fn control(
        &self,
        method: reqwest::Method,
        name: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}/_emulator/{name}", self.endpoint());
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading the answer to {method} {url}"))?;
        if !status.is_success() {
            bail!("{method} {url}: HTTP {status}: {text}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url}: answer is not JSON: {text}"))
    }

    /// Resets moto's state, counters, faults, clock and transition settings.
    pub async fn reset(&self) -> Result<()> {
        self.control(reqwest::Method::POST, "reset", None)
            .await
            .map(drop)
    }

    /// The call counters.
    pub async fn calls(&self) -> Result<Calls> {
        let value = self.control(reqwest::Method::GET, "calls", None).await?;
        serde_json::from_value(value).context("parsing /_emulator/calls")
    }

    /// The calls by the access key that signed them, with the STS session of each key.
    pub async fn principals(&self) -> Result<BTreeMap<String, Principal>> {
        #[derive(Deserialize)]
        struct Principals {
            principals: BTreeMap<String, Principal>,
        }
        let value = self
            .control(reqwest::Method::GET, "principals", None)
            .await?;
        let parsed: Principals =
            serde_json::from_value(value).context("parsing /_emulator/principals")?;
        Ok(parsed.principals)
    }

    /// A new IAM user whose only permissions are `policy` (an IAM policy document).
    pub async fn create_iam_user(&self, name: &str, policy: &Value) -> Result<IamUser> {
        let body = serde_json::json!({ "name": name, "policy": policy });
        let value = self
            .control(reqwest::Method::POST, "iam-users", Some(&body))
            .await?;
        let mut user: IamUser = serde_json::from_value(value)
            .context("parsing the answer of POST /_emulator/iam-users")?;
        user.name = name.to_owned();
        Ok(user)
    }

    /// Replaces the policy of IAM user `name` (as iam:PutUserPolicy); the next request is
    /// held to the new one.
    pub async fn put_iam_policy(&self, name: &str, policy: &Value) -> Result<()> {
        let body = serde_json::json!({ "name": name, "policy": policy });
        self.control(reqwest::Method::PUT, "iam-users", Some(&body))
            .await
            .map(drop)
    }

    /// Requests IAM refused, by the IAM action refused (`ec2:ModifyVolume`).
    pub async fn iam_refusals(&self) -> Result<BTreeMap<String, u64>> {
        #[derive(Deserialize)]
        struct Refusals {
            refusals: BTreeMap<String, u64>,
        }
        let value = self
            .control(reqwest::Method::GET, "iam-refusals", None)
            .await?;
        let parsed: Refusals =
            serde_json::from_value(value).context("parsing /_emulator/iam-refusals")?;
        Ok(parsed.refusals)
    }

    /// Zeroes the call counters.
    pub async fn clear_calls(&self) -> Result<()> {
        self.control(reqwest::Method::DELETE, "calls", None)
            .await
            .map(drop)
    }

    /// Adds a fault rule.
    pub async fn inject(&self, fault: Fault) -> Result<()> {
        let body = serde_json::to_value(&fault).context("serialising a fault")?;
        self.control(reqwest::Method::POST, "faults", Some(&body))
            .await
            .map(drop)
    }

    /// The fault rules not yet used up.
    pub async fn pending_faults(&self) -> Result<Value> {
        let value = self.control(reqwest::Method::GET, "faults", None).await?;
        Ok(value.get("faults").cloned().unwrap_or(Value::Null))
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) -> Result<()> {
        self.control(reqwest::Method::DELETE, "faults", None)
            .await
            .map(drop)
    }

    /// Moves the emulator's clock forward.
    pub async fn advance_clock(&self, seconds: f64) -> Result<()> {
        let body = serde_json::json!({ "advance_seconds": seconds });
        self.control(reqwest::Method::POST, "clock", Some(&body))
            .await
            .map(drop)
    }

    /// Seeds an `available` image of another account (`POST /_emulator/images`, see the
    /// emulator README for the fields; only `name` is required); returns its `image_id`,
    /// `snapshot_id`, `owner_id` and `region`.
    pub async fn seed_image(&self, image: Value) -> Result<Value> {
        self.control(reqwest::Method::POST, "images", Some(&image))
            .await
    }

    /// Makes the next CopyImage end `failed` with this StateReason (its snapshots `error`).
    pub async fn fail_next_image_copy(&self, code: &str, message: &str) -> Result<()> {
        self.control(
            reqwest::Method::POST,
            "image-copy-failures",
            Some(&serde_json::json!({ "code": code, "message": message })),
        )
        .await
        .map(drop)
    }

    /// Sets pending-state durations (`{"volume-create": 0.5, ...}`); returns all settings.
    pub async fn set_transitions(&self, settings: Value) -> Result<Value> {
        let value = self
            .control(reqwest::Method::POST, "transitions", Some(&settings))
            .await?;
        Ok(value.get("transitions").cloned().unwrap_or(Value::Null))
    }

    /// An AWS SDK config for this emulator: static test credentials, `endpoint_url`, the
    /// latest behavior version, the SDK's standard retries.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "ec2emu",
            ))
            .load()
            .await
    }

    /// Environment for a process that should talk to this emulator (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, static credentials; IMDS disabled).
    pub fn env_vars(&self, region: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", region.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
