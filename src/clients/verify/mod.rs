//! The metrics gate (DESIGN.md §7): Prometheus instant queries measured `count` times, `interval`
//! apart, judged by `success-condition` / `failure-condition` with Argo Rollouts analysis semantics.
//!
//! 1. [`VerifyConfig::check`] parses the conditions up front, so bad input fails before any call;
//! 2. [`run`] waits `initial-delay`, then takes measurements: every query, then the conditions over
//!    the results ([`judge`]), each measurement handed to the progress callback;
//! 3. after each measurement [`assess`] decides whether the run is over and with which verdict.
//!
//! It stops at the verdict: rolling back on a Failed verdict is the caller's decision.

pub mod condition;
mod prom;

use crate::base::{md_cell, Secret};
use crate::base::{Classify, ErrorKind};
use condition::{Expr, Value};
use std::time::Duration;

pub use prom::QueryResult;

/// Consecutive Error measurements tolerated, as Argo Rollouts' default `consecutiveErrorLimit`;
/// one more ends the run with the last error.
pub const CONSECUTIVE_ERROR_LIMIT: u32 = 4;

/// One PromQL query and the name conditions refer to it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuery {
    /// `result` for a single unnamed query; otherwise the name given in the `query` input.
    pub name: String,
    /// The PromQL expression.
    pub promql: String,
}

/// What a measurement whose query returned no samples counts as (`no-data` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoData {
    /// Failed (the default: silence is not health).
    #[default]
    Fail,
    /// Successful.
    Pass,
    /// Inconclusive.
    Inconclusive,
}

impl NoData {
    /// Parses the `no-data` input: `fail`, `pass` or `inconclusive`.
    pub fn parse(s: &str) -> Option<NoData> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Some(NoData::Fail),
            "pass" => Some(NoData::Pass),
            "inconclusive" => Some(NoData::Inconclusive),
            _ => None,
        }
    }
}

/// Everything the gate needs; `config` builds it from the inputs. Its `Debug` hides the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Prometheus base URL (the part before `/api/v1/query`).
    pub prometheus_url: String,
    /// The queries, measured together each time.
    pub queries: Vec<NamedQuery>,
    /// True means Successful (`result < 0.05`). Each measurement runs every query; a condition
    /// sees each result by its query's name, and `result` is the first query's.
    pub success_condition: Option<String>,
    /// True means Failed.
    pub failure_condition: Option<String>,
    /// Wait before the first measurement.
    pub initial_delay: Duration,
    /// Wait between measurements.
    pub interval: Duration,
    /// Measurements to take (at least 1).
    pub count: u32,
    /// Failed measurements tolerated; one more fails the run at once.
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated; one more makes the run Inconclusive at once.
    pub inconclusive_limit: u32,
    /// What a query with no samples counts as.
    pub no_data: NoData,
    /// Sent as `Authorization: Bearer …` (`prometheus-token`).
    pub bearer_token: Option<Secret>,
    /// How long one query may take; a slower answer is an Error measurement.
    pub timeout: Duration,
    /// The certificates trusted for an https Prometheus (`ca-cert` besides the system's).
    pub trust: crate::clients::net::Trust,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            prometheus_url: String::new(),
            queries: Vec::new(),
            success_condition: None,
            failure_condition: None,
            initial_delay: Duration::ZERO,
            interval: Duration::from_secs(60),
            count: 1,
            failure_limit: 0,
            inconclusive_limit: 0,
            no_data: NoData::Fail,
            bearer_token: None,
            timeout: Duration::from_secs(10),
            trust: Default::default(),
        }
    }
}

/// The outcome of one measurement, as Argo Rollouts names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The success condition held (or the failure condition did not).
    Successful,
    /// The failure condition held (or the success condition did not).
    Failed,
    /// Both conditions given and neither held, or no data with `no-data: inconclusive`.
    Inconclusive,
    /// No value could be measured (Prometheus unreachable, 5xx, a condition that does not fit).
    Error,
}

/// The verdict of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within both limits after `count` measurements.
    Successful,
    /// More Failed measurements than `failure-limit`.
    Failed,
    /// More Inconclusive measurements than `inconclusive-limit`.
    Inconclusive,
}

impl Verdict {
    /// The name written to the `verification` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Successful => "successful",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One measurement: when, what each query returned, and its phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// 1-based number of the measurement.
    pub index: u32,
    /// When the queries were sent.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Each query's name and result, in input order (empty when the measurement failed early).
    pub results: Vec<(String, QueryResult)>,
    /// Its outcome.
    pub phase: Phase,
    /// Why, for Error and no-data measurements.
    pub message: Option<String>,
}

/// What [`run`] returns: the verdict and every measurement, for the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Every measurement, oldest first.
    pub measurements: Vec<Measurement>,
}

/// The error returned by [`VerifyConfig::check`] and [`run`]. A Failed or Inconclusive verdict is
/// not an error.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An input is missing or malformed.
    #[error("invalid input `{input}`: {message}")]
    Input {
        /// The input's name, e.g. `count`.
        input: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A condition does not parse.
    #[error("invalid `{input}` at column {column}: {message}")]
    Condition {
        /// `success-condition` or `failure-condition`.
        input: &'static str,
        /// 1-based character column.
        column: usize,
        /// What was expected or found.
        message: String,
    },
    /// Prometheus rejected the PromQL (400 `bad_data` or 422 `execution`).
    #[error("Prometheus rejected query `{name}`: {message}")]
    BadQuery {
        /// The query's name.
        name: String,
        /// Prometheus's own message.
        message: String,
    },
    /// A query returned a matrix or a string; the gate needs an instant vector or a scalar.
    #[error("query `{name}` returned a {result_type}; use an instant vector or a scalar (e.g. wrap a range in rate())")]
    ResultType {
        /// The query's name.
        name: String,
        /// Prometheus's `resultType`.
        result_type: String,
    },
    /// Prometheus could not be reached (refused, reset, timed out, bad TLS).
    #[error("cannot reach Prometheus at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        message: String,
    },
    /// Prometheus did not answer within `timeout`.
    #[error("Prometheus at {url} did not answer within {after:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// Prometheus (or a proxy before it) answered an unexpected status.
    #[error("Prometheus at {url} answered {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body's `error`, or its start.
        message: String,
    },
    /// Prometheus (or a proxy before it) asked us to slow down: 429, or 403 with `Retry-After`.
    #[error("Prometheus at {url} answered {status}: rate limited (Retry-After {}s)", retry_after.as_secs())]
    Throttled {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// How long it asked us to wait.
        retry_after: Duration,
    },
    /// The answer was not Prometheus's JSON.
    #[error("unexpected answer from Prometheus at {url}: {message}")]
    Answer {
        /// The URL called.
        url: String,
        /// What did not parse.
        message: String,
    },
    /// A condition kept failing to evaluate against the results (e.g. a list compared to a number).
    #[error("`{input}` cannot be evaluated: {message}")]
    Evaluation {
        /// `success-condition` or `failure-condition`.
        input: &'static str,
        /// Why.
        message: String,
    },
}

impl Classify for VerifyError {
    fn kind(&self) -> ErrorKind {
        match self {
            VerifyError::Input { .. }
            | VerifyError::Condition { .. }
            | VerifyError::BadQuery { .. }
            | VerifyError::ResultType { .. }
            | VerifyError::Evaluation { .. } => ErrorKind::Config,
            VerifyError::Unreachable { .. } | VerifyError::Answer { .. } => ErrorKind::Connectivity,
            VerifyError::Timeout { .. } => ErrorKind::Timeout,
            VerifyError::Throttled { .. } => ErrorKind::RateLimit,
            // A 404 means the URL has no query API under it (a missing path prefix), not a
            // missing permission as it does on GitHub.
            VerifyError::Status { status: 404, .. } => ErrorKind::Config,
            VerifyError::Status { status, .. } => ErrorKind::from_status(*status),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            VerifyError::Condition { .. } => Some(
                "conditions look like `result < 0.05`, `result[0] >= 0.99 and len(result) == 1`"
                    .into(),
            ),
            VerifyError::BadQuery { .. } => {
                Some("try the query in Prometheus's expression browser first".into())
            }
            VerifyError::Unreachable { .. } => {
                Some("check `prometheus-url` and that the runner can reach it".into())
            }
            VerifyError::Status { status: 404, .. } => Some(
                "`prometheus-url` is the part before /api/v1/query, with any path prefix".into(),
            ),
            VerifyError::Status { status: 401, .. } | VerifyError::Status { status: 403, .. } => {
                Some("check the Prometheus bearer token or basic auth".into())
            }
            _ => None,
        }
    }
}

impl VerifyError {
    /// Whether the next measurement may succeed (so this one is an Error measurement, not the end).
    fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// Parses the `query` input: one PromQL expression (named `result`), or YAML-style `name: promql`
/// lines (names are letters, digits and `_`, not starting with a digit; values may be quoted).
///
/// # Errors
/// `Input` naming the line when a line of several is not `name: promql`, or a name repeats.
pub fn parse_queries(input: &str) -> Result<Vec<NamedQuery>, VerifyError> {
    let lines: Vec<(usize, &str)> = input
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let bad = |message: String| VerifyError::Input {
        input: "query",
        message,
    };
    match lines.as_slice() {
        [] => return Err(bad("no query given".into())),
        [(_, only)] if named(only).is_none() => {
            return Ok(vec![NamedQuery {
                name: "result".into(),
                promql: only.to_string(),
            }])
        }
        _ => {}
    }
    let mut out: Vec<NamedQuery> = Vec::new();
    for (n, line) in lines {
        let (name, promql) = named(line).ok_or_else(|| {
            bad(format!(
                "line {n}: with several lines, each must be `name: promql`, found `{line}`"
            ))
        })?;
        if matches!(
            name,
            "len" | "isNaN" | "isInf" | "true" | "false" | "and" | "or" | "not"
        ) {
            return Err(bad(format!(
                "line {n}: `{name}` is reserved, pick another name"
            )));
        }
        if out.iter().any(|q| q.name == name) {
            return Err(bad(format!("line {n}: the name `{name}` is used twice")));
        }
        out.push(NamedQuery {
            name: name.to_string(),
            promql: promql.to_string(),
        });
    }
    Ok(out)
}

/// Splits `name: promql` when `line` has that shape. PromQL never has an identifier followed by
/// `: ` (recording-rule names like `job:rate5m` have no space), so this cannot eat a real query.
fn named(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.split_once(": ")?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let rest = rest.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(rest);
    (!unquoted.is_empty()).then_some((name, unquoted))
}

/// The conditions, parsed.
struct Conditions {
    success: Option<Expr>,
    failure: Option<Expr>,
}

impl VerifyConfig {
    /// Checks every input and parses the conditions, so bad input fails before anything is called.
    ///
    /// # Errors
    /// `Input` or `Condition` (kind `config`), naming the input and, for conditions, the column.
    pub fn check(&self) -> Result<(), VerifyError> {
        self.conditions().map(|_| ())
    }

    fn conditions(&self) -> Result<Conditions, VerifyError> {
        let input = |input, message: &str| VerifyError::Input {
            input,
            message: message.into(),
        };
        let url = url::Url::parse(&self.prometheus_url)
            .map_err(|e| input("prometheus-url", &format!("`{}`: {e}", self.prometheus_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(input("prometheus-url", "must be an http or https URL"));
        }
        if self.queries.is_empty() {
            return Err(input("query", "no query given"));
        }
        if self.timeout.is_zero() {
            return Err(input("request-timeout", "must be more than 0s"));
        }
        if self.count == 0 {
            return Err(input("count", "must be at least 1"));
        }
        // A token with a newline would be dropped silently by the client; say so up front.
        if let Some(t) = &self.bearer_token {
            if http::HeaderValue::from_str(&format!("Bearer {}", t.expose())).is_err() {
                return Err(input(
                    "prometheus-token",
                    "contains characters a header cannot carry",
                ));
            }
        }
        let names: Vec<&str> = self.queries.iter().map(|q| q.name.as_str()).collect();
        let parse = |name: &'static str, src: &Option<String>| {
            src.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    condition::parse(s, &names).map_err(|e| VerifyError::Condition {
                        input: name,
                        column: e.column,
                        message: e.message,
                    })
                })
                .transpose()
        };
        Ok(Conditions {
            success: parse("success-condition", &self.success_condition)?,
            failure: parse("failure-condition", &self.failure_condition)?,
        })
    }
}

/// The phase of one measurement from its query results (Argo Rollouts' `EvaluateResult`): failure
/// wins; with only a success condition a false one fails; with only a failure condition a false one
/// succeeds; with both and neither true it is Inconclusive; with neither it succeeds. A query with
/// no samples makes the phase `no_data` says, before any condition is looked at.
///
/// # Errors
/// The input name and message when a condition does not fit the results (an Error measurement).
pub fn judge(
    success: Option<&Expr>,
    failure: Option<&Expr>,
    results: &[(String, QueryResult)],
    no_data: NoData,
) -> Result<(Phase, Option<String>), (&'static str, String)> {
    if let Some((name, _)) = results.iter().find(|(_, r)| *r == QueryResult::Empty) {
        let phase = match no_data {
            NoData::Fail => Phase::Failed,
            NoData::Pass => Phase::Successful,
            NoData::Inconclusive => Phase::Inconclusive,
        };
        return Ok((phase, Some(format!("no data for `{name}`"))));
    }
    let lookup = |n: &str| -> Option<Value> {
        let key = if n == "result" {
            results.first()
        } else {
            results.iter().find(|(k, _)| k == n)
        };
        key.and_then(|(_, r)| r.value())
    };
    let eval = |input, e: Option<&Expr>| {
        e.map(|e| condition::holds(e, &lookup).map_err(|m| (input, m)))
            .transpose()
    };
    let s = eval("success-condition", success)?;
    let f = eval("failure-condition", failure)?;
    let phase = match (s, f) {
        (_, Some(true)) => Phase::Failed,
        (Some(true), _) | (None, Some(false)) | (None, None) => Phase::Successful,
        (Some(false), None) => Phase::Failed,
        (Some(false), Some(false)) => Phase::Inconclusive,
    };
    Ok((phase, None))
}

/// Where a run stands after some measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessment {
    /// Take another measurement.
    Running,
    /// The run is over.
    Done(Verdict),
    /// More consecutive Error measurements than [`CONSECUTIVE_ERROR_LIMIT`].
    TooManyErrors,
}

/// Argo Rollouts' metric assessment over the phases so far: more Failed than `failure_limit` fails
/// at once, more Inconclusive than `inconclusive_limit` is Inconclusive at once, more than
/// [`CONSECUTIVE_ERROR_LIMIT`] Errors in a row ends the run, and after `count` measurements (Errors
/// are not counted: they measured nothing) the run is Successful. Pure, so it is tested on its own.
pub fn assess(
    phases: &[Phase],
    count: u32,
    failure_limit: u32,
    inconclusive_limit: u32,
) -> Assessment {
    let tally = |p| phases.iter().filter(|x| **x == p).count() as u32;
    let (failed, inconclusive) = (tally(Phase::Failed), tally(Phase::Inconclusive));
    let errors_in_a_row = phases
        .iter()
        .rev()
        .take_while(|p| **p == Phase::Error)
        .count() as u32;
    if failed > failure_limit {
        Assessment::Done(Verdict::Failed)
    } else if inconclusive > inconclusive_limit {
        Assessment::Done(Verdict::Inconclusive)
    } else if errors_in_a_row > CONSECUTIVE_ERROR_LIMIT {
        Assessment::TooManyErrors
    } else if phases.len() as u32 - tally(Phase::Error) >= count {
        Assessment::Done(Verdict::Successful)
    } else {
        Assessment::Running
    }
}

/// Runs the gate: waits `initial_delay`, then measures until [`assess`] says it is over, calling
/// `progress` with each measurement.
///
/// # Errors
/// `config` kinds for bad inputs, PromQL Prometheus rejects and results the gate cannot judge;
/// `authentication`/`authorization` for 401/403 (at once: retrying will not help); the last
/// `connectivity` error when Prometheus stayed unreachable for more than
/// [`CONSECUTIVE_ERROR_LIMIT`] measurements in a row. Safe to run again: it only reads.
pub async fn run(
    cfg: &VerifyConfig,
    progress: &(dyn Fn(&Measurement) + Send + Sync),
) -> Result<Report, VerifyError> {
    let conds = cfg.conditions()?;
    let client = prom::Client::new(cfg);
    tokio::time::sleep(cfg.initial_delay).await;
    let mut measurements: Vec<Measurement> = Vec::new();
    let mut last_error: Option<VerifyError> = None;
    loop {
        let index = measurements.len() as u32 + 1;
        let at = chrono::Utc::now();
        let mut results = Vec::new();
        let mut failure = None;
        for q in &cfg.queries {
            match client.query(q).await {
                Ok(r) => results.push((q.name.clone(), r)),
                Err(e) if e.is_transient() => {
                    failure = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let m = match failure {
            Some(e) => {
                let m = Measurement {
                    index,
                    at,
                    results,
                    phase: Phase::Error,
                    message: Some(e.to_string()),
                };
                last_error = Some(e);
                m
            }
            None => match judge(
                conds.success.as_ref(),
                conds.failure.as_ref(),
                &results,
                cfg.no_data,
            ) {
                Ok((phase, message)) => Measurement {
                    index,
                    at,
                    results,
                    phase,
                    message,
                },
                Err((input, message)) => {
                    let m = Measurement {
                        index,
                        at,
                        results,
                        phase: Phase::Error,
                        message: Some(message.clone()),
                    };
                    last_error = Some(VerifyError::Evaluation { input, message });
                    m
                }
            },
        };
        progress(&m);
        measurements.push(m);
        let phases: Vec<Phase> = measurements.iter().map(|m| m.phase).collect();
        match assess(
            &phases,
            cfg.count,
            cfg.failure_limit,
            cfg.inconclusive_limit,
        ) {
            Assessment::Running => {
                // A throttled query waits at least as long as it was asked to.
                let asked = match (&measurements.last(), &last_error) {
                    (
                        Some(Measurement {
                            phase: Phase::Error,
                            ..
                        }),
                        Some(VerifyError::Throttled { retry_after, .. }),
                    ) => *retry_after,
                    _ => Duration::ZERO,
                };
                tokio::time::sleep(cfg.interval.max(asked)).await
            }
            Assessment::Done(verdict) => {
                return Ok(Report {
                    verdict,
                    measurements,
                })
            }
            Assessment::TooManyErrors => {
                return Err(last_error.expect("an Error measurement records its error"))
            }
        }
    }
}

/// The report as a markdown table for the job summary: a verdict line, then one row per
/// measurement.
pub fn summary_table(report: &Report) -> String {
    let n = |p| report.measurements.iter().filter(|m| m.phase == p).count();
    let mut out = format!(
        "**Verification: {}** ({} measurements: {} successful, {} failed, {} inconclusive, {} errors)\n\n",
        report.verdict.as_str(),
        report.measurements.len(),
        n(Phase::Successful),
        n(Phase::Failed),
        n(Phase::Inconclusive),
        n(Phase::Error),
    );
    out.push_str("| # | time (UTC) | result | phase | note |\n|---|---|---|---|---|\n");
    for m in &report.measurements {
        let results = m
            .results
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("<br>");
        let phase = match m.phase {
            Phase::Successful => "✅ Successful",
            Phase::Failed => "❌ Failed",
            Phase::Inconclusive => "❔ Inconclusive",
            Phase::Error => "⚠️ Error",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            m.index,
            m.at.format("%H:%M:%S"),
            md_cell(&results),
            phase,
            md_cell(m.message.as_deref().unwrap_or("")),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
