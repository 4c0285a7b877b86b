//! Protected release repos as they are today (issue #13): a ruleset requiring a status check on
//! the base, and a token without administration, which GitHub answers 403 on the classic
//! protection endpoint. The gate learns the required check from what such a token may read, and a
//! merge a rule still refuses is a wait, not a conflict that rolls back a good promotion.

use crate::harness::{
    calls_to, commit_on_main, file_at, push_tag, wait_until, while_running, Ctx, REPO,
};
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

/// A ruleset requiring `check` and heads up to date with the base ("Require branches to be up to
/// date before merging").
fn require_check_strictly(ctx: &Ctx, check: &str) {
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            required_status_checks: vec![check.into()],
            strict: true,
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

/// A re-run takes over its PR and force-pushes a new commit, which GitHub shows as the PR's head
/// only a while later: the merge must land the commit we pushed, not the one GitHub still shows.
#[test]
fn a_takeover_after_our_force_push_merges_our_new_commit_not_the_old_head() {
    let ctx = Ctx::new();
    let first = ctx.main_attempt(31, 1, &[("set", "image.tag=5.0.0"), ("merge", "false")]);
    first.assert_ok();
    let old = ctx.sb.github.pr_head(REPO, 1).unwrap();
    ctx.sb.github.set_head_delay(Duration::from_secs(3));
    let again = ctx.main_attempt(31, 2, &[("set", "image.tag=5.0.1")]);
    again.assert_ok();
    let log = again.log();
    assert!(
        log.contains(&format!(
            "waiting for GitHub to show our push {} as the PR's head (it shows {})",
            &again.output("head-sha")[..7],
            &old[..7]
        )),
        "{log}"
    );
    assert!(ctx.values_on_main().contains("tag: \"5.0.1\""), "{log}");
    let pr = ctx.sb.github.pr_view(REPO, 1).unwrap();
    assert!(pr.merged, "{pr:?}");
    let merge = calls_to(&ctx.sb, "github", "PUT", "/pulls/1/merge");
    let sent = merge.last().and_then(|c| c.body.clone()).unwrap();
    assert_eq!(sent["sha"], again.output("head-sha"), "{merge:?}");
}

/// A strict required-checks rule and a base that moved on: GitHub refuses the merge with 409
/// "Head branch is out of date"; the base is merged into our head by GitHub (update-branch, guarded
/// by our head), the required check runs again on the new head, and then the PR merges.
#[test]
fn a_head_behind_a_strict_rule_is_brought_up_to_date_and_checked_again() {
    let ctx = Ctx::new();
    require_check_strictly(&ctx, "ci/test");
    ctx.sb.github.set_head_delay(Duration::from_secs(1));
    let mut other = String::new();
    let mut ours = String::new();
    let run = while_running(
        || ctx.main(&[("set", "image.tag=5.1.0")]),
        || {
            let n = ctx.wait_for_pr();
            ours = ctx.sb.github.pr_head(REPO, n).unwrap();
            other = commit_on_main(&ctx.sb, &[("README.md", "other work\n")], "other work");
            assert!(ctx.sb.github.set_status(
                REPO,
                &Target::Sha(ours.clone()),
                "ci/test",
                "success"
            ));
            wait_until(
                "the head brought up to date",
                Duration::from_secs(60),
                || ctx.sb.github.pr_head(REPO, n).is_some_and(|h| h != ours),
            );
            std::thread::sleep(Duration::from_secs(2));
            assert!(
                !ctx.sb.github.pr_view(REPO, n).unwrap().merged,
                "merged before its check ran again"
            );
            assert!(ctx
                .sb
                .github
                .set_status(REPO, &Target::Pr(n), "ci/test", "success"));
        },
    );
    run.assert_ok();
    let log = run.log();
    assert!(
        log.contains("is behind its base and a required-checks rule wants it up to date"),
        "{log}"
    );
    let update = calls_to(&ctx.sb, "github", "PUT", "/update-branch");
    assert_eq!(update.len(), 1, "{update:?}");
    assert_eq!(update[0].status, 202);
    assert_eq!(
        update[0].body.as_ref().unwrap()["expected_head_sha"],
        ours.as_str()
    );
    assert!(ctx.values_on_main().contains("tag: \"5.1.0\""), "{log}");
    assert_eq!(
        file_at(&ctx.sb, "refs/heads/main", "README.md").as_deref(),
        Some("other work\n"),
        "the other work stays on the base"
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("5.1.0"));
}

/// Someone else pushes to our branch while the PR waits: GitHub's 409 "Head branch was modified"
/// stops the promotion with an error saying so; their commit is not merged, and their work (the
/// PR and the branch) is left as it is, with a comment saying why.
#[test]
fn someone_elses_push_to_our_branch_stops_the_merge_and_their_work_stays() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    // GitHub's PR view lags long enough for the gate to see our head still.
    ctx.sb.github.set_head_delay(Duration::from_secs(30));
    let before = ctx.main_sha();
    let mut theirs = String::new();
    let mut branch = String::new();
    let run = while_running(
        || ctx.main(&[("set", "image.tag=5.2.0")]),
        || {
            let n = ctx.wait_for_pr();
            let ours = ctx.sb.github.pr_head(REPO, n).unwrap();
            branch = ctx.sb.github.pr_view(REPO, n).unwrap().head_ref;
            theirs = push_tag(&ctx.sb, &branch, "5.2.0-theirs");
            assert!(ctx
                .sb
                .github
                .set_status(REPO, &Target::Sha(ours), "ci/test", "success"));
        },
    );
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("conflict error in merge") && errors.contains("someone else pushed"),
        "{errors}"
    );
    assert_eq!(ctx.main_sha(), before, "nothing merged");
    let pr = ctx.sb.github.prs(REPO).pop().unwrap();
    assert_eq!((pr.state.as_str(), pr.merged), ("open", false), "{pr:?}");
    assert!(
        pr.comments
            .iter()
            .any(|(_, b)| b.contains("someone else pushed")),
        "{pr:?}"
    );
    let repo = ctx.sb.world.open(REPO).unwrap();
    let head = repo.refname_to_id(&format!("refs/heads/{branch}")).unwrap();
    assert_eq!(
        head.to_string(),
        theirs,
        "their push is still the branch's head"
    );
}

/// A workflow whose `permissions:` leave out `checks` and `statuses`: GitHub answers 403 to
/// listing them. The gate says which permission is missing (log and summary), goes by the PR's
/// `mergeable_state` and the merge's answer, and merges once the required check is green.
#[test]
fn a_token_without_checks_and_statuses_read_warns_and_goes_by_mergeable_state() {
    let ctx = Ctx::new();
    require_check(&ctx, "ci/test");
    ctx.sb.github.set_token_permission("checks", false);
    ctx.sb.github.set_token_permission("statuses", false);
    let run = while_running(
        || ctx.main(&[("set", "image.tag=5.3.0")]),
        || report_later(&ctx, "ci/test"),
    );
    run.assert_ok();
    let log = run.log();
    for perm in ["checks: read", "statuses: read"] {
        assert!(log.contains(&format!("`permissions: {perm}`")), "{log}");
        assert!(
            run.summary.contains(&format!("`permissions: {perm}`")),
            "{}",
            run.summary
        );
    }
    assert!(
        calls_to(&ctx.sb, "github", "GET", "/check-runs")
            .iter()
            .any(|c| c.status == 403),
        "the gate did ask"
    );
    assert!(ctx.sb.github.pr_view(REPO, 1).unwrap().merged);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("5.3.0"));
}

/// A ruleset that allows only merge commits, and the default `merge-method: squash`: a config
/// error naming the input and the allowed methods, found before anything is pushed.
#[test]
fn a_merge_method_a_ruleset_forbids_stops_before_the_push_naming_the_allowed_ones() {
    let ctx = Ctx::new();
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            allowed_merge_methods: Some(vec!["merge".into()]),
            ..Default::default()
        }),
    );
    let before = ctx.main_sha();
    let run = ctx.main(&[("set", "image.tag=5.4.0")]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("config error in check rules")
            && errors.contains("input 'merge-method': squash is not allowed on main")
            && errors.contains("allowed_merge_methods: merge"),
        "{errors}"
    );
    assert_eq!(run.output("error-type"), "config");
    assert!(ctx.our_branches().is_empty(), "{:?}", ctx.our_branches());
    assert!(ctx.sb.github.prs(REPO).is_empty());
    assert_eq!(ctx.main_sha(), before);
}

/// `required_signatures` and our unsigned commits: a merge commit would land them as they are,
/// so `merge-method: merge` stops before the push saying what to use; a squash, which GitHub
/// signs, goes through.
#[test]
fn required_signatures_stop_a_merge_commit_before_the_push_and_a_squash_goes_through() {
    let ctx = Ctx::new();
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            required_signatures: true,
            ..Default::default()
        }),
    );
    let refused = ctx.main(&[("set", "image.tag=5.5.0"), ("merge-method", "merge")]);
    refused.assert_failed();
    let errors = refused.errors().join("\n");
    assert!(
        errors.contains("requires verified signatures (required_signatures)")
            && errors.contains("set merge-method to squash"),
        "{errors}"
    );
    assert!(ctx.our_branches().is_empty(), "{:?}", ctx.our_branches());
    assert!(ctx.sb.github.prs(REPO).is_empty());
    let squash = ctx.main(&[("set", "image.tag=5.5.0")]);
    squash.assert_ok();
    assert!(ctx.values_on_main().contains("tag: \"5.5.0\""));
}

/// A ruleset requiring code owners' review, and a CODEOWNERS on the base naming alice for the
/// charts: the merge waits for her, naming her, and goes through once she approves.
#[test]
fn a_code_owner_review_is_waited_for_naming_the_owner() {
    let ctx = Ctx::new();
    require_code_owners(&ctx);
    let run = while_running(
        || ctx.main(&[("set", "image.tag=5.6.0")]),
        || {
            let n = ctx.wait_for_pr();
            wait_until("a refused merge", Duration::from_secs(60), || {
                calls_to(&ctx.sb, "github", "PUT", "/merge")
                    .iter()
                    .any(|c| c.status == 405)
            });
            // bob owns nothing changed: his approval does not count.
            ctx.sb
                .github
                .add_review(REPO, n, "bob", "APPROVED", None)
                .unwrap();
            std::thread::sleep(Duration::from_secs(2));
            assert!(
                !ctx.sb.github.pr_view(REPO, n).unwrap().merged,
                "merged without its owner"
            );
            ctx.sb
                .github
                .add_review(REPO, n, "alice", "APPROVED", None)
                .unwrap();
        },
    );
    run.assert_ok();
    let log = run.log();
    assert!(
        log.contains("Waiting on code owner review from @alice"),
        "{log}"
    );
    assert!(ctx.values_on_main().contains("tag: \"5.6.0\""));
}

/// Nobody of the code owners approves: an `approval` error naming the owners and the rule.
#[test]
fn a_code_owner_review_that_never_comes_is_an_approval_error_naming_the_rule() {
    let ctx = Ctx::new();
    require_code_owners(&ctx);
    let before = ctx.main_sha();
    let run = ctx.main(&[("set", "image.tag=5.7.0"), ("approval-timeout", "8s")]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains("approval error in merge")
            && errors.contains("Waiting on code owner review from @alice")
            && errors.contains("require_code_owner_review"),
        "{errors}"
    );
    assert_eq!(run.output("error-type"), "approval");
    assert_eq!(ctx.main_sha(), before, "nothing merged");
}

/// `.github/CODEOWNERS` on main: alice owns the charts, bob the docs; a ruleset requires code
/// owners' review.
fn require_code_owners(ctx: &Ctx) {
    commit_on_main(
        &ctx.sb,
        &[(
            ".github/CODEOWNERS",
            "# owners\n*.md @bob\n/charts/ @alice\n",
        )],
        "code owners",
    );
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            require_code_owner_review: true,
            ..Default::default()
        }),
    );
}

/// The revert PR meets the same rules: with `required_signatures`, a `rollback-merge-method:
/// merge` is refused by GitHub, and the rollback fails at once as a config error naming
/// `rollback-merge-method` rather than waiting out a rule no wait can meet.
#[test]
fn a_revert_merge_method_refused_by_required_signatures_fails_at_once_naming_the_input() {
    let ctx = Ctx::new();
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(Protection {
            required_signatures: true,
            ..Default::default()
        }),
    );
    let run = ctx.main(&[
        ("set", "image.tag=5.8.0-bad"),
        ("degraded-grace", "1s"),
        ("rollback-merge-method", "merge"),
        ("approval-timeout", "60s"),
    ]);
    run.assert_failed();
    let log = run.log();
    assert!(
        log.contains("Commits must have verified signatures")
            && log.contains("rollback-merge-method"),
        "{log}"
    );
    // Refused once, not retried for the minute the approval timeout would allow.
    let refused: Vec<_> = calls_to(&ctx.sb, "github", "PUT", "/pulls/2/merge")
        .into_iter()
        .filter(|c| c.status == 405)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let revert = ctx.sb.github.pr_view(REPO, 2).unwrap();
    assert!(!revert.merged, "{revert:?}");
}

/// GitHub's "Update branch" put its merge of the base on top of our commit, and the promotion was
/// left open (abort): a re-run of the same leg still takes over its own branch, looking through
/// GitHub's merge to our commit, instead of refusing it as someone else's.
#[test]
fn a_rerun_takes_over_its_branch_after_github_brought_it_up_to_date() {
    let ctx = Ctx::new();
    let first = ctx.main_attempt(41, 1, &[("set", "image.tag=6.0.0"), ("merge", "false")]);
    first.assert_ok();
    let ours = ctx.sb.github.pr_head(REPO, 1).unwrap();
    commit_on_main(&ctx.sb, &[("README.md", "other work\n")], "other work");
    let (api, token) = (ctx.sb.github_api_url.clone(), ctx.sb.world.token.clone());
    crate::harness::run(async {
        let o = crate::harness::octocrab(&api, Some(&token));
        let body = serde_json::json!({ "expected_head_sha": ours });
        let _: serde_json::Value = o
            .put(format!("/repos/{REPO}/pulls/1/update-branch"), Some(&body))
            .await
            .unwrap();
    });
    wait_until("GitHub's update merge", Duration::from_secs(30), || {
        ctx.sb.github.pr_head(REPO, 1).is_some_and(|h| h != ours)
    });
    let again = ctx.main_attempt(41, 2, &[("set", "image.tag=6.0.1")]);
    again.assert_ok();
    assert!(
        ctx.values_on_main().contains("tag: \"6.0.1\""),
        "{}",
        again.log()
    );
    assert_eq!(
        file_at(&ctx.sb, "refs/heads/main", "README.md").as_deref(),
        Some("other work\n")
    );
}
