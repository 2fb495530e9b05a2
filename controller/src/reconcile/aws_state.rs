//! AWS access shared by every reconcile: one client and one observer per Region and resource
//! kind, and the KMS keys already resolved (so a steady state costs no DescribeKey per pass).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::client::{AwsClients, Ec2, KmsKey};
use crate::aws::errors::AwsError;
use crate::aws::observer::{
    InstanceObserver, Observer, ObserverConfig, SnapshotObserver, Source, VolumeObserver,
};

/// How long a resolved KMS key is trusted before it is looked up again.
const KMS_KEY_TTL: Duration = Duration::from_secs(600);

/// One observer per Region.
type Observers<O> = Mutex<HashMap<String, Arc<O>>>;

pub struct AwsState {
    clients: AwsClients,
    cluster: String,
    observer_config: ObserverConfig,
    volume_observers: Observers<VolumeObserver>,
    snapshot_observers: Observers<SnapshotObserver>,
    instance_observers: Observers<InstanceObserver>,
    kms_keys: Mutex<HashMap<(String, String), (Instant, KmsKey)>>,
}

impl AwsState {
    pub fn new(
        clients: AwsClients,
        cluster: impl Into<String>,
        observer_config: ObserverConfig,
    ) -> Self {
        Self {
            clients,
            cluster: cluster.into(),
            observer_config,
            volume_observers: Mutex::default(),
            snapshot_observers: Mutex::default(),
            instance_observers: Mutex::default(),
            kms_keys: Mutex::default(),
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn ec2(&self, region: &str) -> Arc<dyn Ec2> {
        self.clients.ec2(region)
    }

    /// The Region's volume observer, shared by every EbsVolume in it.
    pub fn volumes(&self, region: &str) -> Arc<VolumeObserver> {
        self.observer(&self.volume_observers, region)
    }

    /// The Region's snapshot observer, shared by every object that waits on snapshots.
    pub fn snapshots(&self, region: &str) -> Arc<SnapshotObserver> {
        self.observer(&self.snapshot_observers, region)
    }

    /// The Region's instance reader: reads by id, merged across objects.
    pub fn instances(&self, region: &str) -> Arc<InstanceObserver> {
        self.observer(&self.instance_observers, region)
    }

    fn observer<S: Source + Default>(
        &self,
        observers: &Observers<Observer<S>>,
        region: &str,
    ) -> Arc<Observer<S>> {
        let build = || {
            Observer::new(
                self.ec2(region),
                self.cluster.clone(),
                self.observer_config.clone(),
            )
        };
        match observers.lock() {
            Ok(mut observers) => observers
                .entry(region.to_owned())
                .or_insert_with(build)
                .clone(),
            Err(_) => build(),
        }
    }

    /// The key a spec names (id, ARN, alias or alias ARN), resolved to its ARN.
    pub async fn kms_key(&self, region: &str, key: &str) -> Result<KmsKey, AwsError> {
        let cache_key = (region.to_owned(), key.to_owned());
        if let Ok(keys) = self.kms_keys.lock()
            && let Some((at, resolved)) = keys.get(&cache_key)
            && at.elapsed() < KMS_KEY_TTL
        {
            return Ok(resolved.clone());
        }
        let resolved = self.ec2(region).describe_key(key.to_owned()).await?;
        // Only a usable key is trusted for a while: a disabled one is asked about again at
        // the next pass, so re-enabling it heals the object without waiting out the TTL.
        if resolved.enabled
            && let Ok(mut keys) = self.kms_keys.lock()
        {
            keys.insert(cache_key, (Instant::now(), resolved.clone()));
        }
        Ok(resolved)
    }
}
