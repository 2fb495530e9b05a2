//! Wiring: clients, controllers, health endpoints, metrics, configuration.

pub mod config;
pub mod controllers;
pub mod health;
pub mod kube_client;
pub mod leader;
pub mod metrics;
pub mod namespaces;
pub mod preview;
pub mod readiness;
pub mod shard;

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Reporter;

use crate::api::{AmiImage, EbsVolume, EncryptedVolumeMigration};
use crate::aws::client::{AwsClients, ClientTimeouts};
use crate::aws::observer::ObserverConfig;
use crate::aws::rate::RateConfig;
use crate::reconcile::aws_state::AwsState;
use crate::reconcile::backoff::Backoff;
use crate::reconcile::events::EventPublisher;
use crate::reconcile::rechecks;
use crate::reconcile::tenancy::Tenancy;
use crate::reconcile::{Clock, Context, Settings};
pub use config::Config;
use metrics::Metrics;
use readiness::Readiness;

/// The shared reconcile context: clients resolved once, from the environment.
pub async fn context(config: &Config, client: Client, metrics: &Metrics) -> Context {
    let reporter = Reporter {
        controller: "ec2-reconciler".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let rate = RateConfig {
        fraction: config.aws_rate_fraction,
        scale: config.aws_rate_scale,
        ..RateConfig::default()
    };
    let aws_clients =
        AwsClients::from_env(rate, ClientTimeouts::default(), metrics.aws_calls.clone()).await;
    let observer_config = ObserverConfig {
        resync_interval: config.resync_interval,
        poll_interval: config.creating_poll_interval,
        ..ObserverConfig::default()
    };
    Context {
        client: client.clone(),
        events: EventPublisher::new(client, reporter),
        settings: Settings {
            default_region: config.default_region.clone(),
            resync_interval: config.resync_interval,
            launch_permission_read_interval: config.launch_permission_read_interval,
        },
        status_writes: metrics.status_writes.clone(),
        clock: Clock::default(),
        aws: AwsState::new(aws_clients, config.cluster_name.clone(), observer_config),
        backoff: Backoff::default(),
        written: Default::default(),
        rechecks: Default::default(),
        tenancy: Tenancy {
            settings: config.tenancy,
            namespaces: None,
            sharing: config.sharing.clone(),
        },
    }
}

/// Runs every controller and the health endpoints until the process is stopped.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = kube_client::from_env().await?;
    let metrics = Metrics::default();
    let readiness = Readiness::default();
    let mut ctx = context(&config, client, &metrics).await;
    let health = tokio::spawn(health::serve(
        config.health_addr,
        readiness.clone(),
        metrics.clone(),
    ));
    // Grants (labels) and roles (annotations) are the namespaces' own: nothing is
    // reconciled before they are known.
    ctx.tenancy.namespaces = Some(namespaces::watch(ctx.client.clone()).await);
    let ctx = Arc::new(ctx);

    if let Some(leader) = config.leader_election.clone() {
        readiness.set_standby(true);
        leader::lead(ctx.client.clone(), leader).await;
        readiness.set_standby(false);
    }
    metrics.leader.set(1);
    tokio::spawn(rechecks::run(ctx.clone(), config.recheck_interval));
    let run = controllers::Runner {
        ctx: ctx.clone(),
        config: &config,
        metrics: &metrics,
        readiness: &readiness,
    };
    let volumes = run.kind::<EbsVolume>();
    let images = run.kind::<AmiImage>();
    let migrations = run.kind::<EncryptedVolumeMigration>();

    tokio::select! {
        _ = async { tokio::join!(volumes, images, migrations) } => {
            tracing::info!("controllers stopped");
        }
        result = health => {
            result??;
        }
    }
    Ok(())
}
