//! Argo CD conditions as the controller keeps them (issue #14): a ComparisonError left by the
//! commit before the merge stays in `status.conditions` while the sync that fixes it runs, until
//! the controller compares again. The wait must not take it for the merge's failure.

use crate::harness::{wait_until, Ctx};
use sandbox::world::{SEED_BRANCH, SEED_REPO, SEED_VALUES_PATH};
use std::time::Duration;

#[test]
fn a_promotion_that_fixes_a_broken_render_is_not_reverted_for_the_old_comparison_error() {
    let ctx = Ctx::new();
    ctx.sb.argocd.set_poll_interval(200);
    // Someone pushed values the chart cannot render (Helm's `required` on image.tag).
    let broken = ctx
        .values_on_main()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("tag:") {
                format!("{}tag: \"\"", &l[..l.len() - l.trim_start().len()])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    ctx.sb
        .world
        .commit(
            SEED_REPO,
            SEED_BRANCH,
            &[(SEED_VALUES_PATH, &broken)],
            "Empty the tag",
        )
        .unwrap();
    wait_until("the ComparisonError", Duration::from_secs(30), || {
        let app = ctx.sb.argocd.application("app").unwrap();
        app["status"]["conditions"][0]["type"] == "ComparisonError"
    });

    let run = ctx.main(&[("set", "image.tag=1.2.0")]);
    run.assert_ok();
    assert_eq!(run.output("health"), "Healthy");
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.2.0"));
    assert!(
        ctx.values_on_main().contains("tag: 1.2.0")
            || ctx.values_on_main().contains("tag: \"1.2.0\""),
        "the promotion stays merged: {}",
        ctx.values_on_main()
    );
    assert!(!run.outputs.contains_key("revert-sha"), "{}", run.log());
    let app = ctx.sb.argocd.application("app").unwrap();
    assert!(
        app["status"]["conditions"].is_null(),
        "the comparison after the sync cleared it: {app}"
    );
}

/// Argo CD 3.3's `requireOverridePrivilegeForRevisionSync` with a token that lacks `override`: a
/// sync naming a revision is refused, so an app tracking the base is synced without one (the
/// merge is its head).
#[test]
fn an_app_tracking_the_base_is_synced_without_naming_a_revision() {
    let ctx = Ctx::new();
    ctx.sb.argocd.require_override_for_revision(true);
    let run = ctx.main(&[("set", "image.tag=1.4.0")]);
    run.assert_ok();
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.4.0"));
}

/// A deny sync window that ends within health-timeout is waited out, saying so.
#[test]
fn a_sync_window_that_ends_in_time_is_waited_out() {
    let ctx = Ctx::new();
    ctx.sb.argocd.block_syncs_for(4000);
    let run = ctx.main(&[("set", "image.tag=1.5.0")]);
    run.assert_ok();
    assert!(
        run.log()
            .contains("app: a sync window blocks syncs; trying again every 10s"),
        "{}",
        run.log()
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.5.0"));
}

/// The API server answers `GET ?refresh=` only once the controller has reconciled: a busy
/// controller makes it slower than `request-timeout`. The refresh was asked for all the same, so
/// the promotion waits for the app instead of failing (and it does not ask again and again).
#[test]
fn a_slow_refresh_of_an_auto_sync_app_is_not_a_failure() {
    let ctx = Ctx::new();
    assert!(ctx.sb.argocd.set_auto_sync("app", true));
    ctx.sb.argocd.slow_refresh(5000);
    let run = ctx.main(&[("set", "image.tag=1.6.0"), ("request-timeout", "1s")]);
    run.assert_ok();
    assert!(run.log().contains("the refresh is slow"), "{}", run.log());
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("1.6.0"));
    assert_eq!(ctx.sb.argocd.refreshes(), 1, "one refresh asked for");
}

/// The controller misses its reconcile after our sync: `reconciledAt` stays before `finishedAt`,
/// so health is not trusted. One more (hard) refresh, as Kargo's argocd waiter asks for, gets it
/// reconciled; without it the wait would run into `health-timeout` and revert a good promotion.
#[test]
fn a_reconcile_the_controller_skips_gets_one_more_refresh() {
    let ctx = Ctx::new();
    assert!(ctx.sb.argocd.skip_next_reconcile("app"));
    let before = ctx.sb.argocd.refreshes();
    let run = ctx.main(&[("set", "image.tag=2.1.0"), ("health-timeout", "30s")]);
    run.assert_ok();
    assert!(
        run.log().contains("asking for one more refresh"),
        "{}",
        run.log()
    );
    assert_eq!(
        ctx.sb.argocd.refreshes(),
        before + 1,
        "exactly one extra refresh"
    );
    assert_eq!(ctx.sb.argocd.deployed_tag("app").as_deref(), Some("2.1.0"));
    assert!(!run.outputs.contains_key("revert-sha"), "{}", run.log());
}
