//! `gitops_promote::clients::argocd` against the sandbox's Argo CD emulator: sync, wait, errors, retries.

use crate::harness::{
    argocd_client, argocd_config, calls_to, main_sha, progress, push_tag, run, sandbox, REPO,
};
use gitops_promote::base::{Classify, ErrorKind};
use gitops_promote::clients::argocd::{
    AppRef, AppStatus, ArgoCd, ArgoConfig, ArgoError, SyncRequest, Target, WaitOptions,
};
use sandbox::{Fault, FaultRule, Sandbox};
use std::sync::Arc;
use std::time::Duration;

/// `rev` is `merge` or a descendant of it, answered with git as the product's caller does.
fn target(sb: &Sandbox, merge: &str) -> Target {
    let path = sb.world.repo_path(REPO);
    let merge_oid = git2::Oid::from_str(merge).unwrap();
    Target {
        merge_sha: merge.to_string(),
        contains: Arc::new(move |rev| {
            let repo = git2::Repository::open_bare(&path).unwrap();
            let Ok(oid) = git2::Oid::from_str(rev) else {
                return false;
            };
            oid == merge_oid || repo.graph_descendant_of(oid, merge_oid).unwrap_or(false)
        }),
        from_history: false,
    }
}

fn opts(timeout_s: u64) -> WaitOptions {
    WaitOptions {
        health_timeout: Duration::from_secs(timeout_s),
        degraded_grace: Duration::from_millis(500),
        poll: Duration::from_millis(200),
    }
}

async fn app_ref(argo: &ArgoCd, name: &str) -> AppRef {
    argo.resolve_apps(&[name.to_string()], None)
        .await
        .unwrap()
        .remove(0)
}

fn sync_at(rev: &str) -> SyncRequest {
    SyncRequest {
        revision: Some(rev.to_string()),
        prune: false,
        sync_options: vec![],
    }
}

/// Syncs `app` to `sha` and waits (up to 30 s) to see it there: the deploy the wait tests judge.
async fn sync_and_wait(
    sb: &Sandbox,
    argo: &ArgoCd,
    app: &AppRef,
    sha: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<AppStatus, ArgoError> {
    argo.sync(app, &sync_at(sha)).await.unwrap();
    argo.wait(&app.name, &target(sb, sha), &opts(30), progress)
        .await
}

#[test]
fn argocd_manual_app_synced_with_a_revision_becomes_healthy() {
    let sb = sandbox();
    let seed = main_sha(&sb);
    let sha = push_tag(&sb, "main", "1.1.0");
    let (lines, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        assert!(!app.auto_sync);
        assert_eq!(app.synced_revision.as_deref(), Some(seed.as_str()));
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap()
    });
    assert_eq!(
        (
            status.revision.as_str(),
            status.health.as_str(),
            status.sync.as_str()
        ),
        (sha.as_str(), "Healthy", "Synced")
    );
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.1.0"));
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("health Progressing")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("remaining") && l.contains("resources")),
        "{lines:#?}"
    );
    assert_eq!(calls_to(&sb, "argocd", "POST", "/sync").len(), 1);
}

#[test]
fn argocd_auto_sync_app_syncs_after_a_hard_refresh_without_revision() {
    let sb = sandbox();
    let sha = push_tag(&sb, "main", "1.2.0");
    let (_, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app-auto").await;
        assert!(app.auto_sync);
        assert_eq!(app.target_revision, "main");
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap()
    });
    assert_eq!(status.revision, sha);
    let calls = sb.faults.calls(Some("argocd"));
    assert!(calls
        .iter()
        .any(|c| c.path == "/api/v1/applications/app-auto" && c.query.contains("refresh=hard")));
}

#[test]
fn argocd_bad_tag_fails_as_health_naming_the_deployment() {
    let sb = sandbox();
    let sha = push_tag(&sb, "main", "1.3.0-bad");
    let (_, progress) = progress();
    let err = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Health, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Deployment/app Degraded: Deployment \"app\" exceeded its progress deadline"),
        "{msg}"
    );
}

#[test]
fn argocd_failed_operation_is_a_sync_error() {
    let sb = sandbox();
    let sha = push_tag(&sb, "main", "1.4.0");
    assert!(sb
        .argocd
        .fail_next_sync("app", "one or more objects failed to apply"));
    let (_, progress) = progress();
    let err = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Sync);
    assert!(
        err.to_string()
            .contains("operation Failed: one or more objects failed to apply"),
        "{err}"
    );
}

#[test]
fn argocd_operation_in_progress_at_the_start_is_waited_out() {
    let sb = sandbox();
    let sha = push_tag(&sb, "main", "1.5.0");
    assert!(sb.argocd.start_long_operation("app", 3000));
    let (_, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap()
    });
    assert_eq!(status.revision, sha);
    let syncs: Vec<u16> = calls_to(&sb, "argocd", "POST", "/sync")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(
        syncs,
        [400, 200],
        "refused once while the other operation ran, then accepted"
    );
}

#[test]
fn argocd_newer_descendant_satisfies_the_wait_and_an_older_revision_does_not() {
    let sb = sandbox();
    let merge = push_tag(&sb, "main", "1.6.0");
    let newer = push_tag(&sb, "main", "1.6.1");
    let (_, progress) = progress();
    run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        argo.sync(&app, &sync_at(&newer)).await.unwrap();
        let st = argo
            .wait("app", &target(&sb, &merge), &opts(30), &progress)
            .await
            .unwrap();
        assert_eq!(st.revision, newer);
        // The app now runs `newer`; waiting for a later commit must not accept it.
        let later = push_tag(&sb, "main", "1.6.2");
        let err = argo
            .wait("app", &target(&sb, &later), &opts(2), &progress)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Health);
        assert!(matches!(err, ArgoError::HealthTimeout { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&later[..12]) && msg.contains("operation Succeeded"),
            "{msg}"
        );
    });
}

#[test]
fn argocd_session_login_with_username_and_password() {
    let sb = sandbox();
    run(async {
        let cfg = ArgoConfig {
            server: sb.argocd_url.clone(),
            username: Some("admin".into()),
            password: Some(sb.argocd.password().into()),
            ..Default::default()
        };
        let argo = ArgoCd::connect(&cfg).await.unwrap();
        assert_eq!(
            argo.get("app").await.unwrap().status.health.status,
            "Healthy"
        );
        let bad = ArgoConfig {
            password: Some("wrong".into()),
            ..cfg
        };
        let err = ArgoCd::connect(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
        assert!(!err.to_string().contains("wrong"));
    });
}

#[test]
fn argocd_bad_token_is_authentication_and_missing_app_is_authorization() {
    let sb = sandbox();
    run(async {
        let cfg = ArgoConfig {
            token: Some("not-a-token".into()),
            ..argocd_config(&sb)
        };
        let argo = ArgoCd::connect(&cfg).await.unwrap();
        let err = argo.resolve_apps(&["app".into()], None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
        assert!(err.to_string().contains("no session information"), "{err}");
        assert!(!format!("{err} {err:?}").contains("not-a-token"));

        let argo = argocd_client(&sb).await;
        let err = argo.resolve_apps(&["nope".into()], None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authorization);
        assert!(err.hint().unwrap().contains("does not exist"));
    });
}

#[test]
fn argocd_selector_resolves_labelled_apps() {
    let sb = sandbox();
    run(async {
        let argo = argocd_client(&sb).await;
        let apps = argo.resolve_apps(&[], Some("team=shop")).await.unwrap();
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["app", "app-auto"]);
        let err = argo
            .resolve_apps(&[], Some("team=nobody"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    });
}

#[test]
fn argocd_gets_are_retried_after_502_and_reset() {
    let sb = sandbox();
    for fault in [
        Fault::Status {
            status: 502,
            body: None,
        },
        Fault::Reset,
    ] {
        sb.faults.clear_calls();
        sb.faults.inject(FaultRule {
            service: "argocd".into(),
            method: Some("GET".into()),
            path: "/api/v1/applications/app".into(),
            times: 2,
            fault,
        });
        let app = run(async { argocd_client(&sb).await.get("app").await.unwrap() });
        assert_eq!(app.metadata.name, "app");
        let calls = sb.faults.calls(Some("argocd"));
        assert_eq!(calls.iter().filter(|c| c.injected).count(), 2);
        assert_eq!(calls.len(), 3);
    }
}

#[test]
fn argocd_wait_falls_back_to_polling_when_the_watch_fails() {
    let sb = sandbox();
    sb.faults.inject(FaultRule {
        service: "argocd".into(),
        method: Some("GET".into()),
        path: "/api/v1/stream/applications".into(),
        times: 10,
        fault: Fault::Reset,
    });
    let sha = push_tag(&sb, "main", "1.7.0");
    let (lines, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap()
    });
    assert_eq!(status.health, "Healthy");
    assert!(
        lines.lock().unwrap().iter().any(|l| l.contains("polling")),
        "{:#?}",
        lines.lock().unwrap()
    );
}

#[test]
fn argocd_a_server_that_is_not_argo_cd_is_a_config_error() {
    let sb = sandbox();
    let err = run(async {
        let cfg = ArgoConfig {
            server: sb.git_url().to_string(),
            ..argocd_config(&sb)
        };
        ArgoCd::connect(&cfg)
            .await
            .unwrap()
            .get("app")
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string()
            .contains("does not answer like the Argo CD API"),
        "{err}"
    );
}

#[test]
fn argocd_rollback_to_history_redeploys_the_old_revision() {
    let sb = sandbox();
    let seed = main_sha(&sb);
    let sha = push_tag(&sb, "main", "1.8.0");
    let (_, progress) = progress();
    run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap();
        argo.rollback_to_history("app", 0).await.unwrap();
        argo.wait("app", &Target::exact(&seed), &opts(30), &progress)
            .await
            .unwrap();
        let err = argo.rollback_to_history("app-auto", 0).await.unwrap_err();
        assert!(err.to_string().contains("auto-sync"), "{err}");
    });
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn argocd_wait_continues_by_polling_when_the_watch_stream_drops() {
    let sb = sandbox();
    // Healthy only after 4 s, so the stream is dropped while the app is still Progressing.
    sb.argocd.add_rule(sandbox::argocd::HealthRule {
        app: Some("app".into()),
        suffix: String::new(),
        health: "Healthy".into(),
        delay_ms: 4000,
        message: None,
        healthy_after_ms: None,
    });
    let sha = push_tag(&sb, "main", "1.9.0");
    let (lines, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        argo.sync(&app, &sync_at(&sha)).await.unwrap();
        let dropper = async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("health Progressing"))
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never saw Progressing"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sb.argocd.drop_watches();
        };
        let (t, o) = (target(&sb, &sha), opts(30));
        let (status, ()) = tokio::join!(argo.wait("app", &t, &o, &progress), dropper);
        status.unwrap()
    });
    assert_eq!(status.health, "Healthy");
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("watch stream ended; polling")),
        "{lines:#?}"
    );
}

#[test]
fn argocd_sync_reset_is_retried_once_the_app_shows_no_operation_started() {
    let sb = sandbox();
    sb.faults.inject(FaultRule {
        service: "argocd".into(),
        method: Some("POST".into()),
        path: "/api/v1/applications/app/sync".into(),
        times: 1,
        fault: Fault::Reset,
    });
    let sha = push_tag(&sb, "main", "2.1.0");
    let (_, progress) = progress();
    let app = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        sync_and_wait(&sb, &argo, &app, &sha, &progress)
            .await
            .unwrap();
        argo.get("app").await.unwrap()
    });
    let syncs: Vec<u16> = calls_to(&sb, "argocd", "POST", "/sync")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(syncs, [0, 200], "the reset POST is sent again once");
    assert_eq!(
        app.status.history.len(),
        2,
        "exactly one deploy after the seed"
    );
}

/// A GET that times out is retried within the `retry-budget`; a server that never answers in
/// time is a `timeout` error once the budget is spent; when it answers again, so does the client.
#[test]
fn argocd_a_silent_server_is_retried_then_a_timeout_once_the_retry_budget_is_spent() {
    let sb = sandbox();
    let silent = |times| FaultRule {
        service: "argocd".into(),
        method: Some("GET".into()),
        path: "/api/v1/applications/app".into(),
        times,
        fault: Fault::Delay { ms: 3000 },
    };
    let (blip, err, after) = run(async {
        let argo = ArgoCd::connect(&ArgoConfig {
            call_timeout: Some(Duration::from_millis(300)),
            retry_budget: Some(Duration::from_secs(3)),
            ..argocd_config(&sb)
        })
        .await
        .unwrap();
        sb.faults.inject(silent(2));
        let blip = argo.get("app").await;
        sb.faults.clear();
        sb.faults.inject(silent(1000));
        let err = argo.get("app").await.unwrap_err();
        sb.faults.clear();
        (blip, err, argo.get("app").await)
    });
    assert_eq!(
        blip.unwrap().metadata.name,
        "app",
        "two timeouts, then an answer"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert_eq!(after.unwrap().metadata.name, "app");
}

/// A rule under which `-flaky` tags are Degraded for a while and then recover.
fn flaky_rule(sb: &Sandbox) {
    sb.argocd.add_rule(sandbox::argocd::HealthRule {
        app: None,
        suffix: "-flaky".into(),
        health: "Degraded".into(),
        delay_ms: 300,
        message: Some("Readiness probe failed".into()),
        healthy_after_ms: Some(1500),
    });
}

#[test]
fn argocd_degraded_within_the_grace_period_may_still_become_healthy() {
    let sb = sandbox();
    flaky_rule(&sb);
    let sha = push_tag(&sb, "main", "2.2.0-flaky");
    let (lines, progress) = progress();
    let status = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        argo.sync(&app, &sync_at(&sha)).await.unwrap();
        let o = WaitOptions {
            degraded_grace: Duration::from_secs(20),
            ..opts(30)
        };
        argo.wait("app", &target(&sb, &sha), &o, &progress)
            .await
            .unwrap()
    });
    assert_eq!(status.health, "Healthy");
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("health Degraded")),
        "{lines:#?}"
    );
}

#[test]
fn argocd_degraded_past_the_grace_period_fails_even_if_it_would_recover() {
    let sb = sandbox();
    flaky_rule(&sb);
    let sha = push_tag(&sb, "main", "2.3.0-flaky");
    let (_, progress) = progress();
    let err = run(async {
        let argo = argocd_client(&sb).await;
        let app = app_ref(&argo, "app").await;
        argo.sync(&app, &sync_at(&sha)).await.unwrap();
        let o = WaitOptions {
            degraded_grace: Duration::from_millis(200),
            ..opts(30)
        };
        argo.wait("app", &target(&sb, &sha), &o, &progress)
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Health);
    assert!(err.to_string().contains("Readiness probe failed"), "{err}");
}

#[test]
fn argocd_a_json_api_that_is_not_argo_cd_is_a_config_error() {
    let sb = sandbox();
    let err = run(async {
        let cfg = ArgoConfig {
            server: sb.github_api_url.clone(),
            ..argocd_config(&sb)
        };
        ArgoCd::connect(&cfg)
            .await
            .unwrap()
            .get("app")
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string()
            .contains("does not answer like the Argo CD API"),
        "{err}"
    );
}

/// The waits of a promotion share one watch stream: 50 apps chosen by a selector open one
/// connection to `/api/v1/stream/applications`, filtered by that selector, not one per app.
#[test]
fn argocd_fifty_apps_are_watched_on_one_stream() {
    let ctx = crate::harness::Ctx::new();
    for i in 0..50 {
        ctx.sb
            .argocd
            .create_app(sandbox::argocd::NewApp {
                name: format!("fleet-{i:02}"),
                labels: [("tier".to_string(), "fleet".to_string())].into(),
                auto_sync: false,
                path: None,
                target_revision: None,
                project: None,
                sync_options: vec![],
            })
            .unwrap();
    }
    let run = ctx.main(&[
        ("set", "image.tag=4.0.0"),
        ("argocd-app", ""),
        ("argocd-selector", "tier=fleet"),
    ]);
    run.assert_ok();
    let apps: serde_json::Value = serde_json::from_str(run.output("apps")).unwrap();
    assert_eq!(apps.as_array().map(Vec::len), Some(50), "{apps}");
    assert_eq!(
        ctx.sb.argocd.deployed_tag("fleet-49").as_deref(),
        Some("4.0.0")
    );
    let streams = calls_to(&ctx.sb, "argocd", "GET", "/api/v1/stream/applications");
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert!(
        streams[0].query.contains("selector=tier%3Dfleet"),
        "{streams:?}"
    );
}
