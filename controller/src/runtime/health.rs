//! The HTTP endpoints for probes and scraping: `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::metrics::Metrics;
use super::readiness::Readiness;

#[derive(Clone)]
struct Endpoints {
    readiness: Readiness,
    metrics: Metrics,
}

pub fn router(readiness: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Endpoints { readiness, metrics })
}

async fn readyz(State(e): State<Endpoints>) -> (StatusCode, String) {
    if e.readiness.is_standby() {
        return (
            StatusCode::OK,
            "standby: another replica leads\n".to_owned(),
        );
    }
    let lines: Vec<String> = e
        .readiness
        .snapshot()
        .iter()
        .map(|(kind, state)| format!("{kind}: {}", state.as_str()))
        .collect();
    let status = if e.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, lines.join("\n") + "\n")
}

async fn metrics_text(
    State(e): State<Endpoints>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        e.metrics.render(),
    )
}

/// Serves the endpoints until the process ends.
pub async fn serve(addr: SocketAddr, readiness: Readiness, metrics: Metrics) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, router(readiness, metrics)).await?;
    Ok(())
}
