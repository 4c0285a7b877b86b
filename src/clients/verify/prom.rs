//! Prometheus's instant query API (`POST /api/v1/query`) over hyper: the request with its auth
//! headers, and the answer turned into a [`QueryResult`] or a classified [`VerifyError`].

use super::condition::Value;
use super::{NamedQuery, VerifyConfig, VerifyError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// What a query returned, shaped for conditions: a vector of one sample is a number, of several a
/// list, of none [`QueryResult::Empty`] (which `no-data` decides about).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// A scalar, or a vector with one sample.
    Number(f64),
    /// A vector with several samples, in Prometheus's order.
    List(Vec<f64>),
    /// A vector with no samples.
    Empty,
}

impl QueryResult {
    /// The value conditions see; `None` for no data.
    pub fn value(&self) -> Option<Value> {
        match self {
            QueryResult::Number(n) => Some(Value::Number(*n)),
            QueryResult::List(l) => Some(Value::List(l.clone())),
            QueryResult::Empty => None,
        }
    }
}

impl fmt::Display for QueryResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("(no data)"),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar((f64, String)),
    // The content must be accepted to name the type in the error; it is never looked at.
    Matrix(#[allow(dead_code)] serde::de::IgnoredAny),
    String(#[allow(dead_code)] serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

/// Prometheus writes sample values as strings, including `NaN`, `+Inf` and `-Inf`.
fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| format!("sample value `{s}` is not a number")),
    }
}

/// Turns an answer (status and body) for query `name` into a result or an error.
///
/// # Errors
/// `BadQuery` for 400/422 with Prometheus's message, `Status` for other non-200 statuses,
/// `ResultType` for a matrix or string, `Answer` for a body that is not Prometheus's JSON.
pub fn parse_answer(
    url: &str,
    name: &str,
    status: u16,
    body: &[u8],
) -> Result<QueryResult, VerifyError> {
    let answer: Result<Answer, _> = serde_json::from_slice(body);
    let snippet = || {
        String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string()
    };
    if status != 200 {
        let message = answer
            .ok()
            .and_then(|a| {
                a.error
                    .map(|e| format!("{e} ({})", a.error_type.unwrap_or_default()))
            })
            .unwrap_or_else(snippet);
        return Err(match status {
            400 | 422 => VerifyError::BadQuery {
                name: name.to_string(),
                message,
            },
            _ => VerifyError::Status {
                url: url.to_string(),
                status,
                message,
            },
        });
    }
    let answer = answer.map_err(|e| VerifyError::Answer {
        url: url.to_string(),
        message: format!("{e}: {}", snippet()),
    })?;
    let answer_err = |message: String| VerifyError::Answer {
        url: url.to_string(),
        message,
    };
    if answer.status != "success" {
        return Err(answer_err(answer.error.unwrap_or_else(snippet)));
    }
    match answer
        .data
        .ok_or_else(|| answer_err("no `data` in a success answer".into()))?
    {
        Data::Scalar((_, v)) => Ok(QueryResult::Number(number(&v).map_err(answer_err)?)),
        Data::Vector(samples) => {
            let values = samples
                .iter()
                .map(|s| number(&s.value.1))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(answer_err)?;
            Ok(match values.as_slice() {
                [] => QueryResult::Empty,
                [one] => QueryResult::Number(*one),
                _ => QueryResult::List(values),
            })
        }
        Data::Matrix(_) => Err(VerifyError::ResultType {
            name: name.to_string(),
            result_type: "matrix".into(),
        }),
        Data::String(_) => Err(VerifyError::ResultType {
            name: name.to_string(),
            result_type: "string".into(),
        }),
    }
}

/// The HTTP client with the configured auth; one per run.
pub struct Client {
    http: crate::clients::net::HttpClient<Full<Bytes>>,
    url: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    timeout: Duration,
}

impl Client {
    /// A client for `cfg` (already checked, so header names are valid).
    pub fn new(cfg: &VerifyConfig) -> Client {
        // Roots are read at the first https handshake: a plain-HTTP Prometheus needs none.
        let http = crate::clients::net::client(cfg.trust.clone());
        let mut headers = Vec::new();
        let mut add = |k: &str, v: &str| {
            if let (Ok(k), Ok(mut v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                v.set_sensitive(k == http::header::AUTHORIZATION);
                headers.push((k, v));
            }
        };
        if let Some(t) = &cfg.bearer_token {
            add("authorization", &format!("Bearer {}", t.expose()));
        }
        Client {
            http,
            url: format!("{}/api/v1/query", cfg.prometheus_url.trim_end_matches('/')),
            headers,
            timeout: cfg.timeout,
        }
    }

    /// Runs one instant query. POST with a form body, so long PromQL never hits URL limits.
    pub async fn query(&self, q: &NamedQuery) -> Result<QueryResult, VerifyError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &q.promql)
            .finish();
        let mut req = http::Request::post(&self.url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "gitops-promote");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| VerifyError::Input {
                input: "prometheus-url",
                message: e.to_string(),
            })?;
        let unreachable = |message: String| VerifyError::Unreachable {
            url: self.url.clone(),
            message,
        };
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| unreachable(crate::base::chain(&e)))?;
            let status = resp.status().as_u16();
            let retry_after = crate::base::retry_after(resp.headers());
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(crate::base::chain(&e)))?
                .to_bytes();
            Ok::<_, VerifyError>((status, retry_after, body))
        };
        let (status, retry_after, body) =
            tokio::time::timeout(self.timeout, call)
                .await
                .map_err(|_| VerifyError::Timeout {
                    url: self.url.clone(),
                    after: self.timeout,
                })??;
        if let (429 | 403, Some(retry_after)) = (status, retry_after) {
            return Err(VerifyError::Throttled {
                url: self.url.clone(),
                status,
                retry_after,
            });
        }
        parse_answer(&self.url, &q.name, status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_sample_values_parse() {
        assert!(number("NaN").unwrap().is_nan());
        assert_eq!(number("+Inf").unwrap(), f64::INFINITY);
        assert_eq!(number("-Inf").unwrap(), f64::NEG_INFINITY);
        assert!(number("x").is_err());
    }
}
