//! Text from outside that reaches the log cannot start a workflow command (issue #12): an Argo CD
//! health message and a PR title carrying `::error` and `::add-mask::` lines print inert, as the
//! runner reads the log ([`crate::runner::workflow_commands`]).

use crate::harness::Ctx;
use crate::runner::workflow_commands;
use sandbox::argocd::HealthRule;

const INJECTION: &str = "boom\n::error title=pwned::owned\n::add-mask::1.0.0\n##[warning]legacy";

#[test]
fn injected_commands_in_argocd_messages_and_pr_titles_do_nothing() {
    let ctx = Ctx::new();
    ctx.sb.argocd.add_rule(HealthRule {
        app: None,
        suffix: "-bad".into(),
        health: "Degraded".into(),
        delay_ms: 300,
        message: Some(INJECTION.into()),
        healthy_after_ms: None,
    });
    let run = ctx.main(&[
        ("set", "image.tag=3.0.0-bad"),
        ("pr-title", "Promote {changes}\n::add-mask::main"),
    ]);
    run.assert_failed();
    let log = run.log();
    assert!(
        log.contains("::error title=pwned::owned"),
        "the message is shown:\n{log}"
    );
    let commands = workflow_commands(&log);
    for (name, line) in &commands {
        // Inside the data of the product's own annotation the text is escaped and inert.
        assert!(
            !line.trim_start().starts_with("::error title=pwned"),
            "{name}: {line}"
        );
        assert_ne!(name, "warning", "{line}");
        if name == "add-mask" {
            assert!(
                !line.ends_with("::1.0.0") && !line.ends_with("::main"),
                "{line}"
            );
        }
    }
    // The product's own annotations still work: the health error names the app.
    assert!(
        commands
            .iter()
            .any(|(n, l)| n == "error" && l.contains("health error")),
        "{commands:?}"
    );
    assert_eq!(run.output("rolled-back"), "true");
}
