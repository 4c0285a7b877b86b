//! Application bodies as the API returns them (only what the product reads; every field optional so
//! real bodies parse), and the small types the client's callers pass and get back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// Branch, tag or SHA tracked (a chart version for a Helm chart source).
    pub target_revision: Option<String>,
    /// The chart's name, for a source from a Helm chart repository.
    pub chart: Option<String>,
    /// The name other sources of a multi-source app use for this one (`$values/...`).
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
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

impl RevisionHistory {
    /// The deployed commit: `revision`, or for a multi-source app the entry of `revisions` at the
    /// release repo's `source` index.
    pub fn revision_of(&self, source: Option<usize>) -> Option<String> {
        match source {
            Some(i) => self.revisions.get(i).cloned(),
            None => self.revision.clone(),
        }
        .filter(|r| !r.is_empty())
    }
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

    /// The targetRevision of the release repo's source ([`Application::release_source`]), else
    /// of the (first) source; `HEAD` when unset, as Argo CD reads it.
    pub fn target_revision(&self, repo: Option<&str>) -> String {
        let src = match self.release_source(repo) {
            Some(i) => self.spec.sources.get(i),
            None => self.spec.source.as_ref().or(self.spec.sources.first()),
        };
        src.and_then(|s| s.target_revision.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "HEAD".into())
    }

    /// For a multi-source app (`spec.sources`), the 0-based index of the source that is the
    /// release repo `repo`, matched by [`same_repo`]; without a match, the one source that is
    /// not a Helm chart. `None` for a single-source app.
    pub fn release_source(&self, repo: Option<&str>) -> Option<usize> {
        let sources = &self.spec.sources;
        if self.spec.source.is_some() || sources.is_empty() {
            return None;
        }
        if let Some(i) = repo.and_then(|r| sources.iter().position(|s| same_repo(&s.repo_url, r))) {
            return Some(i);
        }
        let mut git = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.chart.as_deref().is_none_or(str::is_empty));
        match (git.next(), git.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The child Applications among the app's resources (an app of apps): their health does not
    /// reach this app's, as Argo CD has no health check for Application CRs since 1.8.
    pub fn child_apps(&self) -> Vec<String> {
        self.status
            .resources
            .iter()
            .filter(|r| r.group == "argoproj.io" && r.kind == "Application")
            .map(|r| r.name.clone())
            .collect()
    }

    /// The revision the controller last compared the app at: `status.sync.revision`, or for a
    /// multi-source app the release repo's entry of `status.sync.revisions`.
    pub fn synced_revision(&self, repo: Option<&str>) -> Option<String> {
        let s = &self.status.sync;
        match self.release_source(repo) {
            Some(i) => s.revisions.get(i).cloned(),
            None => s.revision.clone(),
        }
        .filter(|r| !r.is_empty())
    }
}

/// Whether two repo URLs name the same repository: compared without scheme, user, trailing `/`
/// or `.git`, and case-insensitively (host names are, and GitHub's owner/name are too), with
/// `git@host:owner/name` read as `host/owner/name`. Looser than Argo CD's `SameURL`
/// (util/git/git.go, which keeps the scheme), so an SSH source matches the HTTPS clone URL.
pub fn same_repo(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        let u = u.trim().to_ascii_lowercase();
        let rest = match u.split_once("://") {
            Some((_, rest)) => rest.to_string(),
            // scp-like `git@host:owner/name`
            None => u.replacen(':', "/", 1),
        };
        let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
        let rest = rest.trim_end_matches('/');
        rest.strip_suffix(".git").unwrap_or(rest).to_string()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// An app to sync, as resolved from names or a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    /// App name.
    pub name: String,
    /// Automated sync on (then it is synced without `revision`).
    pub auto_sync: bool,
    /// `targetRevision` of the release repo's source.
    pub target_revision: String,
    /// `status.sync.revision` (of the release repo's source) before the promotion (state:
    /// `previous-revisions`).
    pub synced_revision: Option<String>,
    /// 1-based position of the release repo among a multi-source app's `spec.sources`: a sync
    /// pins it through `revisions` and `sourcePositions`, as `revision` is ignored there.
    pub source_position: Option<usize>,
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

/// Knobs of [`ArgoCd::wait`](super::ArgoCd::wait).
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
