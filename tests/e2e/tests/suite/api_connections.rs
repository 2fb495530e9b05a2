//! Issue 10 (memory): a burst of objects does not leave the controller holding a connection
//! to the apiserver for every request it once had in flight. kube's own client speaks only
//! HTTP/1.1 and kept every connection it opened (957 while 10,000 volumes were created); the
//! controller's client (`runtime::kube_client`) speaks HTTP/2, so its watches and requests
//! share one connection however many are in flight.

use anyhow::{Result, ensure};
use e2e::Bed;
use e2e::bed::ZONE;
use e2e::sockets;
use ec2_reconciler::api::EbsVolume;
use futures::future::try_join_all;
use serde_json::json;

/// Created at once, so that their first passes (each writing its intent) overlap.
const OBJECTS: usize = 150;

#[tokio::test]
async fn a_burst_of_objects_shares_one_connection_to_the_apiserver() -> Result<()> {
    // Raised AWS limits: every create goes out at once, none is deferred, so the passes'
    // status writes overlap.
    let mut bed = Bed::start("api-connections", &["--aws-rate-scale", "10"]).await?;
    bed.wait_controller_ready().await?;
    let port = bed.control_plane()?.port();
    let pid = bed.controller_pid()?;
    let idle = sockets::established_to(pid, port)?;
    ensure!(
        idle == 1,
        "the idle controller holds {idle} connections to the apiserver, not one"
    );

    let names: Vec<String> = (0..OBJECTS).map(|i| format!("burst-{i}")).collect();
    let creates = names.iter().map(|name| {
        bed.create::<EbsVolume>(name, json!({ "availabilityZone": ZONE, "sizeGiB": 1 }))
    });
    try_join_all(creates).await?;
    // Sampled while the passes run, and again once all are Ready.
    let mut most = 0;
    for name in &names {
        most = most.max(sockets::established_to(pid, port)?);
        bed.wait_ready::<EbsVolume>(name).await?;
    }
    most = most.max(sockets::established_to(pid, port)?);
    ensure!(
        most == 1,
        "while {OBJECTS} objects created at once were reconciled, the controller held up to \
         {most} connections to the apiserver: its requests are not multiplexed on one"
    );
    Ok(())
}
