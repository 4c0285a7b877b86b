//! Argo CD API emulator (issue #3), shaped after the v3.5 REST API (`shared/contracts/argocd`).
//!
//! Applications deploy what the bare repo holds at a revision: a sync resolves the revision, reads
//! `<path>/values.yaml` (or the image tag of a kustomization there, [`source`]) and moves `operationState` Running → Succeeded, then health
//! Progressing → Healthy or Degraded by rules (a tag ending in `-bad` goes Degraded by default).
//! Every transition is driven by tokio timers, so no handler blocks; `status.reconciledAt` lags
//! `operationState.finishedAt` as it does in Argo CD. It stops at the API: no Kubernetes, no diffing.
//!
//! The parts: this module holds the state and the read API, [`json`] renders it as Argo CD's
//! bodies, [`routes`] serves the REST API, [`watch`] the event stream, [`controller`] runs the
//! timers (operations, reconciliation, health, auto-sync) and [`control`] is what tests drive.

mod control;
mod controller;
mod json;
mod routes;
mod source;
mod watch;

pub use source::{image_tag, kustomize_tag};

use crate::world::{World, SEED_BRANCH, SEED_REPO};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How long a sync operation stays Running before it finishes.
const OPERATION_MS: u64 = 300;
/// Default auto-sync poll interval (Argo CD's is 3 minutes; tests want seconds).
const DEFAULT_POLL_MS: u64 = 3000;

/// A health rule: a deployed `image.tag` ending in `suffix` turns `health` after `delay_ms`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct HealthRule {
    /// Only this app; every app when absent.
    #[serde(default)]
    pub app: Option<String>,
    /// Tag suffix to match; empty matches every tag.
    #[serde(default)]
    pub suffix: String,
    /// `Healthy`, `Degraded`, `Progressing`, `Suspended`, `Missing` or `Unknown`.
    pub health: String,
    /// Milliseconds after the sync finishes.
    #[serde(default)]
    pub delay_ms: u64,
    /// The Deployment's health message; a progress-deadline message for Degraded when absent.
    #[serde(default)]
    pub message: Option<String>,
    /// When set, the app turns Healthy this many ms after `health` (a rollout that recovers).
    #[serde(default)]
    pub healthy_after_ms: Option<u64>,
}

/// Options for an app created through the control API.
#[derive(Debug, Clone, Deserialize)]
pub struct NewApp {
    /// Application name.
    pub name: String,
    /// Labels, for `selector` tests.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Automated sync policy on.
    #[serde(default)]
    pub auto_sync: bool,
    /// Source path; `charts/app` when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Source targetRevision; `main` when absent.
    #[serde(default)]
    pub target_revision: Option<String>,
    /// Project; `default` when absent.
    #[serde(default)]
    pub project: Option<String>,
    /// `spec.syncPolicy.syncOptions`, e.g. `ServerSideApply=true`.
    #[serde(default)]
    pub sync_options: Vec<String>,
}

/// The chart repository of a multi-source app's first source.
pub const CHART_REPO: &str = "https://charts.example.com/acme";
/// The chart version a multi-source app's first source pins (`targetRevision`).
pub const CHART_VERSION: &str = "1.4.2";

#[derive(Debug, Clone)]
struct OpState {
    id: u64,
    phase: String,
    message: String,
    started_at: String,
    finished_at: Option<String>,
    /// What was asked (`operation.sync.revision`), as the request named it.
    requested: String,
    /// The resolved SHA (`syncResult.revision`) once known.
    revision: Option<String>,
    prune: bool,
    dry_run: bool,
    sync_options: Vec<String>,
    automated: bool,
}

#[derive(Debug, Clone)]
struct History {
    id: i64,
    revision: String,
    started: String,
    deployed: String,
    path: String,
    target: String,
}

#[derive(Debug, Clone)]
struct App {
    name: String,
    project: String,
    labels: BTreeMap<String, String>,
    path: String,
    target_revision: String,
    auto_sync: bool,
    /// `spec.syncPolicy.syncOptions`.
    sync_options: Vec<String>,
    /// `spec.sources`: the chart, then the release repo at position 2.
    multi_source: bool,
    created: String,
    uid: String,
    generation: u64,
    op: Option<OpState>,
    /// Whether `operation` (the request) is still set: true while the operation runs.
    op_pending: bool,
    sync_status: String,
    sync_revision: String,
    health: String,
    health_msg: Option<String>,
    health_at: String,
    reconciled_at: String,
    history: Vec<History>,
    deployed_tag: Option<String>,
    /// `status.sourceType` as the last deploy found the path: Helm or Kustomize.
    source_type: &'static str,
    /// Id of the deploy whose health timers may still fire.
    deploy_id: u64,
    /// The last revision auto-sync attempted, so a failed one is not retried in a loop.
    last_auto: Option<String>,
    fail_next: Option<String>,
    /// `status.conditions` as `(type, message)`: set and cleared only when the controller
    /// compares, so one can outlive the commit that fixes it until the next comparison.
    conditions: Vec<(String, String)>,
    /// The kind of the app's workload: `Deployment`, or `Rollout` (Argo Rollouts), which pauses
    /// as `Suspended` and aborts as `Degraded` with `RolloutAborted: ...`.
    workload: String,
    /// The controller is to skip the reconcile after the next operation (a missed requeue).
    skip_reconcile: bool,
    /// Child Applications this app's manifests hold (app of apps).
    children: Vec<String>,
    /// It skipped it: `reconciledAt` stays before `finishedAt` until a refresh is asked for.
    stalled: bool,
}

struct Inner {
    apps: BTreeMap<String, App>,
    rules: Vec<HealthRule>,
    sessions: HashSet<String>,
    poll_ms: u64,
    next_id: u64,
    resource_version: u64,
    /// A deny sync window of the project is active until then.
    window_until: Option<std::time::Instant>,
    /// The project sets `requireOverridePrivilegeForRevisionSync` and the token has no
    /// `override` right (Argo CD 3.3).
    override_required: bool,
    /// How long a `GET ?refresh=` takes to answer: the API server answers once the controller has
    /// reconciled the app, which a busy controller makes slow.
    refresh_delay_ms: u64,
    /// Refreshes asked for, counted when they arrive (a slow one the client gave up on included).
    refreshes: u64,
}

/// Emulator state: applications, operations, health rules, sessions.
pub struct ArgoCd {
    /// The repos apps deploy from.
    pub world: Arc<World>,
    /// The git host base URL, the prefix of every app's `repoURL`.
    pub git_url: String,
    inner: Mutex<Inner>,
    events: broadcast::Sender<(String, Value)>,
    /// Bumped to end every open watch stream.
    drop_watch: tokio::sync::watch::Sender<u64>,
    /// Woken by every `GET ?refresh=`: a stalled app's controller reconciles it then.
    refreshed: tokio::sync::Notify,
    /// The runtime the router was built on, so control calls from plain threads can start timers.
    handle: std::sync::OnceLock<tokio::runtime::Handle>,
}

/// Current time in Argo CD's format (RFC 3339, seconds).
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl ArgoCd {
    /// A new emulator over `world`.
    pub fn new(world: Arc<World>, git_url: String) -> Arc<ArgoCd> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(ArgoCd {
            world,
            git_url,
            inner: Mutex::new(Inner {
                apps: BTreeMap::new(),
                rules: Vec::new(),
                sessions: HashSet::new(),
                poll_ms: DEFAULT_POLL_MS,
                next_id: 1,
                resource_version: 1000,
                window_until: None,
                override_required: false,
                refresh_delay_ms: 0,
                refreshes: 0,
            }),
            events,
            drop_watch: tokio::sync::watch::channel(0).0,
            refreshed: tokio::sync::Notify::new(),
            handle: std::sync::OnceLock::new(),
        })
    }

    /// Creates the seeded apps `app` (manual) and `app-auto` (automated), Synced and Healthy.
    pub fn seed(&self) -> anyhow::Result<()> {
        for (name, auto) in [("app", false), ("app-auto", true)] {
            self.create_app(NewApp {
                name: name.into(),
                labels: BTreeMap::from([("team".to_string(), "shop".to_string())]),
                auto_sync: auto,
                path: None,
                target_revision: None,
                project: None,
                sync_options: vec![],
            })?;
        }
        Ok(())
    }

    /// Creates an app deployed (Synced, Healthy) at the current head of its targetRevision.
    pub fn create_app(&self, new: NewApp) -> anyhow::Result<()> {
        let path = new.path.unwrap_or_else(|| "charts/app".into());
        let target = new.target_revision.unwrap_or_else(|| SEED_BRANCH.into());
        let sha = self.world.resolve(SEED_REPO, &target)?.to_string();
        let found = source::find(&self.world, &sha, &path)?;
        let t = now();
        let mut inner = self.inner.lock().unwrap();
        let id = inner.next_id;
        inner.next_id += 1;
        let app = App {
            name: new.name.clone(),
            project: new.project.unwrap_or_else(|| "default".into()),
            labels: new.labels,
            path: path.clone(),
            target_revision: target.clone(),
            auto_sync: new.auto_sync,
            sync_options: new.sync_options,
            multi_source: false,
            created: t.clone(),
            uid: format!(
                "00000000-0000-4000-8000-{:012x}",
                fastrand::u64(..) & 0xffff_ffff_ffff
            ),
            generation: 1,
            op: Some(OpState {
                id,
                phase: "Succeeded".into(),
                message: "successfully synced (all tasks run)".into(),
                started_at: t.clone(),
                finished_at: Some(t.clone()),
                requested: target.clone(),
                revision: Some(sha.clone()),
                prune: false,
                dry_run: false,
                sync_options: vec![],
                automated: new.auto_sync,
            }),
            op_pending: false,
            sync_status: "Synced".into(),
            sync_revision: sha.clone(),
            health: "Healthy".into(),
            health_msg: None,
            health_at: t.clone(),
            reconciled_at: t.clone(),
            history: vec![History {
                id: 0,
                revision: sha.clone(),
                started: t.clone(),
                deployed: t,
                path,
                target,
            }],
            deployed_tag: found.as_ref().and_then(source::Found::tag),
            source_type: found.as_ref().map_or(source::HELM, |f| f.kind),
            deploy_id: id,
            last_auto: Some(sha),
            fail_next: None,
            conditions: Vec::new(),
            workload: "Deployment".into(),
            skip_reconcile: false,
            children: Vec::new(),
            stalled: false,
        };
        inner.apps.insert(new.name, app);
        Ok(())
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        "argocd-sandbox-token"
    }

    /// The `admin` password for the session API.
    pub fn password(&self) -> &str {
        "sandbox-password"
    }

    /// The `image.tag` currently deployed for `app`, read at its synced revision.
    pub fn deployed_tag(&self, app: &str) -> Option<String> {
        self.inner
            .lock()
            .unwrap()
            .apps
            .get(app)
            .and_then(|a| a.deployed_tag.clone())
    }

    /// The app as the API renders it, or `None` when it does not exist.
    pub fn application(&self, app: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .apps
            .get(app)
            .map(|a| self.render(a, inner.resource_version))
    }

    /// Bumps the resource version and sends a MODIFIED event with the app as it is now.
    fn changed(&self, name: &str) {
        let rendered = {
            let mut inner = self.inner.lock().unwrap();
            inner.resource_version += 1;
            let rv = inner.resource_version;
            inner.apps.get(name).map(|a| self.render(a, rv))
        };
        if let Some(app) = rendered {
            let _ = self.events.send((name.to_string(), app));
        }
    }
}

/// The REST API routes; starts the auto-sync poller on the current runtime.
pub fn router(a: Arc<ArgoCd>) -> axum::Router {
    a.ensure_poller();
    routes::routes(a)
}

/// Control routes, nested at `/_sandbox/argocd` (documented in sandbox/README.md).
pub fn control_routes(a: Arc<ArgoCd>) -> axum::Router {
    control::routes(a)
}
