//! The metrics exporter and the Prometheus launcher (DESIGN.md §9).
//!
//! The exporter serves `/metrics` with `http_requests_total{app,code}` counters that grow by about
//! [`REQUESTS_PER_SECOND`] per app; the share of `code="500"` follows the tag each app runs
//! ([`error_ratio`]). The tag comes from the Argo CD emulator, unless a test pinned one through
//! `PUT /_sandbox/metrics/tags/{app}` on the exporter's own port. [`Prometheus`] runs Debian's
//! server scraping the exporter every second; it does not emulate Prometheus.

use crate::argocd::ArgoCd;
use anyhow::{bail, Context, Result};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests each app serves per second.
pub const REQUESTS_PER_SECOND: f64 = 100.0;

/// The apps always exported, besides any app a test pinned a tag for.
pub const APPS: [&str; 2] = ["app", "app-auto"];

/// Share of requests answered 500 by an app running `tag`: 30% for a tag ending in `-errors` or
/// `-bad`, 0.1% otherwise (and when nothing is deployed).
pub fn error_ratio(tag: Option<&str>) -> f64 {
    match tag {
        Some(t) if t.ends_with("-errors") || t.ends_with("-bad") => 0.30,
        _ => 0.001,
    }
}

/// Counters of one app, advanced from elapsed time at every read so they stay monotonic when the
/// ratio changes (the counts so far keep the old ratio, only the new requests get the new one).
#[derive(Debug, Clone, Copy)]
struct Counters {
    ok: f64,
    errors: f64,
    at: Instant,
}

/// Exporter state: the tag source and each app's counters.
pub struct Exporter {
    argocd: Arc<ArgoCd>,
    pinned: Mutex<BTreeMap<String, String>>,
    counters: Mutex<BTreeMap<String, Counters>>,
    started: Instant,
}

impl Exporter {
    /// A new exporter whose tags come from `argocd`.
    pub fn new(argocd: Arc<ArgoCd>) -> Arc<Exporter> {
        Arc::new(Exporter {
            argocd,
            pinned: Mutex::new(BTreeMap::new()),
            counters: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        })
    }

    /// The tag `app` runs: the pinned one, else the one Argo CD deployed.
    pub fn tag(&self, app: &str) -> Option<String> {
        if let Some(t) = self.pinned.lock().unwrap().get(app) {
            return Some(t.clone());
        }
        self.argocd.deployed_tag(app)
    }

    /// Pins `app` to `tag` (or unpins it with `None`); the counters so far keep the old ratio.
    pub fn pin(&self, app: &str, tag: Option<&str>) {
        self.advance(app, Instant::now());
        let mut pinned = self.pinned.lock().unwrap();
        match tag {
            Some(t) => pinned.insert(app.to_string(), t.to_string()),
            None => pinned.remove(app),
        };
    }

    /// Brings `app`'s counters up to `now` at its current ratio and returns them.
    fn advance(&self, app: &str, now: Instant) -> Counters {
        let ratio = error_ratio(self.tag(app).as_deref());
        let mut counters = self.counters.lock().unwrap();
        let c = counters.entry(app.to_string()).or_insert(Counters {
            ok: 0.0,
            errors: 0.0,
            at: self.started,
        });
        let requests = now.saturating_duration_since(c.at).as_secs_f64() * REQUESTS_PER_SECOND;
        c.ok += requests * (1.0 - ratio);
        c.errors += requests * ratio;
        c.at = now;
        *c
    }

    /// The `/metrics` body in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut apps: Vec<String> = APPS.iter().map(|a| a.to_string()).collect();
        apps.extend(self.pinned.lock().unwrap().keys().cloned());
        apps.sort();
        apps.dedup();
        let now = Instant::now();
        let mut out = String::from(
            "# HELP http_requests_total Requests served, by app and status code.\n\
             # TYPE http_requests_total counter\n",
        );
        for app in apps {
            let c = self.advance(&app, now);
            out.push_str(&format!(
                "http_requests_total{{app=\"{app}\",code=\"200\"}} {:.3}\n",
                c.ok
            ));
            out.push_str(&format!(
                "http_requests_total{{app=\"{app}\",code=\"500\"}} {:.3}\n",
                c.errors
            ));
        }
        out
    }
}

/// Serves `/metrics` with counters that follow each app's deployed tag, and the test-only
/// `PUT`/`DELETE /_sandbox/metrics/tags/{app}` (body: the tag) that pins a tag over Argo CD's.
pub fn exporter_router(argocd: Arc<ArgoCd>) -> axum::Router {
    let exporter = Exporter::new(argocd);
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/_sandbox/metrics/tags/{app}", put(pin).delete(unpin))
        .fallback(|uri: axum::http::Uri| async move {
            (
                StatusCode::NOT_FOUND,
                format!("metrics exporter: no route for {uri}\n"),
            )
        })
        .with_state(exporter)
}

async fn metrics(State(e): State<Arc<Exporter>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.render(),
    )
}

async fn pin(State(e): State<Arc<Exporter>>, Path(app): Path<String>, tag: String) -> StatusCode {
    let tag = tag.trim();
    if tag.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    e.pin(&app, Some(tag));
    StatusCode::NO_CONTENT
}

async fn unpin(State(e): State<Arc<Exporter>>, Path(app): Path<String>) -> StatusCode {
    e.pin(&app, None);
    StatusCode::NO_CONTENT
}

/// A pass-through proxy to the real Prometheus at `upstream`, so the faults middleware (service
/// `prometheus`) can put downtime, 5xx and slowness in front of a server we do not control.
/// Requests are forwarded as HTTP/1.0 (one connection each); hop-by-hop headers are dropped.
/// The GHES-shaped host reaches the git host through it too.
pub fn proxy_router(upstream: &str) -> axum::Router {
    let upstream = Arc::new(
        upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    );
    axum::Router::new().fallback(forward).with_state(upstream)
}

async fn forward(
    State(upstream): State<Arc<String>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    match forward_inner(&upstream, req).await {
        Ok(resp) => resp,
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("sandbox proxy to {upstream}: {e:#}\n"),
        )
            .into_response(),
    }
}

async fn forward_inner(
    upstream: &str,
    req: axum::extract::Request,
) -> Result<axum::response::Response> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20).await?;
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut head = format!("{} {target} HTTP/1.0\r\nHost: {upstream}\r\n", parts.method);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut s = tokio::net::TcpStream::connect(upstream).await?;
    s.write_all(head.as_bytes()).await?;
    s.write_all(&body).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the upstream's answer")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.get(9..12))
        .context("no status line")?
        .parse()?;
    let mut resp = axum::response::Response::builder().status(status);
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if !matches!(
                k.to_ascii_lowercase().as_str(),
                "connection" | "content-length" | "transfer-encoding"
            ) {
                resp = resp.header(k.trim(), v.trim());
            }
        }
    }
    Ok(resp.body(axum::body::Body::from(raw[split + 4..].to_vec()))?)
}

/// A running Debian `prometheus` scraping the exporter; stopped when dropped.
pub struct Prometheus {
    /// Base URL clients use: the server itself, or the fault proxy in front of it in a [`Sandbox`].
    ///
    /// [`Sandbox`]: crate::Sandbox
    pub url: String,
    /// Base URL of the server itself, past any proxy.
    pub direct_url: String,
    child: Child,
    // Holds the config, the TSDB and the log until the process is gone.
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `exporter_url` every second and waits until `/-/ready` answers
    /// 200. The first samples land a few seconds later; wait for data, not for this call.
    ///
    /// # Errors
    /// When the binary is missing (`PROMETHEUS_BIN`, else `/usr/bin/prometheus` or `prometheus` on
    /// PATH), when it exits early (its log is quoted), or when it is not ready within 30 s.
    pub fn start(exporter_url: &str) -> Result<Prometheus> {
        let bin = find_binary().context(
            "Debian's prometheus server is not installed: run `apt-get install -y prometheus` \
             (or set PROMETHEUS_BIN)",
        )?;
        let target = exporter_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: sandbox\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let port = free_port()?;
        let log_path = dir.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let mut p = Prometheus {
            direct_url: url.clone(),
            url,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("prometheus exited with {status} before it was ready:\n{log}");
            }
            if http_get_status(port, "/-/ready") == Some(200) {
                return Ok(p);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("prometheus not ready on port {port} after 30 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return Ok(p.into());
    }
    let mut candidates = vec![std::path::PathBuf::from("/usr/bin/prometheus")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("prometheus")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("no `prometheus` binary at /usr/bin/prometheus or on PATH")
}

/// A loopback port free right now; Prometheus binds it a moment later (a race we accept in tests).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The status of a plain `GET path` on loopback, or `None` when nothing answers. Blocking on
/// purpose: `start` is synchronous and may run inside the sandbox's runtime context.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ratio_follows_the_tag_suffix() {
        assert_eq!(error_ratio(Some("1.2.0-bad")), 0.30);
        assert_eq!(error_ratio(Some("1.2.0-errors")), 0.30);
        assert_eq!(error_ratio(Some("1.2.0")), 0.001);
        assert_eq!(error_ratio(Some("bad-1.2.0")), 0.001);
        assert_eq!(error_ratio(None), 0.001);
    }
}
