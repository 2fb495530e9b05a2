//! `ec2-reconciler`: flags and wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ec2_reconciler::api::{chart_crd_yaml, crd_yaml, crds};
use ec2_reconciler::aws::iam_policy;
use ec2_reconciler::aws::rate::MAX_SCALE;
use ec2_reconciler::plan::ami_image::SharingPolicy;
use ec2_reconciler::reconcile::tenancy::TenancySettings;
use ec2_reconciler::runtime::leader::{self, LeaderConfig};
use ec2_reconciler::runtime::preview;
use ec2_reconciler::runtime::{self, Config};
use tracing_subscriber::EnvFilter;

/// jemalloc, set in `.cargo/config.toml` to return freed pages to the system within about a
/// second. glibc's allocator kept what bursts of passes had freed resident: measured with
/// 2,000 volumes created at raised limits, the idle controller held 92.7 MiB with glibc and
/// 60.8 MiB with jemalloc, for the same 21 MB of live heap (README, "Benchmark").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "ec2-reconciler",
    version,
    about = "Drives EBS volumes and AMIs toward their Kubernetes resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the current kubeconfig (or in-cluster config) and the
    /// standard AWS credential chain (`AWS_ENDPOINT_URL` points it at an emulator).
    Run(RunArgs),
    /// Show what the controller would do for the objects in manifest files, against the
    /// live cluster and AWS, without changing anything.
    Plan(PlanArgs),
    /// Print the CRDs as YAML, or write one file per CRD into a directory.
    Crdgen {
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Also write the Helm chart's CRD templates into this directory.
        #[arg(long)]
        chart_dir: Option<PathBuf>,
    },
    /// Print the controller's least-privilege IAM policy (JSON), generated from the AWS
    /// actions it calls, or write it to a file.
    IamPolicy {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Manifest files (YAML, several documents each allowed), or directories of them.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Namespace of objects whose manifest names none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Region for specs that name none.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Name of this cluster, as the running controller is configured.
    #[arg(long, env = "EC2R_CLUSTER_NAME", default_value = "default")]
    cluster_name: String,
    /// `text` for people, `json` for bots.
    #[arg(long, short = 'o', value_enum, default_value_t = preview::Output::Text)]
    output: preview::Output,
    /// Exit 0 when nothing is to change, 2 when changes are planned, 1 when an object is
    /// rejected by the API or refused by the controller (or planning failed), like
    /// `terraform plan -detailed-exitcode`. Without it: 1 only when the API rejects an
    /// object (or planning failed), else 0.
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Region for specs that name none.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Name of this cluster, tagged on every AWS resource it creates.
    #[arg(long, env = "EC2R_CLUSTER_NAME", default_value = "default")]
    cluster_name: String,
    /// Only watch these namespaces (comma-separated; all namespaces when absent).
    #[arg(long, env = "EC2R_NAMESPACE", value_delimiter = ',')]
    namespace: Vec<String>,
    /// Only watch objects whose labels match this Kubernetes label selector (all three
    /// kinds; e.g. `ec2.reconciler.dev/shard in (a)`), to split one cluster between several
    /// controllers. Checked at startup. Each shard elects its leader in its own Lease.
    #[arg(long, env = "EC2R_SHARD_SELECTOR")]
    shard_selector: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "EC2R_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// Seconds between two observations of every object.
    #[arg(long, env = "EC2R_RESYNC_SECONDS", default_value_t = 600)]
    resync_seconds: u64,
    /// Seconds between two looks at what blocks objects from outside the controller (a KMS
    /// key not enabled, an instance that does not exist yet), while anything is blocked.
    #[arg(long, env = "EC2R_RECHECK_SECONDS", default_value_t = 30)]
    recheck_seconds: u64,
    /// Seconds between two full reads of an image's launch permissions (one call per
    /// image; grants removed outside are found at each resync by one call per account).
    #[arg(
        long,
        env = "EC2R_LAUNCH_PERMISSION_READ_SECONDS",
        default_value_t = 86_400
    )]
    launch_permission_read_seconds: u64,
    /// Seconds between two reads of the volumes being created in a Region: every creating
    /// volume waits for the same read, so a bulk creation costs one read per interval.
    #[arg(long, env = "EC2R_CREATING_POLL_SECONDS", default_value_t = 5)]
    creating_poll_seconds: u64,
    /// Share of each AWS API rate bucket to use (0 < f <= 1); the account's buckets are
    /// shared with every other tool using it.
    #[arg(long, env = "EC2R_AWS_RATE_FRACTION", default_value_t = 0.5)]
    aws_rate_fraction: f64,
    /// Multiplies every client-side AWS rate bucket, burst and refill, after
    /// --aws-rate-fraction (1 to 100). A knob for benchmarks on the emulator and for accounts
    /// whose EC2 API limits AWS raised: above 1/fraction the controller asks for more than
    /// AWS's default buckets hold, and an account at the defaults throttles it.
    #[arg(long, env = "EC2R_AWS_RATE_SCALE", default_value_t = 1.0)]
    aws_rate_scale: f64,
    /// Act only while holding a Lease, so several replicas can run (one acts at a time).
    #[arg(long, env = "EC2R_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader election Lease (the controller's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// This replica's name in the Lease; defaults to POD_NAME, else host name and pid.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "EC2R_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// What namespaces may do: the same for `run` and for `plan`, so a plan refuses what the
/// controller would refuse.
#[derive(clap::Args)]
struct PolicyArgs {
    /// Trust every namespace with every AWS resource no object owns (adopt, attach, image,
    /// migrate). For a cluster with one tenant only; by default a namespace needs the
    /// administrator's label or the resource's grant tag.
    #[arg(long, env = "EC2R_SINGLE_TENANT")]
    single_tenant: bool,
    /// Refuse ObserveOnly adoption of resources no object owns (allowed by default: a read).
    #[arg(long, env = "EC2R_DENY_OBSERVE_UNOWNED")]
    deny_observe_unowned: bool,
    /// Accounts AMIs may be shared with (comma-separated; none by default).
    #[arg(long, env = "EC2R_SHARE_ALLOW_ACCOUNTS", value_delimiter = ',')]
    share_allow_accounts: Vec<String>,
    /// Organization ARNs AMIs may be shared with (comma-separated; none by default).
    #[arg(long, env = "EC2R_SHARE_ALLOW_ORGANIZATIONS", value_delimiter = ',')]
    share_allow_organizations: Vec<String>,
    /// Organizational unit ARNs AMIs may be shared with (comma-separated; none by default).
    #[arg(long, env = "EC2R_SHARE_ALLOW_OUS", value_delimiter = ',')]
    share_allow_ous: Vec<String>,
    /// Let AMIs be shared with any account, organization or OU (no allowlist).
    #[arg(long, env = "EC2R_SHARE_ALLOW_ANY")]
    share_allow_any: bool,
    /// Let AMIs be made public (launchable by every AWS account).
    #[arg(long, env = "EC2R_ALLOW_PUBLIC_IMAGES")]
    allow_public_images: bool,
}

impl PolicyArgs {
    fn tenancy(&self) -> TenancySettings {
        TenancySettings {
            single_tenant: self.single_tenant,
            observe_unowned: !self.deny_observe_unowned,
        }
    }

    fn sharing(&self) -> SharingPolicy {
        SharingPolicy {
            accounts: self.share_allow_accounts.iter().cloned().collect(),
            organizations: self.share_allow_organizations.iter().cloned().collect(),
            organizational_units: self.share_allow_ous.iter().cloned().collect(),
            any: self.share_allow_any,
            public: self.allow_public_images,
        }
    }
}

/// Host name and process id: unique enough outside a pod.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube brings rustls with ring and the AWS SDK brings it with aws-lc-rs; with both
    // compiled in, rustls will not choose, so the process names one before any client exists.
    // An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Run(args) => {
            init_logging(args.log_json);
            let shard_selector = args
                .shard_selector
                .as_deref()
                .map(runtime::shard::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--shard-selector: {e}"))?
                .map(|selector| selector.to_string());
            let config = Config {
                default_region: args.region,
                cluster_name: args.cluster_name,
                watch_namespaces: args.namespace,
                shard_selector: shard_selector.clone(),
                health_addr: args.health_addr,
                resync_interval: Duration::from_secs(args.resync_seconds),
                recheck_interval: Duration::from_secs(args.recheck_seconds.max(1)),
                launch_permission_read_interval: Duration::from_secs(
                    args.launch_permission_read_seconds.max(60),
                ),
                crd_poll_interval: Duration::from_secs(5),
                creating_poll_interval: Duration::from_secs(args.creating_poll_seconds.max(1)),
                aws_rate_fraction: args.aws_rate_fraction.clamp(0.01, 1.0),
                aws_rate_scale: args.aws_rate_scale.clamp(1.0, MAX_SCALE),
                tenancy: args.policy.tenancy(),
                sharing: args.policy.sharing(),
                leader_election: args.leader_elect.then(|| {
                    let identity = args.identity.clone().unwrap_or_else(default_identity);
                    LeaderConfig {
                        lease_name: leader::lease_name(shard_selector.as_deref()),
                        ..LeaderConfig::new(args.leader_election_namespace.clone(), identity)
                    }
                }),
            };
            runtime::run(config).await
        }
        Command::Plan(args) => {
            init_logging(false);
            let mut config = Config::for_region(&args.region);
            config.cluster_name = args.cluster_name.clone();
            config.tenancy = args.policy.tenancy();
            config.sharing = args.policy.sharing();
            let report = preview::run(&config, &args.files, &args.namespace).await?;
            print!("{}", report.render(args.output)?);
            match report.exit_code(args.detailed_exitcode) {
                0 => Ok(()),
                code => std::process::exit(code),
            }
        }
        Command::Crdgen { out_dir, chart_dir } => {
            for (file, crd) in crds() {
                if let Some(dir) = &chart_dir {
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(dir.join(file), chart_crd_yaml(&crd)?)?;
                }
                let yaml = crd_yaml(&crd)?;
                match &out_dir {
                    Some(dir) => std::fs::write(dir.join(file), yaml)?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        Command::IamPolicy { out } => {
            let json = iam_policy::policy_json()?;
            match out {
                Some(path) => std::fs::write(path, json)?,
                None => print!("{json}"),
            }
            Ok(())
        }
    }
}
