//! Issue 10 (memory): a burst of objects does not leave the controller holding a
//! connection to the apiserver for every request it once had in flight. kube's HTTP/1
//! client keeps every connection it opened; the controller's pool (`runtime::kube_client`)
//! closes a connection once it has been idle for `IDLE_CONNECTION_TIMEOUT`.

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::ZONE;
use e2e::sockets;
use e2e::wait::eventually;
use ec2_reconciler::api::EbsVolume;
use ec2_reconciler::runtime::kube_client::IDLE_CONNECTION_TIMEOUT;
use futures::future::try_join_all;
use serde_json::json;

/// Created at once, so that their first passes (each writing its intent) overlap.
const OBJECTS: usize = 150;
/// The watches (three kinds and the namespaces) keep a connection each, the leader lease's
/// renewals one, and a watch restarted by the apiserver may open one more.
const WATCHES_AND_SLACK: usize = 8;

#[tokio::test]
async fn the_connections_a_burst_of_objects_opened_are_closed_once_idle() -> Result<()> {
    // Raised AWS limits: every create goes out at once, none is deferred.
    let mut bed = Bed::start("api-connections", &["--aws-rate-scale", "10"]).await?;
    bed.wait_controller_ready().await?;
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("burst-{i}")).collect();
    let creates = names.iter().map(|name| {
        bed.create::<EbsVolume>(name, json!({ "availabilityZone": ZONE, "sizeGiB": 1 }))
    });
    try_join_all(creates).await?;
    for name in &names {
        bed.wait_ready::<EbsVolume>(name).await?;
    }

    let port = bed.control_plane()?.port();
    let pid = bed.controller_pid()?;
    let after_burst = sockets::established_to(pid, port)?;
    // Without this the test could not tell a pool that closes idle connections from a
    // burst that never opened more than the watches hold.
    ensure!(
        after_burst > WATCHES_AND_SLACK,
        "after {OBJECTS} objects were created at once the controller holds {after_burst} \
         connections to the apiserver, not more than its watches need: the burst did not \
         overlap, or the count reads the wrong port or process"
    );

    eventually(
        "the idle apiserver connections to be closed",
        IDLE_CONNECTION_TIMEOUT + Duration::from_secs(30),
        || async move {
            let open = sockets::established_to(pid, port)?;
            Ok((open <= WATCHES_AND_SLACK).then_some(()))
        },
    )
    .await?;
    Ok(())
}
