//! Argo Rollouts behind an Argo CD app (issue #14): a canary paused at a step shows the app
//! Suspended, which is a wait that says so; an aborted rollout shows it Degraded with
//! `RolloutAborted: ...`, which fails the wait at once instead of after `degraded-grace`.

use crate::harness::Ctx;
use sandbox::argocd::HealthRule;

fn rule(suffix: &str, health: &str, message: &str, healthy_after_ms: Option<u64>) -> HealthRule {
    HealthRule {
        app: None,
        suffix: suffix.into(),
        health: health.into(),
        delay_ms: 200,
        message: Some(message.into()),
        healthy_after_ms,
    }
}

#[test]
fn a_canary_paused_at_a_step_is_waited_for_and_named() {
    let ctx = Ctx::new();
    assert!(ctx.sb.argocd.set_workload("app", "Rollout"));
    ctx.sb
        .argocd
        .add_rule(rule("-canary", "Suspended", "CanaryPauseStep", Some(3000)));
    let run = ctx.main(&[("set", "image.tag=2.0.0-canary")]);
    run.assert_ok();
    assert_eq!(run.output("health"), "Healthy");
    assert!(
        run.log()
            .contains("rollout app is paused at its step (CanaryPauseStep)"),
        "{}",
        run.log()
    );
}

#[test]
fn an_aborted_rollout_fails_the_wait_at_once_and_is_rolled_back() {
    let ctx = Ctx::new();
    let before = ctx.values_on_main();
    assert!(ctx.sb.argocd.set_workload("app", "Rollout"));
    ctx.sb.argocd.add_rule(rule(
        "-abort",
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2: metric \"error-rate\" assessed Failed",
        None,
    ));
    // A grace far past health-timeout: only an immediate verdict can name the abort.
    let run = ctx.main(&[("set", "image.tag=2.0.0-abort"), ("degraded-grace", "10m")]);
    run.assert_failed();
    let errors = run.errors().join("\n");
    assert!(errors.contains("title=health error in wait"), "{errors}");
    assert!(errors.contains("RolloutAborted"), "{errors}");
    assert!(!errors.contains("within"), "not a health timeout: {errors}");
    assert!(!run.output("revert-sha").is_empty(), "{}", run.log());
    assert!(
        run.output("revert-pr-url").contains("/pull/"),
        "{}",
        run.log()
    );
    assert_eq!(run.output("error-type"), "health");
    assert_eq!(ctx.values_on_main(), before);
}
