//! Fidelity of the Argo CD emulator: every body it answers is validated against the v3.5.1 swagger
//! (`shared/contracts/argocd/swagger.json`, definitions embedded so `#/definitions/...` resolve),
//! and its behaviour follows what the contracts README records of Argo CD (errors, auto-sync refusal).

use sandbox::{Options, Sandbox};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The swagger, or `None` (and a note on stderr) when the contracts are not beside the workspace.
fn swagger() -> Option<Value> {
    let dir = crate::contracts("argocd", "Argo CD contract test")?;
    let text = std::fs::read_to_string(dir.join("swagger.json")).expect("swagger.json reads");
    Some(serde_json::from_str(&text).expect("swagger.json parses"))
}

/// Validates `body` against `#/definitions/{def}` (or an inline schema when `def` starts with `{`).
fn check(swagger: &Value, def: &str, body: &Value) {
    let target = if def.starts_with('{') {
        serde_json::from_str::<Value>(def).unwrap()
    } else {
        json!({"$ref": format!("#/definitions/{def}")})
    };
    let schema = json!({"definitions": swagger["definitions"], "allOf": [target]});
    let v = jsonschema::draft4::new(&schema).expect("schema compiles");
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} violated: {errors:#?}\nbody: {body:#}"
    );
}

/// A blocking HTTP/1.1 call with `Connection: close`: status and JSON body.
fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let raw = raw_call(base, method, path, token, body);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("http response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn raw_call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Vec<u8> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `GET /applications/{app}` until `done` holds, validating every body on the way.
fn wait_app(
    sb: &Sandbox,
    sw: &Value,
    app: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, body) = call(
            &sb.argocd_url,
            "GET",
            &format!("/api/v1/applications/{app}"),
            Some(sb.argocd.token()),
            None,
        );
        assert_eq!(st, 200, "{body}");
        check(sw, "v1alpha1Application", &body);
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn push_tag(sb: &Sandbox, tag: &str) -> String {
    let values = sandbox::world::SEED_VALUES.replace("\"1.0.0\"", &format!("\"{tag}\""));
    sb.world
        .commit(
            "acme/deploy",
            "main",
            &[("charts/app/values.yaml", &values)],
            &format!("Promote {tag}"),
        )
        .unwrap()
        .to_string()
}

fn settled_at<'a>(sha: &'a str, health: &'static str) -> impl Fn(&Value) -> bool + 'a {
    move |a: &Value| {
        let st = &a["status"];
        st["operationState"]["phase"] == "Succeeded"
            && st["operationState"]["syncResult"]["revision"] == sha
            && st["health"]["status"] == health
            && st["reconciledAt"].as_str() >= st["operationState"]["finishedAt"].as_str()
    }
}

#[test]
fn argocd_seeded_apps_validate_and_are_synced_healthy() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let seed = sb.world.resolve("acme/deploy", "main").unwrap().to_string();
    let (st, list) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications",
        Some(sb.argocd.token()),
        None,
    );
    assert_eq!(st, 200);
    check(&sw, "v1alpha1ApplicationList", &list);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "app-auto"]);
    for app in &list["items"].as_array().unwrap()[..] {
        assert_eq!(app["status"]["sync"]["status"], "Synced");
        assert_eq!(app["status"]["sync"]["revision"], seed.as_str());
        assert_eq!(app["status"]["health"]["status"], "Healthy");
        assert_eq!(
            app["spec"]["source"]["repoURL"],
            format!("{}/acme/deploy.git", sb.git_url())
        );
        assert_eq!(app["spec"]["source"]["path"], "charts/app");
        assert_eq!(app["spec"]["source"]["targetRevision"], "main");
    }
    assert!(list["items"][0]["spec"]["syncPolicy"]["automated"].is_null());
    assert_eq!(
        list["items"][1]["spec"]["syncPolicy"]["automated"]["enabled"],
        true
    );
    let (st, tree) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications/app/resource-tree",
        Some(sb.argocd.token()),
        None,
    );
    assert_eq!(st, 200);
    check(&sw, "v1alpha1ApplicationTree", &tree);
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn argocd_sync_runs_the_operation_then_health_by_rules() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    let sha = push_tag(&sb, "1.1.0");
    let req = json!({"revision": sha, "prune": true, "syncOptions": {"items": ["ApplyOutOfSyncOnly=true"]},
                     "strategy": {"hook": {}}});
    check(&sw, "applicationApplicationSyncRequest", &req);
    let (st, body) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&req),
    );
    assert_eq!(st, 200, "{body}");
    check(&sw, "v1alpha1Application", &body);
    assert_eq!(body["operation"]["sync"]["revision"], sha.as_str());
    assert_eq!(body["status"]["operationState"]["phase"], "Running");
    // A second sync while the first runs is refused as Argo CD does.
    let (st, err) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&req),
    );
    assert_eq!(st, 400);
    check(&sw, "runtimeError", &err);
    assert_eq!(err["message"], "another operation is already in progress");
    let app = wait_app(
        &sb,
        &sw,
        "app",
        "Healthy at the new revision",
        settled_at(&sha, "Healthy"),
    );
    assert_eq!(app["status"]["sync"]["status"], "Synced");
    assert!(
        app.get("operation").is_none(),
        "operation cleared when done"
    );
    let history = app["status"]["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["revision"], sha.as_str());
    assert_eq!(history.len(), 2);
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.1.0"));
}

#[test]
fn argocd_bad_tag_goes_degraded_naming_the_deployment() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let sha = push_tag(&sb, "1.2.0-bad");
    let req = json!({"revision": sha});
    let (st, _) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(sb.argocd.token()),
        Some(&req),
    );
    assert_eq!(st, 200);
    wait_app(
        &sb,
        &sw,
        "app",
        "Progressing first",
        settled_at(&sha, "Progressing"),
    );
    let app = wait_app(&sb, &sw, "app", "Degraded", settled_at(&sha, "Degraded"));
    // Argo CD 3.x: the app's health message is empty, the Deployment's is in status.resources.
    assert!(app["status"]["health"]["message"].is_null(), "{app}");
    assert!(app["status"]["resources"][1]["health"]["message"]
        .as_str()
        .unwrap()
        .contains("exceeded its progress deadline"));
    let (_, tree) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications/app/resource-tree",
        Some(sb.argocd.token()),
        None,
    );
    check(&sw, "v1alpha1ApplicationTree", &tree);
    let deploy = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deploy["health"]["status"], "Degraded");
    assert_eq!(
        deploy["health"]["message"],
        "Deployment \"app\" exceeded its progress deadline"
    );
}

#[test]
fn argocd_errors_have_grpc_codes_and_messages() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    let url = &sb.argocd_url;
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contracts/argocd/samples/synthetic");
    let sample = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(samples.join(f)).unwrap()).unwrap()
    };

    let (st, e) = call(url, "GET", "/api/v1/applications", None, None);
    assert_eq!((st, &e), (401, &sample("error-401-no-session.json")));
    let (st, e) = call(url, "GET", "/api/v1/applications", Some("wrong"), None);
    assert_eq!((st, e["code"].as_i64()), (401, Some(16)));
    let (st, e) = call(url, "GET", "/api/v1/applications/nope", Some(&token), None);
    assert_eq!((st, &e), (403, &sample("error-403-permission-denied.json")));
    let (st, e) = call(
        url,
        "POST",
        "/api/v1/applications/nope/sync",
        Some(&token),
        Some(&json!({})),
    );
    assert_eq!(
        (st, e["message"].as_str()),
        (403, Some("permission denied"))
    );
    let (st, e) = call(
        url,
        "DELETE",
        "/api/v1/applications/app/operation",
        Some(&token),
        None,
    );
    assert_eq!(
        (st, &e),
        (400, &sample("error-400-terminate-no-operation.json"))
    );

    let (st, e) = call(
        url,
        "POST",
        "/api/v1/applications/app-auto/sync",
        Some(&token),
        Some(&json!({"revision": "abc123"})),
    );
    assert_eq!(st, 400);
    check(&sw, "runtimeError", &e);
    assert_eq!(e["code"], 9);
    assert_eq!(
        e["message"],
        "Cannot sync to abc123: auto-sync currently set to main"
    );
    let (st, e) = call(
        url,
        "POST",
        "/api/v1/applications/app-auto/rollback",
        Some(&token),
        Some(&json!({"id": 0})),
    );
    assert_eq!(st, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("auto-sync is enabled"),
        "{e}"
    );

    assert!(sb.argocd.start_long_operation("app", 60_000));
    let (st, e) = call(
        url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&json!({})),
    );
    assert_eq!(
        (st, &e),
        (400, &sample("error-400-sync-operation-in-progress.json"))
    );
    let (st, body) = call(
        url,
        "DELETE",
        "/api/v1/applications/app/operation",
        Some(&token),
        None,
    );
    assert_eq!(st, 200);
    check(&sw, "applicationOperationTerminateResponse", &body);
    assert_eq!(body, sample("operation-terminate-200.json"));
    let app = wait_app(&sb, &sw, "app", "terminated", |a| {
        a["status"]["operationState"]["phase"] == "Failed"
    });
    assert_eq!(
        app["status"]["operationState"]["message"],
        "Operation terminated"
    );
}

#[test]
fn argocd_session_login_issues_a_working_token() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let req = json!({"username": "admin", "password": sb.argocd.password()});
    check(&sw, "sessionSessionCreateRequest", &req);
    let (st, body) = call(&sb.argocd_url, "POST", "/api/v1/session", None, Some(&req));
    assert_eq!(st, 200);
    check(&sw, "sessionSessionResponse", &body);
    let token = body["token"].as_str().unwrap();
    let (st, _) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications/app",
        Some(token),
        None,
    );
    assert_eq!(st, 200);
    let (st, e) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"username": "admin", "password": "x"})),
    );
    assert_eq!(st, 401);
    check(&sw, "runtimeError", &e);
}

#[test]
fn argocd_auto_sync_follows_new_commits_on_refresh_and_by_itself() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    // Refresh: the app notices the new commit at once and syncs it (initiated by automation).
    let sha = push_tag(&sb, "1.3.0");
    let (st, body) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications/app-auto?refresh=hard",
        Some(&token),
        None,
    );
    assert_eq!(st, 200);
    check(&sw, "v1alpha1Application", &body);
    let app = wait_app(
        &sb,
        &sw,
        "app-auto",
        "auto-synced after refresh",
        settled_at(&sha, "Healthy"),
    );
    assert_eq!(
        app["status"]["operationState"]["operation"]["initiatedBy"]["automated"],
        true
    );
    // The manual app only goes OutOfSync.
    let manual = wait_app(&sb, &sw, "app", "OutOfSync", |a| {
        a["status"]["sync"]["status"] == "OutOfSync"
    });
    assert_ne!(manual["status"]["sync"]["revision"], sha.as_str());
    // Polling: a short interval picks up the next commit without any refresh.
    sb.argocd.set_poll_interval(200);
    let sha2 = push_tag(&sb, "1.3.1");
    wait_app(
        &sb,
        &sw,
        "app-auto",
        "auto-synced by polling",
        settled_at(&sha2, "Healthy"),
    );
}

#[test]
fn argocd_watch_stream_sends_an_event_per_change() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let addr = sb.argocd_url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/v1/stream/applications?name=app HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        sb.argocd.token()
    )
    .unwrap();
    let sha = push_tag(&sb, "1.4.0");
    let (st, _) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(sb.argocd.token()),
        Some(&json!({"revision": sha})),
    );
    assert_eq!(st, 200);
    let stream_schema =
        sw["paths"]["/api/v1/stream/applications"]["get"]["responses"]["200"]["schema"].to_string();
    let mut buf = String::new();
    let mut events: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !events.iter().any(|e| {
        e["result"]["application"]["status"]["health"]["status"] == "Healthy"
            && e["result"]["application"]["status"]["sync"]["revision"] == sha.as_str()
    }) {
        assert!(
            Instant::now() < deadline,
            "no Healthy event; got {} events",
            events.len()
        );
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "stream closed");
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        // Each event is one chunk holding one line; chunk-size lines are not JSON.
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
                check(&sw, &stream_schema, &v);
                events.push(v);
            }
        }
    }
    assert_eq!(events[0]["result"]["type"], "ADDED");
    assert!(events
        .iter()
        .skip(1)
        .all(|e| e["result"]["type"] == "MODIFIED"));
    assert!(events
        .iter()
        .all(|e| e["result"]["application"]["metadata"]["name"] == "app"));
    let phases: Vec<&str> = events
        .iter()
        .filter_map(|e| e["result"]["application"]["status"]["operationState"]["phase"].as_str())
        .collect();
    assert!(
        phases.contains(&"Running") && phases.contains(&"Succeeded"),
        "{phases:?}"
    );
}

#[test]
fn argocd_selector_and_rollback_by_history() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    sb.argocd
        .create_app(
            serde_json::from_value(
                json!({"name": "web", "labels": {"tier": "web", "team": "shop"}}),
            )
            .unwrap(),
        )
        .unwrap();
    let (_, list) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications?selector=tier%3Dweb",
        Some(&token),
        None,
    );
    check(&sw, "v1alpha1ApplicationList", &list);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    let (_, list) = call(
        &sb.argocd_url,
        "GET",
        "/api/v1/applications?projects=other",
        Some(&token),
        None,
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let seed = sb.world.resolve("acme/deploy", "main").unwrap().to_string();
    let sha = push_tag(&sb, "2.0.0");
    call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&json!({"revision": sha})),
    );
    wait_app(&sb, &sw, "app", "deployed", settled_at(&sha, "Healthy"));
    let req = json!({"id": 0});
    check(&sw, "applicationApplicationRollbackRequest", &req);
    let (st, body) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/rollback",
        Some(&token),
        Some(&req),
    );
    assert_eq!(st, 200, "{body}");
    wait_app(&sb, &sw, "app", "rolled back", settled_at(&seed, "Healthy"));
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
    let (st, e) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/rollback",
        Some(&token),
        Some(&json!({"id": 99})),
    );
    assert_eq!((st, e["code"].as_i64()), (400, Some(3)));
}

#[test]
fn argocd_failed_operation_and_patch() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    assert!(sb
        .argocd
        .fail_next_sync("app", "one or more synchronization tasks are not valid"));
    let sha = push_tag(&sb, "3.0.0");
    call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&json!({"revision": sha})),
    );
    let app = wait_app(&sb, &sw, "app", "Failed", |a| {
        a["status"]["operationState"]["phase"] == "Failed"
    });
    assert_eq!(
        app["status"]["operationState"]["message"],
        "one or more synchronization tasks are not valid"
    );
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));

    let req = json!({"patch": r#"{"spec":{"syncPolicy":{"automated":{"enabled":true}}}}"#, "patchType": "merge"});
    check(&sw, "applicationApplicationPatchRequest", &req);
    let (st, body) = call(
        &sb.argocd_url,
        "PATCH",
        "/api/v1/applications/app",
        Some(&token),
        Some(&req),
    );
    assert_eq!(st, 200, "{body}");
    check(&sw, "v1alpha1Application", &body);
    assert_eq!(body["spec"]["syncPolicy"]["automated"]["enabled"], true);
}

#[test]
fn argocd_control_routes_drive_the_emulator() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    let ctl = sb.github_api_url.clone();
    let (st, app) = call(
        &ctl,
        "POST",
        "/_sandbox/argocd/apps",
        None,
        Some(&json!({"name": "web", "labels": {"tier": "web"}, "auto_sync": false})),
    );
    assert_eq!(st, 200, "{app}");
    check(&sw, "v1alpha1Application", &app);
    assert_eq!(app["metadata"]["labels"]["tier"], "web");

    let rule = json!({"app": "app", "suffix": "-slow", "health": "Suspended", "delay_ms": 100, "message": "paused"});
    assert_eq!(
        call(&ctl, "POST", "/_sandbox/argocd/rules", None, Some(&rule)).0,
        204
    );
    let sha = push_tag(&sb, "4.0.0-slow");
    call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&json!({"revision": sha})),
    );
    let a = wait_app(
        &sb,
        &sw,
        "app",
        "Suspended by the rule",
        settled_at(&sha, "Suspended"),
    );
    assert_eq!(a["status"]["resources"][1]["health"]["message"], "paused");

    let fail = json!({"message": "hook failed"});
    assert_eq!(
        call(
            &ctl,
            "POST",
            "/_sandbox/argocd/apps/app/fail-next",
            None,
            Some(&fail)
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &ctl,
            "POST",
            "/_sandbox/argocd/apps/nope/fail-next",
            None,
            Some(&fail)
        )
        .0,
        404
    );
    call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&json!({})),
    );
    let a = wait_app(&sb, &sw, "app", "Failed", |a| {
        a["status"]["operationState"]["phase"] == "Failed"
    });
    assert_eq!(a["status"]["operationState"]["message"], "hook failed");

    assert_eq!(
        call(
            &ctl,
            "POST",
            "/_sandbox/argocd/apps/app/auto-sync",
            None,
            Some(&json!({"enabled": true}))
        )
        .0,
        204
    );
    let (_, a) = call(&ctl, "GET", "/_sandbox/argocd/apps/app", None, None);
    assert_eq!(a["spec"]["syncPolicy"]["automated"]["enabled"], true);

    // A dry run succeeds without deploying anything.
    let sha2 = push_tag(&sb, "4.1.0");
    let (st, _) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/web/sync",
        Some(&token),
        Some(&json!({"dryRun": true, "revision": sha2})),
    );
    assert_eq!(st, 200);
    wait_app(&sb, &sw, "web", "dry run done", |a| {
        a["status"]["operationState"]["phase"] == "Succeeded"
            && a["status"]["operationState"]["syncResult"]["revision"] == sha2.as_str()
    });
    assert_eq!(sb.argocd.deployed_tag("web").as_deref(), Some("1.0.0"));

    assert_eq!(
        call(
            &ctl,
            "POST",
            "/_sandbox/argocd/long-operation",
            None,
            Some(&json!({"ms": 10}))
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &ctl,
            "POST",
            "/_sandbox/argocd/poll-interval",
            None,
            Some(&json!({"ms": 100}))
        )
        .0,
        204
    );
    assert_eq!(
        call(&ctl, "DELETE", "/_sandbox/argocd/rules", None, None).0,
        204
    );
}

#[test]
fn argocd_managed_resources_userinfo_and_logout_validate() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let url = &sb.argocd_url;
    let (st, body) = call(
        url,
        "GET",
        "/api/v1/applications/app/managed-resources",
        Some(sb.argocd.token()),
        None,
    );
    assert_eq!(st, 200);
    check(&sw, "applicationManagedResourcesResponse", &body);
    let live: Value =
        serde_json::from_str(body["items"][0]["liveState"].as_str().unwrap()).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/acme/app:1.0.0"
    );

    let (_, session) = call(
        url,
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"username": "admin", "password": sb.argocd.password()})),
    );
    let token = session["token"].as_str().unwrap().to_string();
    let (st, info) = call(url, "GET", "/api/v1/session/userinfo", Some(&token), None);
    assert_eq!(st, 200);
    check(&sw, "sessionGetUserInfoResponse", &info);
    assert_eq!(info["username"], "admin");
    let (st, out) = call(url, "DELETE", "/api/v1/session", Some(&token), None);
    assert_eq!(st, 200);
    check(&sw, "sessionSessionResponse", &out);
    assert_eq!(
        call(url, "GET", "/api/v1/session/userinfo", Some(&token), None).0,
        401,
        "logged out"
    );
}

#[test]
fn argocd_multi_source_app_syncs_by_source_position_and_validates() {
    let Some(sw) = swagger() else { return };
    let sb = Sandbox::start(Options::default()).unwrap();
    let token = sb.argocd.token().to_string();
    assert!(sb.argocd.set_multi_source("app", true));
    let sha = push_tag(&sb, "1.2.0");
    // `revision` is ignored for a multi-source app (server/application/application.go
    // resolveSourceRevisions): only `revisions` at `sourcePositions` pin a source.
    let req = json!({"revisions": [sha], "sourcePositions": ["2"], "prune": false});
    check(&sw, "applicationApplicationSyncRequest", &req);
    let (st, body) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&req),
    );
    assert_eq!(st, 200, "{body}");
    check(&sw, "v1alpha1Application", &body);
    assert!(body["spec"].get("source").is_none(), "{body:#}");
    assert_eq!(body["spec"]["sources"][1]["ref"], "values");
    assert_eq!(body["operation"]["sync"]["revisions"][1], sha.as_str());
    let app = wait_app(&sb, &sw, "app", "Healthy at the pinned commit", |a| {
        let st = &a["status"];
        st["operationState"]["phase"] == "Succeeded"
            && st["operationState"]["syncResult"]["revisions"][1] == sha.as_str()
            && st["health"]["status"] == "Healthy"
    });
    let st = &app["status"];
    assert_eq!(st["operationState"]["syncResult"]["revision"], "");
    assert_eq!(st["sync"]["revisions"][1], sha.as_str());
    assert!(st["sync"].get("revision").is_none(), "{st:#}");
    let last = st["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["revisions"][1], sha.as_str(), "{last:#}");
    assert_eq!(sb.argocd.deployed_tag("app").as_deref(), Some("1.2.0"));
    let bad = json!({"revisions": [sha], "sourcePositions": ["3"]});
    let (st, err) = call(
        &sb.argocd_url,
        "POST",
        "/api/v1/applications/app/sync",
        Some(&token),
        Some(&bad),
    );
    assert_eq!(st, 500, "{err}");
    check(&sw, "runtimeError", &err);
    assert_eq!(err["message"], "source position is out of range");
}
