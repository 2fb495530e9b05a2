//! Waiting on the controller's objects in tests.

use std::time::Duration;

use anyhow::Result;
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::api::conditions::{ConditionStatus, READY, find};
use kube::Api;

use crate::wait::eventually;

/// Waits until the EbsVolume reports `Ready=True`, and returns it.
pub async fn volume_ready(
    api: &Api<EbsVolume>,
    name: &str,
    timeout: Duration,
) -> Result<EbsVolume> {
    eventually(
        &format!("EbsVolume {name} to be Ready"),
        timeout,
        || async {
            let volume = api.get(name).await?;
            let ready = volume
                .status
                .as_ref()
                .and_then(|s| find(&s.conditions, READY))
                .map(|c| c.status);
            Ok((ready == Some(ConditionStatus::True)).then_some(volume))
        },
    )
    .await
}

/// Waits until the object is gone (its finalizer removed).
pub async fn volume_gone(api: &Api<EbsVolume>, name: &str, timeout: Duration) -> Result<()> {
    eventually(&format!("EbsVolume {name} to be gone"), timeout, || async {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}
