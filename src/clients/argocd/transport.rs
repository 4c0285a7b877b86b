//! The HTTP side: TLS (`argocd-insecure`, `argocd-ca-cert`), login, one call with its timeout and
//! retries, and the answers that show a server is not Argo CD.

use super::*;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Accepts any certificate: `argocd-insecure`, as `argocd --insecure` does.
#[derive(Debug)]
pub(super) struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(super) fn tls_config(cfg: &ArgoConfig) -> Result<rustls::ClientConfig, ArgoError> {
    use hyper_rustls::ConfigBuilderExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ArgoError::Config(format!("TLS setup: {e}")))?;
    if cfg.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    if let Some(ca) = &cfg.ca_cert {
        // The input is documented as PEM; a path to a PEM file is accepted too, as users write both.
        let (pem, what) = if ca.contains("-----BEGIN") {
            (ca.as_bytes().to_vec(), "(PEM text)".to_string())
        } else {
            let pem = std::fs::read(ca)
                .map_err(|e| ArgoError::Config(format!("argocd-ca-cert {ca}: {e}")))?;
            (pem, ca.clone())
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| ArgoError::Config(format!("argocd-ca-cert {what}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ArgoError::Config(format!("argocd-ca-cert {what}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ArgoError::Config(format!(
                "argocd-ca-cert {what} holds no PEM certificate: expected the certificate itself (-----BEGIN CERTIFICATE-----...) or the path of a PEM file"
            )));
        }
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let builder = builder
        .with_native_roots()
        .map_err(|e| ArgoError::Config(format!("loading the system CA certificates: {e}")))?;
    Ok(builder.with_no_client_auth())
}

/// Whether `e` (a hyper error) is rustls refusing the server's certificate. `io::Error` hides its
/// inner error from `source()` (and hyper-rustls nests two), so the walk peels them too.
pub(super) fn refused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(mut err) = next {
        next = err.source();
        loop {
            if let Some(
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
            ) = err.downcast_ref::<rustls::Error>()
            {
                return true;
            }
            match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => err = inner,
                None => break,
            }
        }
    }
    false
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
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(cfg)?)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let mut argo = ArgoCd {
            base,
            token: Secret::default(),
            client,
            app_namespace: cfg.app_namespace.clone().filter(|s| !s.is_empty()),
            project: cfg.project.clone().filter(|s| !s.is_empty()),
            call_timeout: cfg.call_timeout.unwrap_or(CALL_TIMEOUT),
            retry_budget: cfg.retry_budget.unwrap_or(RETRY_BUDGET),
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
        if refused_by_tls(e) {
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
