//! The failure strategy end to end (issue #5, DESIGN.md §6): retry, ignore, abort and a maintainer's
//! decision, each judged by what it leaves in the repo, the PR and the app.

use crate::harness::{calls_to, while_running, Ctx, REPO};
use sandbox::{Fault, FaultRule};

fn manual(then: &str, timeout: &str) -> String {
    format!("- on: [health]\n  action: manual\n  timeout: {timeout}\n  then: {then}\n")
}

/// Promotes 1.1.0 with the sync POST answering 502 `times` times, under a strategy that retries
/// connectivity errors twice, 1 s apart; the promotion must succeed.
fn promote_through_failing_syncs(times: u32) -> (Ctx, crate::harness::Run) {
    let ctx = Ctx::new();
    ctx.sb.faults.inject(FaultRule {
        service: "argocd".into(),
        method: Some("POST".into()),
        path: "/api/v1/applications/app/sync".into(),
        times,
        fault: Fault::Status {
            status: 502,
            body: None,
        },
    });
    let strategy =
        "- on: [connectivity]\n  action: retry\n  retries: 2\n  interval: 1s\n  then: rollback\n";
    let run = ctx.main(&[("set", "image.tag=1.1.0"), ("failure-strategy", strategy)]);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.1.0"));
    (ctx, run)
}

#[test]
fn a_transient_502_on_sync_is_retried_and_the_promotion_succeeds() {
    let (ctx, _) = promote_through_failing_syncs(1);
    let syncs = calls_to(&ctx.sb, "argocd", "POST", "/sync");
    assert_eq!(syncs.len(), 2, "one failed sync, one retried: {syncs:?}");
    assert!(syncs[0].injected && !syncs[1].injected);
}

/// A sync that fails through the client's own tries is retried by the strategy, and the log says
/// how many retries are left and what follows the last one.
#[test]
fn a_strategy_retry_says_what_is_left_and_what_follows() {
    let (_, run) = promote_through_failing_syncs(3);
    assert!(
        run.log()
            .lines()
            .any(|l| l.contains("again in 1s (retry 1 of 2, 1 more after it, then rollback)")),
        "{}",
        run.log()
    );
}

#[test]
fn ignore_succeeds_leaves_the_version_and_the_post_step_does_nothing() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=1.2.0-bad"), ("on-failure", "ignore")]);
    run.assert_ok();
    assert!(
        run.log().contains("::warning"),
        "a warning says it was ignored:\n{}",
        run.log()
    );
    let head = ctx.main_sha();
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app").as_deref(),
        Some("1.2.0-bad")
    );
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), head, "nothing reverted");
}

#[test]
fn abort_fails_without_rollback_and_the_post_step_does_nothing() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=1.2.0-bad"), ("on-failure", "abort")]);
    run.assert_failed();
    let head = ctx.main_sha();
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), head, "nothing reverted");
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app").as_deref(),
        Some("1.2.0-bad")
    );
}

/// Runs a `-bad` promotion whose health failure asks for a decision, and answers as `user`.
fn decide(ctx: &Ctx, strategy: &str, user: &str, answer: &str) -> crate::harness::Run {
    while_running(
        || {
            ctx.main(&[
                ("set", "image.tag=1.2.0-bad"),
                ("failure-strategy", strategy),
            ])
        },
        || {
            let pr = ctx.wait_for_pr();
            ctx.wait_for_comment(pr, "/proceed");
            ctx.sb.github.add_comment(REPO, pr, user, answer);
        },
    )
}

#[test]
fn a_maintainer_answering_proceed_keeps_the_promotion() {
    let ctx = Ctx::new();
    let run = decide(&ctx, &manual("rollback", "60s"), "maria", "/proceed");
    run.assert_ok();
    assert!(
        run.log().contains("maria answered /proceed"),
        "{}",
        run.log()
    );
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app").as_deref(),
        Some("1.2.0-bad")
    );
}

#[test]
fn a_maintainer_answering_rollback_reverts() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = decide(&ctx, &manual("abort", "60s"), "maria", "/rollback");
    run.assert_failed();
    assert_eq!(run.output("rolled-back"), "true");
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn an_answer_without_write_access_is_ignored_and_the_timeout_decides() {
    let ctx = Ctx::new();
    ctx.sb.github.set_permission(REPO, "eve", "read");
    let run = decide(&ctx, &manual("abort", "5s"), "eve", "/rollback");
    run.assert_failed();
    let log = run.log();
    assert!(log.contains("ignoring /rollback from eve"), "{log}");
    assert!(log.contains("no decision came in time"), "{log}");
    // `then: abort`: nothing reverted, and the post step will not either.
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app").as_deref(),
        Some("1.2.0-bad")
    );
    assert_eq!(
        run.state.get("on-failure").map(String::as_str),
        Some("skip")
    );
}
