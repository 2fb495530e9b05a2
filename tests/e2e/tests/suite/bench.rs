//! The benchmark (`make bench`) kept working: its logic run in-process on 20 volumes, 3 AMIs
//! and 2 migrations with the debug controller and a 10 s resync. Only counts and the
//! report's shape are asserted; the times it measures vary with the machine and are never
//! checked.

use anyhow::{Context, Result, ensure};
use e2e::bench::report::{KindReport, Report};
use e2e::bench::{self, Options};
use e2e::migration_setup::MIGRATION_STEPS;
use e2e::paths;

const N: usize = 20;
const AMIS: usize = 3;
const MIGRATIONS: usize = 2;

#[tokio::test]
async fn the_benchmark_creates_each_kind_and_an_idle_resync_neither_mutates_nor_writes()
-> Result<()> {
    let opts = Options {
        amis: AMIS,
        migrations: MIGRATIONS,
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
    eprintln!("{table}");
    let c = &report.creation;
    ensure!(report.n == N && c.common.ready == N, "{table}");
    ensure!(report.controller.build == "debug", "{table}");
    ensure!(report.controller.default_limits, "{table}");
    // 20 creates fit in the CreateVolume burst (50): no rate wait, so the floor is 0.
    ensure!(
        c.rate_floor_seconds == 0.0 && c.ratio_to_floor.is_none(),
        "{table}"
    );
    ensure!(
        c.common.aws_calls.get("CreateVolume") == Some(&(N as u64)),
        "{table}"
    );
    ensure!(c.common.status_writes > 0, "{table}");
    // The reads that confirm new volumes name them by id, merged across the objects waiting:
    // fewer than one per volume (a per-object poller makes at least one each).
    ensure!(
        c.common.reads_naming_ids <= c.common.reads && c.common.reads_naming_ids < N as u64,
        "{table}"
    );
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

    let amis = report.amis.as_ref().context("no AMI stage")?;
    amis_measured(amis, &table)?;
    let migrations = report.migrations.as_ref().context("no migration stage")?;
    migrations_measured(migrations, &table)?;
    Ok(())
}

/// Every stage of a kind: all Ready, two idle resyncs without a mutating call or a status
/// write.
fn stage_measured(stage: &KindReport, kind: &str, objects: usize, table: &str) -> Result<()> {
    ensure!(
        stage.kind == kind && stage.objects == objects && stage.creation.ready == objects,
        "{table}"
    );
    let idle = &stage.idle;
    ensure!(idle.resyncs == 2, "{table}");
    ensure!(idle.mutating_calls == 0, "{table}");
    ensure!(idle.status_writes == 0, "{table}");
    ensure!(stage.processes.len() == 4, "{table}");
    Ok(())
}

/// Status writes one AMI costs to create, as measured: its intent before RegisterImage, the
/// image id after it and the pass's conditions; once the image is available, what AWS
/// reports of it with the launch permission granted (ModifyImageAttribute) and that pass's
/// conditions; Ready. (Three AMIs fit in the RegisterImage burst: an AMI that waits for a
/// rate token rewrites its intent, two writes more each, seen at 50 AMIs.)
const WRITES_PER_AMI: f64 = 6.0;

/// Each AMI registered once and shared once. Its full launch-permission read
/// (DescribeImageAttribute) is due at most once per `--launch-permission-read-seconds` (24 h
/// by default), so never in an idle resync; while the AMIs are created, an AMI shared after
/// the account's launch-permission check was cached looks unshared to that check until the
/// next resync and is read once more (68 reads for 50 AMIs), so at most two each.
fn amis_measured(amis: &KindReport, table: &str) -> Result<()> {
    stage_measured(amis, "AmiImage", AMIS, table)?;
    let c = &amis.creation;
    let count = |calls: &std::collections::BTreeMap<String, u64>, action: &str| {
        calls.get(action).copied().unwrap_or(0)
    };
    ensure!(
        count(&c.aws_calls, "RegisterImage") == AMIS as u64,
        "{table}"
    );
    ensure!(
        count(&c.aws_calls, "ModifyImageAttribute") == AMIS as u64,
        "{table}"
    );
    ensure!(
        count(&c.aws_calls, "DescribeImageAttribute") <= 2 * AMIS as u64,
        "{table}"
    );
    ensure!(c.status_writes_per_object <= WRITES_PER_AMI, "{table}");
    // Idle: the DescribeImages sweep (one page for 3 images) and the launch-permission check
    // of the one account shared with (DescribeImages with ExecutableUsers) per resync, and
    // nothing else. The two are due on clocks of their own, so the window may hold one check
    // more or fewer than its two resyncs.
    let idle = &amis.idle.aws_calls;
    ensure!(
        idle.keys().all(|action| action == "DescribeImages"),
        "{table}"
    );
    ensure!(count(idle, "DescribeImageAttribute") == 0, "{table}");
    ensure!((3..=5).contains(&count(idle, "DescribeImages")), "{table}");
    Ok(())
}

/// Status writes one migration may cost: nine steps (Stopping to CleaningUp), each written at
/// most three times (its record before the call, what the call made, the pass's
/// conditions). Measured: 24.
const WRITES_PER_MIGRATION: f64 = 27.0;

/// One swap per migration, and nothing read at rest.
fn migrations_measured(migrations: &KindReport, table: &str) -> Result<()> {
    stage_measured(migrations, "EncryptedVolumeMigration", MIGRATIONS, table)?;
    let c = &migrations.creation;
    for action in MIGRATION_STEPS {
        ensure!(
            c.aws_calls.get(action) == Some(&(MIGRATIONS as u64)),
            "{action}: {table}"
        );
    }
    ensure!(
        c.status_writes_per_object <= WRITES_PER_MIGRATION,
        "{table}"
    );
    ensure!(migrations.idle.aws_calls.is_empty(), "{table}");
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
