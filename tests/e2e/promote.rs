//! The promote flow end to end (issue #4): the built binary run as the runner runs it, against the
//! sandbox; every assertion is something a user would see (the repo, the PR, the app, the outputs).

use crate::harness::{calls_to, commit_on_main, while_running, Ctx, REPO};
use sandbox::github::Target;
use std::time::Duration;

/// Only the target scalar's bytes changed between two versions of the seeded values file.
fn assert_only_tag_changed(before: &str, after: &str, tag: &str) {
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "line count changed:\n{after}"
    );
    assert_eq!(changed.len(), 1, "more than one line changed:\n{after}");
    assert_eq!(
        changed[0].1,
        format!("  tag: \"{tag}\"   # promoted by gitops-promote")
    );
}

#[test]
fn promotes_with_each_merge_method_and_waits_for_healthy() {
    for method in ["squash", "merge", "rebase"] {
        let ctx = Ctx::new();
        let before = ctx.values_on_main();
        let run = ctx.main(&[
            ("set", "image.tag=1.1.0"),
            ("merge-method", method),
            ("labels", "deploy,prod"),
            ("argocd-app", "app"),
        ]);
        run.assert_ok();
        assert_eq!(run.output("changed"), "true");
        let merge_sha = run.output("merge-sha").to_string();
        assert_eq!(ctx.main_sha(), merge_sha, "{method}: main is at the merge");
        assert_only_tag_changed(&before, &ctx.values_on_main(), "1.1.0");
        assert_eq!(run.output("synced-revision"), merge_sha);
        assert_eq!(run.output("health"), "Healthy");
        assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.1.0"));
        let pr: u64 = run.output("pr-number").parse().unwrap();
        let labels = ctx.sb.github.pr_view(REPO, pr).expect("PR exists").labels;
        assert_eq!(
            labels,
            vec!["deploy".to_string(), "prod".to_string()],
            "{method}: PR labelled"
        );
        assert_eq!(run.state.get("phase").map(String::as_str), Some("done"));
        assert!(
            run.summary.contains("gitops-promote"),
            "summary written:\n{}",
            run.summary
        );
        assert!(run.summary.contains("```mermaid"), "summary has a timeline");
        // The post step after a successful job is not run (post-if: failure()), but if a later step
        // fails it must revert: covered in rollback tests.
    }
}

#[test]
fn approval_gate_waits_for_an_approval_added_later() {
    let ctx = Ctx::new();
    let mut approved_at = 0;
    let run = while_running(
        || {
            ctx.main(&[
                ("set", "image.tag=1.1.0"),
                ("required-approvals", "1"),
                ("argocd-app", "app"),
            ])
        },
        || {
            let pr = ctx.wait_for_pr();
            // Approve only once the gate has read the reviews and found none.
            wait_for_call(&ctx, "GET", &format!("/pulls/{pr}/reviews"), 0);
            approved_at = ctx.sb.faults.now_ms();
            ctx.sb
                .github
                .add_review(REPO, pr, "alice", "APPROVED", None)
                .expect("review added");
        },
    );
    run.assert_ok();
    assert!(run.log().contains("approvals 0/1"), "{}", run.log());
    let merged_at = last_call_at(&ctx, "PUT", "/merge").expect("a merge call");
    assert!(
        merged_at >= approved_at,
        "merged at {merged_at} ms, before the approval at {approved_at} ms"
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.1.0"));
}

/// Waits until the product called `method` on a GitHub path ending in `suffix` after `since_ms`.
fn wait_for_call(ctx: &Ctx, method: &str, suffix: &str, since_ms: u64) {
    crate::harness::wait_until(
        &format!("{method} …{suffix}"),
        Duration::from_secs(60),
        || {
            calls_to(&ctx.sb, "github", method, suffix)
                .iter()
                .any(|c| c.at_ms >= since_ms)
        },
    );
}

/// When the product last called `method` on a GitHub path ending in `suffix`, if it did.
fn last_call_at(ctx: &Ctx, method: &str, suffix: &str) -> Option<u64> {
    calls_to(&ctx.sb, "github", method, suffix)
        .last()
        .map(|c| c.at_ms)
}

#[test]
fn a_stale_approval_does_not_count_and_the_gate_times_out_as_approval() {
    let ctx = Ctx::new();
    let base = ctx.main_sha();
    let run = while_running(
        || {
            ctx.main(&[
                ("set", "image.tag=1.1.0"),
                ("required-approvals", "1"),
                ("approval-timeout", "4s"),
            ])
        },
        || {
            let pr = ctx.wait_for_pr();
            // An approval of another commit than the PR's head.
            ctx.sb
                .github
                .add_review(REPO, pr, "alice", "APPROVED", Some(&base))
                .expect("review");
        },
    );
    run.assert_failed();
    assert!(
        run.errors().iter().any(|e| e.contains("approval error")),
        "{:?}",
        run.errors()
    );
    // Nothing was merged; the rollback closed our PR with a comment.
    assert_eq!(ctx.main_sha(), base);
    let pr = ctx.sb.github.prs(REPO).pop().unwrap();
    assert_eq!(pr.state, "closed");
    assert!(!pr.merged);
}

#[test]
fn changes_requested_fails_the_gate_as_approval() {
    let ctx = Ctx::new();
    let base = ctx.main_sha();
    let run = while_running(
        || ctx.main(&[("set", "image.tag=1.1.0"), ("required-approvals", "1")]),
        || {
            let pr = ctx.wait_for_pr();
            ctx.sb
                .github
                .add_review(REPO, pr, "bob", "CHANGES_REQUESTED", None)
                .expect("review");
        },
    );
    run.assert_failed();
    assert!(
        run.errors().iter().any(|e| e.contains("approval error")),
        "{:?}",
        run.errors()
    );
    assert_eq!(ctx.main_sha(), base, "nothing merged");
}

#[test]
fn required_checks_pending_then_green_merge_and_a_failing_check_does_not() {
    for (conclusion, should_merge) in [("success", true), ("failure", false)] {
        let ctx = Ctx::new();
        ctx.sb.github.set_protection(
            REPO,
            "main",
            Some(sandbox::github::Protection {
                required_status_checks: vec!["ci".into()],
                ..Default::default()
            }),
        );
        let base = ctx.main_sha();
        let mut completed_at = 0;
        let run = while_running(
            || ctx.main(&[("set", "image.tag=1.1.0")]),
            || {
                let pr = ctx.wait_for_pr();
                let started = ctx.sb.faults.now_ms();
                ctx.sb
                    .github
                    .set_check_run(REPO, &Target::Pr(pr), "ci", "in_progress", None);
                // Complete it only once the gate has read it running.
                wait_for_call(&ctx, "GET", "/check-runs", started);
                completed_at = ctx.sb.faults.now_ms();
                ctx.sb.github.set_check_run(
                    REPO,
                    &Target::Pr(pr),
                    "ci",
                    "completed",
                    Some(conclusion),
                );
            },
        );
        assert!(run.log().contains("pending (ci)"), "{}", run.log());
        let merged_at = last_call_at(&ctx, "PUT", "/merge");
        if should_merge {
            run.assert_ok();
            assert_ne!(ctx.main_sha(), base);
            let merged_at = merged_at.expect("a merge call");
            assert!(
                merged_at >= completed_at,
                "merged at {merged_at} ms, before the check completed at {completed_at} ms"
            );
        } else {
            run.assert_failed();
            assert_eq!(ctx.main_sha(), base, "a failing check merges nothing");
            assert_eq!(merged_at, None, "a merge was attempted");
        }
    }
}

#[test]
fn auto_sync_and_selected_apps_are_waited_for_together() {
    let ctx = Ctx::new();
    for name in ["shop-web", "shop-worker"] {
        ctx.sb
            .argocd
            .create_app(
                serde_json::from_value(serde_json::json!({
                    "name": name, "labels": {"team": "checkout"}, "auto_sync": name == "shop-worker"
                }))
                .unwrap(),
            )
            .unwrap();
    }
    let run = ctx.main(&[
        ("set", "image.tag=1.5.0"),
        ("argocd-selector", "team=checkout"),
        ("argocd-app", ""),
    ]);
    run.assert_ok();
    let apps: serde_json::Value = serde_json::from_str(run.output("apps")).unwrap();
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in ["shop-web", "shop-worker"] {
        assert!(names.contains(&name));
        assert_eq!(
            ctx.sb.argocd.deployed_tag(name).as_deref(),
            Some("1.5.0"),
            "{name}"
        );
    }
    // The seeded apps (team=shop) were not selected and stay where they were.
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

#[test]
fn an_operation_already_in_progress_is_waited_out() {
    let ctx = Ctx::new();
    assert!(ctx.sb.argocd.start_long_operation("app", 2_000));
    let run = ctx.main(&[("set", "image.tag=1.6.0"), ("argocd-app", "app")]);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.6.0"));
}

#[test]
fn degraded_names_the_resource_and_a_failed_operation_is_a_sync_error() {
    let ctx = Ctx::new();
    let run = ctx.main(&[
        ("set", "image.tag=2.0.0-bad"),
        ("argocd-app", "app"),
        ("on-failure", "abort"),
    ]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(errors.contains("health error"), "{errors}");
    assert!(
        errors.contains("Deployment"),
        "the unhealthy resource is named: {errors}"
    );
    assert_eq!(
        run.state.get("on-failure").map(String::as_str),
        Some("skip")
    );

    let ctx = Ctx::new();
    assert!(ctx
        .sb
        .argocd
        .fail_next_sync("app", "one or more objects failed to apply"));
    let run = ctx.main(&[
        ("set", "image.tag=2.1.0"),
        ("argocd-app", "app"),
        ("on-failure", "abort"),
    ]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(errors.contains("sync error"), "{errors}");
    assert!(errors.contains("failed to apply"), "{errors}");
}

#[test]
fn a_rerun_takes_over_its_pr_and_a_value_already_set_opens_none() {
    let ctx = Ctx::new();
    let first = ctx.main_attempt(77, 1, &[("set", "image.tag=3.0.0"), ("merge", "false")]);
    first.assert_ok();
    let again = ctx.main_attempt(77, 2, &[("set", "image.tag=3.0.0"), ("merge", "false")]);
    again.assert_ok();
    assert_eq!(
        first.output("pr-number"),
        again.output("pr-number"),
        "the re-run reused the PR"
    );
    assert_eq!(ctx.sb.github.prs(REPO).len(), 1, "one PR, not two");

    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=1.0.0")]);
    run.assert_ok();
    assert_eq!(run.output("changed"), "false");
    assert!(
        ctx.sb.github.prs(REPO).is_empty(),
        "no PR for a value already set"
    );
}

#[test]
fn dry_run_prints_the_diff_and_plan_and_changes_nothing() {
    let ctx = Ctx::new();
    let head = ctx.main_sha();
    let run = ctx.main(&[
        ("set", "image.tag=4.0.0"),
        ("dry-run", "true"),
        ("argocd-app", "app"),
    ]);
    run.assert_ok();
    let log = run.log();
    assert!(
        log.contains("-  tag: \"1.0.0\"") && log.contains("+  tag: \"4.0.0\""),
        "{log}"
    );
    assert!(log.contains("dry run"), "{log}");
    assert_eq!(ctx.main_sha(), head);
    assert!(ctx.sb.github.prs(REPO).is_empty());
    let repo = ctx.sb.world.open(REPO).unwrap();
    let branches = repo.branches(None).unwrap().count();
    assert_eq!(branches, 1, "no branch pushed");
}

/// Found by the demo: the second promotion pushes from a shallow clone whose base has parents.
#[test]
fn a_promotion_on_a_base_with_history_pushes_from_the_shallow_clone() {
    let ctx = Ctx::new();
    commit_on_main(&ctx.sb, &[("README.md", "deploy repo\n")], "docs");
    commit_on_main(&ctx.sb, &[("README.md", "deploy repo!\n")], "docs again");
    let first = ctx.main(&[("set", "image.tag=1.1.0")]);
    first.assert_ok();
    let second = ctx.main(&[("set", "image.tag=1.2.0")]);
    second.assert_ok();
    assert!(ctx.values_on_main().contains("tag: \"1.2.0\""));
    // And the revert is pushed from a clone deepened only as far as the merge needs.
    let post = ctx.post(&[], &second.state);
    post.assert_ok();
    assert!(ctx.values_on_main().contains("tag: \"1.1.0\""));
}

/// While our PR waits for approval, someone changes the same line on the base: our branch is
/// rebuilt on the new base (a force-push of our own branch only), approved again, and merged; the
/// other commit stays in the base's history.
#[test]
fn a_conflict_with_a_newer_base_rebuilds_our_branch_and_merges() {
    let ctx = Ctx::new();
    let mut other = String::new();
    let run = while_running(
        || ctx.main(&[("set", "image.tag=7.0.0"), ("required-approvals", "1")]),
        || {
            let pr = ctx.wait_for_pr();
            let first_head = ctx.sb.github.pr_head(REPO, pr).unwrap();
            let theirs = ctx.values_on_main().replace("\"1.0.0\"", "\"1.9.0\"");
            other = commit_on_main(
                &ctx.sb,
                &[(sandbox::world::SEED_VALUES_PATH, theirs.as_str())],
                "hotfix 1.9.0",
            );
            crate::harness::wait_until("our branch rebuilt", Duration::from_secs(60), || {
                ctx.sb
                    .github
                    .pr_head(REPO, pr)
                    .is_some_and(|h| h != first_head)
            });
            ctx.sb
                .github
                .add_review(REPO, pr, "alice", "APPROVED", None)
                .expect("review");
        },
    );
    run.assert_ok();
    assert!(
        run.log().contains("applying the edit again"),
        "{}",
        run.log()
    );
    assert!(ctx.values_on_main().contains("tag: \"7.0.0\""));
    let repo = ctx.sb.world.open(REPO).unwrap();
    let head = repo.revparse_single("refs/heads/main").unwrap().id();
    let other = git2::Oid::from_str(&other).unwrap();
    assert!(
        repo.graph_descendant_of(head, other).unwrap(),
        "the other commit was kept"
    );
    assert_eq!(
        ctx.sb.github.prs(REPO).len(),
        1,
        "the same PR, not a second one"
    );
}

/// Per-environment auto-sync apps on one release repo: the merge changes staging's path only.
/// Argo CD compares prod Synced at the merge and skips its auto-sync, so no operation runs for it;
/// the promotion must still count prod as done, not wait for a sync that never comes.
#[test]
fn an_auto_sync_app_the_merge_leaves_unchanged_counts_as_deployed() {
    let ctx = Ctx::new();
    let values = ctx.values_on_main();
    commit_on_main(
        &ctx.sb,
        &[
            ("envs/staging/values.yaml", values.as_str()),
            ("envs/prod/values.yaml", values.as_str()),
        ],
        "Add the environments",
    );
    for env in ["staging", "prod"] {
        ctx.sb
            .argocd
            .create_app(
                serde_json::from_value(serde_json::json!({
                    "name": env, "auto_sync": true, "path": format!("envs/{env}"),
                    "labels": {"app": "shop"}
                }))
                .unwrap(),
            )
            .unwrap();
    }
    let run = ctx.main(&[
        ("set", "envs/staging/values.yaml:image.tag=2.0.0"),
        ("argocd-app", ""),
        ("argocd-selector", "app=shop"),
        ("health-timeout", "30s"),
    ]);
    run.assert_ok();
    assert_eq!(
        ctx.sb.argocd.deployed_tag("staging").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("prod").as_deref(), Some("1.0.0"));
    let merge = run.output("merge-sha").to_string();
    let apps: serde_json::Value = serde_json::from_str(run.output("apps")).unwrap();
    for app in apps.as_array().unwrap() {
        assert_eq!(app["revision"].as_str(), Some(merge.as_str()), "{apps}");
        assert_eq!(app["health"].as_str(), Some("Healthy"), "{apps}");
    }
    // Argo CD ran no sync of prod for the merge: its last operation is still the one before.
    let prod = ctx.sb.argocd.application("prod").unwrap();
    assert_ne!(
        prod["status"]["operationState"]["syncResult"]["revision"].as_str(),
        Some(merge.as_str()),
        "{prod}"
    );
    assert_eq!(
        prod["status"]["sync"]["revision"].as_str(),
        Some(merge.as_str())
    );
}

/// Argo CD replaces an app's own sync options with a request's: the sync keeps the app's
/// `ServerSideApply=true` and adds the input's, the input winning on the same name.
#[test]
fn sync_options_add_to_the_apps_own() {
    let ctx = Ctx::new();
    ctx.sb
        .argocd
        .create_app(
            serde_json::from_value(serde_json::json!({
                "name": "ssa", "sync_options": ["ServerSideApply=true", "Validate=false"]
            }))
            .unwrap(),
        )
        .unwrap();
    let run = ctx.main(&[
        ("set", "image.tag=2.1.0"),
        ("argocd-app", "ssa"),
        ("sync-options", "ApplyOutOfSyncOnly=true\nValidate=true"),
    ]);
    run.assert_ok();
    let app = ctx.sb.argocd.application("ssa").unwrap();
    assert_eq!(
        app["status"]["operationState"]["operation"]["sync"]["syncOptions"],
        serde_json::json!([
            "ServerSideApply=true",
            "ApplyOutOfSyncOnly=true",
            "Validate=true"
        ]),
        "{app}"
    );
}
