//! The error of every Argo CD call, classified for the failure strategy.

use super::transport::backoff;
use crate::base::{Classify, ErrorKind};
use std::time::Duration;

/// The error returned by every [`ArgoCd`](super::ArgoCd) call. Messages never hold the token or password.
#[derive(Debug, thiserror::Error)]
pub enum ArgoError {
    /// A setting cannot work (bad URL, unreadable CA file, no credentials).
    #[error("Argo CD configuration: {0}")]
    Config(String),
    /// The server answered, but not as Argo CD does (HTML, other JSON).
    #[error("{action}: {server} does not answer like the Argo CD API (HTTP {status}: {detail}); check argocd-server")]
    NotArgo {
        /// What was being done, e.g. `sync app`.
        action: String,
        /// The server URL.
        server: String,
        /// HTTP status.
        status: u16,
        /// What was wrong with the answer.
        detail: String,
    },
    /// No connection, or it broke before an answer.
    #[error("{action}: cannot reach Argo CD at {server}: {reason}")]
    Connect {
        /// What was being done, e.g. `sync app`.
        action: String,
        /// The server URL.
        server: String,
        /// Why: the transport error, or the phase and message.
        reason: String,
    },
    /// A call got no answer in time.
    #[error("{action}: Argo CD did not answer within {:.1}s", after.as_secs_f64())]
    Timeout {
        /// What was being done.
        action: String,
        /// The limit that passed.
        after: Duration,
    },
    /// Argo CD refused the call (`{error, code, message}`).
    #[error("{action}: Argo CD answered HTTP {status}: {message}")]
    Api {
        /// What was being done, e.g. `sync app`.
        action: String,
        /// HTTP status.
        status: u16,
        /// The gRPC code in the body.
        code: Option<i64>,
        /// Argo CD's message.
        message: String,
        /// How long the answer asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// A name or selector matched no application.
    #[error("no Argo CD application matched {0}")]
    NoApps(String),
    /// The sync operation ended Failed or Error, or the app reports a terminal condition.
    #[error("sync of {app} failed: {reason}")]
    SyncFailed {
        /// The app.
        app: String,
        /// The phase and message, or the condition.
        reason: String,
    },
    /// The app stayed Degraded past the grace period.
    #[error("{app} is {health} at {revision}: {resources}")]
    Unhealthy {
        /// The app.
        app: String,
        /// Its health status.
        health: String,
        /// The merge (short SHA).
        revision: String,
        /// The unhealthy resources with their messages.
        resources: String,
    },
    /// `health-timeout` passed before the app was Synced and Healthy at the merge.
    #[error("{app} was not Synced and Healthy at {revision} within {}s (last: {last}){resources}", after.as_secs())]
    HealthTimeout {
        /// The app.
        app: String,
        /// The merge (short SHA).
        revision: String,
        /// The limit that passed.
        after: Duration,
        /// The last state seen.
        last: String,
        /// The unhealthy resources with their messages.
        resources: String,
    },
}

impl Classify for ArgoError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArgoError::Config(_) | ArgoError::NotArgo { .. } | ArgoError::NoApps(_) => {
                ErrorKind::Config
            }
            ArgoError::Connect { .. } => ErrorKind::Connectivity,
            ArgoError::Timeout { .. } => ErrorKind::Timeout,
            ArgoError::Api {
                status: 403,
                retry_after: Some(_),
                ..
            } => ErrorKind::RateLimit,
            ArgoError::Api { action, status, .. } => match *status {
                400 if action.starts_with("sync") || action.starts_with("rollback") => {
                    ErrorKind::Sync
                }
                s => ErrorKind::from_status(s),
            },
            ArgoError::SyncFailed { .. } => ErrorKind::Sync,
            ArgoError::Unhealthy { .. } | ArgoError::HealthTimeout { .. } => ErrorKind::Health,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ArgoError::Api { status: 401, .. } => {
                Some("check argocd-token (or argocd-username/argocd-password); it may have expired".into())
            }
            ArgoError::Api { status: 403, action, .. } if action.starts_with("sync") => Some(
                "Argo CD answers 403 when the app does not exist or the token lacks the sync right, when a deny sync window of the project is active (the step waits one out within health-timeout), and since 3.3 when the project requires the override right for a sync naming a revision (the step names one only for apps that do not track the base): check the app name, argocd-app-namespace, the account's RBAC and the project's sync windows".into(),
            ),
            ArgoError::Api { status: 403, .. } => Some(
                "Argo CD answers 403 both when the app does not exist and when the token lacks rights: check the app name, argocd-app-namespace and the account's RBAC".into(),
            ),
            ArgoError::NotArgo { .. } => Some("argocd-server must be the Argo CD API server's base URL".into()),
            ArgoError::Unhealthy { .. } | ArgoError::HealthTimeout { .. } => {
                Some("see the resources named above in Argo CD; the rollback reverts the merge".into())
            }
            _ => None,
        }
    }
}

impl ArgoError {
    pub(super) fn is_retryable(&self) -> bool {
        match self {
            ArgoError::Connect { .. } | ArgoError::Timeout { .. } => true,
            ArgoError::Api {
                status,
                retry_after,
                ..
            } => *status == 429 || *status >= 500 || (*status == 403 && retry_after.is_some()),
            _ => false,
        }
    }

    /// The pause before retry `attempt` (1-based): what the server asked for, else backoff.
    pub(super) fn pause(&self, attempt: u32) -> Duration {
        match self {
            ArgoError::Api {
                retry_after: Some(d),
                ..
            } => *d,
            _ => backoff(attempt),
        }
    }

    /// Whether the API server refused a sync for an active deny window of the project
    /// (server/application/application.go Sync: "cannot sync: blocked by sync window").
    pub fn is_sync_window(&self) -> bool {
        matches!(self, ArgoError::Api { status: 403, message, .. } if message.contains("blocked by sync window"))
    }

    pub(super) fn is_in_progress(&self) -> bool {
        matches!(self, ArgoError::Api { status: 400, message, .. } if message.contains("another operation is already in progress"))
    }
}
