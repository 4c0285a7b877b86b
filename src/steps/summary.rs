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

pub fn summary(
    cfg: &Config,
    rec: &Record,
    tl: &Timeline,
    result: &Result<(), StepError>,
) -> String {
    let mut s = String::from("## gitops-promote\n\n");
    let outcome = match result {
        Ok(()) if rec.phase() == Phase::Done && !rec.merge_sha.is_empty() => {
            format!("Promoted to `{}`", rec.base)
        }
        Ok(()) => format!("Finished at phase `{}`", rec.phase().as_str()),
        Err(e) => format!("Failed: {e}"),
    };
    s.push_str(&format!("**{outcome}**\n\n"));
    if !tl.changes.is_empty() {
        s.push_str(&format!("Changes: {}\n\n", tl.changes));
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
    s.push_str("| step | took | result |\n|---|---|---|\n");
    for (name, _, took, err) in &tl.events {
        let r = err
            .map(|k| format!("failed ({k})"))
            .unwrap_or_else(|| "ok".into());
        s.push_str(&format!("| {name} | {} | {r} |\n", humantime(*took)));
    }
    s.push_str(&format!("\nRepository `{}`", cfg.repository));
    if let Some(n) = rec.pr_number {
        s.push_str(&format!(", PR #{n}"));
    }
    if !rec.merge_sha.is_empty() {
        s.push_str(&format!(
            ", merge `{}`",
            &rec.merge_sha[..rec.merge_sha.len().min(12)]
        ));
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
