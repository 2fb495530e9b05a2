//! The Kubernetes client: kube's layers (base URI, retries on 429/503/504, authentication,
//! extra headers) over an HTTP client that speaks HTTP/2 to the apiserver when TLS offers it.
//!
//! Why not `Client::try_default`: kube's connector offers only HTTP/1.1, where a connection
//! carries one request at a time. The controller sends many at once (status writes of
//! thousands of objects created together, a restart), so the pool opened one TLS connection
//! per request in flight (957 while 10,000 volumes were created) and kept every one, with its
//! buffers, for the life of the process: the largest part of the idle controller's memory
//! after the object caches. Over HTTP/2 every request and watch is a stream of one
//! connection, as client-go does it; the apiserver bounds the streams a connection may have
//! open at once, and requests beyond that bound wait in the client for a free stream.
//!
//! Tried before and reverted: HTTP/1.1 with a pool timer closing idle connections. Each
//! wave of requests then opened new TLS connections, the apiserver spent its CPU on
//! handshakes, and at 10,000 volumes the controller ended up holding about 5,000.
//!
//! HTTP/1.1 remains for an apiserver (or a TLS-terminating proxy in front of it) that does
//! not offer `h2` in ALPN, and for plain `http://` URLs.
use std::time::Duration;

use hyper_rustls::{FixedServerNameResolver, HttpsConnectorBuilder};
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt, RustlsTlsError};
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// How often an HTTP/2 connection with nothing to read is pinged, and how long the client
/// waits for the answer before it drops the connection (client-go uses 30 s and 15 s).
/// Every watch and request shares this one connection, so a peer that silently vanished
/// must be noticed: the watches then reconnect.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A client from the environment (in-cluster, or the kubeconfig), like
/// `Client::try_default`, over the connection described above.
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
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    let mut tls = HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = name
            .clone()
            .try_into()
            .map_err(|err| kube::Error::RustlsTls(RustlsTlsError::InvalidServerName(err)))?;
        tls = tls.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    let mut connector = TimeoutConnector::new(tls.enable_all_versions().wrap_connector(tcp));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http: HttpClient<_, Body> = HttpClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .http2_keep_alive_while_idle(true)
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
