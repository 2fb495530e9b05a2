//! The Kubernetes client: kube's layers (base URI, authentication, extra headers, retries
//! on 429/503/504) over an HTTP client whose connection pool closes idle connections.
//!
//! Why not `Client::try_default`: kube builds its `hyper_util` pool without a timer, so an
//! idle connection is never closed. A burst of passes (objects created by the thousand, a
//! restart) opens one connection per request in flight: 540 TLS connections after 2,000
//! volumes were created, held for good with their buffers (about 12 MB of the controller's
//! heap once idle). Here a connection idle for [`IDLE_CONNECTION_TIMEOUT`] is closed.
//!
//! The pool keeps every idle connection until then, as kube's does. Capping the idle
//! connections (16 was tried) made a burst worse: each wave of requests beyond the cap
//! opened new TLS connections, the apiserver spent its CPU on handshakes, requests waited
//! longer, more were in flight at once, and at 10,000 volumes the controller held over 5,000
//! connections. Bounding requests in flight instead (32) held back status writes under load.
use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// How long an idle connection stays open before the pool closes it: long enough that
/// passes a few seconds apart reuse their connections, short beside a resync interval.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from the environment (in-cluster, or the kubeconfig), like
/// `Client::try_default`, with the pool above.
pub async fn from_env() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    from_config(config)
}

/// A client for `config`. Through a proxy (`proxy-url` in the kubeconfig), kube's own stack
/// is used: it knows the proxy protocols, and a controller behind one is rare.
pub fn from_config(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        return Ok(ClientBuilder::try_from(config)?.build());
    }
    let mut connector = TimeoutConnector::new(config.rustls_https_connector()?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http: HttpClient<_, Body> = HttpClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}
