//! Merge queues (issue #13): a base whose rules require the merge queue answers the REST merge
//! 405 "Changes must be made through the merge queue"; the binary enqueues the PR through GraphQL
//! and waits until GitHub merges its merge group once the required check passes on it, or fails
//! naming why the PR left the queue. The emulator validates every GraphQL request against
//! GitHub's published schema.

use crate::harness::{octocrab, run, while_running, Ctx, REPO};
use sandbox::github::Target;
use serde_json::{json, Value};
use std::time::Duration;

/// Reports `state` for `ci/test` on the merge group of the PR once it is in the queue; returns
/// the group's commit.
/// `None` when no merge group came within a minute (the step's log then says why).
fn report_on_the_merge_group(ctx: &Ctx, state: &str) -> Option<String> {
    let mut group = None;
    let mut n = 0;
    for _ in 0..600 {
        // The newest PR: after a promotion, the revert PR the post step opens.
        n = ctx.wait_for_pr();
        group = ctx.sb.github.merge_group_sha(REPO, n);
        if group.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let group = group?;
    assert!(!ctx.sb.github.pr_view(REPO, n).unwrap().merged);
    assert!(ctx
        .sb
        .github
        .set_status(REPO, &Target::Sha(group.clone()), "ci/test", state));
    Some(group)
}

#[test]
fn r13_a_base_that_requires_the_merge_queue_is_merged_through_it() {
    let ctx = Ctx::new();
    ctx.sb
        .github
        .require_merge_queue(REPO, "main", Some(&["ci/test"]));
    let mut group = None;
    let run = while_running(
        || ctx.main(&[("set", "image.tag=6.0.0"), ("argocd-app", "app")]),
        || group = report_on_the_merge_group(&ctx, "success"),
    );
    run.assert_ok();
    let group = group.unwrap_or_else(|| panic!("no merge group: {}", run.log()));
    assert_eq!(run.output("merge-sha"), group, "{}", run.log());
    assert_eq!(
        ctx.main_sha(),
        group,
        "main fast-forwarded to the merge group"
    );
    assert!(ctx.values_on_main().contains("\"6.0.0\""));
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("6.0.0"));
    let log = run.log();
    assert!(log.contains("added it to the queue"), "{log}");
    assert!(log.contains("merged by the merge queue"), "{log}");
    assert!(
        run.summary.contains("| merge (through the merge queue) |"),
        "{}",
        run.summary
    );
    let n: u64 = run.output("pr-number").parse().unwrap();
    assert!(ctx.sb.github.pr_view(REPO, n).unwrap().merged);
}

#[test]
fn r13_a_check_failing_on_the_merge_group_fails_naming_why_and_merges_nothing() {
    let ctx = Ctx::new();
    ctx.sb
        .github
        .require_merge_queue(REPO, "main", Some(&["ci/test"]));
    let head = ctx.main_sha();
    let mut group = None;
    let run = while_running(
        || ctx.main(&[("set", "image.tag=6.1.0")]),
        || group = report_on_the_merge_group(&ctx, "failure"),
    );
    run.assert_failed();
    assert!(group.is_some(), "no merge group: {}", run.log());
    assert_eq!(ctx.main_sha(), head, "nothing merged");
    let errors = run.errors();
    assert!(
        errors.iter().any(|e| e.contains("removed PR #")
            && e.contains("merge queue")
            && e.contains("check failed")),
        "{errors:?}"
    );
}

/// The emulator answers a query that does not validate against GitHub's schema as GitHub does.
#[test]
fn r13_graphql_requests_are_checked_against_githubs_schema() {
    let ctx = Ctx::new();
    let api = ctx.sb.github_api_url.clone();
    let token = ctx.sb.world.token.clone();
    run(async {
        let o = octocrab(&api, Some(&token));
        let refused = |q: &str| {
            let o = &o;
            let q = q.to_string();
            async move {
                match o.graphql::<Value>(&json!({ "query": q })).await {
                    Err(e) => format!("{e:?}"),
                    Ok(v) => panic!("validated: {v}"),
                }
            }
        };
        let e = refused("query { node(id: \"x\") { ... on PullRequest { mergedd } } }").await;
        assert!(
            e.contains("Field 'mergedd' doesn't exist on type 'PullRequest'"),
            "{e}"
        );
        let e = refused("mutation { enqueuePullRequest(input: {pullRequestId: \"x\", method: MERGE}) { clientMutationId } }").await;
        assert!(
            e.contains("InputObject 'EnqueuePullRequestInput' doesn't accept argument 'method'"),
            "{e}"
        );
        let ok: Value = o
            .graphql(
                &json!({"query": "query { node(id: \"x\") { ... on PullRequest { merged } } }"}),
            )
            .await
            .unwrap();
        assert_eq!(ok, json!({"node": null}));
    });
}

/// On GitHub Enterprise Server GraphQL sits beside REST: `/api/graphql` for REST at `/api/v3`.
#[test]
fn r13_on_ghes_the_queue_is_reached_at_api_graphql() {
    let ctx = Ctx::new();
    ctx.sb
        .github
        .require_merge_queue(REPO, "main", Some(&["ci/test"]));
    let api = format!("{}/api/v3", ctx.sb.ghes_url);
    let mut group = None;
    let run = while_running(
        || {
            ctx.main(&[
                ("set", "image.tag=6.2.0"),
                ("github-api-url", api.as_str()),
                ("github-server-url", ctx.sb.ghes_url.as_str()),
            ])
        },
        || group = report_on_the_merge_group(&ctx, "success"),
    );
    run.assert_ok();
    assert_eq!(Some(ctx.main_sha()), group, "{}", run.log());
    let posts = crate::harness::calls_to(&ctx.sb, "github", "POST", "/graphql");
    assert!(!posts.is_empty());
    assert!(posts.iter().all(|c| c.path == "/api/graphql"), "{posts:?}");
}

/// The revert PR meets the same queue: the post step enqueues it, and the base is back at the
/// values before the promotion once the check passes on its merge group.
#[test]
fn r13_a_revert_goes_through_the_merge_queue_too() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=6.3.0")]);
    run.assert_ok();
    ctx.sb
        .github
        .require_merge_queue(REPO, "main", Some(&["ci/test"]));
    let mut group = None;
    let post = while_running(
        || ctx.post(&[], &run.state),
        || group = report_on_the_merge_group(&ctx, "success"),
    );
    post.assert_ok();
    assert_eq!(Some(ctx.main_sha()), group, "{}", post.log());
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(post.output("revert-sha"), ctx.main_sha());
    assert!(
        post.log().contains("merged by the merge queue"),
        "{}",
        post.log()
    );
}
