//! `bench` (`make bench`): the benchmark of issue 10 on the test bed. See `e2e::bench` for
//! what it measures and the README's Benchmark section for how to read the table.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use e2e::bench::{self, Options};
use e2e::paths;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Create N gp3 EbsVolumes on the test bed, wait for all Ready, idle two resyncs; \
             then the same with M AmiImages and with K EncryptedVolumeMigrations, each kind on \
             a bed of its own; print one table (also written as JSON)"
)]
struct Cli {
    /// EbsVolume objects to create.
    #[arg(long, env = "N", default_value_t = 1000)]
    n: usize,
    /// AmiImage objects to create after the volumes, each registered from a snapshot of its
    /// own and shared with one account (0: no AMI stage).
    #[arg(long, env = "AMIS", default_value_t = 100)]
    amis: usize,
    /// EncryptedVolumeMigration objects to create after the AMIs, each encrypting the data
    /// volume of a running instance in place (0: no migration stage).
    #[arg(long, env = "MIGRATIONS", default_value_t = 20)]
    migrations: usize,
    /// The controller's --resync-seconds.
    #[arg(long, default_value_t = 60)]
    resync_seconds: u64,
    /// The controller's --aws-rate-fraction (its default: 0.5).
    #[arg(long, default_value_t = 0.5)]
    aws_rate_fraction: f64,
    /// The controller's --aws-rate-scale (its default: 1). Anything else raises the
    /// client-side limits, and the table says so: such a run is reported apart.
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// The ec2-reconciler binary; default: <target dir>/release/ec2-reconciler (build it with
    /// `cargo build --release -p ec2-reconciler`; `make bench` does).
    #[arg(long)]
    controller: Option<PathBuf>,
    /// Where to write the JSON; default: .local/bench/bench-<N>.json in the repository
    /// (bench-<N>-scale<S>.json with raised limits).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Object creations in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up when not all objects of a stage are Ready after this many seconds (default:
    /// for the volumes twice the rate floor plus ten minutes, for the other kinds ten
    /// minutes plus two seconds an object).
    #[arg(long)]
    ready_timeout_seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    e2e::install_crypto_provider();
    let controller = match cli.controller {
        Some(path) => path,
        None => paths::target_dir().join("release").join("ec2-reconciler"),
    };
    if !controller.is_file() {
        bail!(
            "{} does not exist: run `cargo build --release -p ec2-reconciler` first (make bench does), \
             or pass --controller",
            controller.display()
        );
    }
    let out_dir = paths::repo_root().join(".local").join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let suffix = if cli.rate_scale == 1.0 {
        format!("{}", cli.n)
    } else {
        format!("{}-scale{}", cli.n, cli.rate_scale)
    };
    let json = cli
        .json
        .unwrap_or_else(|| out_dir.join(format!("bench-{suffix}.json")));
    let opts = Options {
        amis: cli.amis,
        migrations: cli.migrations,
        resync_seconds: cli.resync_seconds,
        aws_rate_fraction: cli.aws_rate_fraction,
        aws_rate_scale: cli.rate_scale,
        concurrency: cli.concurrency,
        ready_timeout: cli.ready_timeout_seconds.map(Duration::from_secs),
        controller_log: Some(out_dir.join(format!("controller-{suffix}.log"))),
        ..Options::new(cli.n, controller)
    };
    let report = bench::run(&opts).await?;
    print!("{}", report.table());
    report.write_json(&json)?;
    println!("JSON: {}", json.display());
    Ok(())
}
