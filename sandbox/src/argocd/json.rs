//! Bodies shaped as Argo CD's (`v1alpha1Application`, the resource tree, managed resources), built
//! from the emulator's state. Kept apart from the handlers so the routes read as behaviour.

use super::{App, ArgoCd, CHART_REPO, CHART_VERSION};
use crate::world::SEED_REPO;
use serde_json::{json, Value};

impl ArgoCd {
    /// `spec.source`, also what `comparedTo` and every history entry point at.
    fn source(&self, a: &App) -> Value {
        json!({"repoURL": format!("{}/{SEED_REPO}.git", self.git_url), "path": a.path, "targetRevision": a.target_revision})
    }

    /// `spec.sources` of a multi-source app tracking `target`: the chart, whose values file is
    /// the release repo's, then the release repo as `ref: values` (argo-cd docs
    /// user-guide/multiple_sources.md). Its repoURL is written without `.git`, as users often
    /// write it: Argo CD normalises repo URLs (util/git/git.go `NormalizeGitURL`), so must a client.
    fn sources(&self, a: &App, target: &str) -> Value {
        json!([
            {"repoURL": CHART_REPO, "chart": "app", "targetRevision": CHART_VERSION,
             "helm": {"valueFiles": [format!("$values/{}/values.yaml", a.path)]}},
            {"repoURL": format!("{}/{SEED_REPO}", self.git_url), "targetRevision": target, "ref": "values"},
        ])
    }

    /// Writes `revision` of a single-source app, or for a multi-source one `revisions` (the
    /// chart's version, then the release repo's `revision`) with `sources` and an empty `revision`
    /// where the field is always written (`syncResult`, controller/sync.go).
    fn put_revision(&self, a: &App, into: &mut Value, revision: &str, target: &str, keep: bool) {
        if a.multi_source {
            into["revisions"] = json!([CHART_VERSION, revision]);
            into["sources"] = self.sources(a, target);
            if keep {
                into["revision"] = json!("");
            }
        } else {
            into["revision"] = json!(revision);
        }
    }

    /// The `v1alpha1Application` at resource version `rv`; `operation` only while it runs.
    pub(super) fn render(&self, a: &App, rv: u64) -> Value {
        let source = self.source(a);
        let destination = json!({"server": "https://kubernetes.default.svc", "namespace": a.name});
        let mut spec = json!({"project": a.project, "destination": destination});
        if a.multi_source {
            spec["sources"] = self.sources(a, &a.target_revision);
        } else {
            spec["source"] = source.clone();
        }
        if a.auto_sync {
            spec["syncPolicy"] =
                json!({"automated": {"enabled": true, "prune": false, "selfHeal": false}});
        }
        if !a.sync_options.is_empty() {
            spec["syncPolicy"]["syncOptions"] = json!(a.sync_options);
        }
        let mut sync = json!({"status": a.sync_status});
        self.put_revision(a, &mut sync, &a.sync_revision, &a.target_revision, false);
        sync["comparedTo"] = if a.multi_source {
            json!({"sources": self.sources(a, &a.target_revision), "destination": destination})
        } else {
            json!({"source": source, "destination": destination})
        };
        let history: Vec<Value> = a
            .history
            .iter()
            .map(|h| {
                let mut e = json!({"id": h.id, "deployStartedAt": h.started, "deployedAt": h.deployed,
                                   "initiatedBy": {"username": "admin"}});
                // controller/appcontroller.go persistRevisionHistory: `revisions` and `sources`
                // for a multi-source app, `revision` and `source` otherwise.
                self.put_revision(a, &mut e, &h.revision, &h.target, false);
                if !a.multi_source {
                    e["source"] = json!({"repoURL": source["repoURL"], "path": h.path, "targetRevision": h.target});
                }
                e
            })
            .collect();
        let mut status = json!({
            "sync": sync,
            "health": {"status": a.health, "lastTransitionTime": a.health_at},
            "history": history,
            "reconciledAt": a.reconciled_at,
            // The API server fills each resource's health from its cache on Get, Watch and Sync,
            // although the controller no longer persists it (Argo CD 3.0 upgrade notes,
            // "Application resource health is no longer stored"; server/application
            // getAppResources): clients read it here, without a resource-tree call.
            "resources": [
                {"version": "v1", "kind": "Service", "namespace": a.name, "name": "app", "status": a.sync_status,
                 "health": {"status": "Healthy"}},
                {"group": Self::workload_group(a), "version": "v1", "kind": a.workload, "namespace": a.name, "name": "app",
                 "status": a.sync_status, "health": Self::workload_health(a)},
            ],
            "sourceType": a.source_type,
            "summary": {"images": a.deployed_tag.iter().map(|t| format!("ghcr.io/acme/app:{t}")).collect::<Vec<_>>()},
            "controllerNamespace": "argocd",
        });
        // App of apps: the child Applications are resources of the parent without a health,
        // as Argo CD has no health check for Application CRs since 1.8 (docs
        // operator-manual/health.md "Argo CD App health"), so a child's health never reaches
        // the parent's.
        if let Some(list) = status["resources"].as_array_mut() {
            for child in &a.children {
                list.push(
                    json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                                 "namespace": "argocd", "name": child, "status": "Synced"}),
                );
            }
        }
        // The app-level health message is empty in Argo CD 3.0 to 3.5 (controller/health.go
        // setApplicationHealth keeps only the status): the reason is on the resource.
        if !a.conditions.is_empty() {
            status["conditions"] = a
                .conditions
                .iter()
                .map(|(kind, message)| json!({"type": kind, "message": message, "lastTransitionTime": a.reconciled_at}))
                .collect();
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
            // server/application/application.go Sync: a multi-source operation carries
            // `revisions` (one per source) and `sources`, and no `revision`.
            let mut sync = json!({"prune": op.prune, "syncStrategy": {"hook": {}}});
            self.put_revision(a, &mut sync, &op.requested, &a.target_revision, false);
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
                let mut result = json!({
                    "resources": [
                        {"group": "", "version": "v1", "kind": "Service", "namespace": a.name, "name": "app",
                         "status": "Synced", "message": "service/app unchanged", "hookPhase": op.phase, "syncPhase": "Sync"},
                        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": a.name, "name": "app",
                         "status": "Synced", "message": "deployment.apps/app configured", "hookPhase": op.phase, "syncPhase": "Sync"},
                    ],
                });
                if !a.multi_source {
                    result["source"] = source.clone();
                }
                self.put_revision(a, &mut result, r, &a.target_revision, true);
                state["syncResult"] = result;
            }
            app["status"]["operationState"] = state;
            if a.op_pending {
                app["operation"] = operation;
            }
        }
        app
    }

    /// The API group of the app's workload kind.
    fn workload_group(a: &App) -> &'static str {
        if a.workload == "Rollout" {
            "argoproj.io"
        } else {
            "apps"
        }
    }

    /// The workload's health: the app's, with its message.
    fn workload_health(a: &App) -> Value {
        match a.health.as_str() {
            "Healthy" => json!({"status": "Healthy"}),
            h => json!({"status": h, "message": a.health_msg.clone().unwrap_or_default()}),
        }
    }

    /// The resource tree: the workload carries the app's health, its Pod the image deployed.
    pub(super) fn tree(&self, a: &App) -> Value {
        let ns = &a.name;
        let deploy_health = Self::workload_health(a);
        let image = a
            .deployed_tag
            .as_ref()
            .map(|t| format!("ghcr.io/acme/app:{t}"))
            .unwrap_or_default();
        let mut tree = json!({
            "nodes": [
                {"group": Self::workload_group(a), "version": "v1", "kind": a.workload, "namespace": ns, "name": "app",
                 "uid": format!("{}-d", a.uid), "resourceVersion": "1", "health": deploy_health,
                 "info": [{"name": "Revision", "value": format!("Rev:{}", a.history.len())}], "createdAt": a.created},
                {"version": "v1", "kind": "Service", "namespace": ns, "name": "app", "uid": format!("{}-s", a.uid),
                 "resourceVersion": "1", "health": {"status": "Healthy"}, "createdAt": a.created},
                {"version": "v1", "kind": "Pod", "namespace": ns, "name": "app-0", "uid": format!("{}-p", a.uid),
                 "resourceVersion": "1", "images": [image], "createdAt": a.created,
                 "parentRefs": [{"group": Self::workload_group(a), "kind": a.workload, "namespace": ns, "name": "app", "uid": format!("{}-d", a.uid)}],
                 "health": if a.health == "Degraded" { json!({"status": "Degraded", "message": "Back-off restarting failed container"}) } else { json!({"status": a.health}) }},
            ],
            "orphanedNodes": [],
            "hosts": [],
        });
        if let Some(nodes) = tree["nodes"].as_array_mut() {
            for child in &a.children {
                nodes.push(json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                                  "namespace": "argocd", "name": child, "uid": format!("{}-{child}", a.uid),
                                  "resourceVersion": "1", "createdAt": a.created}));
            }
        }
        tree
    }

    /// The managed resources: live and target state alike, `modified` while OutOfSync.
    pub(super) fn managed_resources(&self, app: &App) -> Value {
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
        json!({"items": items})
    }
}
