//! Argo CD client: resolve the apps, sync them, and wait until they run the merge Healthy
//! (DESIGN.md §2 steps 9–10). It speaks the REST API over hyper with a rustls connector, so
//! `argocd-insecure` and `argocd-ca-cert` are honoured and plain http reaches the sandbox.
//!
//! The wait is a pure condition ([`is_synced_healthy_at`], STYLE.md #1, with Kargo's rules) and a
//! loop that feeds it from the watch stream, falling back to polling; the loop has no timeout of its
//! own, [`ArgoCd::wait`] wraps it in `tokio::time::timeout`. It stops at Argo CD: which revision is
//! "the merge or a descendant" is the caller's answer ([`Target::contains`]).

mod apps;
mod condition;
mod error;
mod model;
mod transport;
mod wait;
mod watch;

pub use condition::{is_synced_healthy_at, Condition, Target};
pub use error::ArgoError;
pub use model::*;
pub use watch::{Subscription, Watcher};

// What the submodules share, through their `use super::*`.
use condition::*;
use transport::*;

use crate::base::Secret;
use bytes::Bytes;
use http_body_util::Full;
use std::fmt;
use std::time::Duration;

/// Timeout of one ordinary API call, unless `request-timeout` says otherwise.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one idempotent GET is retried, unless `retry-budget` says otherwise.
pub(super) const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Attempts of a sync POST whose failure left no operation behind.
pub(super) const SYNC_ATTEMPTS: u32 = 3;
/// How long a sync waits for another operation in progress before giving up.
pub(super) const IN_PROGRESS_WAIT: Duration = Duration::from_secs(15 * 60);

/// How to reach Argo CD, from the `argocd-*` inputs; `config` builds it, the secrets wrapped down
/// to the header that carries them (their `Debug` prints `***`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgoConfig {
    /// Server URL; `https://` is assumed when no scheme is given (as the argocd CLI does).
    pub server: String,
    /// API token (`argocd-token`).
    pub token: Option<Secret>,
    /// User for a session login when no token is given.
    pub username: Option<String>,
    /// Password for the session login.
    pub password: Option<Secret>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// The CA that signs the server's certificate (replaces the system roots): PEM text, or the
    /// path of a PEM file.
    pub ca_cert: Option<String>,
    /// `appNamespace` for apps outside Argo CD's own namespace.
    pub app_namespace: Option<String>,
    /// Restrict app lookups to this project.
    pub project: Option<String>,
    /// Limit of one call (`request-timeout`); `None` is 30 s.
    pub call_timeout: Option<Duration>,
    /// How long a GET is retried (`retry-budget`); `None` is 2 minutes.
    pub retry_budget: Option<Duration>,
    /// The release repo's URL, to find its source among a multi-source app's.
    pub release_repo: Option<String>,
}

pub(super) type HttpClient = crate::clients::net::HttpClient<Full<Bytes>>;

/// A connected Argo CD API client. Cheap to clone; safe to use concurrently.
#[derive(Clone)]
pub struct ArgoCd {
    pub(super) base: String,
    pub(super) token: Secret,
    pub(super) client: HttpClient,
    pub(super) app_namespace: Option<String>,
    pub(super) project: Option<String>,
    pub(super) call_timeout: Duration,
    pub(super) retry_budget: Duration,
    pub(super) release_repo: Option<String>,
}

impl fmt::Debug for ArgoCd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgoCd")
            .field("base", &self.base)
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
