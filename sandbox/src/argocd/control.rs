//! Test-only control of the Argo CD emulator, as Rust methods and as HTTP routes under
//! `/_sandbox/argocd` (documented in sandbox/README.md): what a cluster and its operators do.

use super::{now, ArgoCd, HealthRule, NewApp, OpState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

impl ArgoCd {
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

    /// How many refreshes were asked for, answered or not.
    pub fn refreshes(&self) -> u64 {
        self.inner.lock().unwrap().refreshes
    }

    /// Makes every `GET ?refresh=` answer only after `ms` milliseconds, as a busy controller does.
    pub fn slow_refresh(&self, ms: u64) {
        self.inner.lock().unwrap().refresh_delay_ms = ms;
    }

    /// Opens a deny sync window for `ms` milliseconds: the API server refuses every sync with
    /// 403 "cannot sync: blocked by sync window" (server/application/application.go Sync) until
    /// it ends; auto-sync waits too.
    pub fn block_syncs_for(&self, ms: u64) {
        self.inner.lock().unwrap().window_until =
            Some(std::time::Instant::now() + std::time::Duration::from_millis(ms));
    }

    /// Sets the project's `requireOverridePrivilegeForRevisionSync` (Argo CD 3.3) for a token
    /// without the `override` right: a sync naming a revision other than the app's
    /// `targetRevision` is refused with 403, a sync without one is allowed.
    pub fn require_override_for_revision(&self, on: bool) {
        self.inner.lock().unwrap().override_required = on;
    }

    /// Makes `app`'s workload an Argo Rollouts `Rollout` (or back to a `Deployment`): its health
    /// then reads as a Rollout's (argo-rollouts pkg/apis health.lua: `Suspended` while paused at a
    /// canary step, `Degraded` with `RolloutAborted: ...` once aborted); `false` for no such app.
    pub fn set_workload(&self, app: &str, kind: &str) -> bool {
        let found = {
            let mut inner = self.inner.lock().unwrap();
            match inner.apps.get_mut(app) {
                Some(a) => {
                    a.workload = kind.to_string();
                    true
                }
                None => false,
            }
        };
        if found {
            self.changed(app);
        }
        found
    }

    /// Makes `app` a multi-source app as Argo CD v3 writes one (`spec.sources`, the common shape
    /// for a values file in a release repo): the chart from [`CHART_REPO`](super::CHART_REPO) at
    /// position 1, the release repo as a `ref: values` source at position 2 whose
    /// `<path>/values.yaml` the chart reads (argo-cd docs user-guide/multiple_sources.md);
    /// `false` for no such app.
    pub fn set_multi_source(&self, app: &str, on: bool) -> bool {
        let found = {
            let mut inner = self.inner.lock().unwrap();
            match inner.apps.get_mut(app) {
                Some(a) => {
                    a.multi_source = on;
                    a.generation += 1;
                    true
                }
                None => false,
            }
        };
        if found {
            self.changed(app);
        }
        found
    }

    /// Makes the controller skip its reconcile after `app`'s next operation: `reconciledAt`
    /// then stays before `finishedAt` (and health and sync as they were) until a `GET ?refresh=`;
    /// `false` for no such app.
    pub fn skip_next_reconcile(&self, app: &str) -> bool {
        let mut inner = self.inner.lock().unwrap();
        match inner.apps.get_mut(app) {
            Some(a) => {
                a.skip_reconcile = true;
                true
            }
            None => false,
        }
    }

    /// Makes `parent` an app of apps whose manifests hold the Applications `children`: they
    /// show in its `status.resources` and resource tree, without a health; `false` for no such
    /// app.
    pub fn set_children(&self, parent: &str, children: &[&str]) -> bool {
        let found = {
            let mut inner = self.inner.lock().unwrap();
            match inner.apps.get_mut(parent) {
                Some(a) => {
                    a.children = children.iter().map(|c| c.to_string()).collect();
                    true
                }
                None => false,
            }
        };
        if found {
            self.changed(parent);
        }
        found
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

/// The control routes (see the module doc).
pub(super) fn routes(a: Arc<ArgoCd>) -> axum::Router {
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
            "/apps/{name}/multi-source",
            post(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>, Json(e): Json<EnabledReq>| async move {
                if a.set_multi_source(&n, e.enabled) { StatusCode::NO_CONTENT.into_response() } else { not_found(&n) }
            }),
        )
        .route(
            "/apps/{name}/skip-reconcile",
            post(|State(a): State<Arc<ArgoCd>>, Path(n): Path<String>| async move {
                if a.skip_next_reconcile(&n) { StatusCode::NO_CONTENT.into_response() } else { not_found(&n) }
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
