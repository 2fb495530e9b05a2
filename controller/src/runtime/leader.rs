//! Leader election over a `coordination.k8s.io/v1` Lease, so that several replicas can run
//! and only one acts on AWS at a time.
//!
//! Crash-only: a leader that cannot renew its lease before it expires exits the process, so
//! a stalled leader never acts alongside its successor. Every write carries the Lease's
//! resourceVersion, so two candidates cannot both win a race.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// How the election runs.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How often the leader renews, and a candidate retries.
    pub retry_period: Duration,
}

impl LeaderConfig {
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: DEFAULT_LEASE.to_owned(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(3),
        }
    }
}

/// The Lease of the unsharded controller (every replica of one deployment shares it).
pub const DEFAULT_LEASE: &str = "ec2-reconciler";

/// The Lease a controller elects its leader in: the default one, or, for a shard
/// (`--shard-selector`), one of the shard's own. Two shards acting on disjoint objects
/// must both act: in one Lease only one of them would. The name is derived from the
/// selector as given (a stable FNV-1a hash, the same in every version and process), so
/// the replicas of one shard meet in one Lease and every other shard is elsewhere.
pub fn lease_name(shard_selector: Option<&str>) -> String {
    match shard_selector {
        None => DEFAULT_LEASE.to_owned(),
        Some(selector) => format!("{DEFAULT_LEASE}-shard-{:016x}", fnv1a(selector.as_bytes())),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Leading,
    Standby { holder: String },
}

/// Whether a lease held by someone else has expired and may be taken over.
fn expired(lease: &LeaseSpec, now: chrono::DateTime<Utc>) -> bool {
    let duration = i64::from(lease.lease_duration_seconds.unwrap_or(0));
    match &lease.renew_time {
        Some(MicroTime(renewed)) => {
            let renewed =
                chrono::DateTime::<Utc>::from_timestamp(renewed.as_second(), 0).unwrap_or_default();
            renewed + chrono::TimeDelta::seconds(duration) < now
        }
        None => true,
    }
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

async fn try_acquire(api: &Api<Lease>, config: &LeaderConfig) -> kube::Result<Attempt> {
    let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.lease_name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        api.create(&PostParams::default(), &lease).await?;
        return Ok(Attempt::Leading);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder != config.identity {
        if !holder.is_empty() && !expired(spec, Utc::now()) {
            return Ok(Attempt::Standby { holder });
        }
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(micro_now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(micro_now());
    // `replace` sends the resourceVersion we read: a concurrent writer makes this fail.
    api.replace(&config.lease_name, &PostParams::default(), &lease)
        .await?;
    Ok(Attempt::Leading)
}

/// Waits until this process leads, then keeps the lease renewed in the background; exits
/// the process if leadership is lost.
pub async fn lead(client: Client, config: LeaderConfig) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    loop {
        match try_acquire(&api, &config).await {
            Ok(Attempt::Leading) => break,
            Ok(Attempt::Standby { holder }) => {
                tracing::info!(%holder, "standing by: another replica leads")
            }
            Err(error) => tracing::warn!(%error, "could not take the lease; retrying"),
        }
        tokio::time::sleep(config.retry_period).await;
    }
    tracing::info!(identity = %config.identity, "leading");
    tokio::spawn(async move {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(config.retry_period).await;
            match try_acquire(&api, &config).await {
                Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::Standby { holder }) => {
                    tracing::error!(%holder, "lost the lease to another replica; exiting");
                    std::process::exit(1);
                }
                Err(error) => {
                    tracing::warn!(%error, "could not renew the lease");
                    if last_renewal.elapsed() >= config.lease_duration {
                        tracing::error!("lease expired without renewal; exiting");
                        std::process::exit(1);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shard_elects_in_its_own_lease_and_the_unsharded_keep_theirs() {
        assert_eq!(lease_name(None), DEFAULT_LEASE);
        let a = lease_name(Some("ec2.reconciler.dev/shard in (a)"));
        let not_a = lease_name(Some("ec2.reconciler.dev/shard notin (a)"));
        assert_ne!(a, not_a);
        assert_ne!(a, DEFAULT_LEASE);
        // Every replica of a shard, in every process and version, meets in the same one.
        assert_eq!(a, lease_name(Some("ec2.reconciler.dev/shard in (a)")));
        // Pinned: a new name in a new version would let an old and a new replica of one
        // shard lead together during a rolling update.
        assert_eq!(a, "ec2-reconciler-shard-0a5d3c10362922de");
        assert!(a.len() <= 63 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn a_lease_expires_after_its_duration_since_the_last_renewal() {
        let renewed = Utc::now() - chrono::TimeDelta::seconds(20);
        let ts = k8s_openapi::jiff::Timestamp::from_second(renewed.timestamp()).unwrap_or_default();
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(ts)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert!(expired(&spec, Utc::now()));
        let fresh = LeaseSpec {
            lease_duration_seconds: Some(60),
            ..spec
        };
        assert!(!expired(&fresh, Utc::now()));
    }
}
