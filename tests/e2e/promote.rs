//! The promote flow end to end (issue #4): the built binary run as the runner runs it, against the
//! sandbox; every assertion is something a user would see (the repo, the PR, the app, the outputs).

use crate::harness::Ctx;

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
        let labels = ctx
            .sb
            .github
            .pr_view("acme/deploy", pr)
            .expect("PR exists")
            .labels;
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
