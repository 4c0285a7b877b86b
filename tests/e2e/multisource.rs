//! Multi-source apps (issue #14): a Helm chart from a chart repo plus the release repo as a
//! `ref: values` source, as Argo CD v3 writes them. Their commit sits in `revisions` at the
//! release repo's position, `revision` is empty or absent, and a pinned sync goes through
//! `revisions` with `sourcePositions`: outputs, state, `status` and the history fallback read it.

use crate::harness::{calls_to, commit_on_main, main_sha, Ctx};
use sandbox::argocd::NewApp;
use std::collections::BTreeMap;

const VALUES: &str = sandbox::world::SEED_VALUES_PATH;

#[test]
fn a_multi_source_app_is_promoted_and_reported_at_the_release_repos_commit() {
    let ctx = Ctx::new();
    let seed = main_sha(&ctx.sb);
    assert!(ctx.sb.argocd.set_multi_source("app", true));
    let run = ctx.main(&[("set", "image.tag=2.0.0")]);
    run.assert_ok();
    let merge = run.output("merge-sha").to_string();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("2.0.0"));
    // The commit, not the chart's version (the first of `revisions`).
    assert_eq!(run.output("synced-revision"), merge);
    let apps: serde_json::Value = serde_json::from_str(run.output("apps")).unwrap();
    assert_eq!(apps[0]["revision"], merge.as_str(), "{apps}");
    let previous: BTreeMap<String, String> =
        serde_json::from_str(&run.state["previous-revisions"]).unwrap();
    assert_eq!(previous.get("app"), Some(&seed), "{previous:?}");
    // `status` reads the release repo's revision too: Synced at the head, no drift.
    let status = ctx.main(&[("command", "status")]);
    status.assert_ok();
    assert!(
        status.log().contains("every app is Synced"),
        "{}",
        status.log()
    );
}

#[test]
fn a_pinned_sync_of_a_multi_source_app_names_the_release_repos_position() {
    let ctx = Ctx::new();
    // The app tracks `HEAD` and the promotion names `base`, so the sync pins the merge (a later
    // push must not ride along); `revision` alone Argo CD would ignore.
    ctx.sb
        .argocd
        .create_app(NewApp {
            name: "web".into(),
            labels: BTreeMap::new(),
            auto_sync: false,
            path: None,
            target_revision: Some("HEAD".into()),
            project: None,
            sync_options: vec![],
        })
        .unwrap();
    assert!(ctx.sb.argocd.set_multi_source("web", true));
    let run = ctx.main(&[
        ("set", "image.tag=3.0.0"),
        ("argocd-app", "web"),
        ("base", "main"),
    ]);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("web").as_deref(), Some("3.0.0"));
    let syncs = calls_to(&ctx.sb, "argocd", "POST", "/web/sync");
    let body = syncs.last().and_then(|c| c.body.clone()).expect("a sync");
    assert_eq!(body["sourcePositions"], serde_json::json!(["2"]), "{body}");
    assert_eq!(body["revisions"][0], run.output("merge-sha"), "{body}");
    assert!(body.get("revision").is_none(), "{body}");
}

/// The history fallback finds the entry by the release repo's commit in `revisions`.
#[test]
fn the_history_fallback_rolls_a_multi_source_app_back() {
    let ctx = Ctx::new();
    assert!(ctx.sb.argocd.set_multi_source("app", true));
    let run = ctx.main(&[("set", "image.tag=1.8.0")]);
    run.assert_ok();
    let theirs = ctx.values_on_main().replace("\"1.8.0\"", "\"1.9.0\"");
    commit_on_main(&ctx.sb, &[(VALUES, theirs.as_str())], "hotfix: 1.9.0");
    let post = ctx.post(&[("history-fallback", "true")], &run.state);
    post.assert_ok();
    assert!(
        post.log()
            .contains("OutOfSync because main still holds the promoted values"),
        "{}",
        post.log()
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
}
