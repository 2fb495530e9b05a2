//! What an operator scrapes and looks at agrees with what the controller serves: every
//! expression of the shipped Grafana dashboard reads a metric `/metrics` exports, and the
//! README's metric table lists exactly the exported families with their labels; the chart
//! renders the ServiceMonitor and the dashboard ConfigMap to match.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use e2e::prometheus::{self, Family};
use e2e::{Bed, Helm};
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

/// The chart's optional monitoring: off by default; when on, the ServiceMonitor selects the
/// metrics Service by its labels and scrapes a port the Service has, and the dashboard
/// ConfigMap carries the sidecar's label and exactly the dashboard file.
#[test]
fn the_chart_renders_a_service_monitor_and_the_dashboard_only_when_asked() -> Result<()> {
    let helm = Helm::new()?;
    let defaults = helm.template("ec2r", "ec2-reconciler", &[])?;
    ensure!(
        defaults.of_kind("ServiceMonitor").count() == 0
            && !defaults
                .kinds_and_names()
                .iter()
                .any(|(kind, name)| kind == "ConfigMap" && name == "ec2r-dashboard"),
        "monitoring rendered by default: {:?}",
        defaults.kinds_and_names()
    );

    let chart = helm.template(
        "ec2r",
        "ec2-reconciler",
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.labels.release=prometheus",
            "--set",
            "metrics.grafanaDashboard.enabled=true",
        ],
    )?;
    let monitor = chart.only("ServiceMonitor")?;
    ensure!(
        monitor["metadata"]["labels"]["release"] == "prometheus",
        "{monitor}"
    );
    let service = chart.get("Service", "ec2r-metrics")?;
    let service_labels = service["metadata"]["labels"]
        .as_object()
        .context("the metrics Service has no labels")?;
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("the ServiceMonitor selects by no label")?;
    ensure!(
        !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| service_labels.get(k) == Some(v)),
        "the ServiceMonitor's selector {selector:?} does not match the Service's labels {service_labels:?}"
    );
    ensure!(
        monitor["spec"]["namespaceSelector"]["matchNames"] == json!(["ec2-reconciler"]),
        "{monitor}"
    );
    let port_names: BTreeSet<&str> = service["spec"]["ports"]
        .as_array()
        .context("the Service has no ports")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let endpoints = monitor["spec"]["endpoints"]
        .as_array()
        .context("the ServiceMonitor has no endpoints")?;
    ensure!(
        !endpoints.is_empty()
            && endpoints.iter().all(|e| {
                e["path"] == "/metrics"
                    && e["port"].as_str().is_some_and(|p| port_names.contains(p))
            }),
        "endpoints {endpoints:?} vs the Service's ports {port_names:?}"
    );

    let config_map = chart.get("ConfigMap", "ec2r-dashboard")?;
    ensure!(
        config_map["metadata"]["labels"]["grafana_dashboard"] == "1",
        "{}",
        config_map["metadata"]
    );
    let shipped: Value = serde_json::from_str(
        config_map["data"]["ec2-reconciler.json"]
            .as_str()
            .context("no dashboard in the ConfigMap")?,
    )?;
    let path = e2e::paths::chart_dir().join("dashboards/ec2-reconciler.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    ensure!(
        shipped == file,
        "the ConfigMap's dashboard differs from {}",
        path.display()
    );
    Ok(())
}
