//! `ec2-reconciler plan`: what the controller would do for the objects in manifest files,
//! computed against the live cluster (for the objects' status) and AWS, changing nothing.
//!
//! Each object is first sent to the API server as a server-side dry run, so a manifest
//! `kubectl apply` would reject is reported with the API's own message (CEL rules included,
//! and the rules on changes to an existing object), and is not planned.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{reflector, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::config::Config;
use super::metrics::Metrics;
use crate::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use crate::plan::core::{Plan, PlannedAction, PlannedWait};
use crate::reconcile::{Context, Reconciler, preview};

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// The plan of every object in the files.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub objects: Vec<ObjectPlan>,
}

/// One object's plan.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The API server's refusal of the manifest (`kubectl apply` would fail the same way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// Why the controller would not act (the object would be `Synced=False`).
    pub problems: Vec<PlanProblem>,
    /// What AWS is still working on.
    pub waits: Vec<String>,
    /// The changes the controller would make, in order.
    pub changes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlanProblem {
    pub reason: String,
    pub message: String,
}

impl Report {
    /// 1 when an object is rejected (with `detailed`, also refused), 2 with `detailed`
    /// when changes are planned, 0 otherwise.
    pub fn exit_code(&self, detailed: bool) -> i32 {
        let rejected = self.objects.iter().any(|o| o.rejected.is_some());
        let refused = self.objects.iter().any(|o| !o.problems.is_empty());
        let changes = self.objects.iter().any(|o| !o.changes.is_empty());
        match (detailed, rejected, refused, changes) {
            (_, true, _, _) | (true, _, true, _) => 1,
            (true, _, _, true) => 2,
            _ => 0,
        }
    }

    pub fn render(&self, output: Output) -> anyhow::Result<String> {
        match output {
            Output::Json => Ok(serde_json::to_string_pretty(self)? + "\n"),
            Output::Text => {
                let mut out = String::new();
                for o in &self.objects {
                    writeln!(out, "{} {}/{}:", o.kind, o.namespace, o.name)?;
                    if let Some(rejected) = &o.rejected {
                        writeln!(out, "  x rejected by the API: {rejected}")?;
                        continue;
                    }
                    for problem in &o.problems {
                        writeln!(out, "  ! {}: {}", problem.reason, problem.message)?;
                    }
                    for wait in &o.waits {
                        writeln!(out, "  ~ {wait}")?;
                    }
                    if o.changes.is_empty() && o.problems.is_empty() {
                        writeln!(out, "  no changes")?;
                    }
                    for change in &o.changes {
                        writeln!(out, "  + {change}")?;
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Reads every document of every file and plans each object.
pub async fn run(
    config: &Config,
    files: &[PathBuf],
    default_namespace: &str,
) -> anyhow::Result<Report> {
    let client = super::kube_client::from_env().await?;
    let mut ctx = super::context(config, client.clone(), &Metrics::default()).await;
    // The namespaces the files name, read once each: their labels carry the grants, their
    // annotations the role.
    let (store, namespaces) = reflector::store::<Namespace>();
    ctx.tenancy.namespaces = Some(store);
    let mut planner = Planner {
        ctx,
        client,
        namespaces,
        default_namespace: default_namespace.to_owned(),
        report: Report::default(),
    };
    for file in manifest_files(files)? {
        let file = &file;
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)?;
            if value.is_null() {
                continue;
            }
            match value["kind"].as_str().unwrap_or_default() {
                "EbsVolume" => planner.object::<EbsVolume>(value).await?,
                "AmiImage" => planner.object::<AmiImage>(value).await?,
                "EncryptedVolumeMigration" => {
                    planner.object::<EncryptedVolumeMigration>(value).await?
                }
                kind => anyhow::bail!(
                    "{}: {kind} is not a kind of ec2.reconciler.dev (EbsVolume, AmiImage, EncryptedVolumeMigration)",
                    file.display()
                ),
            }
        }
    }
    Ok(planner.report)
}

/// The files named, a directory standing for its `.yaml` and `.yml` files (sorted).
fn manifest_files(named: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in named {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

struct Planner {
    ctx: Context,
    client: Client,
    namespaces: Writer<Namespace>,
    default_namespace: String,
    report: Report,
}

impl Planner {
    /// Plans one object of kind `K` from its manifest, and writes the plan in words.
    async fn object<K: Reconciler>(&mut self, value: serde_json::Value) -> anyhow::Result<()> {
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = value["metadata"]["namespace"]
            .as_str()
            .map_or_else(|| self.default_namespace.clone(), str::to_owned);
        let mut object = ObjectPlan {
            kind: K::KIND.to_owned(),
            namespace: namespace.clone(),
            name: name.clone(),
            ..ObjectPlan::default()
        };
        if let Some(rejected) = self.dry_run::<K>(&namespace, &name, &value).await? {
            object.rejected = Some(rejected);
            self.report.objects.push(object);
            return Ok(());
        }
        let mut desired: K = serde_json::from_value(value)?;
        desired.meta_mut().namespace = Some(namespace.clone());
        if let Some(ns) = Api::<Namespace>::all(self.client.clone())
            .get_opt(&namespace)
            .await?
        {
            self.namespaces
                .apply_watcher_event(&watcher::Event::Apply(ns));
        }
        // An object that already exists keeps its identity and recorded state; the file
        // only brings the spec it would apply.
        if let Some(live) = Api::<K>::namespaced(self.client.clone(), &namespace)
            .get_opt(&name)
            .await?
        {
            desired = desired.applied_to(live);
        }
        let kind_plan = preview(&desired, &self.ctx).await?;
        let plan: &Plan<K::Action, K::Wait> = kind_plan.borrow();
        object.problems = plan
            .problems
            .iter()
            .map(|p| PlanProblem {
                reason: p.reason.to_owned(),
                message: p.message.clone(),
            })
            .collect();
        object.waits = plan.waits.iter().map(PlannedWait::message).collect();
        object.changes = plan.actions.iter().map(PlannedAction::describe).collect();
        self.report.objects.push(object);
        Ok(())
    }

    /// The API server's answer to applying the manifest, as a server-side dry run (nothing
    /// is stored): `Some(message)` when it refuses it. A plan that may not dry-run (no
    /// `patch` permission) says so and plans anyway.
    async fn dry_run<K: Reconciler>(
        &self,
        namespace: &str,
        name: &str,
        manifest: &serde_json::Value,
    ) -> anyhow::Result<Option<String>> {
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let params = PatchParams::apply("ec2-reconciler-plan").dry_run().force();
        match api.patch(name, &params, &Patch::Apply(manifest)).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(e)) if e.code == 400 || e.code == 422 => Ok(Some(e.message)),
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::warn!(message = %e.message, "not allowed to dry-run: the manifest is planned without the API's validation");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_yaml_files_in_order() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("plan-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        for name in ["b.yml", "a.yaml", "notes.txt"] {
            std::fs::write(dir.join(name), "")?;
        }
        let single = PathBuf::from("one.yaml");
        let files = manifest_files(&[dir.clone(), single.clone()])?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(files, vec![dir.join("a.yaml"), dir.join("b.yml"), single]);
        Ok(())
    }

    fn object(rejected: bool, problems: usize, changes: usize) -> ObjectPlan {
        ObjectPlan {
            rejected: rejected.then(|| "no".to_owned()),
            problems: (0..problems)
                .map(|_| PlanProblem {
                    reason: "NotGranted".into(),
                    message: String::new(),
                })
                .collect(),
            changes: vec!["create".to_owned(); changes],
            ..ObjectPlan::default()
        }
    }

    #[test]
    fn exit_codes_follow_terraforms_detailed_exitcode() {
        let report = |objects: Vec<ObjectPlan>| Report { objects };
        assert_eq!(report(vec![object(false, 0, 0)]).exit_code(true), 0);
        assert_eq!(report(vec![object(false, 0, 1)]).exit_code(true), 2);
        assert_eq!(
            report(vec![object(false, 0, 1), object(false, 1, 0)]).exit_code(true),
            1
        );
        assert_eq!(report(vec![object(true, 0, 0)]).exit_code(true), 1);
        // Without the flag: only a rejection fails.
        assert_eq!(report(vec![object(false, 1, 1)]).exit_code(false), 0);
        assert_eq!(report(vec![object(true, 0, 0)]).exit_code(false), 1);
    }
}
