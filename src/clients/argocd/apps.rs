//! The operations on apps: get, refresh, resolve names or a selector, sync, roll back to a history
//! entry, and wait for a running operation to end before starting ours.

use super::*;
use crate::base::wait::{self, Pending, Wait};
use chrono::{DateTime, Utc};
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

impl ArgoCd {
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
    pub(super) fn check_app(&self, a: Application, action: &str) -> Result<Application, ArgoError> {
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
        // One attempt: the API server answers a refresh only once the controller has reconciled
        // (server/application/application.go Get), and a refresh that timed out was still asked
        // for, so sending it again only adds load to a busy controller.
        let a = self
            .call_json(Method::GET, &self.app_path(app, "", kind), None, &action)
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
        Ok(apps.iter().map(|a| self.app_ref(a)).collect())
    }

    /// What a sync and the state need of `a`, its release repo's source picked out.
    pub fn app_ref(&self, a: &Application) -> AppRef {
        let repo = self.release_repo.as_deref();
        AppRef {
            auto_sync: a.auto_sync(),
            target_revision: a.target_revision(repo),
            synced_revision: a.synced_revision(repo),
            source_position: a.release_source(repo).map(|i| i + 1),
            sync_options: a
                .spec
                .sync_policy
                .as_ref()
                .map(|p| p.sync_options.clone())
                .unwrap_or_default(),
            name: a.metadata.name.clone(),
        }
    }

    /// Whether one of `a`'s sources is the release repo (always, when its URL is not known).
    pub fn tracks_release_repo(&self, a: &Application) -> bool {
        let Some(repo) = self.release_repo.as_deref() else {
            return true;
        };
        a.spec
            .source
            .iter()
            .chain(a.spec.sources.iter())
            .any(|s| same_repo(&s.repo_url, repo))
    }

    /// The release repo's URL, as the config gave it (see [`Application::release_source`]).
    pub fn release_repo(&self) -> Option<&str> {
        self.release_repo.as_deref()
    }

    /// The JSON body of a sync request (`applicationApplicationSyncRequest`). A revision of a
    /// multi-source app goes in `revisions` with the release repo's `sourcePositions` (1-based,
    /// int64 as strings): Argo CD ignores `revision` for one (server/application/application.go
    /// `resolveSourceRevisions`). Its `syncOptions`
    /// are the app's own plus `req`'s, since Argo CD replaces the app's with the request's
    /// (argo-cd server/application/application.go Sync, `syncOptions = syncReq.SyncOptions.Items`)
    /// and a sync with only ours would drop e.g. the app's `ServerSideApply=true`.
    pub fn sync_body(&self, app: &AppRef, req: &SyncRequest) -> Value {
        let mut body = json!({"name": app.name, "prune": req.prune});
        if !app.auto_sync {
            if let Some(rev) = req.revision.as_ref().filter(|r| !r.is_empty()) {
                match app.source_position {
                    Some(pos) => {
                        body["revisions"] = json!([rev]);
                        body["sourcePositions"] = json!([pos.to_string()]);
                    }
                    None => body["revision"] = json!(rev),
                }
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
            .or(body["revisions"][0].as_str())
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
        let source = current.release_source(self.release_repo.as_deref());
        let wanted = current
            .status
            .history
            .iter()
            .find(|h| h.id == id)
            .and_then(|h| h.revision_of(source))
            .unwrap_or_default();
        self.start_operation(app, "rollback", &wanted, body).await
    }

    pub(super) async fn start_operation(
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
                Err(e) if e.is_in_progress() => self.wait_no_operation(app, &action).await?,
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
                    let wait = e.pause(connect_failures);
                    crate::base::retry::notice_attempt(
                        &e,
                        wait,
                        connect_failures + 1,
                        SYNC_ATTEMPTS,
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until `app` has no operation running (the in-progress one finished), at most
    /// [`IN_PROGRESS_WAIT`]: Argo CD runs one operation per app and refuses a second.
    pub(super) async fn wait_no_operation(&self, app: &str, action: &str) -> Result<(), ArgoError> {
        let judge = |a: Application, elapsed: Duration| {
            let phase = a.status.operation_state.as_ref().map(|o| o.phase.as_str());
            let running = a.operation.is_some() || matches!(phase, Some("Running" | "Terminating"));
            if !running {
                return Ok(Wait::Done(()));
            }
            if elapsed >= IN_PROGRESS_WAIT {
                return Err(ArgoError::Timeout {
                    action: format!("{action}: waiting for the operation in progress"),
                    after: IN_PROGRESS_WAIT,
                });
            }
            Ok(Wait::Pending(Pending::new(format!(
                "{app}: an operation is {}",
                phase.unwrap_or("requested")
            ))))
        };
        // Silent: the client has no log; the caller's wait reports what follows.
        wait::until(
            Duration::from_millis(500),
            async || self.get(app).await,
            judge,
            &|_| {},
        )
        .await
    }
}

/// The app's sync options with the input's on top: an input option replaces the app's of the same
/// name (`Replace=true` over `Replace=false`), others are added, in the app's order first.
pub(super) fn merged_sync_options(app: &[String], input: &[String]) -> Vec<String> {
    let key = |o: &str| o.split('=').next().unwrap_or(o).trim().to_string();
    let mut out: Vec<String> = app
        .iter()
        .filter(|a| !input.iter().any(|i| key(i) == key(a)))
        .cloned()
        .collect();
    out.extend(input.iter().cloned());
    out
}

/// Whether `app` shows an operation for `wanted` started at or after `since`.
pub(super) fn started_since(app: &Application, wanted: &str, since: DateTime<Utc>) -> bool {
    if app.operation.is_some() {
        return true;
    }
    app.status.operation_state.as_ref().is_some_and(|o| {
        // A multi-source operation names its revisions in `sync.revisions`, one per source.
        let sync = o.operation.as_ref().map(|op| &op["sync"]);
        let asked = sync.and_then(|s| s["revision"].as_str()).into_iter().chain(
            sync.and_then(|s| s["revisions"].as_array())
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
        let mut asked = asked.filter(|r| !r.is_empty());
        o.started_at.is_some_and(|t| t >= since)
            && (wanted.is_empty() || asked.any(|r| r == wanted))
    })
}
