//! The controller's configuration, resolved once at start and shared read-only.

use std::net::SocketAddr;
use std::time::Duration;

use super::leader::LeaderConfig;
use crate::plan::ami_image::SharingPolicy;
use crate::reconcile::tenancy::TenancySettings;

/// Everything `ec2-reconciler run` was configured with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Region used when a spec names none.
    pub default_region: String,
    /// Distinguishes this cluster's resources from other clusters' in the same account.
    pub cluster_name: String,
    /// Only watch these namespaces (all namespaces when empty).
    pub watch_namespaces: Vec<String>,
    /// Only watch objects whose labels match this selector (checked at startup, see
    /// [`super::shard`]); every object when `None`.
    pub shard_selector: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub health_addr: SocketAddr,
    /// How often every object is observed again when nothing else happens.
    pub resync_interval: Duration,
    /// How often causes that block objects from outside (a key not enabled, an instance not
    /// there) are looked at again, while any object is blocked.
    pub recheck_interval: Duration,
    /// How often each image's launch permission attribute is read in full.
    pub launch_permission_read_interval: Duration,
    /// How long to wait between looks for a CRD that is not installed yet.
    pub crd_poll_interval: Duration,
    /// How often the resources AWS is still making are read (one read for all of a Region).
    pub creating_poll_interval: Duration,
    /// The share of each AWS API rate bucket this controller allows itself (the account's
    /// buckets are shared with every other tool).
    pub aws_rate_fraction: f64,
    /// Multiplies every client-side AWS rate bucket after the fraction (1 by default; see
    /// `RateConfig::scale`).
    pub aws_rate_scale: f64,
    /// Who may act on what they do not own (see `plan::tenancy`).
    pub tenancy: TenancySettings,
    /// Where images may be shared outside the account.
    pub sharing: SharingPolicy,
    /// Run only while holding this Lease (several replicas); `None` runs at once.
    pub leader_election: Option<LeaderConfig>,
}

impl Config {
    /// A configuration for tests and examples.
    pub fn for_region(region: &str) -> Self {
        Self {
            default_region: region.to_owned(),
            cluster_name: "default".to_owned(),
            watch_namespaces: Vec::new(),
            shard_selector: None,
            health_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            resync_interval: Duration::from_secs(600),
            recheck_interval: Duration::from_secs(30),
            launch_permission_read_interval: Duration::from_secs(86_400),
            crd_poll_interval: Duration::from_secs(5),
            creating_poll_interval: Duration::from_secs(5),
            leader_election: None,
            aws_rate_fraction: 0.5,
            aws_rate_scale: 1.0,
            tenancy: TenancySettings::default(),
            sharing: SharingPolicy::default(),
        }
    }
}
