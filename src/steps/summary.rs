//! The job summary of a promotion: the outcome, what changed, where each app ended, and how long
//! each step took.

use crate::base::state::{Phase, Record};
use crate::base::text::short;
use crate::base::{humantime, md_cell, ErrorKind, StepError};
use crate::clients::argocd::AppStatus;
use crate::config::Config;
use std::time::{Duration, Instant};

/// Steps and how long each took, what changed and where the apps ended, for the summary.
#[derive(Default)]
pub struct Timeline {
    /// Why the flow ended early and successfully (nothing to promote, a dry run, `merge: false`,
    /// a failure the strategy ignored), for the outcome line.
    pub ended: Option<String>,
    /// The values files changed, joined by `, `.
    pub files: String,
    /// Warnings worth a reader's eye (a failing optional check), in the order they came.
    pub warnings: Vec<String>,
    /// The `{changes}` text, once the edit is known.
    pub changes: String,
    /// One row per app: name, revision, sync, health.
    pub apps: Vec<AppStatus>,
    start: Option<Instant>,
    events: Vec<(String, Duration, Duration, Option<ErrorKind>)>,
}

impl Timeline {
    /// Records that step `name` started at `start` and ended now, with its error type if it failed.
    pub fn push(&mut self, name: &str, start: Instant, err: Option<ErrorKind>) {
        let t0 = *self.start.get_or_insert(start);
        self.events
            .push((name.to_string(), start - t0, start.elapsed(), err));
    }
}

/// The job summary of a promotion, read at 3 a.m. during a failed deploy: the outcome first (what
/// failed, or that nothing was done and why), what changed in which file, one row per app, the
/// steps with their times, and links to the PR and the merge. When a rollback ran inside the step,
/// its own section follows the outcome `headline` already written, so this leaves the title out.
pub fn summary(
    cfg: &Config,
    rec: &Record,
    tl: &Timeline,
    result: &Result<(), StepError>,
    headline_written: bool,
) -> String {
    let mut s = String::new();
    if headline_written {
        s.push_str("\n### What the promotion did\n\n");
    } else {
        s.push_str(&headline(rec, tl, result));
    }
    if !tl.changes.is_empty() {
        s.push_str(&format!("Changes: {}", tl.changes));
        if !tl.files.is_empty() {
            s.push_str(&format!(" in `{}`", tl.files));
        }
        s.push_str("\n\n");
    }
    if !tl.apps.is_empty() {
        s.push_str("| app | revision | sync | health |\n|---|---|---|---|\n");
        for a in &tl.apps {
            s.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                md_cell(&a.name),
                md_cell(short(&a.revision)),
                md_cell(&a.sync),
                md_cell(&a.health)
            ));
        }
        s.push('\n');
    }
    if !tl.warnings.is_empty() {
        s.push_str("Warnings:\n");
        for w in &tl.warnings {
            s.push_str(&format!("- {}\n", md_cell(w)));
        }
        s.push('\n');
    }
    s.push_str("| step | took | result |\n|---|---|---|\n");
    for (name, _, took, err) in &tl.events {
        let r = err
            .map(|k| format!("failed ({k})"))
            .unwrap_or_else(|| "ok".into());
        s.push_str(&format!("| {name} | {} | {r} |\n", humantime(*took)));
    }
    let web = format!(
        "{}/{}",
        cfg.run.server_url.as_str().trim_end_matches('/'),
        cfg.repository
    );
    s.push_str(&format!("\nRepository [`{}`]({web})", cfg.repository));
    if let Some(n) = rec.pr_number {
        s.push_str(&format!(", PR [#{n}]({web}/pull/{n})"));
    }
    if !rec.merge_sha.is_empty() {
        s.push_str(&format!(
            ", merge [`{}`]({web}/commit/{})",
            short(&rec.merge_sha),
            rec.merge_sha
        ));
    }
    if !cfg.run.run_url.is_empty() {
        s.push_str(&format!(", [run]({})", cfg.run.run_url));
    }
    s.push_str("\n\n```mermaid\ngantt\n  dateFormat x\n  axisFormat %M:%S\n");
    for (name, at, took, err) in &tl.events {
        let tag = if err.is_some() { "crit, " } else { "done, " };
        s.push_str(&format!(
            "  {name} :{tag}{}, {}\n",
            at.as_millis(),
            (*at + *took).as_millis().max(at.as_millis() + 1)
        ));
    }
    s.push_str("```\n");
    s
}

/// The outcome line under the title: what happened, in one sentence a person acts on.
pub fn headline(rec: &Record, tl: &Timeline, result: &Result<(), StepError>) -> String {
    let outcome = match result {
        Ok(()) if rec.phase() == Phase::Done && !rec.merge_sha.is_empty() => {
            format!("Promoted to `{}`", rec.base)
        }
        Ok(()) => match &tl.ended {
            Some(why) => why.clone(),
            None => format!("Finished at phase `{}`", rec.phase().as_str()),
        },
        Err(e) => format!("Failed: {e}"),
    };
    format!("## gitops-promote\n\n**{}**\n\n", md_cell(&outcome))
}
