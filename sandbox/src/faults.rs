//! Fault injection and the call log, shared by every emulator as an axum middleware. A test asks for
//! "the next N calls to `PUT /repos/*/*/pulls/*/merge` answer 502" (or a delay, a dropped
//! connection, a 429 or a 403 secondary rate limit) and reads back every call the product made.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One fault rule: which calls it hits, how many times, and what they get instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// `github`, `argocd` or `prometheus`.
    pub service: String,
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern: `*` matches one segment, `**` any number (e.g. `/repos/*/*/pulls/*/merge`).
    pub path: String,
    /// How many matching calls it hits before it is spent.
    #[serde(default = "one")]
    pub times: u32,
    /// What happens to a hit call.
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

/// What a hit call gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    /// Answer with this status and body (a service-typical error body when absent).
    Status {
        status: u16,
        #[serde(default)]
        body: Option<serde_json::Value>,
    },
    /// Wait this long, then handle the call normally (a client timeout shorter than this fires).
    Delay { ms: u64 },
    /// Drop the connection without an answer.
    Reset,
    /// 429 with `x-ratelimit-remaining: 0` (primary) or 403 with `retry-after` (secondary).
    RateLimit {
        #[serde(default)]
        secondary: bool,
        #[serde(default = "one_u64")]
        retry_after: u64,
    },
}

fn one_u64() -> u64 {
    1
}

/// One call an emulator handled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// Which emulator.
    pub service: String,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string, empty when none.
    pub query: String,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
    /// Milliseconds since the sandbox started.
    pub at_ms: u64,
    /// Whether an injected fault answered it.
    pub injected: bool,
    /// The JSON request body, when there was one: tests check what the product sends.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

/// The rules in force and the calls seen so far.
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    calls: Mutex<Vec<Call>>,
    started: Instant,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }
}

impl Faults {
    /// Adds a rule; rules are tried in the order added.
    pub fn inject(&self, rule: FaultRule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Every call seen, oldest first, optionally only for one service.
    pub fn calls(&self, service: Option<&str>) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| service.is_none_or(|s| c.service == s))
            .cloned()
            .collect()
    }

    /// Forgets the calls seen so far.
    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Milliseconds since the sandbox started, the clock of the call log.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn take(&self, service: &str, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let i = rules.iter().position(|r| {
            r.times > 0
                && r.service == service
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path_matches(&r.path, path)
        })?;
        rules[i].times -= 1;
        let fault = rules[i].fault.clone();
        if rules[i].times == 0 {
            rules.remove(i);
        }
        Some(fault)
    }

    fn record(
        &self,
        service: &str,
        method: &str,
        uri: &axum::http::Uri,
        status: u16,
        injected: bool,
        body: &Option<serde_json::Value>,
    ) {
        self.calls.lock().unwrap().push(Call {
            service: service.to_string(),
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            status,
            at_ms: self.now_ms(),
            injected,
            body: body.clone(),
        });
    }
}

/// Whether `path` matches `pattern` (`*` one segment, `**` the rest).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let s: Vec<&str> = path.trim_matches('/').split('/').collect();
    go(&p, &s)
}

/// State of the middleware: the service name it logs under and the shared rules.
#[derive(Clone)]
pub struct Layer {
    /// `github`, `argocd` or `prometheus`.
    pub service: &'static str,
    /// Shared rules and log.
    pub faults: Arc<Faults>,
}

/// The middleware: applies a matching fault, otherwise calls the emulator; logs the call either way.
/// Control routes (`/_sandbox/...`) are neither faulted nor logged.
pub async fn middleware(State(layer): State<Layer>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    // The path the client sent, with the prefix a nesting router (the GHES host's /api/v3) strips.
    let uri = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    if uri.path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    // Buffered so the call log holds what was sent; bodies here are small JSON documents.
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let req = Request::from_parts(parts, Body::from(bytes));
    let faults = &layer.faults;
    match faults.take(layer.service, &method, uri.path()) {
        None => {
            let resp = next.run(req).await;
            faults.record(
                layer.service,
                &method,
                &uri,
                resp.status().as_u16(),
                false,
                &body,
            );
            resp
        }
        Some(Fault::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let resp = next.run(req).await;
            faults.record(
                layer.service,
                &method,
                &uri,
                resp.status().as_u16(),
                true,
                &body,
            );
            resp
        }
        Some(Fault::Reset) => {
            faults.record(layer.service, &method, &uri, 0, true, &body);
            // A body that fails before its first byte makes hyper close the connection without
            // writing a response: the client sees the connection closed mid-request.
            let body = Body::from_stream(futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                ))
            }));
            Response::new(body)
        }
        Some(Fault::Status { status, body }) => {
            faults.record(layer.service, &method, &uri, status, true, &body);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| default_error_body(layer.service, status));
            (status, Json(body)).into_response()
        }
        Some(Fault::RateLimit {
            secondary,
            retry_after,
        }) => {
            let status = if secondary { 403 } else { 429 };
            faults.record(layer.service, &method, &uri, status, true, &body);
            let message = if secondary {
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            } else {
                "API rate limit exceeded for installation."
            };
            let body = serde_json::json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            });
            let mut resp = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
            let reset = chrono::Utc::now().timestamp() as u64 + retry_after;
            let h = resp.headers_mut();
            h.insert("retry-after", HeaderValue::from(retry_after));
            if !secondary {
                h.insert("x-ratelimit-limit", HeaderValue::from(5000));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0));
                h.insert("x-ratelimit-used", HeaderValue::from(5000));
                h.insert("x-ratelimit-reset", HeaderValue::from(reset));
                h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            }
            resp
        }
    }
}

/// The error body each service sends for a status.
fn default_error_body(service: &str, status: StatusCode) -> serde_json::Value {
    let reason = status.canonical_reason().unwrap_or("error");
    match service {
        "argocd" => serde_json::json!({ "error": reason, "code": 14, "message": reason }),
        "prometheus" => {
            serde_json::json!({ "status": "error", "errorType": "unavailable", "error": reason })
        }
        _ => {
            serde_json::json!({ "message": reason, "documentation_url": "https://docs.github.com/rest" })
        }
    }
}

/// Control routes: `POST /faults` (a [`FaultRule`]), `DELETE /faults`, `GET /calls?service=`,
/// `DELETE /calls`. Nested under `/_sandbox`.
pub fn control_routes(faults: Arc<Faults>) -> axum::Router {
    use axum::extract::Query;
    use axum::routing::{get, post};
    #[derive(Deserialize)]
    struct Filter {
        service: Option<String>,
    }
    axum::Router::new()
        .route(
            "/faults",
            post(
                |State(f): State<Arc<Faults>>, Json(rule): Json<FaultRule>| async move {
                    f.inject(rule);
                    StatusCode::NO_CONTENT
                },
            )
            .delete(|State(f): State<Arc<Faults>>| async move {
                f.clear();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/calls",
            get(
                |State(f): State<Arc<Faults>>, Query(q): Query<Filter>| async move {
                    Json(f.calls(q.service.as_deref()))
                },
            )
            .delete(|State(f): State<Arc<Faults>>| async move {
                f.clear_calls();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(faults)
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn patterns_match_segments() {
        assert!(path_matches(
            "/repos/*/*/pulls/*/merge",
            "/repos/acme/deploy/pulls/3/merge"
        ));
        assert!(!path_matches(
            "/repos/*/*/pulls/*/merge",
            "/repos/acme/deploy/pulls/3"
        ));
        assert!(path_matches(
            "/api/v1/applications/**",
            "/api/v1/applications/app/sync"
        ));
        assert!(path_matches("/**", "/anything/at/all"));
        assert!(!path_matches("/repos/*", "/repos/acme/deploy"));
    }
}
