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
