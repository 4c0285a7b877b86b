//! The HTTP side: TLS (`argocd-insecure`, `argocd-ca-cert`), login, one call with its timeout and
//! retries, and the answers that show a server is not Argo CD.

use super::*;
use crate::clients::net::{self, Trust};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What the Argo CD connection trusts: anything (`argocd-insecure`), the one CA of
/// `argocd-ca-cert`, or the system's CA bundle.
pub(super) fn trust(cfg: &ArgoConfig) -> Result<Trust, ArgoError> {
    if cfg.insecure {
        return Ok(Trust {
            insecure: true,
            ..Trust::default()
        });
    }
    let Some(ca) = &cfg.ca_cert else {
        return Ok(Trust::default());
    };
    Ok(Trust {
        extra: net::input_certs("argocd-ca-cert", ca).map_err(ArgoError::Config)?,
        only: true,
        insecure: false,
    })
}

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Backoff before retry `attempt` (1-based): 250 ms doubling, with jitter.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 250u64 << attempt.min(5);
    Duration::from_millis(base + fastrand::u64(..base / 2 + 1))
}

impl ArgoCd {
    /// Builds the client and, when a username and password are given instead of a token, logs in
    /// through `POST /api/v1/session`.
    ///
    /// # Errors
    /// `Config` for a bad URL, CA file or missing credentials; `Api` 401 for a refused login.
    pub async fn connect(cfg: &ArgoConfig) -> Result<ArgoCd, ArgoError> {
        let server = cfg.server.trim();
        if server.is_empty() {
            return Err(ArgoError::Config("argocd-server is empty".into()));
        }
        let base = if server.contains("://") {
            server.to_string()
        } else {
            format!("https://{server}")
        };
        let parsed = url::Url::parse(&base)
            .map_err(|e| ArgoError::Config(format!("argocd-server {base:?}: {e}")))?;
        let base = base.trim_end_matches('/').to_string();
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ArgoError::Config(format!(
                "argocd-server {base:?} must be an http(s) URL"
            )));
        }
        let client = net::client(trust(cfg)?);
        let mut argo = ArgoCd {
            base,
            token: Secret::default(),
            client,
            app_namespace: cfg.app_namespace.clone().filter(|s| !s.is_empty()),
            project: cfg.project.clone().filter(|s| !s.is_empty()),
            call_timeout: cfg.call_timeout.unwrap_or(CALL_TIMEOUT),
            retry_budget: cfg.retry_budget.unwrap_or(RETRY_BUDGET),
            release_repo: cfg.release_repo.clone(),
        };
        match (&cfg.token, &cfg.username, &cfg.password) {
            (Some(t), _, _) if !t.expose().is_empty() => argo.token = t.clone(),
            (_, Some(u), Some(p)) if !u.is_empty() => {
                let body = json!({"username": u, "password": p.expose()});
                let v: Value = argo
                    .call_json(Method::POST, "/api/v1/session", Some(body), "session login")
                    .await?;
                argo.token =
                    v["token"]
                        .as_str()
                        .map(Secret::new)
                        .ok_or_else(|| ArgoError::NotArgo {
                            action: "session login".into(),
                            server: argo.base.clone(),
                            status: 200,
                            detail: "no token in the answer".into(),
                        })?;
            }
            _ => {
                return Err(ArgoError::Config(
                    "no credentials: set argocd-token, or argocd-username and argocd-password"
                        .into(),
                ))
            }
        }
        Ok(argo)
    }

    /// One HTTP exchange under the per-call timeout: status, `Retry-After` and body.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        action: &str,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), ArgoError> {
        let uri = format!("{}{}", self.base, path);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::ACCEPT, "application/json");
        if !self.token.expose().is_empty() {
            req = req.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            );
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(payload))
            .map_err(|e| ArgoError::Config(format!("{action}: {e}")))?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| self.connect_error(action, &e))?;
            let status = resp.status();
            let retry_after = crate::base::retry_after(resp.headers());
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.connect_error(action, &e))?
                .to_bytes();
            Ok((status, retry_after, bytes))
        };
        tokio::time::timeout(self.call_timeout, fut)
            .await
            .map_err(|_| ArgoError::Timeout {
                action: action.into(),
                after: self.call_timeout,
            })?
    }

    pub(super) fn connect_error(
        &self,
        action: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> ArgoError {
        let mut reason = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            src = s.source();
        }
        if net::refused_by_tls(e) {
            // A certificate we do not trust stays untrusted: retrying only delays the answer.
            return ArgoError::Config(format!(
                "{action}: the TLS certificate of {} is not trusted ({reason}); set argocd-ca-cert to the CA that signs it",
                self.base
            ));
        }
        ArgoError::Connect {
            action: action.into(),
            server: self.base.clone(),
            reason,
        }
    }

    /// One call, its answer decoded; non-2xx answers become `Api` (or `NotArgo` if not Argo-shaped).
    pub(super) async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        action: &str,
    ) -> Result<T, ArgoError> {
        let (status, retry_after, bytes) = self.send(method, path, body.as_ref(), action).await?;
        let not_argo = |detail: String| ArgoError::NotArgo {
            action: action.into(),
            server: self.base.clone(),
            status: status.as_u16(),
            detail,
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| not_argo(format!("{e}; body starts {:?}", snippet(&bytes))));
        }
        #[derive(Deserialize)]
        struct RtError {
            #[serde(default)]
            code: Option<i64>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            error: Option<String>,
        }
        match serde_json::from_slice::<RtError>(&bytes) {
            // Argo CD's errors always carry the gRPC `code`; other JSON errors come from elsewhere.
            Ok(e) if e.code.is_some() && (e.message.is_some() || e.error.is_some()) => {
                Err(ArgoError::Api {
                    action: action.into(),
                    status: status.as_u16(),
                    code: e.code,
                    message: e.message.or(e.error).unwrap_or_default(),
                    retry_after,
                })
            }
            // Proxies and load balancers answer 5xx/429 in their own words, and some throttle
            // with a 403 that carries Retry-After: all worth a retry.
            _ if status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::FORBIDDEN && retry_after.is_some()) =>
            {
                Err(ArgoError::Api {
                    action: action.into(),
                    status: status.as_u16(),
                    code: None,
                    message: match retry_after {
                        Some(d) if status == StatusCode::FORBIDDEN => {
                            format!("rate limited (Retry-After {}s)", d.as_secs())
                        }
                        _ => status.canonical_reason().unwrap_or("error").to_string(),
                    },
                    retry_after,
                })
            }
            _ => Err(not_argo(format!("body starts {:?}", snippet(&bytes)))),
        }
    }

    /// An idempotent GET, retried within the retry budget on connection errors, timeouts, 429,
    /// 5xx and throttling 403s, honouring `Retry-After`.
    pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        action: &str,
    ) -> Result<T, ArgoError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call_json(Method::GET, path, None, action).await {
                Err(e) if e.is_retryable() => {
                    let wait = e.pause(attempt);
                    if started.elapsed() + wait > self.retry_budget {
                        return Err(e);
                    }
                    let left = self.retry_budget - (started.elapsed() + wait);
                    crate::base::retry::notice(&e, wait, left);
                    tokio::time::sleep(wait).await
                }
                r => return r,
            }
        }
    }

    pub(super) fn app_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(ns) = &self.app_namespace {
            q.push(format!("appNamespace={}", enc(ns)));
        }
        if let Some(p) = &self.project {
            q.push(format!("project={}", enc(p)));
        }
        q.join("&")
    }

    pub(super) fn app_path(&self, app: &str, suffix: &str, extra: &str) -> String {
        let q = [self.app_query(), extra.to_string()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        };
        format!("/api/v1/applications/{}{suffix}{q}", enc(app))
    }
}

/// The first bytes of an answer, for an error saying it is not what Argo CD sends.
pub(super) fn snippet(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
}
