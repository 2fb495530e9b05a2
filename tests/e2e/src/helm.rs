//! The real `helm` (built from its Go module by `hack/helm-binary.sh`), run as a child process
//! with directories of its own, and the YAML it renders parsed into JSON values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use serde::Deserialize as _;
use serde_json::Value;

use crate::paths;

/// A `helm` with its own configuration, cache and data directories (removed on drop) and no
/// environment from the caller, so neither the developer's Helm setup nor `KUBECONFIG` can
/// change what it does.
pub struct Helm {
    binary: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: Option<PathBuf>,
}

/// What one `helm` run ended with.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: &Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The words of stderr (split on anything but letters, digits, `.`, `-` and `_`, with
    /// trailing dots dropped), to check that an error names a value without matching a phrase.
    pub fn stderr_words(&self) -> Vec<&str> {
        self.stderr
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            .map(|w| w.trim_end_matches('.'))
            .filter(|w| !w.is_empty())
            .collect()
    }
}

impl Helm {
    /// The cached binary (built on first use; an error says how to build it by hand).
    pub fn new() -> Result<Self> {
        let binary = paths::helm_binary()?;
        let home = tempfile::Builder::new()
            .prefix("ec2r-helm-")
            .tempdir()
            .context("creating helm's home directory")?;
        Ok(Self {
            binary,
            home,
            kubeconfig: None,
        })
    }

    /// Talk to the cluster of this kubeconfig (`--kubeconfig`).
    #[must_use]
    pub fn with_kubeconfig(mut self, path: &Path) -> Self {
        self.kubeconfig = Some(path.to_path_buf());
        self
    }

    /// `helm ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .args(args);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        cmd
    }

    /// Runs `helm ARGS...` and returns how it ended, success or not.
    pub fn run(&self, args: &[&str]) -> Result<Run> {
        let output = self
            .command(args)
            .output()
            .with_context(|| format!("running {} {}", self.binary.display(), args.join(" ")))?;
        Ok(Run::from_output(&output))
    }

    /// Runs `helm ARGS...`, which must exit 0; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let run = self.run(args)?;
        if run.code != Some(0) {
            bail!(
                "helm {} exited with {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                args.join(" "),
                run.code,
                run.stderr,
                run.stdout
            );
        }
        Ok(run.stdout)
    }

    /// `helm template RELEASE <chart> --namespace NAMESPACE EXTRA...`, parsed.
    pub fn template(&self, release: &str, namespace: &str, extra: &[&str]) -> Result<Rendered> {
        let chart = paths::chart_dir();
        let chart = chart.to_string_lossy();
        let mut args = vec!["template", release, &chart, "--namespace", namespace];
        args.extend_from_slice(extra);
        Rendered::parse(&self.ok(&args)?)
    }
}

/// The documents of a rendered chart, as JSON values.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub docs: Vec<Value>,
}

impl Rendered {
    /// Parses a multi-document YAML stream; empty documents are dropped.
    pub fn parse(yaml: &str) -> Result<Self> {
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value = Value::deserialize(doc).context("parsing helm's output")?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        Ok(Self { docs })
    }

    /// `(kind, name)` of every document, sorted.
    pub fn kinds_and_names(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .docs
            .iter()
            .map(|d| (kind(d).to_owned(), name(d).to_owned()))
            .collect();
        all.sort();
        all
    }

    /// Every document of this kind.
    pub fn of_kind<'a>(&'a self, wanted: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().filter(move |d| kind(d) == wanted)
    }

    /// The one document of this kind and name.
    pub fn get(&self, wanted_kind: &str, wanted_name: &str) -> Result<&Value> {
        let mut found = self
            .docs
            .iter()
            .filter(|d| kind(d) == wanted_kind && name(d) == wanted_name);
        let doc = found.next().with_context(|| {
            format!(
                "no {wanted_kind} {wanted_name} rendered; rendered: {:?}",
                self.kinds_and_names()
            )
        })?;
        if found.next().is_some() {
            bail!("{wanted_kind} {wanted_name} rendered twice");
        }
        Ok(doc)
    }

    /// The one document of this kind.
    pub fn only(&self, wanted_kind: &str) -> Result<&Value> {
        let all: Vec<&Value> = self
            .docs
            .iter()
            .filter(|d| kind(d) == wanted_kind)
            .collect();
        match all.as_slice() {
            [one] => Ok(one),
            _ => bail!(
                "expected one {wanted_kind}, rendered {}: {:?}",
                all.len(),
                self.kinds_and_names()
            ),
        }
    }
}

/// `kind` of a document ("" when absent).
pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

/// `metadata.name` of a document ("" when absent).
pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}
