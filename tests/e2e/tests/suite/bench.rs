//! The benchmark (`make bench`) kept working: its logic run in-process on 20 objects with the
//! debug controller and a 10 s resync. Only counts and the report's shape are asserted; the
//! times it measures vary with the machine and are never checked.

use anyhow::{Context, Result, ensure};
use e2e::bench::report::Report;
use e2e::bench::{self, Options};
use e2e::paths;

const N: usize = 20;

#[tokio::test]
async fn the_benchmark_creates_n_volumes_and_an_idle_resync_neither_mutates_nor_writes()
-> Result<()> {
    let opts = Options {
        resync_seconds: 10,
        ..Options::new(N, paths::controller_binary()?)
    };
    let report = bench::run(&opts).await?;

    // The JSON written holds every field of the report, and nothing else.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.json");
    report.write_json(&path)?;
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let parsed: Report = serde_json::from_value(written.clone()).context("parsing the JSON")?;
    ensure!(
        same_json(&serde_json::to_value(&parsed)?, &written),
        "{written:#}"
    );
    ensure!(
        same_json(&serde_json::to_value(&report)?, &written),
        "{written:#}"
    );

    let table = report.table();
    let c = &report.creation;
    ensure!(report.n == N && c.ready == N, "{table}");
    ensure!(report.controller.build == "debug", "{table}");
    ensure!(report.controller.default_limits, "{table}");
    // 20 creates fit in the CreateVolume burst (50): no rate wait, so the floor is 0.
    ensure!(
        c.rate_floor_seconds == 0.0 && c.ratio_to_floor.is_none(),
        "{table}"
    );
    ensure!(
        c.aws_calls.get("CreateVolume") == Some(&(N as u64)),
        "{table}"
    );
    ensure!(c.status_writes > 0, "{table}");
    ensure!(
        c.ready_after_create_volume_seconds.map(|p| p.count) == Some(N),
        "{table}"
    );

    let idle = &report.idle;
    ensure!(idle.resyncs == 2, "{table}");
    ensure!(idle.mutating_calls == 0, "{table}");
    ensure!(idle.status_writes == 0, "{table}");
    // A resync reads the volumes (one page for 20) and nothing is created.
    ensure!(
        idle.aws_calls_per_resync
            .as_ref()
            .and_then(|m| m.get("DescribeVolumes"))
            .is_some_and(|n| *n >= 1.0),
        "{table}"
    );
    ensure!(!idle.aws_calls.contains_key("CreateVolume"), "{table}");

    let names: Vec<&str> = report.processes.iter().map(|p| p.name.as_str()).collect();
    ensure!(
        names == ["controller", "emulator", "kube-apiserver", "etcd"],
        "{table}"
    );
    ensure!(
        report
            .processes
            .iter()
            .all(|p| p.rss_empty_mib > 0.0 && p.rss_peak_mib >= p.rss_idle_mib),
        "{table}"
    );
    Ok(())
}

/// Whether two JSON documents hold the same fields and values. Numbers are compared to a
/// relative 1e-12: serde_json's default float parser may land one unit in the last place
/// away from the value printed (exact parsing is its `float_roundtrip` feature), which made
/// an exact comparison fail at random.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}
