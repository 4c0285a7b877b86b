//! Rollback end to end (issue #5): in the main step by the failure strategy, in the post step from
//! `STATE_*` as the runner hands it over, and standalone.

use crate::harness::{commit_on_main, file_at, Ctx, REPO};
use std::collections::BTreeMap;

const VALUES: &str = sandbox::world::SEED_VALUES_PATH;

/// A bad tag goes Degraded: the main step reverts at once, fails, and the values are as before.
#[test]
fn a_degraded_promotion_is_reverted_and_healthy_again() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=1.2.0-bad"), ("argocd-app", "app")]);
    run.assert_failed();
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    let revert_sha = run.output("revert-sha").to_string();
    assert_eq!(ctx.main_sha(), revert_sha, "main is at the revert");
    assert_eq!(
        ctx.values_on_main(),
        before,
        "values as before the promotion"
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
    let errors = run.errors();
    assert!(
        errors.iter().any(|e| e.contains("health")),
        "a health annotation: {errors:?}"
    );
    // The original PR says what happened; the revert PR is titled after it.
    let pr: u64 = run.output("pr-number").parse().unwrap();
    let original = ctx.sb.github.pr_view(REPO, pr).unwrap();
    assert!(
        original
            .comments
            .iter()
            .any(|(_, b)| b.contains("Rolled back")),
        "{original:?}"
    );
    let revert_pr: u64 = run.output("revert-pr-number").parse().unwrap();
    let revert = ctx.sb.github.pr_view(REPO, revert_pr).unwrap();
    assert!(
        revert.title.starts_with(&format!("Revert #{pr}: ")),
        "{}",
        revert.title
    );
    assert!(revert.merged);
    // The post step then finds the work done and changes nothing.
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), revert_sha);
}

/// Main succeeds; a later step of the job fails; the post step reverts from state.
#[test]
fn a_later_failing_step_makes_the_post_step_revert() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    // The runner hands the post step the main step's inputs (and every other declared one).
    let inputs = [("set", "image.tag=1.3.0"), ("argocd-app", "app\napp-auto")];
    let run = ctx.main(&inputs);
    run.assert_ok();
    assert_eq!(
        ctx.sb.argocd.deployed_tag("app-auto").as_deref(),
        Some("1.3.0")
    );
    let post = ctx.post(&inputs, &run.state);
    post.assert_ok();
    assert_eq!(ctx.values_on_main(), before);
    for app in ["app", "app-auto"] {
        assert_eq!(
            ctx.sb.argocd.deployed_tag(app).as_deref(),
            Some("1.0.0"),
            "{app}\n{}",
            post.log()
        );
    }
    assert!(post.summary.contains("Rolled back"), "{}", post.summary);
    // Idempotent: a second post run finds the `Reverts:` trailer and does nothing.
    let head = ctx.main_sha();
    let again = ctx.post(&[], &run.state);
    again.assert_ok();
    assert_eq!(ctx.main_sha(), head);
    assert!(again.log().contains("already reverted"), "{}", again.log());
}

/// Main fails before anything was pushed: the post step does nothing remote.
#[test]
fn nothing_pushed_means_nothing_to_undo() {
    let ctx = Ctx::new();
    let head = ctx.main_sha();
    let run = ctx.main(&[("set", "image.nope=1")]);
    run.assert_failed();
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), head);
    assert!(ctx.sb.github.prs(REPO).is_empty());
}

/// A PR opened but not merged (the gate failed): post closes it with a comment and deletes the branch.
#[test]
fn an_unmerged_pr_is_closed_with_a_comment_and_its_branch_deleted() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=2.0.0"), ("merge", "false")]);
    run.assert_ok();
    let pr: u64 = run.output("pr-number").parse().unwrap();
    // merge: false ends with on-failure=skip; a job failing later should still clean up if asked:
    let mut state: BTreeMap<String, String> = run.state.clone();
    state.insert("on-failure".into(), "rollback".into());
    let post = ctx.post(&[], &state);
    post.assert_ok();
    let view = ctx.sb.github.pr_view(REPO, pr).unwrap();
    assert_eq!(view.state, "closed");
    assert!(!view.merged);
    assert!(
        view.comments
            .iter()
            .any(|(_, b)| b.contains("nothing was deployed")),
        "{view:?}"
    );
    let repo = ctx.sb.world.open(REPO).unwrap();
    assert!(
        repo.find_reference(&format!("refs/heads/{}", view.head_ref))
            .is_err(),
        "branch deleted"
    );
}

/// A standalone rollback from another job, given only the PR number.
#[test]
fn standalone_rollback_by_pr_number() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=1.4.0"), ("argocd-app", "app")]);
    run.assert_ok();
    let pr = run.output("pr-number").to_string();
    let rb = ctx.main(&[
        ("command", "rollback"),
        ("pr-number", &pr),
        ("argocd-app", "app"),
    ]);
    rb.assert_ok();
    assert_eq!(rb.output("rolled-back"), "true");
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

/// Each merge method is reverted by the post step, and a later unrelated commit on the base survives.
#[test]
fn each_merge_method_is_reverted_keeping_later_unrelated_commits() {
    for method in ["merge", "squash", "rebase"] {
        let ctx = Ctx::new();
        let before = ctx.values_on_main();
        let run = ctx.main(&[("set", "image.tag=1.7.0"), ("merge-method", method)]);
        run.assert_ok();
        // Someone else lands an unrelated change after ours.
        commit_on_main(
            &ctx.sb,
            &[("charts/api/values.yaml", "replicas: 3\n")],
            "api: 3 replicas",
        );
        let post = ctx.post(&[("merge-method", method)], &run.state);
        post.assert_ok();
        assert_eq!(ctx.values_on_main(), before, "{method}: values as before");
        let api = file_at(&ctx.sb, "refs/heads/main", "charts/api/values.yaml");
        assert_eq!(
            api.as_deref(),
            Some("replicas: 3\n"),
            "{method}: the later commit survives"
        );
        assert_eq!(
            ctx.sb.argocd.deployed_tag("app").as_deref(),
            Some("1.0.0"),
            "{method}"
        );
    }
}

/// Someone changed the same line after us: the revert conflicts, fails naming the file, and pushes
/// nothing to the base; with `history-fallback` the app goes back by Argo CD history instead.
#[test]
fn a_revert_conflict_pushes_nothing_and_history_fallback_restores_the_app() {
    for fallback in [false, true] {
        let ctx = Ctx::new();
        let run = ctx.main(&[("set", "image.tag=1.8.0")]);
        run.assert_ok();
        let theirs = ctx.values_on_main().replace("\"1.8.0\"", "\"1.9.0\"");
        commit_on_main(&ctx.sb, &[(VALUES, theirs.as_str())], "hotfix: 1.9.0");
        let head = ctx.main_sha();
        let prs = ctx.sb.github.prs(REPO).len();
        let post = ctx.post(
            &[("history-fallback", if fallback { "true" } else { "false" })],
            &run.state,
        );
        assert_eq!(ctx.main_sha(), head, "nothing pushed to the base");
        assert_eq!(ctx.sb.github.prs(REPO).len(), prs, "no revert PR opened");
        if fallback {
            post.assert_ok();
            assert!(post.log().contains("history"), "{}", post.log());
            // OutOfSync against git is the fallback's success, and the log says why.
            assert!(
                post.log()
                    .contains("OutOfSync because main still holds the promoted values"),
                "{}",
                post.log()
            );
            assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
        } else {
            post.assert_failed();
            let errors = post.errors().join("\n");
            assert!(
                errors.contains("conflict error") && errors.contains(VALUES),
                "{errors}"
            );
            assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.8.0"));
        }
    }
}

/// A standalone rollback given an unmerged PR it did not open leaves that PR alone.
#[test]
fn standalone_rollback_of_an_unmerged_pr_touches_nothing() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=5.0.0"), ("merge", "false")]);
    run.assert_ok();
    let pr = run.output("pr-number").to_string();
    let rb = ctx.main(&[("command", "rollback"), ("pr-number", &pr)]);
    rb.assert_ok();
    assert_eq!(rb.output("rolled-back"), "false");
    let view = ctx.sb.github.pr_view(REPO, pr.parse().unwrap()).unwrap();
    assert_eq!(view.state, "open", "not ours to close in this run");
    assert!(view.comments.is_empty());
}

/// The revert PR cannot be merged (its approval never comes): it stays open with a comment saying
/// that production still runs the promotion, and the step fails.
#[test]
fn a_revert_that_cannot_merge_is_left_open_with_a_comment() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=5.1.0")]);
    run.assert_ok();
    let head = ctx.main_sha();
    let post = ctx.post(
        &[
            ("rollback-required-approvals", "1"),
            ("approval-timeout", "3s"),
        ],
        &run.state,
    );
    post.assert_failed();
    assert_eq!(ctx.main_sha(), head, "the base keeps the promotion");
    let revert = ctx.sb.github.prs(REPO).pop().unwrap();
    assert!(revert.title.starts_with("Revert #"), "{revert:?}");
    assert_eq!(revert.state, "open");
    assert!(
        revert
            .comments
            .iter()
            .any(|(_, b)| b.contains("could not merge this revert")),
        "{revert:?}"
    );
}

/// `abort` at the gate leaves our unmerged PR open, with a comment saying why.
#[test]
fn abort_before_the_merge_comments_on_the_pr_it_leaves_open() {
    let ctx = Ctx::new();
    let run = ctx.main(&[
        ("set", "image.tag=5.2.0"),
        ("required-approvals", "1"),
        ("approval-timeout", "3s"),
        ("on-failure", "abort"),
    ]);
    run.assert_failed();
    let pr = ctx.sb.github.prs(REPO).pop().unwrap();
    assert_eq!(pr.state, "open");
    assert!(
        pr.comments
            .iter()
            .any(|(_, b)| b.contains("aborted this promotion")),
        "{pr:?}"
    );
}

/// Killed after the merge but before the state said so: state reads `pr-open` while the PR is
/// merged. The post step asks GitHub, finds the merge, and reverts it instead of closing a PR that
/// is already in production.
#[test]
fn a_merge_the_state_never_recorded_is_still_reverted() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=9.0.0"), ("merge", "false")]);
    run.assert_ok();
    let pr: u64 = run.output("pr-number").parse().unwrap();
    // What the killed main step had done, and its state had not recorded.
    let head = ctx.sb.github.pr_head(REPO, pr).unwrap();
    let merged = crate::harness::run(async {
        let gh = crate::harness::github_client(&ctx.sb);
        gh.merge(pr, gitops_promote::base::MergeMethod::Squash, &head)
            .await
            .unwrap()
    });
    assert!(
        matches!(
            merged,
            gitops_promote::clients::github::Merge::Merged { .. }
        ),
        "{merged:?}"
    );
    assert!(ctx.values_on_main().contains("tag: \"9.0.0\""));

    let mut state = run.state.clone();
    assert_eq!(state.get("phase").map(String::as_str), Some("pr-open"));
    state.insert("on-failure".into(), "rollback".into());
    let post = ctx.post(&[], &state);
    post.assert_ok();
    assert_eq!(post.output("rolled-back"), "true", "{}", post.log());
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

/// Issue #13: the ruleset on the base requires a review, so the revert PR cannot merge. It stays
/// open with a comment saying what blocks it and that production still runs the promotion, and
/// the post step fails saying so, with the revert PR's URL.
fn promote_then_require_a_review(ctx: &Ctx, tag: &str) -> BTreeMap<String, String> {
    let run = ctx.main(&[("set", &format!("image.tag={tag}"))]);
    run.assert_ok();
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(sandbox::github::Protection {
            required_approving_review_count: 1,
            ..Default::default()
        }),
    );
    run.state
}

#[test]
fn r13_a_revert_a_ruleset_blocks_stays_open_saying_production_runs_the_promotion() {
    let ctx = Ctx::new();
    let state = promote_then_require_a_review(&ctx, "5.2.0");
    let head = ctx.main_sha();
    let post = ctx.post(&[("approval-timeout", "3s")], &state);
    post.assert_failed();
    assert_eq!(ctx.main_sha(), head, "the base keeps the promotion");
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("5.2.0"));
    let revert = ctx.sb.github.prs(REPO).pop().unwrap();
    assert!(revert.title.starts_with("Revert #"), "{revert:?}");
    assert_eq!(revert.state, "open", "the revert PR is left for a human");
    let note = revert
        .comments
        .iter()
        .map(|(_, b)| b.as_str())
        .find(|b| b.contains("could not merge this revert"))
        .unwrap_or_else(|| panic!("no comment on the revert PR: {revert:?}"));
    assert!(note.contains("approving review"), "what blocks it: {note}");
    assert!(note.contains("Production still runs"), "{note}");
    let errors = post.errors();
    let url = post.output("revert-pr-url");
    assert!(url.ends_with(&format!("/pull/{}", revert.number)), "{url}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("approving review") && e.contains(url)),
        "the error names the rule and the revert PR: {errors:?}"
    );
}

/// The same ruleset, with `rollback-github-token` a bypass actor's token: the revert merges and
/// the app runs the version before the promotion again.
#[test]
fn r13_rollback_github_token_may_bypass_the_ruleset() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let state = promote_then_require_a_review(&ctx, "5.3.0");
    let bypass = "ghs_releasebot_bypass";
    ctx.sb.github.allow_bypass(REPO, "main", bypass);
    let post = ctx.post(
        &[
            ("approval-timeout", "3s"),
            ("rollback-github-token", bypass),
        ],
        &state,
    );
    post.assert_ok();
    assert_eq!(ctx.values_on_main(), before, "{}", post.log());
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
    let revert = ctx.sb.github.prs(REPO).pop().unwrap();
    assert!(revert.merged, "{revert:?}");
    assert!(
        post.log().contains("rollback-github-token"),
        "{}",
        post.log()
    );
    // Masked before anything else is printed, and nowhere else in the log.
    let log = post.log();
    assert!(log.contains(&format!("::add-mask::{bypass}")), "{log}");
    assert!(
        log.lines()
            .all(|l| !l.contains(bypass) || l.starts_with("::add-mask::")),
        "{log}"
    );
}

/// Issue #13: someone already reverted the promotion with GitHub's Revert button, and its PR was
/// squash-merged with the PR's title and description (`Reverts acme/deploy#1`, no SHA): the post
/// step finds the rollback done and opens nothing.
#[test]
fn r13_a_revert_made_with_githubs_revert_button_counts_as_done() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=5.4.0")]);
    run.assert_ok();
    let pr = run.output("pr-number").to_string();
    let title = ctx
        .sb
        .github
        .pr_view(REPO, pr.parse().unwrap())
        .unwrap()
        .title;
    let by_button = commit_on_main(
        &ctx.sb,
        &[(VALUES, before.as_str())],
        &format!("Revert \"{title} (#{pr})\" (#9)\n\nReverts {REPO}#{pr}\n"),
    );
    let prs = ctx.sb.github.prs(REPO).len();
    let post = ctx.post(&[], &run.state);
    post.assert_ok();
    assert_eq!(ctx.main_sha(), by_button, "nothing pushed: {}", post.log());
    assert_eq!(ctx.sb.github.prs(REPO).len(), prs, "no revert PR opened");
    assert!(
        post.log()
            .contains(&format!("already reverted by {by_button}")),
        "{}",
        post.log()
    );
    assert_eq!(post.output("revert-sha"), by_button);
}

/// Issue #13: a required check that never comes on the revert PR leaves it open too, saying so.
#[test]
fn r13_a_revert_whose_required_check_never_comes_stays_open_saying_so() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=5.5.0")]);
    run.assert_ok();
    ctx.sb.github.set_ruleset(
        REPO,
        "main",
        Some(sandbox::github::Protection {
            required_status_checks: vec!["ci/test".into()],
            ..Default::default()
        }),
    );
    let head = ctx.main_sha();
    let post = ctx.post(&[("approval-timeout", "3s")], &run.state);
    post.assert_failed();
    assert_eq!(ctx.main_sha(), head, "the base keeps the promotion");
    let revert = ctx.sb.github.prs(REPO).pop().unwrap();
    assert_eq!(revert.state, "open", "{revert:?}");
    assert!(
        revert
            .comments
            .iter()
            .any(|(_, b)| b.contains("ci/test") && b.contains("Production still runs")),
        "{revert:?}"
    );
    let url = post.output("revert-pr-url");
    assert!(
        post.errors()
            .iter()
            .any(|e| e.contains("ci/test") && e.contains(url)),
        "{:?}",
        post.errors()
    );
}
