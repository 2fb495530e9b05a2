//! Issue 10 (memory): a burst of objects does not leave the controller holding a
//! connection to the apiserver for every request it once had in flight. kube's HTTP/1
//! client keeps every connection it opened; the controller's pool (`runtime::kube_client`)
//! keeps a bounded number idle and closes the rest.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::ZONE;
use e2e::sockets;
use ec2_reconciler::api::EbsVolume;
use std::time::Duration;

use e2e::wait::eventually;
use ec2_reconciler::runtime::kube_client::{IDLE_CONNECTION_TIMEOUT, IDLE_CONNECTIONS_KEPT};
use futures::future::try_join_all;
use serde_json::json;

/// Created at once, so that their first passes (each writing its intent) overlap.
const OBJECTS: usize = 150;
/// The watches (three kinds and the namespaces) keep a connection each besides the
/// idle ones, and a watch restarted by the apiserver may open one more.
const WATCHES_AND_SLACK: usize = 8;

#[tokio::test]
async fn a_burst_of_objects_leaves_a_bounded_number_of_apiserver_connections() -> Result<()> {
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
    let open = sockets::established_to(bed.controller_pid()?, port)?;
    ensure!(
        open <= IDLE_CONNECTIONS_KEPT + WATCHES_AND_SLACK,
        "the controller holds {open} connections to the apiserver after {OBJECTS} objects were created at once \
         (at most {IDLE_CONNECTIONS_KEPT} idle plus {WATCHES_AND_SLACK} for watches)"
    );
    ensure!(
        open >= 1,
        "no connection to the apiserver found: the count reads the wrong port or process"
    );

    // Idle, the pool closes what it kept once the idle timeout has passed: what stays open
    // is the watches (and a request a resync may have in flight).
    let pid = bed.controller_pid()?;
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
