//! `ec2-reconciler plan`: what the controller would do for the objects in manifest files,
//! computed against the live cluster (for the objects' status) and AWS, changing nothing.

use std::fmt::Write as _;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::{reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use super::config::Config;
use super::metrics::Metrics;
use crate::api::EbsVolume;
use crate::plan::core::PlannedWait;
use crate::reconcile::preview;

/// Reads every document of every file and describes each object's plan.
pub async fn run(
    config: &Config,
    files: &[PathBuf],
    default_namespace: &str,
) -> anyhow::Result<String> {
    let client = Client::try_default().await?;
    let mut ctx = super::context(config, client.clone(), &Metrics::default()).await;
    // The namespaces the files name, read once each: their labels carry the grants.
    let (store, mut namespaces) = reflector::store::<Namespace>();
    ctx.tenancy.namespaces = Some(store);
    let mut out = String::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)?;
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if kind != "EbsVolume" {
                writeln!(out, "{kind} {name}: planning this kind is not built yet")?;
                continue;
            }
            let mut desired: EbsVolume = serde_json::from_value(value)?;
            let namespace = desired
                .namespace()
                .unwrap_or_else(|| default_namespace.to_owned());
            desired.metadata.namespace = Some(namespace.clone());
            if let Some(ns) = Api::<Namespace>::all(client.clone())
                .get_opt(&namespace)
                .await?
            {
                namespaces.apply_watcher_event(&watcher::Event::Apply(ns));
            }
            // An object that already exists keeps its identity and recorded state; the
            // file only brings the spec it would apply.
            if let Some(live) = Api::<EbsVolume>::namespaced(client.clone(), &namespace)
                .get_opt(&name)
                .await?
            {
                desired.metadata = live.metadata;
                desired.status = live.status;
            }
            let plan = preview(&desired, &ctx).await?;
            writeln!(out, "EbsVolume {namespace}/{name}:")?;
            for problem in &plan.problems {
                writeln!(out, "  ! {}: {}", problem.reason, problem.message)?;
            }
            for wait in &plan.waits {
                writeln!(out, "  ~ {}", wait.message())?;
            }
            let words = plan.in_words();
            if words.is_empty() && plan.problems.is_empty() {
                writeln!(out, "  no changes")?;
            }
            for line in words {
                writeln!(out, "  + {line}")?;
            }
        }
    }
    Ok(out)
}
