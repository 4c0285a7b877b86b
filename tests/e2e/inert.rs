//! Issue 12: untrusted text (a PR title, an Argo CD health message) that reaches the log prints
//! inert: no line it produces can start a workflow command, and the outputs stay what they were.

use crate::harness::{while_running, Ctx};
use sandbox::faults::{Fault, FaultRule};

/// Workflow commands an attacker would want; `##[` is the runner's older form, parsed anywhere in
/// a line (actions/runner src/Runner.Common/ActionCommand.cs:132-133).
const PAYLOAD: &str = "\n::error::pwned\n::add-mask::1.0.0\n  ::stop-commands::tok\r::set-output name=x::y\n::group::g\nsee ##[error]pwned";

/// The lines the runner would take as commands, split as its `ReadLine` does (at `\r`, `\n` and
/// `\r\n`), with the test the runner applies (ActionCommand.cs:62-63): `::` after leading blanks.
fn command_lines(log: &str) -> Vec<String> {
    log.replace("\r\n", "\n")
        .split(['\r', '\n'])
        .map(str::trim_start)
        .filter(|l| l.starts_with("::") || l.contains("##[error]"))
        .map(str::to_string)
        .collect()
}

/// Lines that are commands but not of the forms the product prints: annotations with a title,
/// groups, and masks of the tokens it was given.
fn foreign_commands(log: &str, tokens: &[&str]) -> Vec<String> {
    command_lines(log)
        .into_iter()
        .filter(|l| {
            let own = ["::error title=", "::warning title=", "::notice title="]
                .iter()
                .any(|p| l.starts_with(p))
                || l.starts_with("::group::") && !l.starts_with("::group::g")
                || l == "::endgroup::"
                || tokens.iter().any(|t| *l == format!("::add-mask::{t}"));
            !own
        })
        .collect()
}

/// `-bad` tags of `app` go Degraded with `message` as Argo CD's health message.
fn bad_goes_degraded(ctx: &Ctx, message: Option<String>) {
    ctx.sb.argocd.add_rule(sandbox::argocd::HealthRule {
        app: Some("app".into()),
        suffix: "-bad".into(),
        health: "Degraded".into(),
        delay_ms: 300,
        message,
        healthy_after_ms: None,
    });
}

/// No line of `log` is a workflow command but those the product prints itself.
fn assert_inert(ctx: &Ctx, log: &str) {
    let tokens = [ctx.sb.world.token.as_str(), ctx.sb.argocd.token()];
    assert_eq!(
        foreign_commands(log, &tokens),
        Vec::<String>::new(),
        "{log}"
    );
}

#[test]
fn issue_12_an_injected_pr_title_and_health_message_print_inert() {
    let ctx = Ctx::new();
    bad_goes_degraded(&ctx, Some(format!("rollout stuck{PAYLOAD}")));
    let title = format!("Promote {{changes}}{PAYLOAD}");
    let run = ctx.main(&[("set", "image.tag=2.0.0-bad"), ("pr-title", &title)]);
    run.assert_failed();
    let log = run.log();
    assert_inert(&ctx, &log);
    // The text is still there to read, only defused.
    assert!(log.contains("pwned"), "{log}");
    // Outputs are the values themselves, not rewritten for the log.
    let n = run.output("pr-number");
    assert!(n.parse::<u64>().is_ok(), "{n}");
    assert!(
        run.output("pr-url").ends_with(&format!("/pull/{n}")),
        "{:?}",
        run.outputs
    );
    assert_eq!(run.output("rolled-back"), "true", "{log}");
}

#[test]
fn issue_12_an_injected_github_error_body_prints_inert() {
    let ctx = Ctx::new();
    bad_goes_degraded(&ctx, None);
    // Once our PR is open, the next one (the revert's) is refused with the payload as its body.
    let run = while_running(
        || ctx.main(&[("set", "image.tag=2.0.0-bad")]),
        || {
            ctx.wait_for_pr();
            ctx.sb.faults.inject(FaultRule {
                service: "github".into(),
                method: Some("POST".into()),
                path: "/repos/*/*/pulls".into(),
                times: 5,
                fault: Fault::Status {
                    status: 422,
                    body: Some(serde_json::json!({
                        "message": format!("Validation Failed{PAYLOAD}")
                    })),
                },
            });
        },
    );
    run.assert_failed();
    let log = run.log();
    assert_inert(&ctx, &log);
    assert!(
        log.lines()
            .any(|l| l.starts_with("the rollback failed") && l.contains("Validation Failed")),
        "the refused revert is reported: {log}"
    );
    assert_ne!(
        run.outputs.get("rolled-back").map(String::as_str),
        Some("true")
    );
    let n = run.output("pr-number");
    assert!(
        run.output("pr-url").ends_with(&format!("/pull/{n}")),
        "{:?}",
        run.outputs
    );
}
