//! Protected release repos as they are today (issue #13): a ruleset requiring a status check on
//! the base, and a token without administration, which GitHub answers 403 on the classic
//! protection endpoint. The gate learns the required check from what such a token may read, and a
//! merge a rule still refuses is a wait, not a conflict that rolls back a good promotion.

use crate::harness::{calls_to, wait_until, while_running, Ctx, REPO};
use sandbox::github::{Protection, Target};
use sandbox::{Fault, FaultRule};
use std::time::Duration;

fn require_check(ctx: &Ctx, check: &str) {
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            required_status_checks: vec![check.into()],
            ..Default::default()
        }),
    );
}

/// A token that may not read the rules either (403): the gate knows of no required check.
fn hide_rules(ctx: &Ctx) {
    ctx.sb.faults.inject(FaultRule {
        service: "github".into(),
        method: Some("GET".into()),
        path: "/repos/*/*/rules/branches/*".into(),
        times: 1000,
        fault: Fault::Status {
            status: 403,
            body: Some(serde_json::json!({"message": "Resource not accessible by integration", "status": "403"})),
        },
    });
}

/// Reports `check` green on the open PR once it has been waited on for a while.
fn report_later(ctx: &Ctx, check: &str) {
    let n = ctx.wait_for_pr();
    std::thread::sleep(Duration::from_secs(3));
    let pr = ctx.sb.github.pr_view(REPO, n).unwrap();
    assert!(!pr.merged, "merged before its required check reported");
    assert!(ctx
        .sb
        .github
        .set_status(REPO, &Target::Pr(n), check, "success"));
}

#[test]
fn a_ruleset_check_is_waited_for_with_a_token_that_cannot_read_protection() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    let run = while_running(
        || ctx.main(&[("set", "image.tag=4.0.0")]),
        || report_later(&ctx, "ci/test"),
    );
    run.assert_ok();
    assert!(run.log().contains("pending (ci/test)"), "{}", run.log());
    assert!(ctx.values_on_main().contains("4.0.0"));
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("4.0.0"));
    // The classic protection endpoint was never asked: it answers this token 403.
    let calls = ctx.sb.faults.calls(Some("github"));
    assert!(
        !calls.iter().any(|c| c.path.ends_with("/protection")),
        "{calls:?}"
    );
}

#[test]
fn a_rule_the_gate_could_not_read_refuses_the_merge_and_the_merge_waits() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    // This token may not read the rules either: the gate knows of no required check.
    hide_rules(&ctx);
    let run = while_running(
        || ctx.main(&[("set", "image.tag=4.1.0")]),
        || {
            let n = ctx.wait_for_pr();
            wait_until("a refused merge", Duration::from_secs(60), || {
                calls_to(&ctx.sb, "github", "PUT", "/merge")
                    .iter()
                    .any(|c| c.status == 405)
            });
            assert!(ctx
                .sb
                .github
                .set_status(REPO, &Target::Pr(n), "ci/test", "success"));
        },
    );
    run.assert_ok();
    let log = run.log();
    assert!(
        log.contains("cannot read the required checks of main"),
        "{log}"
    );
    assert!(
        log.contains("GitHub refuses the merge for now: Repository rule violations found Required status check \"ci/test\" is expected."),
        "{log}"
    );
    // Not a conflict: the PR was merged, not closed, and nothing was rolled back.
    let pr = ctx.sb.github.prs(REPO).pop().unwrap();
    assert!(pr.merged, "{pr:?}");
    assert!(ctx.values_on_main().contains("4.1.0"));
}

#[test]
fn a_rule_that_never_clears_ends_in_a_timeout_naming_it() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    hide_rules(&ctx);
    let before = ctx.main_sha();
    let run = ctx.main(&[("set", "image.tag=4.2.0"), ("approval-timeout", "8s")]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("timeout error in merge") && errors.contains("Required status check"),
        "{errors}"
    );
    assert_eq!(ctx.main_sha(), before, "nothing merged");
}

/// Only the base's required checks gate the merge, as on GitHub: an optional check that fails
/// is a warning, and the promotion goes on once the required one is green.
#[test]
fn a_failing_optional_check_warns_and_does_not_block_the_merge() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    let run = while_running(
        || ctx.main(&[("set", "image.tag=4.4.0"), ("wait-for-checks", "true")]),
        || {
            let n = ctx.wait_for_pr();
            assert!(ctx
                .sb
                .github
                .set_status(REPO, &Target::Pr(n), "lint", "failure"));
            report_later(&ctx, "ci/test");
        },
    );
    run.assert_ok();
    assert!(
        run.log().contains("optional check lint concluded failure"),
        "{}",
        run.log()
    );
    assert!(
        run.summary
            .contains("- optional check lint concluded failure"),
        "{}",
        run.summary
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("4.4.0"));
}
