//! `/healthz`, `/readyz` and Prometheus `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Whether the worker takes tasks: its task consumer is connected to the broker
/// now (false while it reconnects) and it is not shutting down.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<(AtomicBool, AtomicBool)>);

impl Readiness {
    /// The task consumer's connection went up or down.
    pub fn set_connected(&self, connected: bool) {
        self.0.0.store(connected, Ordering::SeqCst);
    }

    /// Shutting down: not ready from now on, whatever the connection does.
    pub fn set_stopping(&self) {
        self.0.1.store(true, Ordering::SeqCst);
    }

    /// Reads readiness.
    pub fn get(&self) -> bool {
        self.0.0.load(Ordering::SeqCst) && !self.0.1.load(Ordering::SeqCst)
    }
}

/// Installs the global metrics recorder and describes the metrics.
pub fn metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0])?
        .install_recorder()?;
    metrics::describe_counter!(
        "aci_worker_tasks_total",
        "Tasks ended, by step, backend and outcome."
    );
    metrics::describe_histogram!(
        "aci_worker_task_duration_seconds",
        "Wall time of tasks, by step and backend."
    );
    metrics::describe_gauge!("aci_worker_tasks_in_flight", "Tasks running now.");
    metrics::describe_counter!(
        "aci_worker_staging_bytes_total",
        "Bytes moved to and from Azure Files."
    );
    metrics::describe_counter!(
        "aci_worker_broker_reconnects_total",
        "Broker connections re-established since start, by connection (tasks, updates, requeue)."
    );
    metrics::describe_gauge!(
        "aci_worker_broker_connected",
        "Whether a broker connection is up (1) or not (0), by connection."
    );
    metrics::describe_counter!("aci_worker_arm_errors_total", "Failed ARM calls, by HTTP status.");
    metrics::describe_counter!(
        "aci_worker_storage_errors_total",
        "Failed Azure Files calls, by operation."
    );
    metrics::describe_gauge!(
        "aci_worker_outbox_pending",
        "Status updates waiting for the main broker."
    );
    metrics::describe_counter!(
        "aci_worker_duplicate_deliveries_total",
        "Deliveries of tasks already taken, dropped."
    );
    Ok(handle)
}

/// Serves the endpoints until the process ends.
pub async fn serve(
    addr: SocketAddr,
    readiness: Readiness,
    handle: PrometheusHandle,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.get();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route("/metrics", get(move || std::future::ready(handle.render())));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app).await?;
    Ok(())
}
