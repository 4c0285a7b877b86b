//! The job summary of a failed promotion, read during the incident (issue #16): the outcome first
//! (what failed), then what the rollback did, then what the promotion did, with the values file,
//! one row per app, each step, and links to the PR, the merge and the run. Compared with a
//! snapshot with its varying parts (SHAs, times, ports) masked; `UPDATE_SNAPSHOTS=1` rewrites it.

use crate::harness::Ctx;
use std::path::Path;

/// The summary with what changes from run to run masked: SHAs, loopback ports, step times, and
/// the timing chart.
fn masked(summary: &str) -> String {
    let mut out = Vec::new();
    let mut in_chart = false;
    for line in summary.lines() {
        if line.starts_with("```mermaid") {
            in_chart = true;
            out.push("```mermaid (masked)".to_string());
            continue;
        }
        if in_chart {
            if line == "```" {
                in_chart = false;
                out.push(line.to_string());
            }
            continue;
        }
        let mut line = mask_hex(&mask_ports(line));
        // `| step | took | result |`: the time varies.
        let cells: Vec<&str> = line.split(" | ").collect();
        if cells.len() == 3 && line.starts_with("| ") && !line.starts_with("| step") {
            line = format!("{} | <t> | {}", cells[0], cells[2]);
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

fn mask_ports(line: &str) -> String {
    let mut s = line.to_string();
    while let Some(i) = s.find("127.0.0.1:") {
        let rest = &s[i + 10..];
        let n = rest.chars().take_while(char::is_ascii_digit).count();
        s = format!("{}<host>{}", &s[..i], &rest[n..]);
    }
    s
}

fn mask_hex(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<sha>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[test]
fn a_failed_promotion_summary_says_what_failed_then_what_the_rollback_did() {
    let ctx = Ctx::new();
    let run = ctx.main(&[("set", "image.tag=2.0.0-bad"), ("degraded-grace", "1s")]);
    run.assert_failed();
    let got = masked(&run.summary);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/failed-promotion-summary.md");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "summary differs from {}; UPDATE_SNAPSHOTS=1 rewrites it",
        path.display()
    );
    // The order a person reads it in: the failure, the rollback, the promotion's detail.
    let failed = got.find("**Failed:").expect("the outcome line");
    let rolled = got.find("**Rolled back**").expect("the rollback's section");
    let detail = got.find("### What the promotion did").expect("the detail");
    assert!(failed < rolled && rolled < detail, "{got}");
}

/// Issue #16, the log read at 3 a.m.: a failed promotion's log names the branch, the PR URL and
/// the merge SHA; each retry of a flaky call says what failed and how much of its budget is left;
/// the rollback opens with why, and names the revert PR's URL; so does the post step's.
#[test]
fn r16_the_log_of_a_failed_promotion_names_the_branch_pr_merge_and_each_retry() {
    use sandbox::{Fault, FaultRule};
    let ctx = Ctx::new();
    for (service, method, path) in [
        ("github", "GET", "/repos/*/*/pulls/*"),
        ("argocd", "GET", "/api/v1/applications/app"),
        ("argocd", "POST", "/api/v1/applications/app/sync"),
    ] {
        ctx.sb.faults.inject(FaultRule {
            service: service.into(),
            method: Some(method.into()),
            path: path.into(),
            times: 1,
            fault: Fault::Status {
                status: 502,
                body: None,
            },
        });
    }
    let run = ctx.main(&[("set", "image.tag=2.1.0-bad"), ("degraded-grace", "1s")]);
    run.assert_failed();
    let log = run.log();
    let branch = run.output("head-branch");
    let pr_url = run.output("pr-url");
    let merge = run.output("merge-sha");
    let revert_url = run.output("revert-pr-url");
    let line = |needle: &str| {
        log.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
    };
    let pushed = line(&format!("pushed {branch} at "));
    let opened = line(&format!("opened PR #1: {pr_url}"));
    let merged = line(&format!("merged PR #1 into main as {merge} (squash)"));
    let why = line("rolling back: the strategy for health errors says rollback");
    let revert = line(&format!(": {revert_url}"));
    assert!(
        pushed < opened && opened < merged && merged < why && why < revert,
        "{log}"
    );
    for (status_of, call) in [
        ("GitHub answered 502", "/pulls/1"),
        ("Argo CD answered HTTP 502", "get application app"),
    ] {
        assert!(
            log.lines().any(|l| l.starts_with("retrying: ")
                && l.contains(status_of)
                && l.contains(call)
                && l.contains("of its retry budget left")),
            "no retry line for {call}:\n{log}"
        );
    }
    // The first read of the app is the find-apps step's: its retry folds under that step's group.
    let lines: Vec<&str> = log.lines().collect();
    let retry = lines
        .iter()
        .position(|l| l.starts_with("retrying: ") && l.contains("get application app"))
        .unwrap();
    let group = lines[..retry]
        .iter()
        .rev()
        .find(|l| l.starts_with("::group::") || l.starts_with("::endgroup::"));
    assert_eq!(group, Some(&"::group::find apps"), "{log}");
    // The sync POST is retried by count, after checking that it did not start an operation.
    assert!(
        log.lines().any(|l| l.starts_with("retrying: ")
            && l.contains("Argo CD answered HTTP 502")
            && l.ends_with("(try 2 of 3)")),
        "no retry line for the sync:\n{log}"
    );

    // The post step of a job that failed after a good promotion: why first, then which PR.
    let ok = ctx.main(&[("set", "image.tag=2.2.0")]);
    ok.assert_ok();
    let post = ctx.post(&[], &ok.state);
    post.assert_ok();
    let plog = post.log();
    let first = plog
        .lines()
        .find(|l| !l.starts_with("::"))
        .unwrap_or_default();
    assert_eq!(
        first, "gitops-promote post: rolling back because the job failed after the promotion",
        "{plog}"
    );
    // The PR's link is built from the release repo's host (the post step has no PR URL in its
    // state), which in the sandbox is the git host rather than the emulator's github.com.
    let n = ok.output("pr-number");
    assert!(
        plog.contains(&format!(
            "rolling back PR #{n} ({}/acme/deploy/pull/{n}, merge {}): the job failed",
            ctx.sb.git_url(),
            &ok.output("merge-sha")[..12]
        )),
        "{plog}"
    );
    assert!(
        plog.contains(&format!(": {}", post.output("revert-pr-url"))),
        "{plog}"
    );
}
