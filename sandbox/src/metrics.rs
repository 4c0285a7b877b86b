//! Metrics exporter and the Prometheus launcher (issue #3/#6). Stub: filled in by the metrics work.

use crate::argocd::ArgoCd;
use std::sync::Arc;

/// Serves `/metrics` with counters that follow each app's deployed tag.
pub fn exporter_router(argocd: Arc<ArgoCd>) -> axum::Router {
    let _ = argocd;
    axum::Router::new()
}

/// A running Debian `prometheus` scraping the exporter; stopped when dropped.
pub struct Prometheus {
    /// Base URL of its HTTP API.
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `exporter_url` every second.
    pub fn start(exporter_url: &str) -> anyhow::Result<Prometheus> {
        let _ = exporter_url;
        anyhow::bail!("Prometheus launcher not written yet")
    }
}
