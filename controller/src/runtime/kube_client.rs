//! The Kubernetes client: kube's default stack, with a bound on requests in flight.

use kube::client::ClientBuilder;
use kube::{Client, Config};
use tower::limit::ConcurrencyLimitLayer;

/// Requests to the apiserver waiting for their response at once; more wait their turn in
/// the client.
///
/// Why: kube's HTTP/1 client opens one connection per request in flight and keeps every
/// connection it ever opened (its pool has no idle timer). A burst of passes (objects
/// created by the thousand, a restart) left over 500 idle TLS connections open for good,
/// about 20 MiB of the controller's memory with 2,000 volumes. Status writes take
/// milliseconds, so 32 at once carry thousands a second. A watch holds its slot only until
/// its response starts: its events stream afterwards.
pub const API_REQUESTS_IN_FLIGHT: usize = 32;

/// A client from the environment (in-cluster, or the kubeconfig), like
/// `Client::try_default`, with the bound above.
pub async fn from_env() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    let builder = ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&ConcurrencyLimitLayer::new(API_REQUESTS_IN_FLIGHT))
        .build())
}
