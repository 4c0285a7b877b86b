//! The REST routes, as argo-cd's API server answers them through grpc-gateway: the session, the
//! application service (list, get, patch, sync, rollback, terminate, resource tree, managed
//! resources) and the stream. Errors carry the gRPC code Argo CD answers with.

use super::{watch, ArgoCd, OPERATION_MS};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `{error, code, message, details}` with a gRPC code, as grpc-gateway answers.
pub(super) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "code": code, "message": message, "details": []})),
    )
        .into_response()
}

/// What Argo CD answers for an app that does not exist as well as for one the caller may not
/// see, so names do not leak.
pub(super) fn permission_denied() -> Response {
    error(StatusCode::FORBIDDEN, 7, "permission denied")
}

fn in_progress() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        9,
        "another operation is already in progress",
    )
}

/// The `Authorization: Bearer` token, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether the request carries the API token or a session's, as a bearer or the UI's cookie.
fn authorized(a: &ArgoCd, headers: &HeaderMap) -> bool {
    let bearer = bearer(headers).map(str::to_string);
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

/// The query of list, get and watch; each route reads the parameters Argo CD gives it.
#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    /// A label selector, as [`selector_matches`] reads it.
    pub(super) selector: Option<String>,
    #[serde(rename = "appNamespace")]
    app_namespace: Option<String>,
    projects: Option<String>,
    project: Option<String>,
    /// One application by name.
    pub(super) name: Option<String>,
    refresh: Option<String>,
}

impl ListQuery {
    /// Whether the query's label selector, when it has one, picks an app with these labels.
    pub(super) fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_deref()
            .is_none_or(|s| selector_matches(s, labels))
    }
}

/// Matches a label selector of `k=v`, `k==v`, `k!=v`, `k` and `!k` terms joined by commas.
pub(super) fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
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
        .filter(|app| q.selects(&app.labels))
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
        // server/application/application.go Get: with `refresh` set it annotates the app and
        // waits for the controller to reconcile it before answering.
        let delay = {
            let mut inner = a.inner.lock().unwrap();
            inner.refreshes += 1;
            inner.refresh_delay_ms
        };
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let stalled = {
            let mut inner = a.inner.lock().unwrap();
            inner
                .apps
                .get_mut(&name)
                .is_some_and(|app| std::mem::take(&mut app.stalled))
        };
        if stalled {
            // The stalled operation's timeline goes on with its reconcile; give it a moment so
            // the answer shows it, as Get answers once the controller has reconciled.
            a.refreshed.notify_waiters();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
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
    /// A multi-source app's revisions, one for each of `source_positions`.
    #[serde(default)]
    revisions: Vec<String>,
    /// 1-based source positions, int64 written as strings by grpc-gateway (numbers accepted too).
    #[serde(default, rename = "sourcePositions")]
    source_positions: Vec<Value>,
}

/// The revision a multi-source sync asks for the release repo's source (position 2), as
/// server/application/application.go `resolveSourceRevisions` reads `revisions` and
/// `sourcePositions` (`revision` is ignored); `Err` for a position out of range.
fn multi_source_revision(req: &SyncReq) -> Result<Option<String>, String> {
    let mut wanted = None;
    for (i, pos) in req.source_positions.iter().enumerate() {
        let pos = pos
            .as_i64()
            .or_else(|| pos.as_str().and_then(|p| p.parse().ok()))
            .unwrap_or(0);
        if !(1..=2).contains(&pos) {
            return Err("source position is out of range".into());
        }
        let rev = req.revisions.get(i).cloned().unwrap_or_default();
        if pos == 2 && !rev.is_empty() {
            wanted = Some(rev);
        }
    }
    Ok(wanted)
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
        let (window, override_required) = (inner.window_until, inner.override_required);
        let Some(app) = inner.apps.get_mut(&name) else {
            return permission_denied();
        };
        if app.op_pending {
            return in_progress();
        }
        let revision = if app.multi_source {
            match multi_source_revision(&req) {
                Ok(r) => r,
                // A plain error from the handler: grpc-gateway answers Unknown (2) as 500.
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, 2, &e),
            }
        } else {
            req.revision.clone().filter(|r| !r.is_empty())
        };
        // Checked by the API server before it starts anything (server/application/application.go
        // Sync): an active deny window, then the 3.3 override rule for a sync that names a
        // revision other than the app's own.
        if window.is_some_and(|t| t > std::time::Instant::now()) {
            return error(
                StatusCode::FORBIDDEN,
                7,
                "cannot sync: blocked by sync window",
            );
        }
        if override_required && revision.as_ref().is_some_and(|r| *r != app.target_revision) {
            return error(
                StatusCode::FORBIDDEN,
                7,
                &format!("permission denied: applications, override, default/{name}"),
            );
        }
        if app.auto_sync && !req.dry_run {
            if let Some(rev) = &revision {
                if *rev != app.target_revision {
                    let msg = if app.multi_source {
                        format!(
                            "Cannot sync source {}/{} to {rev}: auto-sync currently set to {}",
                            a.git_url,
                            crate::world::SEED_REPO,
                            app.target_revision
                        )
                    } else {
                        format!(
                            "Cannot sync to {rev}: auto-sync currently set to {}",
                            app.target_revision
                        )
                    };
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
        a.terminate_operation(app);
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

async fn managed_resources(State(a): State<Arc<ArgoCd>>, Path(name): Path<String>) -> Response {
    let inner = a.inner.lock().unwrap();
    match inner.apps.get(&name) {
        Some(app) => Json(a.managed_resources(app)).into_response(),
        None => permission_denied(),
    }
}
async fn user_info() -> Response {
    Json(json!({"loggedIn": true, "username": "admin", "iss": "argocd", "groups": []}))
        .into_response()
}

async fn delete_session(State(a): State<Arc<ArgoCd>>, headers: HeaderMap) -> Response {
    let bearer = bearer(&headers).unwrap_or("");
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

/// The REST API routes, behind the token check.
pub(super) fn routes(a: Arc<ArgoCd>) -> axum::Router {
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
        .route("/api/v1/stream/applications", get(watch::watch))
        .fallback(unknown)
        .layer(axum::middleware::from_fn_with_state(a.clone(), auth_layer))
        .with_state(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels() {
        let l = BTreeMap::from([("team".to_string(), "shop".to_string())]);
        assert!(selector_matches("team=shop", &l));
        assert!(selector_matches("team==shop,!tier", &l));
        assert!(!selector_matches("team!=shop", &l));
        assert!(!selector_matches("tier", &l));
    }
}
