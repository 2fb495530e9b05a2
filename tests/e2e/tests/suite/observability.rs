//! What an operator scrapes and looks at agrees with what the controller serves: every
//! expression of the shipped Grafana dashboard reads a metric `/metrics` exports, and the
//! README's metric table lists exactly the exported families with their labels.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use e2e::Bed;
use e2e::prometheus::{self, Family};
use ec2_reconciler::api::EbsVolume;
use serde_json::{Value, json};

/// A controller that has created a volume and seen it Ready, so every series it exports
/// (reconciles, AWS calls, their histograms, status writes, objects, leader) has samples.
async fn exposition_after_a_volume_is_ready(prefix: &str) -> Result<String> {
    let bed = Bed::start(prefix, &[]).await?;
    bed.create::<EbsVolume>(
        "data",
        json!({ "availabilityZone": "us-east-1a", "sizeGiB": 8 }),
    )
    .await?;
    bed.wait_ready::<EbsVolume>("data").await?;
    bed.metrics().await
}

/// Every PromQL expression in the dashboard (panel targets and templating queries).
fn dashboard_expressions() -> Result<Vec<String>> {
    let path = e2e::paths::repo_root().join("charts/ec2-reconciler/dashboards/ec2-reconciler.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let dashboard: Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    Ok(exprs)
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_dashboard_expression_reads_metrics_the_controller_exports() -> Result<()> {
    let exprs = dashboard_expressions()?;
    ensure!(
        exprs.len() >= 10,
        "the dashboard has only {} expressions",
        exprs.len()
    );
    let exposition = exposition_after_a_volume_is_ready("dashboard").await?;
    let exported = prometheus::samples(&exposition)?;

    let mut missing = Vec::new();
    for expr in &exprs {
        let names = prometheus::promql_metric_names(expr)?;
        ensure!(
            !names.is_empty(),
            "an expression that reads no metric: {expr}"
        );
        for name in names {
            if !exported.contains_key(&name) {
                missing.push(format!("{name} (in `{expr}`)"));
            }
        }
    }
    ensure!(
        missing.is_empty(),
        "the dashboard reads metrics /metrics does not serve:\n{}\nexported: {:?}",
        missing.join("\n"),
        exported.keys().collect::<Vec<_>>()
    );
    Ok(())
}

/// The README's metric table: name as queried (`x_total` for a counter) -> (type, labels).
fn readme_metrics() -> Result<BTreeMap<String, (String, BTreeSet<String>)>> {
    let path = e2e::paths::repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut rows = BTreeMap::new();
    for line in readme
        .lines()
        .filter(|l| l.starts_with("| `ec2_reconciler_"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", name, type, labels, meaning, ""
        ensure!(cells.len() == 6, "a metric row without 4 cells: {line}");
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|label| label.trim().trim_matches('`'))
            .filter(|label| !label.is_empty() && *label != "none")
            .map(str::to_string)
            .collect();
        rows.insert(name, (cells[2].to_string(), labels));
    }
    Ok(rows)
}

#[tokio::test]
async fn the_readme_lists_every_exported_metric_with_its_type_and_labels() -> Result<()> {
    let documented = readme_metrics()?;
    ensure!(!documented.is_empty(), "the README has no metric table");
    let exposition = exposition_after_a_volume_is_ready("metrics-doc").await?;
    let exported: BTreeMap<String, (String, BTreeSet<String>)> = prometheus::families(&exposition)?
        .into_iter()
        .map(|(name, Family { kind, labels })| {
            // Counters are queried by their sample name.
            let queried = if kind == "counter" {
                format!("{name}_total")
            } else {
                name
            };
            (queried, (kind, labels))
        })
        .collect();
    ensure!(
        documented == exported,
        "the README's metric table differs from /metrics\n README:   {documented:?}\n /metrics: {exported:?}"
    );
    Ok(())
}
