//! The application watch stream (`/api/v1/stream/applications`): one event per change.

use super::*;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::BodyExt;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

impl ArgoCd {
    /// Opens one stream for every app in `names` (DESIGN.md §2.10), so 500 apps hold one
    /// connection: `name=` for one app, `selector=` when the apps are exactly what `selector`
    /// picks (`by_selector`), else the namespace's stream (narrowed to the project) filtered here,
    /// as Argo CD's `ApplicationQuery.name` takes one name (server/application/application.go
    /// Watch).
    ///
    /// # Errors
    /// What opening the stream answers; the caller then polls.
    pub async fn watcher(
        &self,
        names: &[String],
        selector: Option<&str>,
        by_selector: bool,
    ) -> Result<Watcher, ArgoError> {
        let mut q = Vec::new();
        match (names, selector) {
            ([one], _) => q.push(format!("name={}", enc(one))),
            (_, Some(sel)) if by_selector => q.push(format!("selector={}", enc(sel))),
            _ => {}
        }
        if let Some(p) = &self.project {
            q.push(format!("projects={}", enc(p)));
        }
        let label = match names {
            [one] => one.clone(),
            _ => format!("{} apps", names.len()),
        };
        let watch = self.open_stream(&q, &label).await?;
        let subs: Subscribers = Arc::new(Mutex::new(Some(HashMap::new())));
        let task = tokio::spawn(dispatch(watch, subs.clone()));
        Ok(Watcher { subs, task })
    }

    /// Opens `GET /api/v1/stream/applications?name=app`.
    pub(super) async fn watch(&self, app: &str) -> Result<Watcher, ArgoError> {
        self.watcher(&[app.to_string()], None, false).await
    }

    /// Opens `GET /api/v1/stream/applications` with the query `q`.
    async fn open_stream(&self, q: &[String], label: &str) -> Result<Watch, ArgoError> {
        let mut q = q.to_vec();
        if let Some(ns) = &self.app_namespace {
            q.push(format!("appNamespace={}", enc(ns)));
        }
        let mut path = "/api/v1/stream/applications".to_string();
        if !q.is_empty() {
            path.push('?');
            path.push_str(&q.join("&"));
        }
        let action = format!("watch {label}");
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.base, path))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| ArgoError::Config(format!("{action}: {e}")))?;
        let resp = tokio::time::timeout(self.call_timeout, self.client.request(req))
            .await
            .map_err(|_| ArgoError::Timeout {
                action: action.clone(),
                after: self.call_timeout,
            })?
            .map_err(|e| self.connect_error(&action, &e))?;
        if !resp.status().is_success() {
            return Err(ArgoError::Api {
                action,
                status: resp.status().as_u16(),
                code: None,
                message: "watch refused".into(),
                retry_after: None,
            });
        }
        Ok(Watch {
            body: resp.into_body(),
            buf: Vec::new(),
            server: self.base.clone(),
        })
    }
}

/// Each waiting app's channel; `None` once the stream ended, so late subscribers poll at once.
type Subscribers = Arc<Mutex<Option<HashMap<String, mpsc::UnboundedSender<Application>>>>>;

/// One watch stream shared by the waits of a promotion: each app's events go to its
/// [`Subscription`]. The stream closes when the watcher is dropped.
pub struct Watcher {
    subs: Subscribers,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// The events of `app` from now on; it ends when the stream does.
    pub fn subscribe(&self, app: &str) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(map) = self.subs.lock().unwrap().as_mut() {
            map.insert(app.to_string(), tx);
        }
        Subscription { rx }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One app's events from a [`Watcher`].
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Application>,
}

impl Subscription {
    /// The app's next state; `None` when the stream ended (or broke: the wait then polls).
    pub(super) async fn next(&mut self) -> Result<Option<Application>, ArgoError> {
        Ok(self.rx.recv().await)
    }
}

/// Hands every event to the subscriber of its app, until the stream ends; then drops every
/// channel, which tells each wait to poll.
async fn dispatch(mut watch: Watch, subs: Subscribers) {
    while let Ok(Some(app)) = watch.next().await {
        let mut guard = subs.lock().unwrap();
        if let Some(tx) = guard.as_mut().and_then(|m| m.get(&app.metadata.name)) {
            let _ = tx.send(app);
        }
    }
    *subs.lock().unwrap() = None;
}

/// The watch stream: newline-delimited `{"result":{"type":..,"application":..}}`.
pub(super) struct Watch {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    /// The server, for errors.
    server: String,
}

impl Watch {
    /// The next application event; `None` when the stream ends.
    pub(super) async fn next(&mut self) -> Result<Option<Application>, ArgoError> {
        loop {
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                #[derive(Deserialize)]
                struct Event {
                    result: Option<EventResult>,
                    error: Option<Value>,
                }
                #[derive(Deserialize)]
                struct EventResult {
                    application: Application,
                }
                let ev: Event = serde_json::from_slice(&line)
                    .map_err(|e| ArgoError::Config(format!("watch event: {e}")))?;
                if let Some(err) = ev.error {
                    // The gateway's error frame: `{code, message}` with a gRPC code.
                    let code = err["code"].as_i64();
                    return Err(ArgoError::Api {
                        action: "watch app".into(),
                        status: code.map_or(502, http_status_of_grpc),
                        code,
                        message: err["message"].as_str().unwrap_or_default().to_string(),
                        retry_after: None,
                    });
                }
                if let Some(r) = ev.result {
                    return Ok(Some(r.application));
                }
            }
            match self.body.frame().await {
                None => return Ok(None),
                // A stream cut mid-way is the network's doing, not a setting: connectivity.
                Some(Err(e)) => {
                    return Err(ArgoError::Connect {
                        action: "watch app".into(),
                        server: self.server.clone(),
                        reason: format!("the watch stream broke: {e}"),
                    })
                }
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        self.buf.extend_from_slice(d);
                    }
                }
            }
        }
    }
}

/// The HTTP status grpc-gateway answers for a gRPC code (grpc-gateway runtime/errors.go
/// `HTTPStatusFromCode`), so an error frame on the stream is classified like the same error on a
/// plain call.
fn http_status_of_grpc(code: i64) -> u16 {
    match code {
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 => 404,
        6 | 10 => 409,
        8 => 429,
        1 => 499,
        12 => 501,
        14 => 503,
        4 => 504,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_error_frames_map_to_the_status_a_plain_call_gets() {
        assert_eq!(http_status_of_grpc(7), 403);
        assert_eq!(http_status_of_grpc(16), 401);
        assert_eq!(http_status_of_grpc(5), 404);
        assert_eq!(http_status_of_grpc(14), 503);
        assert_eq!(http_status_of_grpc(99), 500);
    }
}
