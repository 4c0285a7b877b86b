//! Argo CD API emulator (issue #3), shaped after the v3.5 REST API (`shared/contracts/argocd`).
//!
//! Applications deploy what the bare repo holds at a revision: a sync resolves the revision, reads
//! `<path>/values.yaml` there and moves `operationState` Running → Succeeded, then health
//! Progressing → Healthy or Degraded by rules (a tag ending in `-bad` goes Degraded by default).
//! Every transition is driven by tokio timers, so no handler blocks; `status.reconciledAt` lags
//! `operationState.finishedAt` as it does in Argo CD. It stops at the API: no Kubernetes, no diffing.

use crate::world::{World, SEED_BRANCH, SEED_REPO};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a sync operation stays Running before it finishes.
const OPERATION_MS: u64 = 300;
/// How long after `finishedAt` the controller's reconciliation (`reconciledAt`) lands.
const RECONCILE_LAG_MS: u64 = 150;
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
    /// Id of the deploy whose health timers may still fire.
    deploy_id: u64,
    /// The last revision auto-sync attempted, so a failed one is not retried in a loop.
    last_auto: Option<String>,
    fail_next: Option<String>,
}

struct Inner {
    apps: BTreeMap<String, App>,
    rules: Vec<HealthRule>,
    sessions: HashSet<String>,
    poll_ms: u64,
    next_id: u64,
    resource_version: u64,
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
    /// The runtime the router was built on, so control calls from plain threads can start timers.
    handle: std::sync::OnceLock<tokio::runtime::Handle>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `{error, code, message, details}` with a gRPC code, as grpc-gateway answers.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "code": code, "message": message, "details": []})),
    )
        .into_response()
}

fn permission_denied() -> Response {
    error(StatusCode::FORBIDDEN, 7, "permission denied")
}

fn in_progress() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        9,
        "another operation is already in progress",
    )
}

/// Reads `image.tag` from a values file with a line scan: enough for the seeded chart's layout.
pub fn image_tag(values: &str) -> Option<String> {
    let mut in_image = false;
    for line in values.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            in_image = trimmed.starts_with("image:");
            continue;
        }
        if in_image {
            if let Some(rest) = trimmed.strip_prefix("tag:") {
                let rest = rest.trim();
                let value = if let Some(r) = rest.strip_prefix('"') {
                    r.split('"').next().unwrap_or("")
                } else if let Some(r) = rest.strip_prefix('\'') {
                    r.split('\'').next().unwrap_or("")
                } else {
                    rest.split(" #").next().unwrap_or("").trim()
                };
                return Some(value.to_string());
            }
        }
    }
    None
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
            }),
            events,
            drop_watch: tokio::sync::watch::channel(0).0,
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
        let values = self
            .world
            .read_file(SEED_REPO, &sha, &format!("{path}/values.yaml"))?;
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
            deployed_tag: values.as_deref().and_then(image_tag),
            deploy_id: id,
            last_auto: Some(sha),
            fail_next: None,
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

    /// Adds a health rule; the newest matching rule wins, per-app rules before global ones.
    pub fn add_rule(&self, rule: HealthRule) {
        self.inner.lock().unwrap().rules.insert(0, rule);
    }

    /// Removes every rule added, leaving the default ones.
    pub fn clear_rules(&self) {
        self.inner.lock().unwrap().rules.clear();
    }

    /// Makes the next sync operation of `app` end Failed with `message`.
    pub fn fail_next_sync(&self, app: &str, message: &str) -> bool {
        let mut inner = self.inner.lock().unwrap();
        match inner.apps.get_mut(app) {
            Some(a) => {
                a.fail_next = Some(message.to_string());
                true
            }
            None => false,
        }
    }

    /// Turns the automated sync policy of `app` on or off.
    pub fn set_auto_sync(&self, app: &str, enabled: bool) -> bool {
        let ok = {
            let mut inner = self.inner.lock().unwrap();
            match inner.apps.get_mut(app) {
                Some(a) => {
                    a.auto_sync = enabled;
                    a.generation += 1;
                    true
                }
                None => false,
            }
        };
        if ok {
            self.changed(app);
        }
        ok
    }

    /// Ends every open watch stream, as a proxy's idle timeout would.
    pub fn drop_watches(&self) {
        self.drop_watch.send_modify(|g| *g += 1);
    }

    /// Sets how often auto-sync apps look for new commits.
    pub fn set_poll_interval(&self, ms: u64) {
        self.inner.lock().unwrap().poll_ms = ms.max(50);
    }

    fn rule_for(inner: &Inner, app: &str, tag: &str) -> HealthRule {
        let specific = inner
            .rules
            .iter()
            .find(|r| r.app.as_deref() == Some(app) && tag.ends_with(&r.suffix));
        let global = || {
            inner
                .rules
                .iter()
                .find(|r| r.app.is_none() && tag.ends_with(&r.suffix))
        };
        if let Some(r) = specific.or_else(global) {
            return r.clone();
        }
        if tag.ends_with("-bad") {
            HealthRule {
                app: None,
                suffix: "-bad".into(),
                health: "Degraded".into(),
                delay_ms: 1000,
                message: None,
                healthy_after_ms: None,
            }
        } else {
            HealthRule {
                app: None,
                suffix: String::new(),
                health: "Healthy".into(),
                delay_ms: 500,
                message: None,
                healthy_after_ms: None,
            }
        }
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

    fn source(&self, a: &App) -> Value {
        json!({"repoURL": format!("{}/{SEED_REPO}.git", self.git_url), "path": a.path, "targetRevision": a.target_revision})
    }

    fn render(&self, a: &App, rv: u64) -> Value {
        let source = self.source(a);
        let destination = json!({"server": "https://kubernetes.default.svc", "namespace": a.name});
        let mut spec = json!({"project": a.project, "source": source, "destination": destination});
        if a.auto_sync {
            spec["syncPolicy"] =
                json!({"automated": {"enabled": true, "prune": false, "selfHeal": false}});
        }
        if !a.sync_options.is_empty() {
            spec["syncPolicy"]["syncOptions"] = json!(a.sync_options);
        }
        let mut status = json!({
            "sync": {"status": a.sync_status, "revision": a.sync_revision,
                     "comparedTo": {"source": source, "destination": destination}},
            "health": {"status": a.health, "lastTransitionTime": a.health_at},
            "history": a.history.iter().map(|h| json!({
                "id": h.id, "revision": h.revision, "deployStartedAt": h.started, "deployedAt": h.deployed,
                "source": {"repoURL": source["repoURL"], "path": h.path, "targetRevision": h.target},
                "initiatedBy": {"username": "admin"},
            })).collect::<Vec<_>>(),
            "reconciledAt": a.reconciled_at,
            "resources": [
                {"version": "v1", "kind": "Service", "namespace": a.name, "name": "app", "status": a.sync_status},
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": a.name, "name": "app", "status": a.sync_status},
            ],
            "sourceType": "Helm",
            "summary": {"images": a.deployed_tag.iter().map(|t| format!("ghcr.io/acme/app:{t}")).collect::<Vec<_>>()},
            "controllerNamespace": "argocd",
        });
        if let Some(m) = &a.health_msg {
            status["health"]["message"] = json!(m);
        }
        let mut app = json!({
            "metadata": {"name": a.name, "namespace": "argocd", "labels": a.labels, "uid": a.uid,
                         "resourceVersion": rv.to_string(), "generation": a.generation, "creationTimestamp": a.created},
            "spec": spec,
            "status": status,
        });
        if let Some(op) = &a.op {
            let initiated = if op.automated {
                json!({"automated": true})
            } else {
                json!({"username": "admin"})
            };
            let mut sync =
                json!({"revision": op.requested, "prune": op.prune, "syncStrategy": {"hook": {}}});
            if op.dry_run {
                sync["dryRun"] = json!(true);
            }
            if !op.sync_options.is_empty() {
                sync["syncOptions"] = json!(op.sync_options);
            }
            let operation = json!({"sync": sync, "initiatedBy": initiated, "retry": {}});
            let mut state = json!({"operation": operation, "phase": op.phase, "message": op.message, "startedAt": op.started_at});
            if let Some(f) = &op.finished_at {
                state["finishedAt"] = json!(f);
            }
            if let Some(r) = &op.revision {
                state["syncResult"] = json!({
                    "revision": r, "source": source,
                    "resources": [
                        {"group": "", "version": "v1", "kind": "Service", "namespace": a.name, "name": "app",
                         "status": "Synced", "message": "service/app unchanged", "hookPhase": op.phase, "syncPhase": "Sync"},
                        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": a.name, "name": "app",
                         "status": "Synced", "message": "deployment.apps/app configured", "hookPhase": op.phase, "syncPhase": "Sync"},
                    ],
                });
            }
            app["status"]["operationState"] = state;
            if a.op_pending {
                app["operation"] = operation;
            }
        }
        app
    }

    fn tree(&self, a: &App) -> Value {
        let ns = &a.name;
        let deploy_health = match a.health.as_str() {
            "Healthy" => json!({"status": "Healthy"}),
            h => json!({"status": h, "message": a.health_msg.clone().unwrap_or_default()}),
        };
        let image = a
            .deployed_tag
            .as_ref()
            .map(|t| format!("ghcr.io/acme/app:{t}"))
            .unwrap_or_default();
        json!({
            "nodes": [
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns, "name": "app",
                 "uid": format!("{}-d", a.uid), "resourceVersion": "1", "health": deploy_health,
                 "info": [{"name": "Revision", "value": format!("Rev:{}", a.history.len())}], "createdAt": a.created},
                {"version": "v1", "kind": "Service", "namespace": ns, "name": "app", "uid": format!("{}-s", a.uid),
                 "resourceVersion": "1", "health": {"status": "Healthy"}, "createdAt": a.created},
                {"version": "v1", "kind": "Pod", "namespace": ns, "name": "app-0", "uid": format!("{}-p", a.uid),
                 "resourceVersion": "1", "images": [image], "createdAt": a.created,
                 "parentRefs": [{"group": "apps", "kind": "Deployment", "namespace": ns, "name": "app", "uid": format!("{}-d", a.uid)}],
                 "health": if a.health == "Degraded" { json!({"status": "Degraded", "message": "Back-off restarting failed container"}) } else { json!({"status": a.health}) }},
            ],
            "orphanedNodes": [],
            "hosts": [],
        })
    }

    /// Starts a sync operation (the caller checked no other one runs) and its timers.
    // The arguments are the sync request's fields; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn start_operation(
        self: &Arc<Self>,
        a: &mut App,
        id: u64,
        requested: &str,
        prune: bool,
        dry_run: bool,
        sync_options: Vec<String>,
        automated: bool,
        run_ms: u64,
    ) {
        a.op = Some(OpState {
            id,
            phase: "Running".into(),
            message: "one or more tasks are running".into(),
            started_at: now(),
            finished_at: None,
            requested: requested.to_string(),
            revision: None,
            prune,
            dry_run,
            sync_options,
            automated,
        });
        a.op_pending = true;
        let me = self.clone();
        let name = a.name.clone();
        self.spawn(async move { me.run_operation(name, id, run_ms).await });
    }

    async fn run_operation(self: Arc<Self>, name: String, id: u64, run_ms: u64) {
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        let rule = {
            let mut inner = self.inner.lock().unwrap();
            let Some(a) = inner.apps.get_mut(&name) else {
                return;
            };
            let Some(op) = a.op.clone() else { return };
            if op.id != id || op.phase != "Running" {
                return;
            }
            a.op_pending = false;
            let t = now();
            let resolved = self
                .world
                .resolve(SEED_REPO, &op.requested)
                .map(|o| o.to_string());
            let values = resolved.as_ref().ok().map(|sha| {
                self.world
                    .read_file(SEED_REPO, sha, &format!("{}/values.yaml", a.path))
            });
            let op_mut = a.op.as_mut().unwrap();
            op_mut.finished_at = Some(t.clone());
            if let Some(msg) = a.fail_next.take() {
                op_mut.phase = "Failed".into();
                op_mut.message = msg;
                None
            } else {
                match (resolved, values) {
                    (Err(_), _) => {
                        op_mut.phase = "Failed".into();
                        op_mut.message = format!(
                            "ComparisonError: unable to resolve '{}' to a commit SHA",
                            op.requested
                        );
                        None
                    }
                    (Ok(sha), Some(Ok(Some(values)))) => {
                        op_mut.phase = "Succeeded".into();
                        op_mut.message = "successfully synced (all tasks run)".into();
                        op_mut.revision = Some(sha.clone());
                        if op.dry_run {
                            None
                        } else {
                            let tag = image_tag(&values);
                            a.deployed_tag = tag.clone();
                            a.sync_status = "Synced".into();
                            a.sync_revision = sha.clone();
                            a.health = "Progressing".into();
                            a.health_msg = Some("Waiting for rollout to finish: 1 of 2 updated replicas are available...".into());
                            a.health_at = t.clone();
                            a.deploy_id = id;
                            let next = a.history.last().map_or(0, |h| h.id + 1);
                            a.history.push(History {
                                id: next,
                                revision: sha,
                                started: op.started_at.clone(),
                                deployed: t,
                                path: a.path.clone(),
                                target: a.target_revision.clone(),
                            });
                            if a.history.len() > 10 {
                                a.history.remove(0);
                            }
                            let tag = tag.unwrap_or_default();
                            let name = a.name.clone();
                            Some(Self::rule_for(&inner, &name, &tag))
                        }
                    }
                    (Ok(_), _) => {
                        op_mut.phase = "Failed".into();
                        op_mut.message = format!(
                            "ComparisonError: {}/values.yaml: app path does not exist",
                            a.path
                        );
                        None
                    }
                }
            }
        };
        self.changed(&name);
        tokio::time::sleep(Duration::from_millis(RECONCILE_LAG_MS)).await;
        {
            let mut inner = self.inner.lock().unwrap();
            if let Some(a) = inner.apps.get_mut(&name) {
                a.reconciled_at = now();
            }
        }
        self.changed(&name);
        let Some(rule) = rule else { return };
        tokio::time::sleep(Duration::from_millis(
            rule.delay_ms.saturating_sub(RECONCILE_LAG_MS),
        ))
        .await;
        {
            let mut inner = self.inner.lock().unwrap();
            let Some(a) = inner.apps.get_mut(&name) else {
                return;
            };
            if a.deploy_id != id {
                return;
            }
            a.health = rule.health.clone();
            a.health_at = now();
            a.reconciled_at = now();
            a.health_msg =
                match rule.health.as_str() {
                    "Healthy" => None,
                    "Degraded" => Some(rule.message.clone().unwrap_or_else(|| {
                        "Deployment \"app\" exceeded its progress deadline".into()
                    })),
                    _ => rule.message.clone(),
                };
        }
        self.changed(&name);
        let Some(after) = rule.healthy_after_ms else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(after)).await;
        {
            let mut inner = self.inner.lock().unwrap();
            let Some(a) = inner.apps.get_mut(&name) else {
                return;
            };
            if a.deploy_id != id {
                return;
            }
            a.health = "Healthy".into();
            a.health_msg = None;
            a.health_at = now();
            a.reconciled_at = now();
        }
        self.changed(&name);
    }

    /// Looks at the head of an app's targetRevision: OutOfSync when it moved, and for auto-sync
    /// apps a sync of it (once per revision, as Argo CD does not retry a failed auto-sync forever).
    fn reconcile(self: &Arc<Self>, name: &str) {
        let mut changed = false;
        {
            let mut inner = self.inner.lock().unwrap();
            let id = inner.next_id;
            let Some(a) = inner.apps.get_mut(name) else {
                return;
            };
            let Ok(head) = self
                .world
                .resolve(SEED_REPO, &a.target_revision)
                .map(|o| o.to_string())
            else {
                return;
            };
            // The controller compares what the app's path renders at the head with what runs
            // (argo-cd controller/state.go CompareAppState: `sync.revision` is the revision
            // compared). A head that leaves the path as it was compares Synced at the new head, and
            // auto-sync then skips it (controller/appcontroller.go autoSync: "Skipping auto-sync:
            // application status is Synced"): no operation runs, `operationState` stays the old one.
            if head != a.sync_revision && !a.op_pending && a.sync_status != "OutOfSync" {
                let same = |rev: &str| self.world.path_tree(SEED_REPO, rev, &a.path).ok().flatten();
                if same(&head).is_some() && same(&head) == same(&a.sync_revision) {
                    a.sync_revision = head.clone();
                    a.sync_status = "Synced".into();
                    a.last_auto = Some(head.clone());
                    a.reconciled_at = now();
                    changed = true;
                } else {
                    a.sync_status = "OutOfSync".into();
                    changed = true;
                }
            }
            if a.auto_sync
                && !a.op_pending
                && head != a.sync_revision
                && a.last_auto.as_deref() != Some(head.as_str())
            {
                a.last_auto = Some(head.clone());
                // Argo CD's automated sync asks for the resolved commit, not the branch, with the
                // app's own sync options (controller/appcontroller.go autoSync).
                let options = a.sync_options.clone();
                self.start_operation(a, id, &head, false, false, options, true, OPERATION_MS);
                inner.next_id += 1;
                changed = true;
            }
            if changed {
                if let Some(a) = inner.apps.get_mut(name) {
                    a.reconciled_at = now();
                }
            }
        }
        if changed {
            self.changed(name);
        }
    }

    /// Spawns a timer task on the emulator's runtime, whatever thread asks.
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        match self.handle.get() {
            Some(h) => drop(h.spawn(f)),
            None => drop(tokio::spawn(f)),
        }
    }

    fn ensure_poller(self: &Arc<Self>) {
        if self.handle.set(tokio::runtime::Handle::current()).is_err() {
            return;
        }
        let me = self.clone();
        self.spawn(async move {
            loop {
                let ms = me.inner.lock().unwrap().poll_ms;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let names: Vec<String> = me.inner.lock().unwrap().apps.keys().cloned().collect();
                for n in names {
                    me.reconcile(&n);
                }
            }
        });
    }

    /// Starts an operation that stays Running for `ms` (to test "in progress"), then Succeeds
    /// at the app's current revision without changing what is deployed.
    pub fn start_long_operation(self: &Arc<Self>, app: &str, ms: u64) -> bool {
        let ok = {
            let mut inner = self.inner.lock().unwrap();
            let id = inner.next_id;
            inner.next_id += 1;
            let Some(a) = inner.apps.get_mut(app) else {
                return false;
            };
            if a.op_pending {
                return false;
            }
            a.op = Some(OpState {
                id,
                phase: "Running".into(),
                message: "waiting for completion of hook batch/Job/migrate".into(),
                started_at: now(),
                finished_at: None,
                requested: a.sync_revision.clone(),
                revision: None,
                prune: false,
                dry_run: false,
                sync_options: vec![],
                automated: false,
            });
            a.op_pending = true;
            let me = self.clone();
            let name = app.to_string();
            self.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                {
                    let mut inner = me.inner.lock().unwrap();
                    let Some(a) = inner.apps.get_mut(&name) else {
                        return;
                    };
                    let rev = a.sync_revision.clone();
                    match a.op.as_mut() {
                        Some(op) if op.id == id && op.phase == "Running" => {
                            op.phase = "Succeeded".into();
                            op.message = "successfully synced (all tasks run)".into();
                            op.finished_at = Some(now());
                            op.revision = Some(rev);
                        }
                        _ => return,
                    }
                    a.op_pending = false;
                    a.reconciled_at = now();
                }
                me.changed(&name);
            });
            true
        };
        self.changed(app);
        ok
    }
}

fn authorized(a: &ArgoCd, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .find_map(|kv| kv.trim().strip_prefix("argocd.token=").map(str::to_string))
        });
    bearer
        .or(cookie)
        .is_some_and(|t| t == a.token() || a.inner.lock().unwrap().sessions.contains(&t))
}

async fn auth_layer(State(a): State<Arc<ArgoCd>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/api/v1/session" && req.method() == axum::http::Method::POST {
        return next.run(req).await;
    }
    if !authorized(&a, req.headers()) {
        return error(StatusCode::UNAUTHORIZED, 16, "no session information");
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct SessionReq {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn create_session(State(a): State<Arc<ArgoCd>>, Json(req): Json<SessionReq>) -> Response {
    if req.username != "admin" || req.password != a.password() {
        return error(StatusCode::UNAUTHORIZED, 16, "Invalid username or password");
    }
    let token = format!("eyJhbGciOiJIUzI1NiJ9.sandbox{:016x}.sig", fastrand::u64(..));
    a.inner.lock().unwrap().sessions.insert(token.clone());
    Json(json!({"token": token})).into_response()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    selector: Option<String>,
    #[serde(rename = "appNamespace")]
    app_namespace: Option<String>,
    projects: Option<String>,
    project: Option<String>,
    name: Option<String>,
    refresh: Option<String>,
}

/// Matches a label selector of `k=v`, `k==v`, `k!=v`, `k` and `!k` terms joined by commas.
fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                let v = v.trim_start_matches('=');
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k.trim())
            } else {
                labels.contains_key(term)
            }
        })
}

fn namespace_ok(ns: &Option<String>) -> bool {
    ns.as_deref().is_none_or(|n| n.is_empty() || n == "argocd")
}

async fn list_apps(State(a): State<Arc<ArgoCd>>, Query(q): Query<ListQuery>) -> Response {
    let inner = a.inner.lock().unwrap();
    let projects: Vec<&str> = q
        .projects
        .iter()
        .chain(q.project.iter())
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .collect();
    let items: Vec<Value> = inner
        .apps
        .values()
        .filter(|_| namespace_ok(&q.app_namespace))
        .filter(|app| {
            q.selector
                .as_deref()
                .is_none_or(|s| selector_matches(s, &app.labels))
        })
        .filter(|app| projects.is_empty() || projects.contains(&app.project.as_str()))
        .filter(|app| {
            q.name
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == app.name)
        })
        .map(|app| a.render(app, inner.resource_version))
        .collect();
    Json(json!({"metadata": {"resourceVersion": inner.resource_version.to_string()}, "items": items})).into_response()
}

async fn get_app(
    State(a): State<Arc<ArgoCd>>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if !namespace_ok(&q.app_namespace) {
        return permission_denied();
    }
    if q.refresh
        .as_deref()
        .is_some_and(|r| r == "normal" || r == "hard")
    {
        a.reconcile(&name);
    }
    match a.application(&name) {
        Some(app) => Json(app).into_response(),
        None => permission_denied(),
    }
}

#[derive(Deserialize)]
struct PatchReq {
    patch: String,
    #[serde(rename = "patchType", default)]
    patch_type: Option<String>,
}

fn merge_patch(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

async fn patch_app(
    State(a): State<Arc<ArgoCd>>,
    Path(name): Path<String>,
    Json(req): Json<PatchReq>,
) -> Response {
    let Some(mut app) = a.application(&name) else {
        return permission_denied();
    };
    if req.patch_type.as_deref().is_some_and(|t| t != "merge") {
        return error(
            StatusCode::BAD_REQUEST,
            3,
            &format!("Patch type '{}' is not supported", req.patch_type.unwrap()),
        );
    }
    let patch: Value = match serde_json::from_str(&req.patch) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                3,
                &format!("error unmarshaling patch: {e}"),
            )
        }
    };
    merge_patch(&mut app, &patch);
    {
        let mut inner = a.inner.lock().unwrap();
        let Some(s) = inner.apps.get_mut(&name) else {
            return permission_denied();
        };
        s.auto_sync = app["spec"]["syncPolicy"]["automated"].is_object()
            && app["spec"]["syncPolicy"]["automated"]["enabled"].as_bool() != Some(false);
        if let Some(t) = app["spec"]["source"]["targetRevision"].as_str() {
            s.target_revision = t.to_string();
        }
        if let Some(p) = app["spec"]["source"]["path"].as_str() {
            s.path = p.to_string();
        }
        if let Some(labels) = app["metadata"]["labels"].as_object() {
            s.labels = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
        }
        s.generation += 1;
    }
    a.changed(&name);
    Json(a.application(&name)).into_response()
}

#[derive(Deserialize, Default)]
struct SyncReq {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    prune: bool,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    #[serde(default, rename = "syncOptions")]
    sync_options: Option<SyncOptions>,
    #[serde(default, rename = "appNamespace")]
    app_namespace: Option<String>,
}

#[derive(Deserialize, Default)]
struct SyncOptions {
    #[serde(default)]
    items: Vec<String>,
}

async fn sync_app(
    State(a): State<Arc<ArgoCd>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let req: SyncReq = if body.is_empty() {
        SyncReq::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    3,
                    &format!("invalid sync request: {e}"),
                )
            }
        }
    };
    if !namespace_ok(&req.app_namespace) {
        return permission_denied();
    }
    {
        let mut inner = a.inner.lock().unwrap();
        let id = inner.next_id;
        let Some(app) = inner.apps.get_mut(&name) else {
            return permission_denied();
        };
        if app.op_pending {
            return in_progress();
        }
        let revision = req.revision.clone().filter(|r| !r.is_empty());
        if app.auto_sync && !req.dry_run {
            if let Some(rev) = &revision {
                if *rev != app.target_revision {
                    let msg = format!(
                        "Cannot sync to {rev}: auto-sync currently set to {}",
                        app.target_revision
                    );
                    return error(StatusCode::BAD_REQUEST, 9, &msg);
                }
            }
        }
        let requested = revision.unwrap_or_else(|| app.target_revision.clone());
        // The app's own options unless the request names some: then the request's alone
        // (argo-cd server/application/application.go Sync, `syncOptions = syncReq.SyncOptions.Items`).
        let options = match req.sync_options {
            Some(o) => o.items,
            None => app.sync_options.clone(),
        };
        a.start_operation(
            app,
            id,
            &requested,
            req.prune,
            req.dry_run,
            options,
            false,
            OPERATION_MS,
        );
        inner.next_id += 1;
    }
    a.changed(&name);
    Json(a.application(&name)).into_response()
}

#[derive(Deserialize)]
struct RollbackReq {
    id: i64,
    #[serde(default)]
    prune: bool,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
}

async fn rollback_app(
    State(a): State<Arc<ArgoCd>>,
    Path(name): Path<String>,
    Json(req): Json<RollbackReq>,
) -> Response {
    {
        let mut inner = a.inner.lock().unwrap();
        let id = inner.next_id;
        let Some(app) = inner.apps.get_mut(&name) else {
            return permission_denied();
        };
        if app.auto_sync {
            return error(
                StatusCode::BAD_REQUEST,
                9,
                "rollback cannot be initiated when auto-sync is enabled",
            );
        }
        if app.op_pending {
            return in_progress();
        }
        let Some(h) = app.history.iter().find(|h| h.id == req.id).cloned() else {
            let msg = format!(
                "application {name} does not have deployment with id {}",
                req.id
            );
            return error(StatusCode::BAD_REQUEST, 3, &msg);
        };
        a.start_operation(
            app,
            id,
            &h.revision,
            req.prune,
            req.dry_run,
            vec![],
            false,
            OPERATION_MS,
        );
        inner.next_id += 1;
    }
    a.changed(&name);
    Json(a.application(&name)).into_response()
}

async fn terminate(State(a): State<Arc<ArgoCd>>, Path(name): Path<String>) -> Response {
    {
        let mut inner = a.inner.lock().unwrap();
        let Some(app) = inner.apps.get_mut(&name) else {
            return permission_denied();
        };
        let running = app.op_pending && app.op.as_ref().is_some_and(|o| o.phase == "Running");
        if !running {
            return error(
                StatusCode::BAD_REQUEST,
                3,
                "Unable to terminate operation. No operation is in progress",
            );
        }
        let op = app.op.as_mut().unwrap();
        op.phase = "Terminating".into();
        let id = op.id;
        let me = a.clone();
        let n = name.clone();
        a.spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            {
                let mut inner = me.inner.lock().unwrap();
                let Some(app) = inner.apps.get_mut(&n) else {
                    return;
                };
                match app.op.as_mut() {
                    Some(op) if op.id == id => {
                        op.phase = "Failed".into();
                        op.message = "Operation terminated".into();
                        op.finished_at = Some(now());
                    }
                    _ => return,
                }
                app.op_pending = false;
            }
            me.changed(&n);
        });
    }
    a.changed(&name);
    Json(json!({})).into_response()
}

async fn resource_tree(State(a): State<Arc<ArgoCd>>, Path(name): Path<String>) -> Response {
    let inner = a.inner.lock().unwrap();
    match inner.apps.get(&name) {
        Some(app) => Json(a.tree(app)).into_response(),
        None => permission_denied(),
    }
}

async fn watch(State(a): State<Arc<ArgoCd>>, Query(q): Query<ListQuery>) -> Response {
    let rx = a.events.subscribe();
    let filter = q.name.clone().filter(|n| !n.is_empty());
    let initial: Vec<Value> = {
        let inner = a.inner.lock().unwrap();
        inner
            .apps
            .values()
            .filter(|app| filter.as_deref().is_none_or(|n| n == app.name))
            .filter(|app| {
                q.selector
                    .as_deref()
                    .is_none_or(|s| selector_matches(s, &app.labels))
            })
            .map(|app| a.render(app, inner.resource_version))
            .collect()
    };
    if let Some(n) = &filter {
        if initial.is_empty() {
            return permission_denied();
        }
        let _ = n;
    }
    let line = |kind: &str, app: &Value| {
        let mut s =
            serde_json::to_vec(&json!({"result": {"type": kind, "application": app}})).unwrap();
        s.push(b'\n');
        Ok::<_, std::io::Error>(axum::body::Bytes::from(s))
    };
    let first: Vec<_> = initial.iter().map(|app| line("ADDED", app)).collect();
    let selector = q.selector.clone();
    let mut dropped = a.drop_watch.subscribe();
    dropped.borrow_and_update();
    let rest = futures_util::stream::unfold((rx, dropped), move |(mut rx, mut dropped)| {
        let filter = filter.clone();
        let selector = selector.clone();
        async move {
            loop {
                let event = tokio::select! {
                    e = rx.recv() => e,
                    _ = dropped.changed() => return None,
                };
                match event {
                    Ok((name, app)) => {
                        if filter.as_deref().is_some_and(|n| n != name) {
                            continue;
                        }
                        if let Some(s) = &selector {
                            let labels: BTreeMap<String, String> =
                                serde_json::from_value(app["metadata"]["labels"].clone())
                                    .unwrap_or_default();
                            if !selector_matches(s, &labels) {
                                continue;
                            }
                        }
                        let mut s = serde_json::to_vec(
                            &json!({"result": {"type": "MODIFIED", "application": app}}),
                        )
                        .unwrap();
                        s.push(b'\n');
                        return Some((
                            Ok::<_, std::io::Error>(axum::body::Bytes::from(s)),
                            (rx, dropped),
                        ));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(first), rest);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn managed_resources(State(a): State<Arc<ArgoCd>>, Path(name): Path<String>) -> Response {
    let inner = a.inner.lock().unwrap();
    let Some(app) = inner.apps.get(&name) else {
        return permission_denied();
    };
    let image = format!(
        "ghcr.io/acme/app:{}",
        app.deployed_tag.clone().unwrap_or_default()
    );
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": app.name},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    .to_string();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": app.name}})
        .to_string();
    let modified = app.sync_status != "Synced";
    let items = [("apps", "Deployment", deploy), ("", "Service", service)].map(|(group, kind, state)| {
        json!({"group": group, "kind": kind, "namespace": app.name, "name": "app", "targetState": state,
               "liveState": state, "normalizedLiveState": state, "predictedLiveState": state,
               "hook": false, "modified": modified && kind == "Deployment", "resourceVersion": "1"})
    });
    Json(json!({"items": items})).into_response()
}

async fn user_info() -> Response {
    Json(json!({"loggedIn": true, "username": "admin", "iss": "argocd", "groups": []}))
        .into_response()
}

async fn delete_session(State(a): State<Arc<ArgoCd>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    a.inner.lock().unwrap().sessions.remove(bearer);
    Json(json!({})).into_response()
}

async fn unknown(req: Request) -> Response {
    let msg = format!(
        "sandbox Argo CD: no route for {} {}",
        req.method(),
        req.uri().path()
    );
    error(StatusCode::NOT_FOUND, 5, &msg)
}

/// The REST API routes; starts the auto-sync poller on the current runtime.
pub fn router(a: Arc<ArgoCd>) -> axum::Router {
    a.ensure_poller();
    axum::Router::new()
        .route(
            "/api/v1/session",
            post(create_session).delete(delete_session),
        )
        .route("/api/v1/session/userinfo", get(user_info))
        .route("/api/v1/applications", get(list_apps))
        .route("/api/v1/applications/{name}", get(get_app).patch(patch_app))
        .route("/api/v1/applications/{name}/sync", post(sync_app))
        .route("/api/v1/applications/{name}/rollback", post(rollback_app))
        .route("/api/v1/applications/{name}/operation", delete(terminate))
        .route(
            "/api/v1/applications/{name}/resource-tree",
            get(resource_tree),
        )
        .route(
            "/api/v1/applications/{name}/managed-resources",
            get(managed_resources),
        )
        .route("/api/v1/stream/applications", get(watch))
        .fallback(unknown)
        .layer(axum::middleware::from_fn_with_state(a.clone(), auth_layer))
        .with_state(a)
}

#[derive(Deserialize)]
struct MessageReq {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct EnabledReq {
    enabled: bool,
}

#[derive(Deserialize)]
struct MsReq {
    ms: u64,
}

fn not_found(app: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": format!("no app {app}")})),
    )
        .into_response()
}

/// Control routes, nested at `/_sandbox/argocd` (documented in sandbox/README.md).
pub fn control_routes(a: Arc<ArgoCd>) -> axum::Router {
    axum::Router::new()
        .route(
            "/rules",
            post(|State(a): State<Arc<ArgoCd>>, Json(r): Json<HealthRule>| async move {
                a.add_rule(r);
                StatusCode::NO_CONTENT
            })
            .delete(|State(a): State<Arc<ArgoCd>>| async move {
                a.clear_rules();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/apps",
            post(|State(a): State<Arc<ArgoCd>>, Json(n): Json<NewApp>| async move {
                let name = n.name.clone();
                match a.create_app(n) {
                    Ok(()) => Json(a.application(&name)).into_response(),
                    Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"message": e.to_string()}))).into_response(),
                }
            }),
        )
        .route(
            "/apps/{name}",
            get(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>| async move {
                match a.application(&n) {
                    Some(app) => Json(app).into_response(),
                    None => not_found(&n),
                }
            }),
        )
        .route(
            "/apps/{name}/fail-next",
            post(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>, Json(m): Json<MessageReq>| async move {
                let msg = m.message.unwrap_or_else(|| "one or more objects failed to apply".into());
                if a.fail_next_sync(&n, &msg) { StatusCode::NO_CONTENT.into_response() } else { not_found(&n) }
            }),
        )
        .route(
            "/apps/{name}/auto-sync",
            post(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>, Json(e): Json<EnabledReq>| async move {
                if a.set_auto_sync(&n, e.enabled) { StatusCode::NO_CONTENT.into_response() } else { not_found(&n) }
            }),
        )
        .route(
            "/apps/{name}/long-operation",
            post(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>, Json(m): Json<MsReq>| async move {
                if a.start_long_operation(&n, m.ms) {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    (StatusCode::CONFLICT, Json(json!({"message": "no such app, or an operation runs"}))).into_response()
                }
            }),
        )
        .route(
            "/drop-watches",
            post(|State(a): State<Arc<ArgoCd>>| async move {
                a.drop_watches();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/poll-interval",
            post(|State(a): State<Arc<ArgoCd>>, Json(m): Json<MsReq>| async move {
                a.set_poll_interval(m.ms);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seeded_tag() {
        assert_eq!(
            image_tag(crate::world::SEED_VALUES).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(
            image_tag("image:\n  tag: 2.0-bad # x\n").as_deref(),
            Some("2.0-bad")
        );
    }

    #[test]
    fn selectors_match_labels() {
        let l = BTreeMap::from([("team".to_string(), "shop".to_string())]);
        assert!(selector_matches("team=shop", &l));
        assert!(selector_matches("team==shop,!tier", &l));
        assert!(!selector_matches("team!=shop", &l));
        assert!(!selector_matches("tier", &l));
    }
}
