//! Enterprise runners (issue #16): every connection (GitHub, git, Argo CD) goes through the proxy
//! the environment names, with its credentials, and `NO_PROXY` skips it; a GitHub Enterprise
//! Server behind an internal CA is trusted through `ca-cert`, for the API and for git alike.

use crate::harness::{Ctx, Run, Spawned, REPO};
use crate::runner::{Job, Step};
use crate::tls::tls_front;
use sandbox::proxy::Proxy;
use std::collections::BTreeMap;

/// Runs the main step with `inputs` and the extra environment `env` (the job's `env:`).
fn main_with_env(ctx: &Ctx, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> Run {
    let work = ctx.workspace();
    let with = ctx.inputs(inputs);
    let state = BTreeMap::new();
    let launch = ctx.launch(Step::Main, Job::Success, &with, &state, &work);
    let mut cmd = launch.command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    Spawned::spawn(cmd, work).finish()
}

#[test]
fn every_connection_goes_through_the_proxy_with_its_credentials_and_no_proxy_skips_it() {
    let ctx = Ctx::new();
    let proxy = Proxy::start(Some(("runner", "pr0xy-pass"))).unwrap();
    let with_auth = proxy.url.replace("http://", "http://runner:pr0xy-pass@");
    let run = main_with_env(
        &ctx,
        &[("set", "image.tag=3.0.0")],
        &[("HTTP_PROXY", &with_auth), ("HTTPS_PROXY", &with_auth)],
    );
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("3.0.0"));
    let seen = proxy.seen();
    let through = |prefix: &str, part: &str| {
        seen.iter()
            .any(|s| s.target.starts_with(prefix) && s.target.contains(part))
    };
    let api = ctx.sb.github_api_url.trim_end_matches('/');
    assert!(
        through(api, "/pulls"),
        "the GitHub API went around the proxy: {seen:?}"
    );
    let git = ctx.sb.git_url();
    assert!(
        through(git, "service=git-upload-pack"),
        "the clone went around it: {seen:?}"
    );
    assert!(
        through(git, "/git-receive-pack"),
        "the push went around it: {seen:?}"
    );
    assert!(
        through(
            ctx.sb.argocd_url.trim_end_matches('/'),
            "/api/v1/applications"
        ),
        "Argo CD went around it: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| s.authorized),
        "a request without the proxy's credentials: {seen:?}"
    );
    assert!(
        !run.log().contains("pr0xy-pass"),
        "the proxy password reached the log"
    );

    // NO_PROXY naming the hosts: nothing more goes through the proxy.
    let before = proxy.seen().len();
    let run = main_with_env(
        &ctx,
        &[("set", "image.tag=3.1.0")],
        &[
            ("HTTP_PROXY", &with_auth),
            ("NO_PROXY", "example.com,127.0.0.1"),
        ],
    );
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("3.1.0"));
    assert_eq!(
        proxy.seen().len(),
        before,
        "NO_PROXY was ignored: {:?}",
        &proxy.seen()[before..]
    );
}

#[test]
fn a_proxy_that_refuses_our_credentials_stops_the_promotion_before_anything_changes() {
    let ctx = Ctx::new();
    let proxy = Proxy::start(Some(("runner", "right"))).unwrap();
    let wrong = proxy.url.replace("http://", "http://runner:wrong@");
    let head = ctx.main_sha();
    let run = main_with_env(
        &ctx,
        &[("set", "image.tag=3.0.0")],
        &[("HTTP_PROXY", &wrong)],
    );
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("407"),
        "the error names the proxy's answer: {errors}"
    );
    assert!(
        !run.log().contains("wrong@"),
        "the proxy URL with its password reached the log"
    );
    assert_eq!(ctx.main_sha(), head);
    assert!(ctx.sb.github.prs(REPO).is_empty());
}

#[test]
fn https_goes_through_a_connect_tunnel() {
    let ctx = Ctx::new();
    let tls = tls_front(&ctx.sb.argocd_url);
    let proxy = Proxy::start(None).unwrap();
    let ca = tls.ca.to_str().unwrap();
    let run = main_with_env(
        &ctx,
        &[
            ("set", "image.tag=4.0.0"),
            ("argocd-server", &tls.url),
            ("argocd-ca-cert", ca),
        ],
        &[("HTTPS_PROXY", &proxy.url)],
    );
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("4.0.0"));
    let authority = tls.url.trim_start_matches("https://");
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "CONNECT" && s.target == authority),
        "no CONNECT tunnel to {authority}: {seen:?}"
    );
    // Plain-HTTP hosts are not https: HTTPS_PROXY alone leaves them direct.
    assert!(seen.iter().all(|s| s.method == "CONNECT"), "{seen:?}");
}

#[test]
fn github_enterprise_behind_an_internal_ca_needs_ca_cert_for_the_api_and_git() {
    let ctx = Ctx::new();
    let api = tls_front(&ctx.sb.github_api_url);
    let git = tls_front(ctx.sb.git_url());
    let hosts = [
        ("github-api-url", api.url.as_str()),
        ("github-server-url", git.url.as_str()),
    ];
    let head = ctx.main_sha();
    let mut inputs = vec![("set", "image.tag=5.0.0")];
    inputs.extend(hosts);
    let strict = ctx.main(&inputs);
    strict.assert_failed();
    let errors = strict.errors().join("\n").to_lowercase();
    assert!(errors.contains("certificate"), "{errors}");
    assert_eq!(ctx.main_sha(), head, "refused before anything was pushed");

    // Two CAs (one per front) in one bundle, as a GHES admin's bundle holds its chain.
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(&api.ca).unwrap(),
        std::fs::read_to_string(&git.ca).unwrap()
    );
    inputs.push(("ca-cert", &bundle));
    let run = ctx.main(&inputs);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("5.0.0"));
    assert!(ctx.values_on_main().contains("5.0.0"));
}

#[test]
fn a_ca_cert_that_is_no_certificate_is_refused_naming_the_input() {
    let ctx = Ctx::new();
    for bad in [
        "/nonexistent/ca.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    ] {
        let run = ctx.main(&[("set", "image.tag=5.0.0"), ("ca-cert", bad)]);
        assert_eq!(run.code, 2, "invalid input exits 2: {}", run.log());
        assert!(
            run.log().contains("title=Invalid input ca-cert")
                || run.errors().iter().any(|e| e.contains("ca-cert")),
            "{}",
            run.log()
        );
    }
}
