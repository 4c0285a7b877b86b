//! The application watch stream (`/api/v1/stream/applications`): one event per change.

use super::*;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::BodyExt;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::Value;

impl ArgoCd {
    /// Opens `GET /api/v1/stream/applications?name=app`.
    pub(super) async fn watch(&self, app: &str) -> Result<Watch, ArgoError> {
        let mut path = format!("/api/v1/stream/applications?name={}", enc(app));
        if let Some(ns) = &self.app_namespace {
            path.push_str(&format!("&appNamespace={}", enc(ns)));
        }
        let action = format!("watch {app}");
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
