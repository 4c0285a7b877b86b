//! The failure types every client and step reports in, and the one error a failed step returns
//! (DESIGN.md §6). Each client keeps its own typed error and says through [`Classify`] which
//! [`ErrorKind`] it is.

use std::fmt;
use std::time::Duration;

/// The type of a failure, as users name it in `failure-strategy` (`on: [timeout, health]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Invalid inputs or a request the server refuses as malformed; retrying cannot help.
    Config,
    /// A token or password was rejected (401).
    Authentication,
    /// The credentials lack a permission, or the resource is hidden (403, 404).
    Authorization,
    /// The network or the server failed (connection errors, 5xx).
    Connectivity,
    /// An API rate limit was hit.
    RateLimit,
    /// A wait or a request took too long.
    Timeout,
    /// Someone else changed the same thing (merge conflict, head moved).
    Conflict,
    /// The PR did not get its approvals in time, or a change was requested.
    Approval,
    /// An Argo CD sync failed.
    Sync,
    /// An app did not become Healthy.
    Health,
    /// The metrics gate failed.
    Verification,
}

/// How long an answer asks us to wait before trying again: its `Retry-After` in seconds, the form
/// GitHub, Argo CD's proxies and Prometheus's send. Every client's retry loop honours it.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs))
}

impl ErrorKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Config,
        ErrorKind::Authentication,
        ErrorKind::Authorization,
        ErrorKind::Connectivity,
        ErrorKind::RateLimit,
        ErrorKind::Timeout,
        ErrorKind::Conflict,
        ErrorKind::Approval,
        ErrorKind::Sync,
        ErrorKind::Health,
        ErrorKind::Verification,
    ];

    /// The name used in inputs, annotations and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Authorization => "authorization",
            ErrorKind::Connectivity => "connectivity",
            ErrorKind::RateLimit => "rate-limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Approval => "approval",
            ErrorKind::Sync => "sync",
            ErrorKind::Health => "health",
            ErrorKind::Verification => "verification",
        }
    }

    /// Parses a name as users write it in `failure-strategy`.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind an HTTP status from GitHub, Argo CD or Prometheus stands for.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            403 | 404 => ErrorKind::Authorization,
            408 | 504 => ErrorKind::Timeout,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::RateLimit,
            400..=499 => ErrorKind::Config,
            _ => ErrorKind::Connectivity,
        }
    }

    /// Whether running the same step again can succeed; `config` errors never do.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Connectivity | ErrorKind::RateLimit | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by each module's error so that flows can classify it without knowing its variants.
pub trait Classify: std::error::Error {
    /// The failure type the strategy acts on.
    fn kind(&self) -> ErrorKind;
    /// What the user can do about it, shown under the annotation.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A failed step: what failed, its type, the full message and a hint. This is what flows return and
/// what `runtime` renders as an `::error title=...::` annotation.
#[derive(Debug, Clone)]
pub struct StepError {
    /// The step that failed, e.g. `merge`.
    pub step: &'static str,
    /// The failure type.
    pub kind: ErrorKind,
    /// The error and its causes, joined with `: `.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

/// An error and its causes on one line, joined with `: `, each cause left out when the text
/// before already holds it (hyper's own message alone is just "client error (Connect)").
pub fn chain<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

impl StepError {
    /// Wraps a module error raised by `step`.
    pub fn new(step: &'static str, err: &(impl Classify + ?Sized)) -> StepError {
        StepError {
            step,
            kind: err.kind(),
            message: chain(err),
            hint: err.hint(),
        }
    }

    /// An error built from a message, for checks the flows make themselves.
    pub fn msg(step: &'static str, kind: ErrorKind, message: impl Into<String>) -> StepError {
        StepError {
            step,
            kind,
            message: message.into(),
            hint: None,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({}): {}", self.step, self.kind, self.message)
    }
}

impl std::error::Error for StepError {}
