//! `guard` and `status` end to end (issue #6): guard rolls back the last promotion when the gate
//! fails (Debian's Prometheus over the sandbox exporter) or an alert fires within
//! `rollback-window`, and leaves it alone outside the window, when it is already reverted, or when
//! there is none; status passes when every app is Synced at the base head and Healthy, and fails
//! after `grace` naming the app that lags.

use crate::harness::{commit_on_main, error_ratio, wait_until, Ctx, REPO};
use std::time::Duration;

/// An Alertmanager webhook body, as a relay puts it in a repository_dispatch's client_payload.
fn alert(status: &str) -> String {
    format!(
        r#"{{"version":"4","status":"{status}","commonLabels":{{"alertname":"HighErrorRate"}},"alerts":[{{"status":"{status}","labels":{{"alertname":"HighErrorRate","app":"app"}}}}]}}"#
    )
}

/// Committer time of `main`'s head, in seconds.
fn head_time(ctx: &Ctx) -> i64 {
    let repo = ctx.sb.world.open(REPO).unwrap();
    let head = repo.refname_to_id("refs/heads/main").unwrap();
    let t = repo.find_commit(head).unwrap().committer().when().seconds();
    t
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One `-errors` promotion (30% errors): a lenient gate keeps it, the real one (under 5%) reverts it.
#[test]
fn guard_keeps_a_promotion_that_passes_the_gate_and_reverts_one_that_fails_it() {
    let ctx = Ctx::with_metrics("app");
    let url = ctx.sb.prometheus.as_ref().unwrap().url.clone();
    // Scraped every second, so 5 s holds enough samples.
    let query = error_ratio("app", "5s");
    let guard = |condition: &str| {
        ctx.main(&[
            ("command", "guard"),
            ("prometheus-url", url.as_str()),
            ("query", query.as_str()),
            ("success-condition", condition),
            ("interval", "1s"),
            ("count", "5"),
        ])
    };
    let before = ctx.values_on_main();
    let promoted = ctx.main(&[("set", "image.tag=1.2.0-errors")]);
    promoted.assert_ok();
    let pr = promoted.output("pr-number").to_string();
    let head = ctx.main_sha();

    let run = guard("result < 0.9");
    run.assert_ok();
    assert_eq!(run.output("verification"), "successful", "{}", run.log());
    assert_eq!(run.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head, "a passing gate changes nothing");
    assert!(run.summary.contains("Gate passed"), "{}", run.summary);

    let run = guard("result < 0.05");
    run.assert_ok();
    assert_eq!(run.output("verification"), "failed", "{}", run.log());
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert_eq!(
        ctx.main_sha(),
        run.output("revert-sha"),
        "main is at the revert"
    );
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
    // The revert names the promotion's PR, found from its merge commit.
    let revert_pr: u64 = run.output("revert-pr-number").parse().unwrap();
    let title = ctx.sb.github.pr_view(REPO, revert_pr).unwrap().title;
    assert!(title.starts_with(&format!("Revert #{pr}: ")), "{title}");
    assert!(
        run.log().contains("::warning") && run.log().contains("rolling back"),
        "{}",
        run.log()
    );
}

#[test]
fn guard_leaves_a_promotion_older_than_the_window_alone() {
    let ctx = Ctx::new();
    ctx.main(&[("set", "image.tag=1.5.0")]).assert_ok();
    let head = ctx.main_sha();
    let merged = head_time(&ctx);
    wait_until(
        "the promotion to be older than rollback-window",
        Duration::from_secs(10),
        || now() - merged >= 2,
    );
    // Nothing listens on port 9: the gate must not even be asked outside the window.
    let run = ctx.main(&[
        ("command", "guard"),
        ("rollback-window", "1s"),
        ("prometheus-url", "http://127.0.0.1:9"),
        ("query", "up"),
        ("success-condition", "result == 1"),
    ]);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head);
    assert!(
        run.log().contains("outside rollback-window"),
        "{}",
        run.log()
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.5.0"));
}

#[test]
fn guard_with_a_resolved_alert_keeps_the_promotion_and_a_firing_one_reverts_it_once() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    ctx.main(&[("set", "image.tag=1.3.0")]).assert_ok();
    let head = ctx.main_sha();
    let resolved = alert("resolved");
    let run = ctx.main(&[("command", "guard"), ("alert", resolved.as_str())]);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.3.0"));

    let firing = alert("firing");
    let guard = [("command", "guard"), ("alert", firing.as_str())];
    let dry = ctx.main(&[guard[0], guard[1], ("dry-run", "true")]);
    dry.assert_ok();
    assert_eq!(dry.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head, "a dry run changes nothing");
    assert!(dry.log().contains("would roll back"), "{}", dry.log());

    let run = ctx.main(&guard);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert_eq!(ctx.values_on_main(), before);
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.0.0"));
    assert!(run.log().contains("HighErrorRate"), "{}", run.log());

    // The same alert again: the promotion is already reverted, nothing is left to undo.
    let head = ctx.main_sha();
    let again = ctx.main(&guard);
    again.assert_ok();
    assert_eq!(again.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head);
    assert!(again.log().contains("already reverted"), "{}", again.log());
}

/// Two promotions merged as merge commits: the newer merge (not its branch commit, which carries
/// the trailers too) is the last promotion, and only it is reverted.
#[test]
fn guard_reverts_only_the_newest_of_two_promotions() {
    let ctx = Ctx::new();
    ctx.main(&[("set", "image.tag=1.6.0"), ("merge-method", "merge")])
        .assert_ok();
    let first = ctx.values_on_main();
    let second = ctx.main(&[("set", "image.tag=1.7.0"), ("merge-method", "merge")]);
    second.assert_ok();
    let firing = alert("firing");
    let run = ctx.main(&[("command", "guard"), ("alert", firing.as_str())]);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "true", "{}", run.log());
    assert_eq!(ctx.values_on_main(), first, "back to the first promotion");
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.6.0"));
    let pr = second.output("pr-number");
    let revert_pr: u64 = run.output("revert-pr-number").parse().unwrap();
    let title = ctx.sb.github.pr_view(REPO, revert_pr).unwrap().title;
    assert!(title.starts_with(&format!("Revert #{pr}: ")), "{title}");
}

#[test]
fn guard_without_a_promotion_has_nothing_to_roll_back() {
    let ctx = Ctx::new();
    // Someone else's commit: no trailers, so not a promotion.
    commit_on_main(&ctx.sb, &[("README.md", "hello\n")], "Add a README");
    let head = ctx.main_sha();
    let firing = alert("firing");
    let run = ctx.main(&[("command", "guard"), ("alert", firing.as_str())]);
    run.assert_ok();
    assert_eq!(run.output("rolled-back"), "false");
    assert_eq!(ctx.main_sha(), head);
    assert!(run.log().contains("no promotion"), "{}", run.log());
    assert!(ctx.sb.github.prs(REPO).is_empty(), "no revert PR");
}

#[test]
fn guard_without_an_alert_needs_the_gate_inputs() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("command", "guard")]);
    assert_eq!(run.code, 2, "{}", run.log());
    let errors = run.errors().join("\n");
    assert!(errors.contains("prometheus-url"), "{errors}");
    assert!(errors.contains("query"), "{errors}");
    assert!(errors.contains("unless alert is set"), "{errors}");
}

#[test]
fn guard_rejects_an_alert_that_is_not_json_before_touching_anything() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("command", "guard"), ("alert", "firing")]);
    assert_eq!(run.code, 2, "{}", run.log());
    assert!(
        run.errors().iter().any(|e| e.contains("alert")),
        "{:?}",
        run.errors()
    );
}

#[test]
fn status_passes_when_every_app_is_synced_at_the_head_and_healthy() {
    let ctx = Ctx::new();
    let run = ctx.main(&[
        ("command", "status"),
        ("argocd-app", "app\napp-auto"),
        ("grace", "10s"),
    ]);
    run.assert_ok();
    assert_eq!(run.output("health"), "Healthy");
    assert_eq!(run.output("synced-revision"), ctx.main_sha());
    assert!(run.summary.contains("In sync"), "{}", run.summary);
    assert!(
        run.summary.contains("| app-auto | Synced |"),
        "{}",
        run.summary
    );
}

#[test]
fn status_fails_after_grace_naming_the_app_that_lags() {
    let ctx = Ctx::new();
    ctx.sb.argocd.set_poll_interval(200);
    let seed = ctx.main_sha();
    // A push to the apps' path that nobody syncs: the manual-sync app lags, the auto-sync app
    // catches up during grace. (A push elsewhere would leave both Synced at the new head, as Argo
    // CD compares the path, not the commit.)
    let values = format!("{}# tuned by hand\n", ctx.values_on_main());
    commit_on_main(
        &ctx.sb,
        &[(sandbox::world::SEED_VALUES_PATH, values.as_str())],
        "Tune the values",
    );
    let run = ctx.main(&[
        ("command", "status"),
        ("argocd-app", "app\napp-auto"),
        ("grace", "5s"),
    ]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(
        errors.contains(&format!("app: OutOfSync, at {}", &seed[..12])),
        "{errors}"
    );
    assert!(!errors.contains("app-auto:"), "{errors}\n{}", run.log());
    assert!(errors.contains("1 of 2 app(s)"), "{errors}");
    assert!(run.summary.contains("Drift"), "{}", run.summary);
    assert!(
        run.summary.contains("| app | OutOfSync |"),
        "{}",
        run.summary
    );
}

/// Issue #13: the promotion was already reverted with GitHub's Revert button, its PR squashed
/// with the PR's description (`Reverts acme/deploy#N`, no SHA): a firing alert finds nothing to undo.
#[test]
fn r13_guard_counts_a_revert_made_with_githubs_revert_button() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    let run = ctx.main(&[("set", "image.tag=1.8.0")]);
    run.assert_ok();
    let pr = run.output("pr-number");
    let by_button = commit_on_main(
        &ctx.sb,
        &[(sandbox::world::SEED_VALUES_PATH, before.as_str())],
        &format!("Revert \"Promote image.tag (#{pr})\" (#9)\n\nReverts {REPO}#{pr}\n"),
    );
    let firing = alert("firing");
    let guard = ctx.main(&[("command", "guard"), ("alert", firing.as_str())]);
    guard.assert_ok();
    assert_eq!(guard.output("rolled-back"), "false", "{}", guard.log());
    assert_eq!(ctx.main_sha(), by_button, "nothing pushed");
    assert!(guard.log().contains("already reverted"), "{}", guard.log());
}
