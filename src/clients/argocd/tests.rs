//! Unit tests of the condition, the bodies and the transport on recorded and sample bodies.

use super::*;
use crate::base::{Classify, ErrorKind};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

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
        Condition::Done(SHA.into())
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
        Condition::Done(SHA.into())
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
        Condition::Done(SHA.into())
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
        Condition::Done(SHA.into())
    );
    let mut multi = healthy();
    multi.status.operation_state.as_mut().unwrap().sync_result = Some(SyncOperationResult {
        revision: None,
        revisions: vec!["abc".into(), SHA.into()],
    });
    assert_eq!(
        is_synced_healthy_at(Some(&multi), &Target::exact(SHA)),
        Condition::Done(SHA.into())
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

/// A ComparisonError left by the commit before the merge: the sync that fixes it runs, and the
/// condition stays until the controller compares again (argo-cd controller/state.go).
#[test]
fn a_comparison_error_from_before_our_sync_is_pending_until_compared_again() {
    const OLD: &str = "2222222222222222222222222222222222222222";
    let stale = |a: &mut Application| {
        a.status.conditions.push(AppCondition {
            kind: "ComparisonError".into(),
            message: "image.tag is required".into(),
        });
    };
    // Our sync runs; the app was last compared at the broken OLD commit.
    let mut running = healthy();
    stale(&mut running);
    running.status.sync.revision = Some(OLD.into());
    running.status.sync.status = "Unknown".into();
    running.status.reconciled_at = Some("2026-01-10T10:04:00Z".parse().unwrap());
    let op = running.status.operation_state.as_mut().unwrap();
    op.phase = "Running".into();
    op.sync_result = None;
    op.operation = Some(json!({"sync": {"revision": SHA}}));
    assert!(matches!(
        is_synced_healthy_at(Some(&running), &Target::exact(SHA)),
        Condition::Pending(_)
    ));
    // Our sync ran, not yet reconciled after it: still the old comparison's condition.
    let mut synced = healthy();
    stale(&mut synced);
    synced.status.sync.revision = Some(OLD.into());
    synced.status.reconciled_at = Some("2026-01-10T10:04:00Z".parse().unwrap());
    assert!(matches!(
        is_synced_healthy_at(Some(&synced), &Target::exact(SHA)),
        Condition::Pending(_)
    ));
    // No operation at all, compared at the old commit: pending, and the line says why.
    let mut idle = healthy();
    stale(&mut idle);
    idle.status.sync.revision = Some(OLD.into());
    idle.status.operation_state = None;
    match is_synced_healthy_at(Some(&idle), &Target::exact(SHA)) {
        Condition::Pending(why) => assert!(why.contains("earlier comparison"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Reconciled after our sync, the condition still there: it is about the merge.
    let mut fresh = healthy();
    stale(&mut fresh);
    fresh.status.sync.revision = Some(OLD.into());
    assert!(matches!(
        is_synced_healthy_at(Some(&fresh), &Target::exact(SHA)),
        Condition::Failed(_)
    ));
}

/// An app whose workload is an Argo Rollouts Rollout, shaped as Argo CD 3.x shows it: the app's
/// health message empty, the Rollout's health and message in `status.resources`.
fn rollout_app(health: &str, message: &str) -> Application {
    let mut a = healthy();
    a.status.health.status = health.into();
    a.status.health.message = None;
    a.status.resources = serde_json::from_value(json!([
        {"kind": "Service", "name": "app", "health": {"status": "Healthy"}},
        {"group": "argoproj.io", "kind": "Rollout", "name": "web",
         "health": {"status": health, "message": message}},
    ]))
    .unwrap();
    a
}

#[test]
fn a_paused_canary_is_a_wait_that_says_so_and_an_aborted_one_ends_it_at_once() {
    match is_synced_healthy_at(
        Some(&rollout_app("Suspended", "CanaryPauseStep")),
        &Target::exact(SHA),
    ) {
        Condition::Pending(why) => {
            assert!(
                why.contains("rollout web is paused at its step (CanaryPauseStep)"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    let aborted = rollout_app(
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 3",
    );
    assert_eq!(
        is_synced_healthy_at(Some(&aborted), &Target::exact(SHA)),
        Condition::Aborted(
            "Rollout/web: RolloutAborted: Rollout aborted update to revision 3".into()
        )
    );
    // Any other Degraded is named from its resource and waits out degraded-grace.
    let degraded = rollout_app("Degraded", "ProgressDeadlineExceeded");
    assert_eq!(
        is_synced_healthy_at(Some(&degraded), &Target::exact(SHA)),
        Condition::Degraded("Degraded: Rollout/web: ProgressDeadlineExceeded".into())
    );
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
        Condition::Done(_) => "done",
        Condition::Pending(_) => "pending",
        Condition::Degraded(_) => "degraded",
        Condition::Failed(_) => "failed",
        Condition::Aborted(_) => "aborted",
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
        serde_json::from_str(&std::fs::read_to_string(dir.join("swagger.json")).unwrap()).unwrap();
    let schema = json!({"definitions": sw["definitions"], "allOf": [{"$ref": "#/definitions/applicationApplicationSyncRequest"}]});
    let v = jsonschema::draft4::new(&schema).unwrap();
    let argo = ArgoCd {
        base: "http://x".into(),
        token: "t".into(),
        client: crate::clients::net::client(Default::default()),
        app_namespace: Some("argocd".into()),
        project: None,
        call_timeout: CALL_TIMEOUT,
        retry_budget: RETRY_BUDGET,
        release_repo: None,
    };
    let manual = AppRef {
        name: "app".into(),
        auto_sync: false,
        target_revision: "main".into(),
        synced_revision: None,
        source_position: None,
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
    // A multi-source app pins the release repo's source by position; `revision` it ignores.
    let multi = AppRef {
        source_position: Some(2),
        ..manual.clone()
    };
    let body = argo.sync_body(&multi, &req);
    assert!(v.is_valid(&body), "{body}");
    assert!(body.get("revision").is_none(), "{body}");
    assert_eq!(body["revisions"], json!([SHA]));
    assert_eq!(body["sourcePositions"], json!(["2"]));
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
        ca_cert: Some(empty.display().to_string()),
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

/// A multi-source app as Argo CD v3 writes it: a chart, then the release repo as `ref: values`.
fn multi_source_app() -> Application {
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"sources": [
            {"repoURL": "https://charts.example.com/acme", "chart": "web", "targetRevision": "1.4.2"},
            {"repoURL": "git@GitHub.com:Acme/deploy.git", "targetRevision": "release", "ref": "values"},
        ]},
        "status": {
            "sync": {"status": "Synced", "revisions": ["1.4.2", SHA]},
            "history": [{"id": 4, "revisions": ["1.4.2", SHA]}],
        },
    }))
    .unwrap()
}

#[test]
fn the_release_repo_is_found_among_sources_by_normalised_url() {
    let a = multi_source_app();
    let repo = Some("https://github.com/acme/deploy");
    assert_eq!(a.release_source(repo), Some(1));
    assert_eq!(a.target_revision(repo), "release");
    assert_eq!(a.synced_revision(repo).as_deref(), Some(SHA));
    assert_eq!(
        a.status.history[0].revision_of(Some(1)).as_deref(),
        Some(SHA)
    );
    assert!(same_repo(
        "HTTPS://GitHub.com/acme/deploy.git/",
        "https://github.com/acme/deploy"
    ));
    assert!(!same_repo(
        "https://github.com/acme/deploy-other",
        "https://github.com/acme/deploy"
    ));
    // No URL to match: the one source that is not a chart.
    assert_eq!(a.release_source(None), Some(1));
    assert_eq!(AppStatus::of(&a, repo).revision, SHA);
}
