//! Argo CD client: resolve the apps, sync them, and wait until they run the merge Healthy
//! (DESIGN.md §2 steps 9–10). It speaks the REST API over hyper with a rustls connector, so
//! `argocd-insecure` and `argocd-ca-cert` are honoured and plain http reaches the sandbox.
//!
//! The wait is a pure condition ([`is_synced_healthy_at`], STYLE.md #1, with Kargo's rules) and a
//! loop that feeds it from the watch stream, falling back to polling; the loop has no timeout of its
//! own, [`ArgoCd::wait`] wraps it in `tokio::time::timeout`. It stops at Argo CD: which revision is
//! "the merge or a descendant" is the caller's answer ([`Target::contains`]).

use crate::base::{Classify, ErrorKind};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Timeout of one ordinary API call, unless `request-timeout` says otherwise.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one idempotent GET is retried, unless `retry-budget` says otherwise.
const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Attempts of a sync POST whose failure left no operation behind.
const SYNC_ATTEMPTS: u32 = 3;
/// How long a sync waits for another operation in progress before giving up.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(15 * 60);
/// How often a progress line is printed at least while waiting.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// How to reach Argo CD, from the `argocd-*` inputs.
#[derive(Clone, Default)]
pub struct ArgoConfig {
    /// Server URL; `https://` is assumed when no scheme is given (as the argocd CLI does).
    pub server: String,
    /// API token (`argocd-token`).
    pub token: Option<String>,
    /// User for a session login when no token is given.
    pub username: Option<String>,
    /// Password for the session login.
    pub password: Option<String>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// PEM file of the CA that signs the server's certificate (replaces the system roots).
    pub ca_cert: Option<PathBuf>,
    /// `appNamespace` for apps outside Argo CD's own namespace.
    pub app_namespace: Option<String>,
    /// Restrict app lookups to this project.
    pub project: Option<String>,
    /// Limit of one call (`request-timeout`); `None` is 30 s.
    pub call_timeout: Option<Duration>,
    /// How long a GET is retried (`retry-budget`); `None` is 2 minutes.
    pub retry_budget: Option<Duration>,
}

impl fmt::Debug for ArgoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgoConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("insecure", &self.insecure)
            .field("ca_cert", &self.ca_cert)
            .field("app_namespace", &self.app_namespace)
            .field("project", &self.project)
            .finish()
    }
}

/// The error returned by every [`ArgoCd`] call. Messages never hold the token or password.
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
    fn is_retryable(&self) -> bool {
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
    fn pause(&self, attempt: u32) -> Duration {
        match self {
            ArgoError::Api {
                retry_after: Some(d),
                ..
            } => *d,
            _ => backoff(attempt),
        }
    }

    fn is_in_progress(&self) -> bool {
        matches!(self, ArgoError::Api { status: 400, message, .. } if message.contains("another operation is already in progress"))
    }
}

// ---------------------------------------------------------------------------------------------
// Application types: only what the product reads; every field optional so real bodies parse.

/// An Argo CD Application as the API returns it (fields the product reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Application {
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: ApplicationSpec,
    /// The operation requested and not yet finished, if any.
    pub operation: Option<Value>,
    /// Observed state.
    pub status: ApplicationStatus,
}

/// Kubernetes object metadata (the part the product reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// App name.
    pub name: String,
    /// Namespace the Application object lives in.
    pub namespace: Option<String>,
    /// Labels, matched by `selector`.
    pub labels: BTreeMap<String, String>,
}

/// `spec`: source, project and sync policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Project.
    pub project: String,
    /// Single source.
    pub source: Option<ApplicationSource>,
    /// Multi-source apps.
    pub sources: Vec<ApplicationSource>,
    /// Sync policy; `automated` present means auto-sync.
    pub sync_policy: Option<SyncPolicy>,
}

/// Where the manifests come from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationSource {
    /// Git repo URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Path in the repo.
    pub path: Option<String>,
    /// Branch, tag or SHA tracked.
    pub target_revision: Option<String>,
}

/// `spec.syncPolicy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Automated sync, when set.
    pub automated: Option<SyncPolicyAutomated>,
    /// Sync options.
    pub sync_options: Vec<String>,
}

/// `spec.syncPolicy.automated`; `enabled: false` turns it off (Argo CD ≥ 3.0).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncPolicyAutomated {
    /// Explicit switch; absent means on.
    pub enabled: Option<bool>,
    /// Prune on auto-sync.
    pub prune: Option<bool>,
}

/// `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// Sync status against the target revision.
    pub sync: SyncStatus,
    /// Aggregated health.
    pub health: HealthStatus,
    /// The last (or current) operation.
    pub operation_state: Option<OperationState>,
    /// When the controller last compared live and desired state.
    pub reconciled_at: Option<DateTime<Utc>>,
    /// Conditions such as `ComparisonError`.
    pub conditions: Vec<AppCondition>,
    /// Deployment history, oldest first.
    pub history: Vec<RevisionHistory>,
    /// Managed resources (health is not stored here by default since Argo CD 3.0).
    pub resources: Vec<ResourceStatus>,
}

/// `status.sync`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncStatus {
    /// Synced, OutOfSync or Unknown.
    pub status: String,
    /// Revision compared to.
    pub revision: Option<String>,
    /// Revisions of a multi-source app.
    pub revisions: Vec<String>,
}

/// A health status with its message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HealthStatus {
    /// Healthy, Progressing, Degraded, Suspended, Missing or Unknown.
    pub status: String,
    /// Why, when not Healthy.
    pub message: Option<String>,
}

/// `status.operationState`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationState {
    /// Running, Terminating, Failed, Error or Succeeded.
    pub phase: String,
    /// Operation message.
    pub message: Option<String>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// End time, once finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// What was synced.
    pub sync_result: Option<SyncOperationResult>,
    /// The operation as requested.
    pub operation: Option<Value>,
}

/// `operationState.syncResult`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncOperationResult {
    /// The synced commit.
    pub revision: Option<String>,
    /// The synced commits of a multi-source app.
    pub revisions: Vec<String>,
}

/// `status.conditions[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppCondition {
    /// e.g. `ComparisonError`, `InvalidSpecError`, `SyncError`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Details.
    pub message: String,
}

/// `status.history[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RevisionHistory {
    /// History id, for rollback.
    pub id: i64,
    /// Deployed commit.
    pub revision: Option<String>,
    /// Deployed commits of a multi-source app.
    pub revisions: Vec<String>,
    /// When it was deployed.
    pub deployed_at: Option<DateTime<Utc>>,
}

/// `status.resources[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Sync status of the resource.
    pub status: Option<String>,
    /// Health, when the server stores it.
    pub health: Option<HealthStatus>,
}

/// `GET .../resource-tree`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationTree {
    /// Every live resource.
    pub nodes: Vec<ResourceNode>,
}

/// A node of the resource tree with its health.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceNode {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Health, when the kind has one.
    pub health: Option<HealthStatus>,
}

impl Application {
    /// Whether automated sync is on.
    pub fn auto_sync(&self) -> bool {
        let automated = self
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref());
        automated.is_some_and(|a| a.enabled != Some(false))
    }

    /// The targetRevision of the (first) source; `HEAD` when unset, as Argo CD reads it.
    pub fn target_revision(&self) -> String {
        let src = self.spec.source.as_ref().or(self.spec.sources.first());
        src.and_then(|s| s.target_revision.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "HEAD".into())
    }
}

// ---------------------------------------------------------------------------------------------
// The condition (pure).

/// What the app's state says about the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Synced and Healthy at the merge or a descendant.
    Done,
    /// Not there yet, and why.
    Pending(String),
    /// Synced at the target but Degraded: terminal once it lasts past the grace period.
    Degraded(String),
    /// Will not get there (failed operation, terminal condition).
    Failed(String),
}

/// What the wait waits for: the merge commit, and which revisions count as containing it.
#[derive(Clone)]
pub struct Target {
    /// The merge commit SHA, for messages.
    pub merge_sha: String,
    /// Whether a revision is the merge or a descendant of it on the base branch (git answers).
    pub contains: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// A rollback through Argo CD history: the app runs an earlier revision while git still holds
    /// the promoted one, so it ends OutOfSync by design, and that is its success.
    pub from_history: bool,
}

impl Target {
    /// A target satisfied only by exactly `sha`.
    pub fn exact(sha: &str) -> Target {
        let want = sha.to_string();
        Target {
            merge_sha: sha.to_string(),
            contains: Arc::new(move |r| r == want),
            from_history: false,
        }
    }

    /// The revision a rollback through history returns the app to (see [`Target::from_history`]).
    pub fn history(sha: &str) -> Target {
        Target {
            from_history: true,
            ..Target::exact(sha)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("merge_sha", &self.merge_sha)
            .finish_non_exhaustive()
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Whether `app` runs the target Synced and Healthy (DESIGN.md §2.10, Kargo's rules):
/// the operation Succeeded at a revision `target.contains`, `reconciledAt >= finishedAt` (health
/// older than the sync is not trusted), Synced, Healthy. `ComparisonError`/`InvalidSpecError` and
/// a Failed/Error operation are terminal. `None` (not seen yet) is pending.
pub fn is_synced_healthy_at(app: Option<&Application>, target: &Target) -> Condition {
    let Some(app) = app else {
        return Condition::Pending("application not seen yet".into());
    };
    let st = &app.status;
    if let Some(c) = st
        .conditions
        .iter()
        .find(|c| c.kind == "ComparisonError" || c.kind == "InvalidSpecError")
    {
        return Condition::Failed(format!("{}: {}", c.kind, c.message));
    }
    // `operation` is set by the API server on sync and cleared by the controller when the operation
    // ends: while it is set, `operationState` may still describe the previous operation.
    if app.operation.is_some() {
        return Condition::Pending("sync requested, waiting for the controller to run it".into());
    }
    if unchanged_at(app, target) {
        return health_of(st);
    }
    let Some(op) = &st.operation_state else {
        return Condition::Pending("no sync operation yet".into());
    };
    match op.phase.as_str() {
        "Succeeded" => {}
        "Failed" | "Error" => {
            // An operation that failed at a commit before the merge (e.g. an earlier auto-sync)
            // says nothing about the merge: keep waiting for ours.
            let asked = operation_revisions(op);
            let earlier = !asked.is_empty()
                && asked
                    .iter()
                    .all(|r| looks_like_sha(r) && !(target.contains)(r));
            if earlier {
                return Condition::Pending(format!(
                    "an earlier operation {} at {}",
                    op.phase,
                    short(asked[0])
                ));
            }
            let msg = op.message.as_deref().unwrap_or("no message");
            return Condition::Failed(format!("operation {}: {msg}", op.phase));
        }
        phase => return Condition::Pending(format!("operation {phase}")),
    }
    let result = op.sync_result.as_ref();
    let revs: Vec<&str> = result
        .map(|r| {
            r.revision
                .iter()
                .chain(r.revisions.iter())
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    if !revs.iter().any(|r| (target.contains)(r)) {
        let got = revs.first().map_or("nothing", |r| short(r));
        return Condition::Pending(format!(
            "last sync ran {got}, not {} yet",
            short(&target.merge_sha)
        ));
    }
    match (st.reconciled_at, op.finished_at) {
        (Some(r), Some(f)) if r >= f => {}
        _ => {
            return Condition::Pending(
                "waiting for the controller to reconcile after the sync".into(),
            )
        }
    }
    if st.sync.status != "Synced" && !target.from_history {
        return Condition::Pending(format!("sync status {}", or_unknown(&st.sync.status)));
    }
    health_of(st)
}

/// Whether the controller compared the app Synced at a revision containing the merge with no
/// operation of ours: the merge left the app's path as it was, so auto-sync skips it (argo-cd
/// controller/appcontroller.go autoSync, "Skipping auto-sync: application status is Synced") and
/// `operationState` stays the previous sync's. Kargo's argocd waiter reads `status.sync` likewise.
fn unchanged_at(app: &Application, target: &Target) -> bool {
    let st = &app.status;
    let compared = st
        .sync
        .revision
        .iter()
        .chain(st.sync.revisions.iter())
        .any(|r| (target.contains)(r));
    let running = st
        .operation_state
        .as_ref()
        .is_some_and(|op| matches!(op.phase.as_str(), "Running" | "Terminating"));
    let ours = st
        .operation_state
        .as_ref()
        .is_some_and(|op| operation_revisions(op).iter().any(|r| (target.contains)(r)));
    compared && st.sync.status == "Synced" && !running && !ours
}

/// The verdict from the app's health once it runs the target.
fn health_of(st: &ApplicationStatus) -> Condition {
    match st.health.status.as_str() {
        "Healthy" => Condition::Done,
        "Degraded" => Condition::Degraded(format!(
            "Degraded: {}",
            st.health.message.as_deref().unwrap_or("no message")
        )),
        h => Condition::Pending(format!("health {}", or_unknown(h))),
    }
}

/// The revisions an operation synced, or else the ones it was asked for.
fn operation_revisions(op: &OperationState) -> Vec<&str> {
    if let Some(r) = &op.sync_result {
        let revs: Vec<&str> = r
            .revision
            .iter()
            .chain(r.revisions.iter())
            .map(String::as_str)
            .collect();
        if !revs.is_empty() {
            return revs;
        }
    }
    let sync = op.operation.as_ref().map(|o| &o["sync"]);
    let mut revs: Vec<&str> = sync
        .and_then(|s| s["revision"].as_str())
        .into_iter()
        .collect();
    if let Some(list) = sync.and_then(|s| s["revisions"].as_array()) {
        revs.extend(list.iter().filter_map(Value::as_str));
    }
    revs.retain(|r| !r.is_empty());
    revs
}

fn looks_like_sha(r: &str) -> bool {
    r.len() >= 7 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "Unknown"
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------------
// The client.

/// An app to sync, as resolved from names or a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    /// App name.
    pub name: String,
    /// Automated sync on (then it is synced without `revision`).
    pub auto_sync: bool,
    /// `spec.source.targetRevision`.
    pub target_revision: String,
    /// `status.sync.revision` before the promotion (state: `previous-revisions`).
    pub synced_revision: Option<String>,
    /// `spec.syncPolicy.syncOptions`: a sync that names options replaces them, so we send them too.
    pub sync_options: Vec<String>,
}

/// What to sync.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Revision for manual-sync apps; ignored for auto-sync apps.
    pub revision: Option<String>,
    /// Prune resources no longer in git.
    pub prune: bool,
    /// Sync options such as `ApplyOutOfSyncOnly=true`.
    pub sync_options: Vec<String>,
}

/// Knobs of [`ArgoCd::wait`].
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Overall limit (`health-timeout`).
    pub health_timeout: Duration,
    /// How long Degraded is tolerated before failing (`degraded-grace`).
    pub degraded_grace: Duration,
    /// Poll interval when the watch stream is not available.
    pub poll: Duration,
}

/// Where an app ended up when the wait succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// Synced revision.
    pub revision: String,
    /// Health status.
    pub health: String,
    /// Sync status.
    pub sync: String,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A connected Argo CD API client. Cheap to clone; safe to use concurrently.
#[derive(Clone)]
pub struct ArgoCd {
    base: String,
    token: String,
    client: HttpClient,
    app_namespace: Option<String>,
    project: Option<String>,
    call_timeout: Duration,
    retry_budget: Duration,
}

impl fmt::Debug for ArgoCd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgoCd")
            .field("base", &self.base)
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

/// Accepts any certificate: `argocd-insecure`, as `argocd --insecure` does.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

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

fn tls_config(cfg: &ArgoConfig) -> Result<rustls::ClientConfig, ArgoError> {
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
    if let Some(path) = &cfg.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| ArgoError::Config(format!("argocd-ca-cert {}: {e}", path.display())))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                ArgoError::Config(format!("argocd-ca-cert {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                ArgoError::Config(format!("argocd-ca-cert {}: {e}", path.display()))
            })?;
        }
        if roots.is_empty() {
            return Err(ArgoError::Config(format!(
                "argocd-ca-cert {} holds no PEM certificate",
                path.display()
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
fn refused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
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

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Backoff before retry `attempt` (1-based): 250 ms doubling, with jitter.
fn backoff(attempt: u32) -> Duration {
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
            token: String::new(),
            client,
            app_namespace: cfg.app_namespace.clone().filter(|s| !s.is_empty()),
            project: cfg.project.clone().filter(|s| !s.is_empty()),
            call_timeout: cfg.call_timeout.unwrap_or(CALL_TIMEOUT),
            retry_budget: cfg.retry_budget.unwrap_or(RETRY_BUDGET),
        };
        match (&cfg.token, &cfg.username, &cfg.password) {
            (Some(t), _, _) if !t.is_empty() => argo.token = t.clone(),
            (_, Some(u), Some(p)) if !u.is_empty() => {
                let body = json!({"username": u, "password": p});
                let v: Value = argo
                    .call_json(Method::POST, "/api/v1/session", Some(body), "session login")
                    .await?;
                argo.token =
                    v["token"]
                        .as_str()
                        .map(str::to_string)
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
    async fn send(
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
        if !self.token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
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

    fn connect_error(&self, action: &str, e: &(dyn std::error::Error + 'static)) -> ArgoError {
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
    async fn call_json<T: serde::de::DeserializeOwned>(
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
    async fn get_json<T: serde::de::DeserializeOwned>(
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
                    tokio::time::sleep(wait).await
                }
                r => return r,
            }
        }
    }

    fn app_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(ns) = &self.app_namespace {
            q.push(format!("appNamespace={}", enc(ns)));
        }
        if let Some(p) = &self.project {
            q.push(format!("project={}", enc(p)));
        }
        q.join("&")
    }

    fn app_path(&self, app: &str, suffix: &str, extra: &str) -> String {
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

    /// `GET /api/v1/applications/{app}` (retried).
    ///
    /// # Errors
    /// `Api` 403 when the app does not exist (Argo CD does not say 404) or the token lacks rights.
    pub async fn get(&self, app: &str) -> Result<Application, ArgoError> {
        let action = format!("get application {app}");
        let a = self.get_json(&self.app_path(app, "", ""), &action).await?;
        self.check_app(a, &action)
    }

    /// Every Application has a name: JSON without one came from something else.
    fn check_app(&self, a: Application, action: &str) -> Result<Application, ArgoError> {
        if a.metadata.name.is_empty() {
            return Err(ArgoError::NotArgo {
                action: action.into(),
                server: self.base.clone(),
                status: 200,
                detail: "JSON without metadata.name, not an Application".into(),
            });
        }
        Ok(a)
    }

    /// `GET` with `refresh=normal|hard`: the controller looks at git again.
    pub async fn refresh(&self, app: &str, hard: bool) -> Result<Application, ArgoError> {
        let kind = if hard {
            "refresh=hard"
        } else {
            "refresh=normal"
        };
        let action = format!("refresh application {app}");
        let a = self
            .get_json(&self.app_path(app, "", kind), &action)
            .await?;
        self.check_app(a, &action)
    }

    /// The apps named, or (when `names` is empty) those matching the label `selector`.
    ///
    /// # Errors
    /// `NoApps` when the selector matches none; `Api` 403 for a name that does not exist.
    pub async fn resolve_apps(
        &self,
        names: &[String],
        selector: Option<&str>,
    ) -> Result<Vec<AppRef>, ArgoError> {
        let mut apps = Vec::new();
        for name in names {
            apps.push(self.get(name).await?);
        }
        if let Some(sel) = selector.filter(|s| !s.trim().is_empty()) {
            let mut q = vec![format!("selector={}", enc(sel))];
            if let Some(ns) = &self.app_namespace {
                q.push(format!("appNamespace={}", enc(ns)));
            }
            if let Some(p) = &self.project {
                q.push(format!("projects={}", enc(p)));
            }
            #[derive(Deserialize)]
            struct List {
                #[serde(default)]
                items: Option<Vec<Application>>,
            }
            let list: List = self
                .get_json(
                    &format!("/api/v1/applications?{}", q.join("&")),
                    "list applications",
                )
                .await?;
            let found = list.items.unwrap_or_default();
            if found.is_empty() {
                return Err(ArgoError::NoApps(format!("selector {sel:?}")));
            }
            for a in found {
                if !apps.iter().any(|x| x.metadata.name == a.metadata.name) {
                    apps.push(a);
                }
            }
        }
        if apps.is_empty() {
            return Err(ArgoError::NoApps(
                "an empty list of names and no selector".into(),
            ));
        }
        Ok(apps
            .into_iter()
            .map(|a| AppRef {
                auto_sync: a.auto_sync(),
                target_revision: a.target_revision(),
                synced_revision: a.status.sync.revision.clone().filter(|r| !r.is_empty()),
                sync_options: a
                    .spec
                    .sync_policy
                    .as_ref()
                    .map(|p| p.sync_options.clone())
                    .unwrap_or_default(),
                name: a.metadata.name,
            })
            .collect())
    }

    /// The JSON body of a sync request (`applicationApplicationSyncRequest`). Its `syncOptions`
    /// are the app's own plus `req`'s, since Argo CD replaces the app's with the request's
    /// (argo-cd server/application/application.go Sync, `syncOptions = syncReq.SyncOptions.Items`)
    /// and a sync with only ours would drop e.g. the app's `ServerSideApply=true`.
    pub fn sync_body(&self, app: &AppRef, req: &SyncRequest) -> Value {
        let mut body = json!({"name": app.name, "prune": req.prune});
        if !app.auto_sync {
            if let Some(rev) = req.revision.as_ref().filter(|r| !r.is_empty()) {
                body["revision"] = json!(rev);
            }
        }
        let options = merged_sync_options(&app.sync_options, &req.sync_options);
        if !options.is_empty() {
            body["syncOptions"] = json!({"items": options});
        }
        if let Some(ns) = &self.app_namespace {
            body["appNamespace"] = json!(ns);
        }
        if let Some(p) = &self.project {
            body["project"] = json!(p);
        }
        body
    }

    /// The JSON body of a rollback request (`applicationApplicationRollbackRequest`).
    pub fn rollback_body(&self, app: &str, id: i64) -> Value {
        let mut body = json!({"name": app, "id": id, "prune": false});
        if let Some(ns) = &self.app_namespace {
            body["appNamespace"] = json!(ns);
        }
        body
    }

    /// Starts a sync. Auto-sync apps are hard-refreshed and synced without `revision` (Argo CD
    /// refuses a revision other than targetRevision). "another operation is already in progress"
    /// is waited out and the sync sent again; a connection error is retried only after the app
    /// shows our operation did not start.
    ///
    /// # Errors
    /// `Api` (kind `sync`) when Argo CD refuses; the caller bounds the total time.
    pub async fn sync(&self, app: &AppRef, req: &SyncRequest) -> Result<(), ArgoError> {
        if app.auto_sync {
            self.refresh(&app.name, true).await?;
        }
        let body = self.sync_body(app, req);
        let wanted = body["revision"]
            .as_str()
            .unwrap_or(&app.target_revision)
            .to_string();
        self.start_operation(&app.name, "sync", &wanted, body).await
    }

    /// Rolls `app` back to history entry `id` (refused by Argo CD while auto-sync is on).
    ///
    /// # Errors
    /// `Api` (kind `sync`) when refused.
    pub async fn rollback_to_history(&self, app: &str, id: i64) -> Result<(), ArgoError> {
        let body = self.rollback_body(app, id);
        let current = self.get(app).await?;
        let wanted = current
            .status
            .history
            .iter()
            .find(|h| h.id == id)
            .and_then(|h| h.revision.clone())
            .unwrap_or_default();
        self.start_operation(app, "rollback", &wanted, body).await
    }

    async fn start_operation(
        &self,
        app: &str,
        verb: &str,
        wanted: &str,
        body: Value,
    ) -> Result<(), ArgoError> {
        let path = format!("/api/v1/applications/{}/{verb}", enc(app));
        let action = format!("{verb} {app}");
        let mut connect_failures = 0;
        loop {
            let sent = Utc::now() - chrono::Duration::seconds(1);
            match self
                .call_json::<Value>(Method::POST, &path, Some(body.clone()), &action)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_in_progress() => {
                    tokio::time::timeout(IN_PROGRESS_WAIT, self.wait_no_operation(app))
                        .await
                        .map_err(|_| ArgoError::Timeout {
                            action: format!("{action}: waiting for the operation in progress"),
                            after: IN_PROGRESS_WAIT,
                        })??
                }
                // A dropped connection, a timeout, a 5xx or a 429 from a proxy in front of Argo CD.
                Err(e) if e.is_retryable() => {
                    connect_failures += 1;
                    // The POST may have reached Argo CD: never start a second operation blindly.
                    let a = self.get(app).await?;
                    if started_since(&a, wanted, sent) {
                        return Ok(());
                    }
                    if connect_failures >= SYNC_ATTEMPTS {
                        return Err(e);
                    }
                    tokio::time::sleep(e.pause(connect_failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until `app` has no operation running (the in-progress one finished).
    async fn wait_no_operation(&self, app: &str) -> Result<(), ArgoError> {
        loop {
            let a = self.get(app).await?;
            let running = a.operation.is_some()
                || a.status
                    .operation_state
                    .as_ref()
                    .is_some_and(|o| o.phase == "Running" || o.phase == "Terminating");
            if !running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until `app` runs `target` Synced and Healthy (see [`is_synced_healthy_at`]), watching
    /// the app and polling when the stream fails; prints progress through `progress`.
    ///
    /// # Errors
    /// `SyncFailed` on a Failed/Error operation or a terminal condition; `Unhealthy` (naming the
    /// unhealthy resources) after `degraded_grace` of Degraded; `HealthTimeout` after `health_timeout`.
    pub async fn wait(
        &self,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<AppStatus, ArgoError> {
        let last = Mutex::new(String::from("nothing seen yet"));
        let started = Instant::now();
        let run = self.wait_loop(app, target, opts, progress, &last, started);
        match tokio::time::timeout(opts.health_timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                let resources = match self.unhealthy_resources(app, None).await {
                    Ok(s) if !s.is_empty() => format!("; unhealthy: {s}"),
                    _ => String::new(),
                };
                Err(ArgoError::HealthTimeout {
                    app: app.into(),
                    revision: short(&target.merge_sha).into(),
                    after: opts.health_timeout,
                    last: last.lock().unwrap().clone(),
                    resources,
                })
            }
        }
    }

    /// The loop behind [`ArgoCd::wait`]; it has no timeout of its own.
    async fn wait_loop(
        &self,
        app: &str,
        target: &Target,
        opts: &WaitOptions,
        progress: &(dyn Fn(&str) + Send + Sync),
        last: &Mutex<String>,
        started: Instant,
    ) -> Result<AppStatus, ArgoError> {
        let mut watch = match self.watch(app).await {
            Ok(w) => Some(w),
            Err(e) => {
                progress(&format!(
                    "{app}: watch unavailable ({e}); polling every {}s",
                    opts.poll.as_secs_f32()
                ));
                None
            }
        };
        let mut degraded_since: Option<Instant> = None;
        let mut last_line = String::new();
        let mut last_print = Instant::now();
        let mut resources = String::from("resources ?");
        // GET next instead of reading the stream: at the start, and while a grace period runs out.
        let mut get_next = true;
        loop {
            let current = if std::mem::take(&mut get_next) {
                self.get(app).await?
            } else if let Some(w) = watch.as_mut() {
                match tokio::time::timeout(
                    opts.poll.max(Duration::from_secs(5)).min(HEARTBEAT),
                    w.next(),
                )
                .await
                {
                    Ok(Ok(Some(a))) => a,
                    Ok(Ok(None)) | Ok(Err(_)) => {
                        progress(&format!(
                            "{app}: watch stream ended; polling every {}s",
                            opts.poll.as_secs_f32()
                        ));
                        watch = None;
                        self.get(app).await?
                    }
                    // Quiet stream: look anyway, so a missed event cannot stall the wait.
                    Err(_) => self.get(app).await?,
                }
            } else {
                tokio::time::sleep(opts.poll).await;
                self.get(app).await?
            };
            let cond = is_synced_healthy_at(Some(&current), target);
            let st = &current.status;
            let phase = st
                .operation_state
                .as_ref()
                .map_or("none", |o| o.phase.as_str())
                .to_string();
            let state = format!(
                "{app}: operation {phase}, sync {}, health {}",
                or_unknown(&st.sync.status),
                or_unknown(&st.health.status)
            );
            if state != last_line {
                if let Ok(health) = self.resource_health(app, Some(&current)).await {
                    let ok = health.iter().filter(|(_, h)| h.status == "Healthy").count();
                    resources = format!("resources {ok}/{} healthy", health.len());
                }
            }
            *last.lock().unwrap() = format!("{state}, {resources}");
            if state != last_line || last_print.elapsed() >= HEARTBEAT {
                let elapsed = started.elapsed();
                let remaining = opts.health_timeout.saturating_sub(elapsed);
                progress(&format!(
                    "{state}, {resources}, waiting for {} ({}), elapsed {}s, remaining {}s",
                    short(&target.merge_sha),
                    match &cond {
                        Condition::Done => "done".to_string(),
                        Condition::Pending(r) | Condition::Degraded(r) | Condition::Failed(r) =>
                            r.clone(),
                    },
                    elapsed.as_secs(),
                    remaining.as_secs()
                ));
                last_line = state;
                last_print = Instant::now();
            }
            match cond {
                Condition::Done => {
                    let synced = st
                        .operation_state
                        .as_ref()
                        .and_then(|o| o.sync_result.as_ref())
                        .and_then(|r| r.revision.clone().or_else(|| r.revisions.first().cloned()));
                    // An app the merge left unchanged ran no operation: its compared revision.
                    let compared = st
                        .sync
                        .revision
                        .clone()
                        .or_else(|| st.sync.revisions.first().cloned());
                    let rev = if unchanged_at(&current, target) {
                        compared
                    } else {
                        synced
                    }
                    .unwrap_or_default();
                    return Ok(AppStatus {
                        name: app.into(),
                        revision: rev,
                        health: st.health.status.clone(),
                        sync: st.sync.status.clone(),
                    });
                }
                Condition::Failed(reason) => {
                    return Err(ArgoError::SyncFailed {
                        app: app.into(),
                        reason,
                    })
                }
                Condition::Degraded(reason) => {
                    let since = *degraded_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= opts.degraded_grace {
                        let res = self
                            .unhealthy_resources(app, Some(&current))
                            .await
                            .unwrap_or_default();
                        return Err(ArgoError::Unhealthy {
                            app: app.into(),
                            health: "Degraded".into(),
                            revision: short(&target.merge_sha).into(),
                            resources: if res.is_empty() { reason } else { res },
                        });
                    }
                    if watch.is_some() {
                        // The grace period may end without another event: poll until it does.
                        let left = opts.degraded_grace.saturating_sub(since.elapsed());
                        tokio::time::sleep(left.min(opts.poll)).await;
                        get_next = true;
                    }
                }
                Condition::Pending(_) => degraded_since = None,
            }
        }
    }

    /// `Kind/name health: message` for every resource that is not Healthy.
    async fn unhealthy_resources(
        &self,
        app: &str,
        current: Option<&Application>,
    ) -> Result<String, ArgoError> {
        let bad: Vec<String> = self
            .resource_health(app, current)
            .await?
            .into_iter()
            .filter(|(_, h)| h.status != "Healthy")
            .map(
                |(name, h)| match h.message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{name} {}: {m}", h.status),
                    None => format!("{name} {}", h.status),
                },
            )
            .collect();
        Ok(bad.join("; "))
    }

    /// `(Kind/name, health)` of the app's resources that have a health: from `status.resources`
    /// when the server stores it there (Argo CD before 3.0, or with
    /// `controller.resource.health.persist`), else from one resource-tree call. One attempt only:
    /// this decorates progress lines and errors, and must not hold up a wait with retries.
    async fn resource_health(
        &self,
        app: &str,
        current: Option<&Application>,
    ) -> Result<Vec<(String, HealthStatus)>, ArgoError> {
        let stored: Vec<(String, HealthStatus)> = current
            .map(|a| {
                a.status
                    .resources
                    .iter()
                    .filter_map(|r| Some((format!("{}/{}", r.kind, r.name), r.health.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        if !stored.is_empty() {
            return Ok(stored);
        }
        let tree: ApplicationTree = self
            .call_json(
                Method::GET,
                &self.app_path(app, "/resource-tree", ""),
                None,
                &format!("resource tree of {app}"),
            )
            .await?;
        Ok(tree
            .nodes
            .into_iter()
            .filter_map(|n| Some((format!("{}/{}", n.kind, n.name), n.health?)))
            .collect())
    }

    /// Opens `GET /api/v1/stream/applications?name=app`.
    async fn watch(&self, app: &str) -> Result<Watch, ArgoError> {
        let mut path = format!("/api/v1/stream/applications?name={}", enc(app));
        if let Some(ns) = &self.app_namespace {
            path.push_str(&format!("&appNamespace={}", enc(ns)));
        }
        let action = format!("watch {app}");
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.base, path))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
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
        })
    }
}

/// The app's sync options with the input's on top: an input option replaces the app's of the same
/// name (`Replace=true` over `Replace=false`), others are added, in the app's order first.
fn merged_sync_options(app: &[String], input: &[String]) -> Vec<String> {
    let key = |o: &str| o.split('=').next().unwrap_or(o).trim().to_string();
    let mut out: Vec<String> = app
        .iter()
        .filter(|a| !input.iter().any(|i| key(i) == key(a)))
        .cloned()
        .collect();
    out.extend(input.iter().cloned());
    out
}

fn snippet(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
}

/// Whether `app` shows an operation for `wanted` started at or after `since`.
fn started_since(app: &Application, wanted: &str, since: DateTime<Utc>) -> bool {
    if app.operation.is_some() {
        return true;
    }
    app.status.operation_state.as_ref().is_some_and(|o| {
        let asked = o
            .operation
            .as_ref()
            .and_then(|op| op["sync"]["revision"].as_str())
            .unwrap_or("");
        o.started_at.is_some_and(|t| t >= since) && (wanted.is_empty() || asked == wanted)
    })
}

/// The watch stream: newline-delimited `{"result":{"type":..,"application":..}}`.
struct Watch {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Watch {
    /// The next application event; `None` when the stream ends.
    async fn next(&mut self) -> Result<Option<Application>, ArgoError> {
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
                    return Err(ArgoError::Config(format!("watch stream error: {err}")));
                }
                if let Some(r) = ev.result {
                    return Ok(Some(r.application));
                }
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(ArgoError::Config(format!("watch stream broke: {e}"))),
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        self.buf.extend_from_slice(d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "1111111111111111111111111111111111111111";

    /// The Argo CD contracts; under CI a missing folder fails the test (sandbox::contract).
    fn contracts() -> Option<PathBuf> {
        sandbox::contract::contracts_dir("argocd", "Argo CD sample tests")
    }

    fn sample(name: &str) -> Option<Application> {
        let p = contracts()?.join("samples").join(name);
        let s = std::fs::read_to_string(&p).unwrap();
        Some(serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
    }

    fn healthy() -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": "app"},
            "spec": {"source": {"repoURL": "x", "targetRevision": "main"}},
            "status": {
                "sync": {"status": "Synced", "revision": SHA},
                "health": {"status": "Healthy"},
                "reconciledAt": "2026-01-10T10:05:02Z",
                "operationState": {"phase": "Succeeded", "startedAt": "2026-01-10T10:04:58Z",
                    "finishedAt": "2026-01-10T10:05:00Z", "syncResult": {"revision": SHA}},
            }
        }))
        .unwrap()
    }

    #[test]
    fn synced_healthy_at_the_merge_is_done() {
        assert_eq!(
            is_synced_healthy_at(Some(&healthy()), &Target::exact(SHA)),
            Condition::Done
        );
    }

    #[test]
    fn an_app_the_merge_left_unchanged_is_done_without_an_operation() {
        const OLD: &str = "0000000000000000000000000000000000000000";
        let mut app = healthy();
        // Compared Synced at the merge; the last operation is the sync before it.
        app.status.operation_state.as_mut().unwrap().sync_result = Some(SyncOperationResult {
            revision: Some(OLD.into()),
            revisions: vec![],
        });
        assert_eq!(
            is_synced_healthy_at(Some(&app), &Target::exact(SHA)),
            Condition::Done
        );
        // Not yet compared at the merge, or compared OutOfSync: a sync is still to come.
        let mut behind = app.clone();
        behind.status.sync.revision = Some(OLD.into());
        assert!(matches!(
            is_synced_healthy_at(Some(&behind), &Target::exact(SHA)),
            Condition::Pending(_)
        ));
        let mut out_of_sync = app.clone();
        out_of_sync.status.sync.status = "OutOfSync".into();
        assert!(matches!(
            is_synced_healthy_at(Some(&out_of_sync), &Target::exact(SHA)),
            Condition::Pending(_)
        ));
        // An operation still running decides, whatever the comparison says.
        let mut running = app.clone();
        running.status.operation_state.as_mut().unwrap().phase = "Running".into();
        assert!(matches!(
            is_synced_healthy_at(Some(&running), &Target::exact(SHA)),
            Condition::Pending(_)
        ));
        let mut degraded = app;
        degraded.status.health.status = "Degraded".into();
        assert!(matches!(
            is_synced_healthy_at(Some(&degraded), &Target::exact(SHA)),
            Condition::Degraded(_)
        ));
    }

    #[test]
    fn out_of_sync_is_done_only_for_a_rollback_through_history() {
        let mut app = healthy();
        app.status.sync.status = "OutOfSync".into();
        assert!(matches!(
            is_synced_healthy_at(Some(&app), &Target::exact(SHA)),
            Condition::Pending(_)
        ));
        assert_eq!(
            is_synced_healthy_at(Some(&app), &Target::history(SHA)),
            Condition::Done
        );
    }

    #[test]
    fn no_application_is_pending() {
        assert!(matches!(
            is_synced_healthy_at(None, &Target::exact(SHA)),
            Condition::Pending(_)
        ));
    }

    #[test]
    fn another_revision_is_pending_and_a_descendant_counts() {
        let other = Target::exact("2222222222222222222222222222222222222222");
        assert!(
            matches!(is_synced_healthy_at(Some(&healthy()), &other), Condition::Pending(r) if r.contains("111111111111"))
        );
        let descendant = Target {
            merge_sha: "0000".into(),
            contains: Arc::new(|r| r == SHA),
            from_history: false,
        };
        assert_eq!(
            is_synced_healthy_at(Some(&healthy()), &descendant),
            Condition::Done
        );
        let mut multi = healthy();
        multi.status.operation_state.as_mut().unwrap().sync_result = Some(SyncOperationResult {
            revision: None,
            revisions: vec!["abc".into(), SHA.into()],
        });
        assert_eq!(
            is_synced_healthy_at(Some(&multi), &Target::exact(SHA)),
            Condition::Done
        );
    }

    #[test]
    fn health_older_than_the_sync_is_not_trusted() {
        let mut a = healthy();
        a.status.reconciled_at = Some("2026-01-10T10:04:59Z".parse().unwrap());
        assert!(
            matches!(is_synced_healthy_at(Some(&a), &Target::exact(SHA)), Condition::Pending(r) if r.contains("reconcile"))
        );
        a.status.reconciled_at = None;
        assert!(matches!(
            is_synced_healthy_at(Some(&a), &Target::exact(SHA)),
            Condition::Pending(_)
        ));
    }

    #[test]
    fn comparison_and_invalid_spec_errors_are_terminal() {
        for kind in ["ComparisonError", "InvalidSpecError"] {
            let mut a = healthy();
            a.status.conditions.push(AppCondition {
                kind: kind.into(),
                message: "boom".into(),
            });
            assert_eq!(
                is_synced_healthy_at(Some(&a), &Target::exact(SHA)),
                Condition::Failed(format!("{kind}: boom"))
            );
        }
    }

    #[test]
    fn failed_and_error_phases_are_terminal_and_running_is_pending() {
        for (phase, failed) in [
            ("Failed", true),
            ("Error", true),
            ("Running", false),
            ("Terminating", false),
        ] {
            let mut a = healthy();
            a.status.operation_state.as_mut().unwrap().phase = phase.into();
            let c = is_synced_healthy_at(Some(&a), &Target::exact(SHA));
            assert_eq!(matches!(c, Condition::Failed(_)), failed, "{phase}: {c:?}");
        }
    }

    #[test]
    fn a_requested_operation_hides_the_previous_state() {
        let mut a = healthy();
        a.status.operation_state.as_mut().unwrap().phase = "Failed".into();
        a.operation = Some(json!({"sync": {"revision": SHA}}));
        let c = is_synced_healthy_at(Some(&a), &Target::exact(SHA));
        assert!(
            matches!(&c, Condition::Pending(r) if r.contains("requested")),
            "{c:?}"
        );
    }

    #[test]
    fn a_failure_at_an_earlier_commit_is_pending_and_at_ours_is_terminal() {
        let mut a = healthy();
        a.status.operation_state.as_mut().unwrap().phase = "Failed".into();
        let later = Target::exact("2222222222222222222222222222222222222222");
        let c = is_synced_healthy_at(Some(&a), &later);
        assert!(
            matches!(&c, Condition::Pending(r) if r.contains("earlier")),
            "{c:?}"
        );
        // No syncResult: the requested revision decides.
        let op = a.status.operation_state.as_mut().unwrap();
        op.sync_result = None;
        op.operation = Some(json!({"sync": {"revision": SHA}}));
        let c = is_synced_healthy_at(Some(&a), &Target::exact(SHA));
        assert!(matches!(c, Condition::Failed(_)), "{c:?}");
        // A branch name cannot be placed before the merge: the failure counts.
        a.status.operation_state.as_mut().unwrap().operation =
            Some(json!({"sync": {"revision": "main"}}));
        assert!(matches!(
            is_synced_healthy_at(Some(&a), &later),
            Condition::Failed(_)
        ));
    }

    #[test]
    fn degraded_and_out_of_sync_are_reported() {
        let mut a = healthy();
        a.status.health = HealthStatus {
            status: "Degraded".into(),
            message: Some("deadline".into()),
        };
        assert_eq!(
            is_synced_healthy_at(Some(&a), &Target::exact(SHA)),
            Condition::Degraded("Degraded: deadline".into())
        );
        let mut a = healthy();
        a.status.sync.status = "OutOfSync".into();
        assert!(
            matches!(is_synced_healthy_at(Some(&a), &Target::exact(SHA)), Condition::Pending(r) if r.contains("OutOfSync"))
        );
        let mut a = healthy();
        a.status.health.status = "Progressing".into();
        assert!(
            matches!(is_synced_healthy_at(Some(&a), &Target::exact(SHA)), Condition::Pending(r) if r.contains("Progressing"))
        );
    }

    #[test]
    fn recorded_sequence_reaches_done_only_when_healthy() {
        // The synthetic samples keep the original 2024 `reconciledAt`, older than the 2026 sync:
        // as they are, health must not be trusted (Kargo's rule); once reconciled, it is.
        let t = Target::exact(SHA);
        let expect = [
            ("synthetic/app-1-outofsync.json", "pending", "pending"),
            ("synthetic/app-2-sync-running.json", "pending", "pending"),
            (
                "synthetic/app-3-synced-progressing.json",
                "pending",
                "pending",
            ),
            ("synthetic/app-4-synced-healthy.json", "pending", "done"),
            (
                "synthetic/app-5-synced-degraded.json",
                "pending",
                "degraded",
            ),
            ("synthetic/app-6-sync-failed.json", "failed", "failed"),
        ];
        let name = |c: Condition| match c {
            Condition::Done => "done",
            Condition::Pending(_) => "pending",
            Condition::Degraded(_) => "degraded",
            Condition::Failed(_) => "failed",
        };
        for (file, as_recorded, reconciled) in expect {
            let Some(mut app) = sample(file) else { return };
            assert_eq!(
                name(is_synced_healthy_at(Some(&app), &t)),
                as_recorded,
                "{file} as recorded"
            );
            let finished = app
                .status
                .operation_state
                .as_ref()
                .and_then(|o| o.finished_at);
            app.status.reconciled_at = finished.map(|f| f + chrono::Duration::seconds(2));
            assert_eq!(
                name(is_synced_healthy_at(Some(&app), &t)),
                reconciled,
                "{file} reconciled"
            );
        }
    }

    #[test]
    fn the_real_velero_sample_deserializes() {
        let Some(app) = sample("application-velero-test.status.json") else {
            return;
        };
        assert_eq!(app.metadata.name, "velero-test");
        assert_eq!(app.status.health.status, "Healthy");
        assert_eq!(app.status.sync.status, "Synced");
        assert!(!app.status.history.is_empty());
        assert_eq!(
            app.status.operation_state.as_ref().unwrap().phase,
            "Succeeded"
        );
        let Some(dir) = contracts() else { return };
        let tree: ApplicationTree = serde_json::from_str(
            &std::fs::read_to_string(dir.join("samples/synthetic/resource-tree-200.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(tree.nodes.len(), 4);
    }

    #[test]
    fn sync_request_bodies_match_the_swagger() {
        let Some(dir) = contracts() else { return };
        let sw: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("swagger.json")).unwrap())
                .unwrap();
        let schema = json!({"definitions": sw["definitions"], "allOf": [{"$ref": "#/definitions/applicationApplicationSyncRequest"}]});
        let v = jsonschema::draft4::new(&schema).unwrap();
        let argo = ArgoCd {
            base: "http://x".into(),
            token: "t".into(),
            client: Client::builder(TokioExecutor::new()).build(
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(
                        tls_config(&ArgoConfig {
                            insecure: true,
                            ..Default::default()
                        })
                        .unwrap(),
                    )
                    .https_or_http()
                    .enable_http1()
                    .build(),
            ),
            app_namespace: Some("argocd".into()),
            project: None,
            call_timeout: CALL_TIMEOUT,
            retry_budget: RETRY_BUDGET,
        };
        let manual = AppRef {
            name: "app".into(),
            auto_sync: false,
            target_revision: "main".into(),
            synced_revision: None,
            sync_options: vec!["ServerSideApply=true".into(), "Validate=false".into()],
        };
        let req = SyncRequest {
            revision: Some(SHA.into()),
            prune: true,
            sync_options: vec!["ApplyOutOfSyncOnly=true".into(), "Validate=true".into()],
        };
        let body = argo.sync_body(&manual, &req);
        assert!(v.is_valid(&body), "{body}");
        assert_eq!(body["revision"], SHA);
        // The app's own options are kept; the input's win on the same name.
        assert_eq!(
            body["syncOptions"]["items"],
            json!([
                "ServerSideApply=true",
                "ApplyOutOfSyncOnly=true",
                "Validate=true"
            ])
        );
        let auto = AppRef {
            auto_sync: true,
            ..manual
        };
        let body = argo.sync_body(&auto, &req);
        assert!(
            v.is_valid(&body) && body.get("revision").is_none(),
            "{body}"
        );
        let schema = json!({"definitions": sw["definitions"], "allOf": [{"$ref": "#/definitions/applicationApplicationRollbackRequest"}]});
        let rollback = jsonschema::draft4::new(&schema).unwrap();
        let body = argo.rollback_body("app", 3);
        assert!(rollback.is_valid(&body), "{body}");
        assert_eq!(body["id"], 3);
    }

    /// Argo CD before 3.0 (or with health persistence on) stores resource health in the app:
    /// no resource-tree call then. A closed port proves no call is made.
    #[tokio::test]
    async fn stored_resource_health_needs_no_tree_call() {
        let argo = ArgoCd::connect(&ArgoConfig {
            server: "http://127.0.0.1:1".into(),
            token: Some("t".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut app = Application::default();
        for (kind, health, message) in [
            ("Service", "Healthy", None),
            ("Deployment", "Degraded", Some("Back-off pulling image")),
        ] {
            app.status.resources.push(ResourceStatus {
                kind: kind.into(),
                name: "web".into(),
                health: Some(HealthStatus {
                    status: health.into(),
                    message: message.map(str::to_string),
                }),
                ..Default::default()
            });
        }
        assert_eq!(
            argo.unhealthy_resources("web", Some(&app)).await.unwrap(),
            "Deployment/web Degraded: Back-off pulling image"
        );
        // Without stored health it asks the tree, once: the closed port fails at once.
        let err = argo.unhealthy_resources("web", None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connectivity, "{err}");
    }

    #[tokio::test]
    async fn connect_checks_settings_before_any_call() {
        let cfg = |server: &str| ArgoConfig {
            server: server.into(),
            token: Some("t".into()),
            ..Default::default()
        };
        let argo = ArgoCd::connect(&cfg("argocd.example.com/")).await.unwrap();
        assert!(
            format!("{argo:?}").contains("\"https://argocd.example.com\""),
            "{argo:?}"
        );
        for bad in ["", "ftp://x", "http://"] {
            let err = ArgoCd::connect(&cfg(bad)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}: {err}");
        }
        let no_creds = ArgoConfig {
            token: None,
            ..cfg("http://x")
        };
        assert!(ArgoCd::connect(&no_creds)
            .await
            .unwrap_err()
            .to_string()
            .contains("no credentials"));
        let missing = ArgoConfig {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..cfg("https://x")
        };
        let err = ArgoCd::connect(&missing).await.unwrap_err();
        assert!(
            err.kind() == ErrorKind::Config && err.to_string().contains("argocd-ca-cert"),
            "{err}"
        );
        let empty = std::env::temp_dir().join(format!("argocd-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ArgoCd::connect(&ArgoConfig {
            ca_cert: Some(empty.clone()),
            ..cfg("https://x")
        })
        .await
        .unwrap_err();
        std::fs::remove_file(&empty).ok();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let cfg = ArgoConfig {
            token: Some("s3cr3t".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let d = format!("{cfg:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("hunter2"), "{d}");
    }

    #[test]
    fn errors_classify() {
        let api = |status, action: &str| ArgoError::Api {
            action: action.into(),
            status,
            code: None,
            message: "m".into(),
            retry_after: None,
        };
        assert_eq!(api(401, "get").kind(), ErrorKind::Authentication);
        assert_eq!(api(403, "get").kind(), ErrorKind::Authorization);
        assert!(api(403, "get").hint().unwrap().contains("does not exist"));
        assert_eq!(api(429, "get").kind(), ErrorKind::RateLimit);
        assert_eq!(api(502, "get").kind(), ErrorKind::Connectivity);
        assert_eq!(api(400, "sync app").kind(), ErrorKind::Sync);
        assert!(!api(403, "get").is_retryable(), "a plain 403 is a refusal");
        let throttled = ArgoError::Api {
            action: "get".into(),
            status: 403,
            code: None,
            message: "rate limited".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(throttled.kind(), ErrorKind::RateLimit);
        assert!(throttled.is_retryable());
        assert_eq!(throttled.pause(1), Duration::from_secs(3));
        let not_argo = ArgoError::NotArgo {
            action: "a".into(),
            server: "s".into(),
            status: 200,
            detail: "d".into(),
        };
        assert_eq!(not_argo.kind(), ErrorKind::Config);
    }
}
