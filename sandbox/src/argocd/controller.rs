//! The application controller's side: sync operations and their timers, reconciliation against
//! the head of each app's targetRevision, health after a deploy by the health rules, and the
//! auto-sync poller. Handlers and control calls start these; none of them blocks.

use super::source;
use super::{now, App, ArgoCd, HealthRule, History, Inner, OpState, OPERATION_MS};
use crate::world::SEED_REPO;
use std::sync::Arc;
use std::time::Duration;

/// How long after `finishedAt` the controller's reconciliation (`reconciledAt`) lands.
const RECONCILE_LAG_MS: u64 = 150;

impl ArgoCd {
    /// The health a deploy of `tag` on `app` reaches: the newest matching rule, per-app first,
    /// else the defaults (`-bad` tags go Degraded, every other one Healthy).
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

    /// Starts a sync operation (the caller checked no other one runs) and its timers.
    // The arguments are the sync request's fields; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_operation(
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

    /// The operation's timeline: finish after `run_ms`, reconcile after the lag, then the health
    /// the rule gives (and Healthy later when it recovers). A newer deploy silences older timers.
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
            let values = resolved
                .as_ref()
                .ok()
                .map(|sha| source::find(&self.world, sha, &a.path));
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
                            let tag = values.tag();
                            a.deployed_tag = tag.clone();
                            a.source_type = values.kind;
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
        // A controller that missed its requeue after the operation (an informer event lost, a
        // busy work queue) leaves `reconciledAt` before `finishedAt` until the app is refreshed:
        // the refresh annotation queues it again (controller/appcontroller.go
        // needRefreshAppStatus). Kargo's argocd waiter asks for one for this reason
        // (pkg/argocd/refresh.go RequestAppRefresh).
        loop {
            let woken = self.refreshed.notified();
            {
                let mut inner = self.inner.lock().unwrap();
                let Some(a) = inner.apps.get_mut(&name) else {
                    return;
                };
                if std::mem::take(&mut a.skip_reconcile) {
                    a.stalled = true;
                }
                if !a.stalled {
                    break;
                }
            }
            woken.await;
        }
        {
            let mut inner = self.inner.lock().unwrap();
            if let Some(a) = inner.apps.get_mut(&name) {
                // The comparison after the sync writes `status.sync` and the conditions together
                // (controller/state.go CompareAppState, persisted in one status update): until
                // then both still describe the last comparison.
                let ran =
                    a.op.as_ref()
                        .filter(|o| o.phase == "Succeeded" && !o.dry_run)
                        .and_then(|o| o.revision.clone());
                if let Some(rev) = ran {
                    match self.render_error(&rev, &a.path) {
                        Some(why) => a.conditions = vec![("ComparisonError".into(), why)],
                        None => a.conditions.clear(),
                    }
                    a.sync_status = "Synced".into();
                    a.sync_revision = rev;
                }
                a.reconciled_at = now();
            }
        }
        self.changed(&name);
        let Some(rule) = rule else { return };
        tokio::time::sleep(Duration::from_millis(
            rule.delay_ms.saturating_sub(RECONCILE_LAG_MS),
        ))
        .await;
        let message = match rule.health.as_str() {
            "Healthy" => None,
            "Degraded" => Some(
                rule.message
                    .clone()
                    .unwrap_or_else(|| "Deployment \"app\" exceeded its progress deadline".into()),
            ),
            _ => rule.message.clone(),
        };
        if !self.set_health(&name, id, &rule.health, message) {
            return;
        }
        let Some(after) = rule.healthy_after_ms else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(after)).await;
        self.set_health(&name, id, "Healthy", None);
    }

    /// Why the app's path does not render at `rev`, as the repo server says it: a missing path, or
    /// a chart whose `required "image.tag is required" .Values.image.tag` fails (Helm's `required`
    /// function, the usual ComparisonError of a values repo). A kustomization renders whatever tag it names (kustomize keeps the base's image when no
    /// `newTag` is set), so only the chart has a `required` value.
    fn render_error(&self, rev: &str, path: &str) -> Option<String> {
        match source::find(&self.world, rev, path) {
            Ok(Some(found)) if found.kind == source::KUSTOMIZE => None,
            Ok(Some(values)) if values.tag().is_some_and(|t| !t.is_empty()) => None,
            Ok(Some(values)) => Some(format!(
                "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = Manifest generation error (cached): `helm template . --name-template {} --values {file}` failed exit status 1: Error: execution error at (app/templates/deployment.yaml:21:24): image.tag is required",
                path.rsplit('/').next().unwrap_or(path),
                file = values.file,
            )),
            _ => Some(format!(
                "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = {path}: app path does not exist"
            )),
        }
    }

    /// Sets the health deploy `id`'s timers reached; `false` when a newer deploy (or the app's
    /// removal) made them stale, so they stop there.
    fn set_health(&self, name: &str, id: u64, health: &str, message: Option<String>) -> bool {
        {
            let mut inner = self.inner.lock().unwrap();
            let Some(a) = inner.apps.get_mut(name) else {
                return false;
            };
            if a.deploy_id != id {
                return false;
            }
            a.health = health.to_string();
            a.health_msg = message;
            a.health_at = now();
            a.reconciled_at = now();
        }
        self.changed(name);
        true
    }

    /// Marks the running operation Terminating; it ends Failed shortly after, unless another one
    /// replaced it by then.
    pub(super) fn terminate_operation(self: &Arc<Self>, app: &mut App) {
        let op = app.op.as_mut().unwrap();
        op.phase = "Terminating".into();
        let id = op.id;
        let me = self.clone();
        let n = app.name.clone();
        self.spawn(async move {
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

    /// Looks at the head of an app's targetRevision: OutOfSync when it moved, and for auto-sync
    /// apps a sync of it (once per revision, as Argo CD does not retry a failed auto-sync forever).
    pub(super) fn reconcile(self: &Arc<Self>, name: &str) {
        let mut changed = false;
        {
            let mut inner = self.inner.lock().unwrap();
            let id = inner.next_id;
            // A deny window holds auto-sync back too (controller/appcontroller.go autoSync).
            let window = inner
                .window_until
                .is_some_and(|t| t > std::time::Instant::now());
            let Some(a) = inner.apps.get_mut(name) else {
                return;
            };
            if a.stalled {
                return;
            }
            let Ok(head) = self
                .world
                .resolve(SEED_REPO, &a.target_revision)
                .map(|o| o.to_string())
            else {
                return;
            };
            // A head whose path does not render compares Unknown at that head with a
            // ComparisonError condition (controller/state.go CompareAppState: "Failed to load
            // target state", sync status Unknown), and auto-sync skips an app that is not
            // OutOfSync (controller/appcontroller.go autoSync: "Skipping auto-sync: application
            // status is Unknown").
            if head != a.sync_revision && !a.op_pending {
                if let Some(why) = self.render_error(&head, &a.path) {
                    a.sync_revision = head.clone();
                    a.sync_status = "Unknown".into();
                    a.conditions = vec![("ComparisonError".into(), why)];
                    a.reconciled_at = now();
                    drop(inner);
                    self.changed(name);
                    return;
                }
                a.conditions.clear();
            }
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
                && !window
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
    pub(super) fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        match self.handle.get() {
            Some(h) => drop(h.spawn(f)),
            None => drop(tokio::spawn(f)),
        }
    }

    /// Starts the auto-sync poller once, on the runtime the router is built on, and remembers that
    /// runtime for timers started from plain threads.
    pub(super) fn ensure_poller(self: &Arc<Self>) {
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
}
