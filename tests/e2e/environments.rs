//! One release repo, several environments (issue #16): the legs of a matrix never share a branch
//! or a PR, a branch holding another change set is never taken over, and `guard` rolls back only
//! a promotion of the files and apps it watches.

use crate::harness::{Ctx, Run};
use sandbox::world::{SEED_BRANCH, SEED_REPO, SEED_VALUES, SEED_VALUES_PATH};

/// A second environment's values file beside the seeded one.
const DEV: &str = "charts/dev/values.yaml";

fn with_dev(ctx: &Ctx) {
    ctx.sb
        .world
        .commit(SEED_REPO, SEED_BRANCH, &[(DEV, SEED_VALUES)], "Add dev")
        .unwrap();
}

/// One leg of a matrix job: run `run_id` of the same job, promoting `tag` in `file` with no
/// Argo CD and no merge, plus `extra` inputs.
fn leg(ctx: &Ctx, run_id: u32, file: &str, tag: &str, extra: &[(&str, &str)]) -> Run {
    let set = format!("image.tag={tag}");
    let mut inputs = vec![
        ("file", file),
        ("set", set.as_str()),
        ("merge", "false"),
        ("argocd-server", ""),
        ("argocd-token", ""),
        ("argocd-app", ""),
    ];
    inputs.extend_from_slice(extra);
    ctx.main_attempt(run_id, 1, &inputs)
}

fn file_on(ctx: &Ctx, rev: &str, path: &str) -> String {
    ctx.sb
        .world
        .read_file(SEED_REPO, rev, path)
        .unwrap()
        .unwrap_or_default()
}

#[test]
fn two_legs_of_one_matrix_job_get_a_branch_and_a_pr_each() {
    let ctx = Ctx::new();
    with_dev(&ctx);
    // Same run, same job: only the leg's inputs differ, as in `strategy.matrix`.
    let run_id = ctx.next_run_id();
    let leg = |file: &str, tag: &str| leg(&ctx, run_id, file, tag, &[]);
    let prod = leg(SEED_VALUES_PATH, "2.0.0");
    prod.assert_ok();
    let dev = leg(DEV, "3.0.0");
    dev.assert_ok();
    assert_ne!(
        prod.output("pr-number"),
        dev.output("pr-number"),
        "{}",
        dev.log()
    );
    let view = |run: &crate::harness::Run| {
        let n: u64 = run.output("pr-number").parse().unwrap();
        ctx.sb.github.pr_view(SEED_REPO, n).unwrap()
    };
    let (p, d) = (view(&prod), view(&dev));
    assert_ne!(p.head_ref, d.head_ref);
    assert_eq!(prod.output("head-branch"), p.head_ref);
    assert_eq!(prod.output("pr-operation"), "created");
    // Each PR still holds its own leg's change, and says which file it promotes.
    assert!(file_on(&ctx, &p.head_ref, SEED_VALUES_PATH).contains("tag: \"2.0.0\""));
    assert!(file_on(&ctx, &d.head_ref, DEV).contains("tag: \"3.0.0\""));
    assert!(!file_on(&ctx, &p.head_ref, DEV).contains("3.0.0"));
    assert!(p.title.contains(SEED_VALUES_PATH), "{}", p.title);
    assert!(d.title.contains(DEV), "{}", d.title);

    // A re-run of the prod leg takes over its own PR.
    let again = leg(SEED_VALUES_PATH, "2.0.0");
    again.assert_ok();
    assert_eq!(again.output("pr-number"), prod.output("pr-number"));
    assert_eq!(again.output("pr-operation"), "updated");
    let n: u64 = again.output("pr-number").parse().unwrap();
    assert_eq!(
        ctx.sb.github.pr_head(SEED_REPO, n).as_deref(),
        Some(again.output("head-sha"))
    );
}

#[test]
fn a_branch_name_two_legs_share_is_not_taken_over() {
    let ctx = Ctx::new();
    with_dev(&ctx);
    let run_id = ctx.next_run_id();
    let shared = [("branch", "release/{run_id}")];
    let leg = |file: &str, tag: &str| leg(&ctx, run_id, file, tag, &shared);
    let prod = leg(SEED_VALUES_PATH, "2.0.0");
    prod.assert_ok();
    let n: u64 = prod.output("pr-number").parse().unwrap();
    let head = ctx.sb.github.pr_head(SEED_REPO, n).unwrap();
    let dev = leg(DEV, "3.0.0");
    dev.assert_failed();
    assert_eq!(dev.output("error-type"), "conflict");
    let errors = dev.errors().join("\n");
    assert!(errors.contains("holds another promotion"), "{errors}");
    assert!(errors.contains(SEED_VALUES_PATH), "{errors}");
    // Prod's branch and PR are as prod left them.
    assert_eq!(ctx.sb.github.pr_head(SEED_REPO, n).unwrap(), head);
    let p = ctx.sb.github.pr_view(SEED_REPO, n).unwrap();
    assert_eq!(p.state, "open");
    assert_eq!(
        ctx.sb.github.prs(SEED_REPO).len(),
        1,
        "no PR for the dev leg"
    );
}

#[test]
fn a_guard_for_prod_reverts_prods_promotion_not_devs_newer_one() {
    let ctx = Ctx::new();
    with_dev(&ctx);
    let prod_before = ctx.values_on_main();
    ctx.main(&[("set", "image.tag=1.6.0")]).assert_ok();
    // dev's promotion lands after prod's and deploys nothing watched here.
    ctx.main(&[
        ("file", DEV),
        ("set", "image.tag=9.9.9"),
        ("argocd-server", ""),
        ("argocd-token", ""),
        ("argocd-app", ""),
    ])
    .assert_ok();
    let alert =
        r#"{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"ProdErrors"}}]}"#;
    let run = ctx.main(&[("command", "guard"), ("alert", alert)]);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert_eq!(
        ctx.values_on_main(),
        prod_before,
        "prod's promotion is reverted"
    );
    assert!(
        file_on(&ctx, "refs/heads/main", DEV).contains("9.9.9"),
        "dev's promotion stays"
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}

/// A release repo on another instance than the workflow's (a GHES release repo promoted from
/// github.com, or the other way round): `github-api-url` and `github-server-url` reach it, and the
/// runner's own URLs, which point elsewhere, are only the run's.
#[test]
fn a_release_repo_on_another_instance_is_promoted_through_its_urls() {
    let ctx = Ctx::new();
    let inputs = ctx.inputs(&[
        ("set", "image.tag=5.5.0"),
        ("github-api-url", ctx.sb.github_api_url.as_str()),
        ("github-server-url", ctx.sb.git_url()),
    ]);
    let work = ctx.workspace();
    let none = std::collections::BTreeMap::new();
    let mut launch = ctx.launch(
        crate::harness::Step::Main,
        crate::harness::Job::Success,
        &inputs,
        &none,
        &work,
    );
    // The workflow's own instance: nothing of the release repo is there.
    launch.api_url = "http://127.0.0.1:9/api/v3";
    launch.server_url = "http://127.0.0.1:9";
    let run = launch.run();
    run.assert_ok();
    assert!(ctx.values_on_main().contains("5.5.0"));
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("5.5.0"));
}
