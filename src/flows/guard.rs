//! The `guard` command (DESIGN.md §1): for a scheduled or alert-triggered run, roll back the last
//! promotion on the base branch when it is younger than `rollback-window` and the metrics gate fails
//! now (or the run carries a firing `alert`).
//!
//! 1. find the last promotion: the newest first-parent commit of the base with the trailer
//!    `Promoted-by: gitops-promote` that is not itself a revert; a newer commit reverting it
//!    (`Reverts: <sha>`, or git's `This reverts commit <sha>`) means nothing is left to undo;
//! 2. its committer time (when it landed on the base) against `rollback-window`;
//! 3. the verdict: a firing alert, else [`crate::steps::verify::gate`]; Failed or Inconclusive fail the gate;
//! 4. a failed gate rolls the promotion back through [`rollback::undo`], as the post step would.
//!
//! A rollback is the guard doing its job: the step succeeds with `rolled-back=true` and a warning,
//! so that a later step can notify on that output. It stops at the rollback: it never promotes.

use super::rollback;
use crate::base::state::{Phase, Record};
use crate::base::text::short;
use crate::base::{humantime, ErrorKind, StepError};
use crate::clients::git::{self, trailer, LogCommit};
use crate::clients::github::GitHub;
use crate::clients::runtime::Runtime;
use crate::config::{Config, Scope};
use crate::steps;
use serde_json::Value;
use std::time::Duration;

/// How many first-parent commits of the base the search for the last promotion reads at most.
pub const MAX_COMMITS: usize = 200;

/// What the base's history says about the last promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// No promotion within [`MAX_COMMITS`] commits.
    None,
    /// The last promotion, already reverted by a newer commit.
    Reverted {
        /// The promotion.
        promotion: LogCommit,
        /// The commit that reverts it.
        by: String,
    },
    /// The last promotion, still in place.
    Standing(LogCommit),
}

/// The SHA a commit reverts: our `Reverts:` trailer, or the line git's own revert writes.
fn reverted_sha(message: &str, trailers: &[(String, String)]) -> Option<String> {
    if let Some(v) = trailer(trailers, "Reverts") {
        return Some(v.to_ascii_lowercase());
    }
    let rest = message.split("This reverts commit ").nth(1)?;
    let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (sha.len() >= 7).then(|| sha.to_ascii_lowercase())
}

/// Classifies first-parent commits, newest first, until the last promotion: a pure function of the
/// messages, so the search rules are tested without git.
#[derive(Default)]
pub struct Search {
    /// The files and apps the guard watches: only a promotion touching them is the one to undo.
    pub scope: Scope,
    /// Set once the last promotion is found.
    pub found: Option<Last>,
    /// (reverted SHA, possibly abbreviated; the reverting commit) of each revert seen so far.
    revert_of: Vec<(String, String)>,
    /// The release repo (`owner/name`), whose PRs GitHub's Revert button names.
    pub repo: String,
    /// (reverted PR; the reverting commit) of each Revert-button revert seen so far.
    revert_of_pr: Vec<(u64, String)>,
}

impl Search {
    /// Looks at the next older commit; `true` once the last promotion is found.
    pub fn visit(&mut self, c: &LogCommit) -> bool {
        let t = git::trailers(&c.message);
        if let Some(sha) = reverted_sha(&c.message, &t) {
            self.revert_of.push((sha, c.id.to_string()));
            // Our reverts carry `Promoted-by` too: a revert is never the promotion to undo.
            return false;
        }
        if let Some(n) = git::reverted_pr(&c.message, &self.repo) {
            self.revert_of_pr.push((n, c.id.to_string()));
            return false;
        }
        if trailer(&t, "Promoted-by") != Some("gitops-promote") || !self.in_scope(c, &t) {
            return false;
        }
        let id = c.id.to_string();
        // A revert may name the promotion by an abbreviated SHA (git's message, or a person).
        let by = self
            .revert_of
            .iter()
            .find(|(sha, _)| id.starts_with(sha.as_str()))
            .map(|(_, by)| by.clone())
            .or_else(|| {
                let n = git::landed_pr(&c.message)?;
                let by = self.revert_of_pr.iter().find(|(pr, _)| *pr == n)?;
                Some(by.1.clone())
            });
        self.found = Some(match by {
            Some(by) => Last::Reverted {
                promotion: c.clone(),
                by,
            },
            None => Last::Standing(c.clone()),
        });
        true
    }
}

impl Search {
    /// Whether promotion `c` touched the watched files and apps: its `Promoted-files` trailer (or,
    /// for promotions older than it, the files the commit changed) meets the scope's files, and
    /// its `Promoted-apps`, when recorded, meet the scope's apps. A guard for prod never reverts
    /// dev's newer promotion.
    fn in_scope(&self, c: &LogCommit, t: &[(String, String)]) -> bool {
        let list =
            |v: &str| -> Vec<String> { v.split(',').map(|s| s.trim().to_string()).collect() };
        let files = match trailer(t, "Promoted-files") {
            Some(v) => list(v),
            None => c.paths.clone(),
        };
        let files_meet =
            self.scope.files.is_empty() || files.iter().any(|f| self.scope.files.contains(f));
        // A promotion that records its change set but no apps deployed none of the watched ones;
        // one older than the trailers may have deployed any.
        let apps_meet = match trailer(t, "Promoted-apps") {
            _ if self.scope.apps.is_empty() => true,
            Some(v) => list(v).iter().any(|a| self.scope.apps.contains(a)),
            None => trailer(t, "Promotion-key").is_none(),
        };
        files_meet && apps_meet
    }
}

/// What the `alert` input says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// At least one alert fires; the names (`alertname` labels), for the log.
    Firing(Vec<String>),
    /// Everything is resolved.
    Resolved,
}

impl Alert {
    /// Reads an Alertmanager webhook body (`status`, `alerts[].status`, `alerts[].labels`) or any
    /// object with a top-level `status`; a missing status counts as firing (an alert was sent).
    pub fn parse(json: &str) -> Result<Alert, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if !v.is_object() {
            return Err("expected a JSON object".into());
        }
        let top = v["status"].as_str().unwrap_or("firing");
        let name = |a: &Value| {
            a["labels"]["alertname"]
                .as_str()
                .or(v["commonLabels"]["alertname"].as_str())
                .unwrap_or("alert")
                .to_string()
        };
        let firing: Vec<String> = match v["alerts"].as_array() {
            Some(alerts) => alerts
                .iter()
                .filter(|a| a["status"].as_str().unwrap_or(top) == "firing")
                .map(name)
                .collect(),
            None if top == "firing" => vec![name(&v)],
            None => Vec::new(),
        };
        Ok(if firing.is_empty() {
            Alert::Resolved
        } else {
            Alert::Firing(firing)
        })
    }
}

/// Runs the guard.
///
/// # Errors
/// `config` for a bad `alert`; the gate's own errors other than its verdict (e.g. Prometheus
/// unreachable: nothing is rolled back on a guess); the rollback's errors.
pub async fn run(cfg: &Config, rt: &mut Runtime) -> Result<(), StepError> {
    let alert = cfg
        .alert
        .as_deref()
        .map(Alert::parse)
        .transpose()
        .map_err(|e| StepError::msg("guard", ErrorKind::Config, format!("input 'alert': {e}")))?;
    let gh = steps::connect_github(cfg)?;
    let base = steps::resolve_base(&gh, cfg).await?;
    let repo = cfg.repository.to_string();
    let scope = cfg.watched_scope();
    rt.info(&format!(
        "watching promotions of {}{}",
        if scope.files.is_empty() {
            "every file".to_string()
        } else {
            scope.files.join(", ")
        },
        if scope.apps.is_empty() {
            String::new()
        } else {
            format!(" for {}", scope.apps.join(", "))
        }
    ));
    let last = {
        let (remote, base) = (steps::remote(cfg, &repo), base.clone());
        let repo_name = repo.clone();
        tokio::task::spawn_blocking(move || -> Result<Last, git::GitError> {
            let mut c = git::clone_base(&remote, &base, 10)?;
            let mut search = Search {
                scope,
                repo: repo_name,
                ..Search::default()
            };
            c.find_first_parent(MAX_COMMITS, |commit| search.visit(commit))?;
            Ok(search.found.unwrap_or(Last::None))
        })
        .await
        .expect("history task")
        .map_err(|e| StepError::new("find the last promotion", &e))?
    };
    let promotion = match last {
        Last::None => {
            return nothing(
                rt,
                &format!(
                "no promotion in the last {MAX_COMMITS} commits of {base}: nothing to roll back"
            ),
            )
        }
        Last::Reverted { promotion, by } => {
            return nothing(
                rt,
                &format!(
                "the last promotion on {base}, {}, is already reverted by {}: nothing to roll back",
                short(&promotion.id.to_string()),
                short(&by)
            ),
            )
        }
        Last::Standing(p) => p,
    };
    let sha = promotion.id.to_string();
    let title = promotion
        .message
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let age = Duration::from_secs((chrono::Utc::now().timestamp() - promotion.time).max(0) as u64);
    rt.info(&format!(
        "last promotion on {base}: {} \"{title}\", merged {} ago",
        short(&sha),
        humantime(age)
    ));
    if age > cfg.rollback_window {
        return nothing(
            rt,
            &format!(
                "{} was merged {} ago, outside rollback-window ({}): not rolling it back",
                short(&sha),
                humantime(age),
                humantime(cfg.rollback_window)
            ),
        );
    }

    let reason = match alert {
        Some(Alert::Resolved) => {
            return nothing(rt, "the alert is resolved: nothing to roll back");
        }
        Some(Alert::Firing(names)) => format!("alert {} firing", names.join(", ")),
        None => match steps::verify::gate(cfg.verify.as_ref(), rt).await {
            Ok(_) => {
                rt.output("rolled-back", "false")?;
                rt.info(&format!(
                    "the metrics gate passed: {} stays on {base}",
                    short(&sha)
                ));
                rt.summary(&format!(
                    "## gitops-promote guard\n\n**Gate passed**: the last promotion `{}` (\"{title}\") stays on `{base}`.\n",
                    short(&sha)
                ));
                return Ok(());
            }
            Err(e) if e.kind == ErrorKind::Verification => e.message,
            Err(e) => return Err(e),
        },
    };
    if cfg.dry_run {
        return nothing(
            rt,
            &format!(
                "dry run: would roll back {} \"{title}\" on {base} ({reason}); nothing was changed",
                short(&sha)
            ),
        );
    }
    rt.warning(
        "guard",
        &format!(
            "rolling back {} \"{title}\" on {base}: {reason}",
            short(&sha)
        ),
    );
    let mut record = Record {
        phase: Some(Phase::Merged),
        repo,
        base: base.clone(),
        merge_sha: sha.clone(),
        pr_number: pr_of(&gh, &sha, &title).await,
        apps: cfg
            .argocd
            .as_ref()
            .map(|a| a.apps.clone())
            .unwrap_or_default(),
        on_failure: "rollback".into(),
        ..Record::default()
    };
    rollback::undo(cfg, rt, &gh, &mut record, &format!("guard found: {reason}")).await?;
    rt.summary(&format!(
        "## gitops-promote guard\n\n**Rolled back** the last promotion `{}` (\"{title}\") on `{base}`, merged {} ago: {reason}.\n",
        short(&sha),
        humantime(age)
    ));
    Ok(())
}

/// The PR that merged `sha`: GitHub's "PRs for a commit", else the `(#N)` GitHub appends to merge
/// titles. `None` still reverts; only the revert PR's title and the comment miss it.
async fn pr_of(gh: &GitHub, sha: &str, title: &str) -> Option<u64> {
    if let Ok(prs) = gh.prs_for_commit(sha).await {
        if let Some(pr) = prs
            .iter()
            .find(|p| p.merged && p.merge_commit_sha.as_deref() == Some(sha))
        {
            return Some(pr.number);
        }
    }
    let (_, tail) = title.rsplit_once("(#")?;
    tail.strip_suffix(')')?.parse().ok()
}

/// Ends the guard without a rollback, saying why in the log, the summary and `rolled-back`.
fn nothing(rt: &mut Runtime, why: &str) -> Result<(), StepError> {
    rt.info(why);
    rt.output("rolled-back", "false")?;
    rt.summary(&format!(
        "## gitops-promote guard\n\n**Nothing to do**: {why}.\n"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(n: u8, message: &str) -> LogCommit {
        LogCommit {
            id: git2::Oid::from_bytes(&[n; 20]).unwrap(),
            time: 0,
            message: message.into(),
            paths: vec![],
        }
    }

    const PROMOTION: &str =
        "Promote tag (#3)\n\nPromoted-by: gitops-promote\nPromotion-run: https://x/runs/1\n";

    fn search(commits: &[LogCommit]) -> Last {
        let mut s = Search::default();
        for c in commits {
            if s.visit(c) {
                break;
            }
        }
        s.found.unwrap_or(Last::None)
    }

    #[test]
    fn the_newest_promotion_is_found_past_other_commits() {
        let p = commit(2, PROMOTION);
        let last = search(&[commit(1, "Fix a typo\n"), p.clone(), commit(3, PROMOTION)]);
        assert_eq!(last, Last::Standing(p));
    }

    #[test]
    fn a_revert_is_not_a_promotion_and_marks_its_target_reverted() {
        let p = commit(2, PROMOTION);
        let revert = commit(
            1,
            &format!(
                "Revert #3 (#4)\n\nPromoted-by: gitops-promote\nReverts: {}\n",
                p.id
            ),
        );
        let last = search(&[revert.clone(), p.clone()]);
        assert_eq!(
            last,
            Last::Reverted {
                promotion: p,
                by: revert.id.to_string()
            }
        );
    }

    #[test]
    fn a_revert_button_pr_marks_the_promotion_it_names_reverted() {
        let p = commit(2, PROMOTION);
        let squash = commit(
            1,
            "Revert \"Promote tag (#3)\" (#5)\n\nReverts acme/deploy#3\n",
        );
        let merge = commit(
            1,
            "Merge pull request #5 from acme/revert-3-gitops-promote/main/1\n\nRevert \"Promote tag (#3)\"\n",
        );
        for revert in [squash, merge] {
            let mut s = Search {
                repo: "acme/deploy".into(),
                ..Search::default()
            };
            assert!(!s.visit(&revert));
            assert!(s.visit(&p));
            assert_eq!(
                s.found,
                Some(Last::Reverted {
                    promotion: p.clone(),
                    by: revert.id.to_string()
                })
            );
        }
        // Another PR's revert leaves the promotion standing.
        let other = commit(1, "Revert \"Fix\" (#5)\n\nReverts acme/deploy#4\n");
        let mut s = Search {
            repo: "acme/deploy".into(),
            ..Search::default()
        };
        s.visit(&other);
        s.visit(&p);
        assert_eq!(s.found, Some(Last::Standing(p)));
    }

    #[test]
    fn a_git_revert_by_hand_counts_with_an_abbreviated_sha() {
        let p = commit(2, PROMOTION);
        let by_hand = commit(
            1,
            &format!(
                "Revert \"Promote tag\"\n\nThis reverts commit {}.\n",
                &p.id.to_string()[..10]
            ),
        );
        assert!(matches!(search(&[by_hand, p]), Last::Reverted { .. }));
    }

    #[test]
    fn only_a_promotion_of_the_watched_files_and_apps_counts() {
        let dev = commit(1, "Promote dev\n\nPromoted-by: gitops-promote\nPromoted-files: envs/dev/values.yaml\nPromoted-apps: web-dev\n");
        let prod = commit(2, "Promote prod\n\nPromoted-by: gitops-promote\nPromoted-files: envs/prod/values.yaml\nPromoted-apps: web-prod\n");
        let mut old = commit(3, PROMOTION);
        old.paths = vec!["envs/prod/values.yaml".into()];
        let scoped = |files: &[&str], apps: &[&str], commits: &[LogCommit]| {
            let mut s = Search {
                scope: Scope {
                    files: files.iter().map(|f| f.to_string()).collect(),
                    apps: apps.iter().map(|a| a.to_string()).collect(),
                    ..Scope::default()
                },
                ..Search::default()
            };
            for c in commits {
                if s.visit(c) {
                    break;
                }
            }
            s.found.unwrap_or(Last::None)
        };
        let history = [dev.clone(), prod.clone()];
        assert_eq!(
            scoped(&["envs/prod/values.yaml"], &[], &history),
            Last::Standing(prod.clone())
        );
        assert_eq!(
            scoped(&["envs/dev/values.yaml"], &[], &history),
            Last::Standing(dev.clone())
        );
        // The files match but the apps do not: not this guard's promotion.
        assert_eq!(
            scoped(
                &["envs/prod/values.yaml"],
                &["web-dev"],
                std::slice::from_ref(&prod)
            ),
            Last::None
        );
        // A promotion from before the trailers is judged by the files it changed.
        assert_eq!(
            scoped(&["envs/prod/values.yaml"], &[], &[dev.clone(), old.clone()]),
            Last::Standing(old.clone())
        );
        // Watching apps alone (a guard on a schedule): dev's app is not prod's; an old
        // promotion without trailers may have deployed it.
        assert_eq!(
            scoped(&[], &["web-prod"], &[dev.clone(), prod.clone()]),
            Last::Standing(prod.clone())
        );
        assert_eq!(
            scoped(&[], &["web-prod"], &[dev, old.clone()]),
            Last::Standing(old)
        );
        let no_apps = commit(
            4,
            "Promote\n\nPromoted-by: gitops-promote\nPromoted-files: envs/prod/values.yaml\nPromotion-key: 1234abcd\n",
        );
        assert_eq!(
            scoped(&[], &["web-prod"], &[no_apps, prod.clone()]),
            Last::Standing(prod)
        );
    }

    #[test]
    fn no_trailer_means_no_promotion() {
        let last = search(&[commit(1, "Promote by hand\n\nSigned-off-by: a <a@b>\n")]);
        assert_eq!(last, Last::None);
    }

    #[test]
    fn alertmanager_bodies_fire_or_resolve() {
        let firing = r#"{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate"}},{"status":"resolved","labels":{"alertname":"Old"}}]}"#;
        assert_eq!(
            Alert::parse(firing).unwrap(),
            Alert::Firing(vec!["HighErrorRate".into()])
        );
        let resolved = r#"{"status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"HighErrorRate"}}]}"#;
        assert_eq!(Alert::parse(resolved).unwrap(), Alert::Resolved);
        assert_eq!(
            Alert::parse(r#"{"commonLabels":{"alertname":"X"}}"#).unwrap(),
            Alert::Firing(vec!["X".into()])
        );
        assert!(Alert::parse("[1]").is_err());
    }
}
