//! `ec2-reconciler plan`: what the controller would do for the objects in manifest files,
//! computed against the live cluster (for the objects' status) and AWS, changing nothing.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use super::config::Config;
use super::metrics::Metrics;
use crate::api::{AmiImage, EbsVolume};
use crate::plan::core::{Plan, PlannedAction, PlannedWait};
use crate::reconcile::{Context, Reconciler, preview};

/// Reads every document of every file and describes each object's plan.
pub async fn run(
    config: &Config,
    files: &[PathBuf],
    default_namespace: &str,
) -> anyhow::Result<String> {
    let client = Client::try_default().await?;
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
        out: String::new(),
    };
    for file in files {
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
                kind => {
                    let name = value["metadata"]["name"].as_str().unwrap_or_default();
                    writeln!(
                        planner.out,
                        "{kind} {name}: planning this kind is not built yet"
                    )?;
                }
            }
        }
    }
    Ok(planner.out)
}

struct Planner {
    ctx: Context,
    client: Client,
    namespaces: Writer<Namespace>,
    default_namespace: String,
    out: String,
}

impl Planner {
    /// Plans one object of kind `K` from its manifest, and writes the plan in words.
    async fn object<K: Reconciler>(&mut self, value: serde_json::Value) -> anyhow::Result<()> {
        let mut desired: K = serde_json::from_value(value)?;
        let name = desired.name_any();
        let namespace = desired
            .namespace()
            .unwrap_or_else(|| self.default_namespace.clone());
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
        writeln!(self.out, "{} {namespace}/{name}:", K::KIND)?;
        for problem in &plan.problems {
            writeln!(self.out, "  ! {}: {}", problem.reason, problem.message)?;
        }
        for wait in &plan.waits {
            writeln!(self.out, "  ~ {}", wait.message())?;
        }
        if plan.actions.is_empty() && plan.problems.is_empty() {
            writeln!(self.out, "  no changes")?;
        }
        for action in &plan.actions {
            writeln!(self.out, "  + {}", action.describe())?;
        }
        Ok(())
    }
}
