//! Sending a request: one try under the per-call timeout, conditional GETs from the ETag cache,
//! retries with backoff within the budget, GitHub's rate-limit waits, and decoding the answer.

use super::{GitHub, GitHubError};
use chrono::Utc;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A raw answer: status, headers, body.
pub(super) struct Answer {
    status: u16,
    headers: HeaderMap,
    /// Decoded by the caller, which knows the type it expects.
    pub(super) body: bytes::Bytes,
}

/// `body` as the JSON GitHub documents for `method path`, or a `Decode` error naming the call.
pub(super) fn decode<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<T, GitHubError> {
    serde_json::from_slice(body).map_err(|e| GitHubError::Decode {
        method: method.clone(),
        path: path.to_string(),
        detail: e.to_string(),
    })
}

/// How long GitHub asks us to wait: `Retry-After`, else the rate-limit reset when none remain.
fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let num = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(d) = crate::base::retry_after(headers) {
        return Some(d);
    }
    if num("x-ratelimit-remaining") == Some(0) {
        let reset = num("x-ratelimit-reset")?;
        return Some(Duration::from_secs(
            (reset - Utc::now().timestamp()).max(1) as u64
        ));
    }
    None
}

impl GitHub {
    /// One request, no retry; statuses >= 400 become `Api` errors. GETs carry `If-None-Match`
    /// when we hold an ETag for the path, and a 304 answers from the cached body.
    pub(super) async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        let cached = if *method == Method::GET {
            self.etags.lock().unwrap().get(path).cloned()
        } else {
            None
        };
        if let Some((etag, _)) = &cached {
            builder = builder.header("if-none-match", etag.as_str());
        }
        let fut = async {
            let failed = |e| GitHubError::transport(method, path, e);
            let req = self.octo.build_request(builder, body).map_err(failed)?;
            let resp = self.octo.execute(req).await.map_err(failed)?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(failed)?;
            Ok::<_, GitHubError>(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        let mut a = tokio::time::timeout(self.call_timeout, fut)
            .await
            .map_err(|_| GitHubError::Timeout {
                method: method.clone(),
                path: path.to_string(),
                after: self.call_timeout,
            })??;
        if a.status == StatusCode::NOT_MODIFIED.as_u16() {
            if let Some((_, body)) = cached {
                a.status = 200;
                a.body = body;
                return Ok(a);
            }
        }
        if a.status >= 400 {
            let message = serde_json::from_slice::<Value>(&a.body)
                .ok()
                .and_then(|v| {
                    let m = v["message"].as_str()?.to_string();
                    // 422s carry the useful part in errors[].message.
                    let detail: Vec<String> = v["errors"]
                        .as_array()
                        .map(|e| {
                            e.iter()
                                .filter_map(|x| x["message"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(if detail.is_empty() {
                        m
                    } else {
                        format!("{m}: {}", detail.join("; "))
                    })
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&a.body).chars().take(200).collect());
            return Err(GitHubError::Api {
                method: method.clone(),
                path: path.to_string(),
                status: a.status,
                message,
                retry_after: wait_hint(&a.headers),
            });
        }
        if *method == Method::GET {
            if let Some(etag) = a.headers.get("etag").and_then(|v| v.to_str().ok()) {
                self.etags
                    .lock()
                    .unwrap()
                    .insert(path.to_string(), (etag.to_string(), a.body.clone()));
            }
        }
        Ok(a)
    }

    /// A request that is safe to repeat, retried with backoff and jitter within `retry_budget`.
    pub(super) async fn idempotent(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        self.retrying(method, path, body, GitHubError::retryable)
            .await
    }

    /// A request that must not be repeated blindly: resent only when GitHub rate-limited it
    /// (rejected before acting). Other failures go back to the caller, which reads back.
    pub(super) async fn write_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        self.retrying(method, path, body, GitHubError::rejected_unprocessed)
            .await
    }

    /// Sends the request again, after `pause`, while `retry_on` says so and `retry_budget` lasts.
    pub(super) async fn retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry_on: fn(&GitHubError) -> bool,
    ) -> Result<Answer, GitHubError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match self.once(&method, path, body).await {
                Err(e) if retry_on(&e) => {
                    let wait = self.pause(&e, attempt);
                    if started.elapsed() + wait > self.retry_budget {
                        return Err(e);
                    }
                    let left = self.retry_budget - (started.elapsed() + wait);
                    crate::base::retry::notice(&e, wait, left);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The wait before the next try: GitHub's own hint first, else backoff with jitter so that
    /// parallel jobs do not retry in step.
    pub(super) fn pause(&self, e: &GitHubError, attempt: u32) -> Duration {
        if let GitHubError::Api {
            retry_after: Some(d),
            ..
        } = e
        {
            return *d;
        }
        if e.is_secondary_rate_limit() {
            // GitHub asks for at least a minute when it gives no Retry-After.
            return Duration::from_secs(60);
        }
        let base = self
            .backoff
            .saturating_mul(1 << attempt.min(6))
            .min(Duration::from_secs(20));
        base.mul_f64(0.5 + fastrand::f64())
    }

    /// A GET, retried as any request safe to repeat, decoded into `T`.
    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GitHubError> {
        let a = self.idempotent(Method::GET, path, None).await?;
        decode(&Method::GET, path, &a.body)
    }

    /// Every page of a list (`per_page=100`), following pages until a short one.
    pub(super) async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, GitHubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for page in 1.. {
            let items: Vec<T> = self
                .get(&format!("{path}{sep}per_page=100&page={page}"))
                .await?;
            let n = items.len();
            out.extend(items);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_hint_prefers_retry_after_then_the_reset_time() {
        let mut h = HeaderMap::new();
        assert_eq!(wait_hint(&h), None);
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = Utc::now().timestamp() + 30;
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let d = wait_hint(&h).unwrap();
        assert!(
            d >= Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(7)));
    }

    /// A client whose every request would go nowhere: nothing listens on the discard port, so a
    /// request that got that far would fail to connect.
    fn nowhere() -> GitHub {
        let mut gh = GitHub::new("http://127.0.0.1:9", "t", "acme/deploy").unwrap();
        gh.retry_budget = Duration::ZERO;
        gh
    }

    #[tokio::test]
    async fn a_path_that_is_no_uri_is_a_config_error_naming_it_not_unreachable_github() {
        use crate::base::{Classify, ErrorKind};
        let err = nowhere().permission("a b").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(!err.retryable(), "{err}");
        let said = err.to_string();
        assert!(said.contains("/collaborators/a b/permission"), "{said}");
        assert!(said.contains("invalid uri character"), "{said}");
    }
}
