//! The rollback flow (DESIGN.md §3): undo a promotion through git, so that Argo CD's auto-sync
//! cannot bring the bad version back.
//!
//! 1. nothing merged → close our PR with a comment saying why, delete our branch;
//! 2. already rolled back (state, or a `Reverts: <sha>` trailer on the base) → done;
//! 3. clone the base deep enough to hold the merge and its parents;
//! 4. revert in memory (merge commit: mainline 1; squash: one commit; rebase: each commit newest
//!    first); a conflict opens no PR and names the files (or rolls the apps back by Argo CD history
//!    when `history-fallback` is on and auto-sync is off);
//! 5. commit with `Reverts: <merge-sha>`, push `gitops-promote/revert-<pr>`, open and merge
//!    "Revert #N: ...";
//! 6. sync the apps and wait for Healthy at the revert commit;
//! 7. outputs, summary, and a comment on the original PR.

use crate::base::state::{Phase, Record};
use crate::base::text::short;
use crate::base::{ErrorKind, StepError};
use crate::clients::argocd::ArgoCd;
use crate::clients::git::{self, Checkout, Revert};
use crate::clients::github::{GitHub, NewPr};
use crate::clients::runtime::Runtime;
use crate::config::Config;
use crate::steps;
use crate::steps::merge::{merge, not_mergeable_error, MergeRequest, Merged};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs rollback as the post step (`post`: why, the record from `STATE_*`) or standalone (from `merge-sha` or
/// `pr-number`).
///
/// # Errors
/// The failed step; the summary and the log say what was and was not undone.
pub async fn run(cfg: &Config, rt: &mut Runtime, post: Option<&str>) -> Result<(), StepError> {
    let gh = steps::connect_github(cfg)?;
    let (mut record, why) = match post {
        // The post entrypoint decided from the state that there is something to undo.
        Some(why) => (
            Record::from_pairs(|k| rt.state_get(k).map(str::to_string)),
            why,
        ),
        None => {
            let rec = standalone_record(cfg, &gh).await?;
            if rec.phase() == Phase::None {
                let n = rec.pr_number.unwrap_or_default();
                rt.notice(
                    "rollback",
                    &format!(
                        "PR #{n} is not merged, so nothing of it was deployed; it is left as it is"
                    ),
                );
                rt.output("rolled-back", "false")?;
                return Ok(());
            }
            (rec, "a rollback was requested")
        }
    };
    // The log opens with why, for whoever reads it during the incident.
    let pr_url = |n: u64| {
        format!(
            "{}/{}/pull/{n}",
            cfg.run.server_url.as_str().trim_end_matches('/'),
            record.repo
        )
    };
    rt.info(&format!(
        "rolling back {}: {why}",
        match (record.pr_number, record.merge_sha.as_str()) {
            (Some(n), "") => format!("PR #{n} ({})", pr_url(n)),
            (Some(n), sha) => format!("PR #{n} ({}, merge {})", pr_url(n), short(sha)),
            (None, "") => "the promotion".to_string(),
            (None, sha) => format!("merge {}", short(sha)),
        }
    ));
    let result = undo(cfg, rt, &gh, &mut record, why).await;
    if let Err(e) = &result {
        // `main` prints the annotation; the summary says what stands.
        rt.summary(&format!(
            "## gitops-promote rollback\n\n**Rollback failed**: {e}\n\nWhat stands: phase `{}`, PR {}, merge `{}`. Finish it by hand or re-run this job.\n",
            record.phase().as_str(),
            record.pr_number.map(|n| format!("#{n}")).unwrap_or_else(|| "none".into()),
            record.merge_sha
        ));
    }
    result
}

/// The record for a standalone rollback: from `pr-number` (its merge commit) or `merge-sha`.
async fn standalone_record(cfg: &Config, gh: &GitHub) -> Result<Record, StepError> {
    let base = steps::resolve_base(gh, cfg).await?;
    let mut rec = Record {
        repo: cfg.repository.to_string(),
        base,
        phase: Some(Phase::Merged),
        apps: cfg
            .argocd
            .as_ref()
            .map(|a| a.apps.clone())
            .unwrap_or_default(),
        ..Record::default()
    };
    if let Some(n) = cfg.pr_number {
        let pr = gh.pr(n).await.map_err(|e| StepError::new("read PR", &e))?;
        rec.pr_number = Some(n);
        rec.branch = pr.head_ref.clone();
        if !pr.merged {
            // Nothing of it was deployed, and this run did not open it: leave it to its owner.
            rec.phase = Some(Phase::None);
            return Ok(rec);
        }
        rec.merge_sha = pr.merge_commit_sha.clone().unwrap_or_default();
    }
    if let Some(sha) = &cfg.merge_sha {
        rec.merge_sha = sha.clone();
    }
    if rec.merge_sha.is_empty() {
        return Err(StepError::msg(
            "rollback",
            ErrorKind::Config,
            "input 'merge-sha' or 'pr-number': a standalone rollback needs the merge to undo",
        ));
    }
    Ok(rec)
}

/// Undoes whatever `record` says happened; also called inside the main step by the `rollback`
/// failure action and by `guard`. `why` finishes "This reverts X because ..." in the revert's
/// commit and PR, so history says what triggered it.
///
/// # Errors
/// The step of the rollback that failed; nothing half-done is pushed to the base.
pub async fn undo(
    cfg: &Config,
    rt: &mut Runtime,
    gh: &GitHub,
    record: &mut Record,
    why: &str,
) -> Result<(), StepError> {
    if matches!(record.phase(), Phase::Pushed | Phase::PrOpen) {
        // The process may have died between the merge and writing state: ask GitHub.
        if let Some(n) = record.pr_number {
            let pr = match gh.pr(n).await {
                Ok(pr) => pr,
                Err(e) => {
                    // Closing or reverting blind could undo the wrong thing: leave the PR as it
                    // is, and say so on it.
                    let note = format!(
                        "gitops-promote could not read this PR to clean up after a failed promotion ({e}), so it left the PR as it is. If it is open, close it; if it was merged, roll it back (gitops-promote with `command: rollback` and `pr-number: {n}`). Run: {}",
                        run_url_from_env()
                    );
                    let _ = gh.comment(n, &note).await;
                    return Err(StepError::new("read PR", &e));
                }
            };
            if pr.merged {
                record.merge_sha = pr.merge_commit_sha.unwrap_or_default();
                record.phase = Some(Phase::Merged);
            }
        }
    }
    match record.phase() {
        Phase::None | Phase::RolledBack => Ok(()),
        Phase::Pushed | Phase::PrOpen => abandon(rt, gh, record).await,
        _ => revert(cfg, rt, gh, record, why).await,
    }
}

/// Nothing was merged: close our PR with a comment saying why and delete our branch.
async fn abandon(rt: &mut Runtime, gh: &GitHub, record: &mut Record) -> Result<(), StepError> {
    if !record.branch.is_empty() && !ours_still(rt, gh, record).await? {
        record.phase = Some(Phase::RolledBack);
        save(rt, record)?;
        rt.output("rolled-back", "false")?;
        return Ok(());
    }
    if let Some(n) = record.pr_number {
        let why = format!(
            "Closed by gitops-promote: the promotion failed before this PR was merged, so nothing was deployed. Run: {}",
            run_url_from_env()
        );
        gh.close_pr(n, &why)
            .await
            .map_err(|e| StepError::new("close PR", &e))?;
        rt.info(&format!("closed our PR #{n}"));
    }
    if !record.branch.is_empty() {
        gh.delete_branch(&record.branch)
            .await
            .map_err(|e| StepError::new("delete branch", &e))?;
        rt.info(&format!("deleted our branch {}", record.branch));
    }
    record.phase = Some(Phase::RolledBack);
    save(rt, record)?;
    rt.output("rolled-back", "false")?;
    rt.summary("## gitops-promote rollback\n\nNothing had been merged: our PR was closed with a comment and our branch deleted.\n");
    Ok(())
}

/// Whether our branch still holds only our work: its head is a gitops-promote commit. When
/// someone else pushed to it, their work is not closed or deleted: the PR stays open with a
/// comment saying why nothing was merged (issue #13).
async fn ours_still(rt: &Runtime, gh: &GitHub, record: &Record) -> Result<bool, StepError> {
    // A branch that cannot be read is taken as ours, as before this check: the close and delete
    // below then meet the same outage and say so.
    let Ok(Some((sha, message))) = gh.branch_head(&record.branch).await else {
        return Ok(true);
    };
    let trailers = crate::clients::git::trailers(&message);
    if crate::clients::git::trailer(&trailers, "Promoted-by") == Some("gitops-promote") {
        return Ok(true);
    }
    let short = sha.get(..7).unwrap_or(&sha);
    rt.warning(
        "rollback",
        &format!(
            "someone else pushed {short} to our branch {}: leaving it and its PR as they are",
            record.branch
        ),
    );
    if let Some(n) = record.pr_number {
        let note = format!(
            "gitops-promote did not merge this PR: someone else pushed {short} to its branch, and it merges only what it wrote. It leaves the PR and the branch to you: nothing was deployed. Run: {}",
            run_url_from_env()
        );
        gh.comment(n, &note)
            .await
            .map_err(|e| StepError::new("comment", &e))?;
    }
    Ok(false)
}

/// Steps 3 to 7: revert the merge in a revert PR, merge it, redeploy, and say so.
async fn revert(
    cfg: &Config,
    rt: &mut Runtime,
    gh: &GitHub,
    record: &mut Record,
    why: &str,
) -> Result<(), StepError> {
    // The revert PR, its gate, merge and comments go through the rollback's token, which
    // rulesets may let bypass; the push of our own revert branch needs no more than github-token.
    let rollback_gh;
    let gh = match cfg.rollback_github_token {
        Some(_) => {
            rollback_gh = steps::connect_github(&cfg.for_rollback())?;
            rt.info("the revert PR is opened and merged with rollback-github-token");
            &rollback_gh
        }
        None => gh,
    };
    let merge_sha = record.merge_sha.clone();
    let (checkout, plan) = plan_revert(cfg, record).await?;
    let (onto, tree) = match plan {
        RevertPlan::AlreadyDone(sha) => {
            rt.info(&format!(
                "{merge_sha} is already reverted by {sha}: nothing to do"
            ));
            record.phase = Some(Phase::RolledBack);
            save(rt, record)?;
            rt.output("revert-sha", &sha)?;
            return rt.output("rolled-back", "true");
        }
        RevertPlan::Conflict(files) if cfg.history_fallback => {
            return history_fallback(cfg, rt, record, &files).await;
        }
        RevertPlan::Conflict(files) => {
            return Err(StepError::msg(
                "revert",
                ErrorKind::Conflict,
                format!("reverting {merge_sha} conflicts with later commits on {} in {}; nothing was pushed. Revert by hand, or set history-fallback to roll the apps back by Argo CD history", record.base, files.join(", ")),
            ));
        }
        RevertPlan::Tree { onto, tree } => (onto, tree),
    };
    let text = RevertText::new(gh, record, why).await;
    let checkout = Arc::new(Mutex::new(checkout));
    push_revert(cfg, &checkout, onto, tree, &text).await?;
    rt.info(&format!(
        "reverted {} on {} and pushed {}",
        short(&merge_sha),
        record.base,
        text.branch
    ));
    let pr = open_revert_pr(cfg, gh, record, &text).await?;
    rt.output("revert-pr-number", &pr.number.to_string())?;
    rt.output("revert-pr-url", &pr.url)?;
    rt.info(&format!(
        "opened {:?} as PR #{}: {}",
        text.title, pr.number, pr.url
    ));
    // A merge in flight when the job is cancelled is let finish and recorded as rolled back.
    let section = crate::base::cancel::critical();
    let revert_sha = merge_or_explain(cfg, rt, gh, &pr, &text).await?;
    rt.info(&format!(
        "merged revert PR #{} as {}",
        pr.number,
        short(&revert_sha)
    ));
    steps::delete_merged_branch(rt, gh, pr.number, &text.branch).await;
    rt.output("revert-sha", &revert_sha)?;
    record.phase = Some(Phase::RolledBack);
    save(rt, record)?;
    drop(section);

    redeploy(cfg, rt, record, &revert_sha, &checkout).await?;
    rt.output("rolled-back", "true")?;
    if let Some(n) = record.pr_number {
        let note = format!(
            "Rolled back by gitops-promote: #{} reverts this PR ({revert_sha}). Run: {}",
            pr.number,
            run_url_from_env()
        );
        if let Err(e) = gh.comment(n, &note).await {
            rt.warning("rollback", &format!("could not comment on PR #{n}: {e}"));
        }
    }
    rt.summary(&format!(
        "## gitops-promote rollback\n\n**Rolled back**: `{merge_sha}` reverted by PR #{} (`{revert_sha}`) on `{}`; apps {} synced and Healthy.\n",
        pr.number,
        record.base,
        record.apps.join(", ")
    ));
    Ok(())
}

/// Steps 2 to 4 in git: clone the base, find an earlier revert, or revert in memory on the base
/// head (deep enough to hold the merge and its parents).
async fn plan_revert(cfg: &Config, record: &Record) -> Result<(Checkout, RevertPlan), StepError> {
    let remote = steps::remote(cfg, &record.repo);
    let (base, merge_sha) = (record.base.clone(), record.merge_sha.clone());
    let (repo, pr) = (record.repo.clone(), record.pr_number);
    // Newest first: a rebase merge's commits are undone in the reverse of the order they landed.
    let commits: Vec<String> = if record.merged_commits.is_empty() {
        vec![merge_sha.clone()]
    } else {
        record.merged_commits.iter().rev().cloned().collect()
    };
    tokio::task::spawn_blocking(move || -> Result<(Checkout, RevertPlan), git::GitError> {
        let mut c = git::clone_base(&remote, &base, 1)?;
        if let Some(done) = c.find_revert_of(&merge_sha, pr.map(|n| (repo.as_str(), n)), 500)? {
            return Ok((c, RevertPlan::AlreadyDone(done.to_string())));
        }
        for sha in &commits {
            c.ensure_commit(sha, None)?;
        }
        let onto = c.base_sha();
        let plan = match c.revert(onto, &commits, 1)? {
            Revert::Tree { commit_tree, .. } => RevertPlan::Tree {
                onto,
                tree: commit_tree,
            },
            Revert::Conflict { files } => RevertPlan::Conflict(files),
        };
        Ok((c, plan))
    })
    .await
    .expect("revert task")
    .map_err(|e| StepError::new("revert", &e))
}

/// The revert's title, commit message and branch.
struct RevertText {
    title: String,
    message: String,
    branch: String,
}

impl RevertText {
    async fn new(gh: &GitHub, record: &Record, why: &str) -> RevertText {
        let merge_sha = &record.merge_sha;
        let title = match record.pr_number {
            Some(n) => match gh.pr(n).await {
                Ok(pr) => format!("Revert #{n}: {}", pr.title),
                Err(_) => format!("Revert #{n}"),
            },
            None => format!("Revert {}", short(merge_sha)),
        };
        let message = format!(
            "{title}\n\nThis reverts {merge_sha} because {why}.\n\nPromoted-by: gitops-promote\nPromotion-run: {}\nReverts: {merge_sha}\n",
            run_url_from_env()
        );
        let branch = format!(
            "gitops-promote/revert-{}",
            record
                .pr_number
                .map(|n| n.to_string())
                .unwrap_or_else(|| short(merge_sha).to_string())
        );
        RevertText {
            title,
            message,
            branch,
        }
    }
}

/// Commits the reverted tree on the base head and pushes our revert branch.
async fn push_revert(
    cfg: &Config,
    checkout: &Arc<Mutex<Checkout>>,
    onto: git2::Oid,
    tree: git2::Oid,
    text: &RevertText,
) -> Result<(), StepError> {
    let author = git::Identity {
        name: cfg.author_name.clone(),
        email: cfg.author_email.clone(),
    };
    let (checkout, branch, message) = (checkout.clone(), text.branch.clone(), text.message.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = checkout.lock().unwrap();
        let commit = c.commit_tree(onto, tree, &message, &author)?;
        // Our revert branch may exist from an earlier attempt of this rollback: it is ours.
        c.push_branch(commit, &branch, true)
    })
    .await
    .expect("push task")
    .map_err(|e| StepError::new("push revert", &e))
}

/// Opens "Revert #N: ..." (or takes over the one an earlier attempt opened).
async fn open_revert_pr(
    cfg: &Config,
    gh: &GitHub,
    record: &Record,
    text: &RevertText,
) -> Result<crate::clients::github::PrRef, StepError> {
    let body = format!(
        "{}\n\nRun: {}",
        text.message.lines().nth(2).unwrap_or_default(),
        run_url_from_env()
    );
    let opened = gh
        .open_or_reuse_pr(&NewPr {
            head: text.branch.clone(),
            base: record.base.clone(),
            title: text.title.clone(),
            body,
            draft: false,
            labels: cfg.labels.clone(),
            reviewers: vec![],
            team_reviewers: vec![],
            assignees: vec![],
            pushed: None,
        })
        .await;
    match opened {
        Ok(pr) => Ok(pr),
        Err(e) => {
            // No PR holds the branch: delete it rather than leave it lying around unexplained
            // (best effort: the error that matters is the one returned).
            let _ = gh.delete_branch(&text.branch).await;
            Err(StepError::new("open revert PR", &e))
        }
    }
}

/// Merges the revert PR, or, when that cannot be done, says on it that production still runs the
/// promotion and leaves it for a human.
async fn merge_or_explain(
    cfg: &Config,
    rt: &Runtime,
    gh: &GitHub,
    pr: &crate::clients::github::PrRef,
    text: &RevertText,
) -> Result<String, StepError> {
    let merged = merge_revert(cfg, rt, gh, pr, &text.title, &text.message).await;
    let Err(mut e) = merged else {
        return merged;
    };
    let note = format!(
        "gitops-promote could not merge this revert: {e}. Production still runs the reverted promotion: merge this PR by hand to finish the rollback. Run: {}",
        run_url_from_env()
    );
    if let Err(c) = gh.comment(pr.number, &note).await {
        rt.warning(
            "rollback",
            &format!("could not comment on PR #{}: {c}", pr.number),
        );
    }
    // The annotation is what people read during the incident: it says what still runs and where
    // the rollback waits, not only why the merge failed.
    e.message.push_str(&format!(
        "; the revert PR {} stays open and production still runs the promoted version until it is merged",
        pr.url
    ));
    if cfg.rollback_github_token.is_none() {
        let bypass =
            "set rollback-github-token to a token the base's rules let bypass, so reverts merge";
        e.hint = Some(match e.hint.take() {
            Some(h) => format!("{h}; {bypass}"),
            None => bypass.to_string(),
        });
    }
    Err(e)
}

/// Step 6: syncs the apps and waits for Healthy at the revert commit.
async fn redeploy(
    cfg: &Config,
    rt: &mut Runtime,
    record: &Record,
    revert_sha: &str,
    checkout: &Arc<Mutex<Checkout>>,
) -> Result<(), StepError> {
    let Some(a) = cfg.argocd.as_ref() else {
        return Ok(());
    };
    let argo = steps::connect_argocd(a).await?;
    let apps = rollback_apps(&argo, a, record).await?;
    steps::sync_apps(cfg, rt, &argo, &apps, revert_sha, &record.base).await?;
    let target = steps::merge_target(checkout, revert_sha);
    let statuses = steps::wait_apps(cfg, rt, &argo, &apps, |_| target.clone()).await?;
    steps::app_outputs(rt, &statuses)
}

/// What the git part of the revert found.
enum RevertPlan {
    /// A commit on the base already reverts the merge.
    AlreadyDone(String),
    /// The tree of the base head with the merge undone.
    Tree { onto: git2::Oid, tree: git2::Oid },
    /// Later commits changed the same lines: these files conflict.
    Conflict(Vec<String>),
}

/// The revert conflicts: roll each app back to its previous Argo CD history entry instead, where
/// auto-sync is off (it would undo the rollback at once otherwise).
async fn history_fallback(
    cfg: &Config,
    rt: &mut Runtime,
    record: &mut Record,
    files: &[String],
) -> Result<(), StepError> {
    let a = cfg.argocd.as_ref().ok_or_else(|| {
        StepError::msg(
            "history fallback",
            ErrorKind::Config,
            "input 'history-fallback' needs 'argocd-server'",
        )
    })?;
    let argo = steps::connect_argocd(a).await?;
    let apps = rollback_apps(&argo, a, record).await?;
    if let Some(auto) = apps.iter().find(|a| a.auto_sync) {
        return Err(StepError::msg(
            "history fallback",
            ErrorKind::Conflict,
            format!("reverting conflicts in {}, and {} has auto-sync on, which would undo a history rollback at once; revert by hand", files.join(", "), auto.name),
        ));
    }
    rt.warning(
        "history fallback",
        &format!("the git revert conflicts in {}; rolling the apps back by Argo CD history instead. Git still holds the promoted values: fix them before the next sync", files.join(", ")),
    );
    for app in &apps {
        let prev = record
            .previous_revisions
            .get(&app.name)
            .cloned()
            .unwrap_or_default();
        let current = argo
            .get(&app.name)
            .await
            .map_err(|e| StepError::new("history fallback", &e))?;
        // A multi-source app's entries name the release repo's commit in `revisions`.
        let source = current.release_source(argo.release_repo());
        let id = current
            .status
            .history
            .iter()
            .rev()
            .find(|h| h.revision_of(source).as_deref() == Some(prev.as_str()))
            .map(|h| h.id)
            .ok_or_else(|| {
                StepError::msg(
                    "history fallback",
                    ErrorKind::Sync,
                    format!("{}: no history entry at {prev} to roll back to", app.name),
                )
            })?;
        argo.rollback_to_history(&app.name, id)
            .await
            .map_err(|e| StepError::new("history fallback", &e))?;
        rt.info(&format!(
            "{}: rolled back to history entry {id} ({prev})",
            app.name
        ));
    }
    let prev = record.previous_revisions.clone();
    let statuses = steps::wait_apps(cfg, rt, &argo, &apps, |app| {
        crate::clients::argocd::Target::history(
            prev.get(&app.name).map(String::as_str).unwrap_or_default(),
        )
    })
    .await?;
    steps::app_outputs(rt, &statuses)?;
    let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    let note = format!(
        "{} run the revision before the promotion again and are Healthy; Argo CD shows them OutOfSync because {} still holds the promoted values: revert or fix them in git before the next sync",
        names.join(", "),
        record.base
    );
    rt.warning("history fallback", &note);
    rt.summary(&format!(
        "## gitops-promote rollback\n\n**Rolled back through Argo CD history**: {note}.\n"
    ));
    record.phase = Some(Phase::RolledBack);
    save(rt, record)?;
    rt.output("rolled-back", "true")?;
    Ok(())
}

use steps::save;

/// The apps to re-sync: those the promotion recorded, else those the inputs name.
async fn rollback_apps(
    argo: &ArgoCd,
    s: &crate::config::ArgoSettings,
    record: &Record,
) -> Result<Vec<crate::clients::argocd::AppRef>, StepError> {
    if record.apps.is_empty() {
        return steps::find_apps(argo, s).await;
    }
    argo.resolve_apps(&record.apps, None)
        .await
        .map_err(|e| StepError::new("find apps", &e))
}

/// The URL of the run this step belongs to, for comments and commit trailers.
fn run_url_from_env() -> String {
    let server = std::env::var("GITHUB_SERVER_URL").unwrap_or_else(|_| "https://github.com".into());
    let repo = std::env::var("GITHUB_REPOSITORY").unwrap_or_default();
    let id = std::env::var("GITHUB_RUN_ID").unwrap_or_default();
    format!("{server}/{repo}/actions/runs/{id}")
}

/// Waits for the revert PR's gate (`rollback-required-approvals`, checks) and merges it with
/// `rollback-merge-method`, the `Reverts:` trailer in the merge commit.
async fn merge_revert(
    cfg: &Config,
    rt: &Runtime,
    gh: &GitHub,
    pr: &crate::clients::github::PrRef,
    title: &str,
    message: &str,
) -> Result<String, StepError> {
    let gate = crate::clients::github::Gate {
        required_approvals: cfg.rollback_required_approvals,
        approval_timeout: cfg.approval_timeout,
        wait_for_checks: cfg.wait_for_checks,
        poll: Duration::from_secs(2),
    };
    {
        let rt_ref = rt;
        gh.wait_ready(pr, &gate, &|l: &str| rt_ref.info(l))
            .await
            .map_err(|e| StepError::new("revert gate", &e))?;
    }
    let req = MergeRequest {
        step: "merge revert",
        label: "revert PR",
        pr,
        method: cfg.rollback_merge_method,
        message: &format!(
            "{title}\n\n{}",
            message.split_once("\n\n").map(|(_, b)| b).unwrap_or("")
        ),
        rule_wait: cfg.approval_timeout,
    };
    match merge(gh, &req, &|l: &str| rt.info(l)).await? {
        Merged::Done { sha, .. } => Ok(sha),
        Merged::NotMergeable(why) => Err(not_mergeable_error(req.step, req.label, pr.number, &why)),
    }
}
