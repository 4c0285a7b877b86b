//! The promote flow (DESIGN.md §2), top to bottom:
//!
//! 1. inputs: already a validated [`Config`];
//! 2. clone the base, shallow;
//! 3. edit the values;
//! 4. commit, with the `Promoted-by` and `Promotion-run` trailers;
//! 5. push our branch;
//! 6. open the PR, or take over ours on a re-run;
//! 7. gate: approvals and required checks;
//! 8. merge with the head-SHA guard;
//! 9. sync the Argo CD apps;
//! 10. wait until each is Synced at a revision containing the merge, and Healthy;
//! 11. verify metrics;
//! 12. outputs and summary.
//!
//! After each step that changes the outside world the [`Record`] goes to `$GITHUB_STATE` at once, so
//! the post step can undo whatever happened even if this process dies. Failures from step 7 on go
//! through the failure strategy ([`crate::config::strategy`]); earlier ones fail the step and leave the post
//! step to clean up our branch.

use crate::base::cancel;
use crate::base::state::{Phase, Record};
use crate::base::{humantime, md_cell, Classify, ErrorKind, StepError};
use crate::clients::argocd::{self, AppRef, AppStatus, ArgoCd, ArgoConfig, Target, WaitOptions};
use crate::clients::git::{self, Checkout};
use crate::clients::github::{GitHub, Merge, NewPr, PrRef};
use crate::clients::runtime::Runtime;
use crate::clients::values::{self, SetOp};
use crate::clients::verify;
use crate::config::strategy::Action;
use crate::config::{ArgoSettings, Config, SyncMode, Template};
use crate::rollback;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs the whole promotion for `cfg`, writing outputs, state and summary through `rt`.
///
/// # Errors
/// The failed step's [`StepError`], after the failure strategy has run (a rollback included).
pub async fn run(cfg: &Config, rt: &mut Runtime) -> Result<(), StepError> {
    let gh = connect_github(cfg)?;
    let mut p = Promotion {
        cfg,
        rt,
        gh: &gh,
        record: Record::default(),
        timeline: Timeline::default(),
    };
    let result = p.steps().await;
    p.finish(&result);
    result
}

/// What one promotion carries from step to step.
struct Promotion<'a> {
    cfg: &'a Config,
    rt: &'a mut Runtime,
    gh: &'a GitHub,
    record: Record,
    timeline: Timeline,
}

/// The files a promotion changes, before and after.
pub struct Edit {
    /// One entry per file, in the order the `set` lines first named them.
    pub files: Vec<FileEdit>,
}

/// One edited values file.
pub struct FileEdit {
    /// Path relative to the repo root.
    pub path: String,
    /// Bytes on the base.
    pub old: Vec<u8>,
    /// Bytes after the edit.
    pub new: Vec<u8>,
    /// The values that changed.
    pub changes: Vec<values::Change>,
}

impl Edit {
    /// Whether anything differs from the base.
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| !f.changes.is_empty())
    }

    /// The `{changes}` of the templates, short enough for a PR title: `image.tag 1.1.0 → 1.2.0`,
    /// joined by `, `; the file is named only when the promotion touches several.
    pub fn describe(&self) -> String {
        let several = self.files.iter().filter(|f| !f.changes.is_empty()).count() > 1;
        let mut out = Vec::new();
        for f in &self.files {
            for c in &f.changes {
                let old = c.old.as_deref().unwrap_or("(none)");
                let file = if several {
                    format!(" in {}", f.path)
                } else {
                    String::new()
                };
                out.push(format!("{} {old} → {}{file}", c.path, c.new));
            }
        }
        out.join(", ")
    }
}

/// Where a guarded step leaves the flow after the failure strategy ran.
enum Decision {
    /// Run the step again.
    Retry,
    /// A maintainer said `/proceed`: go on as if the step had passed.
    Proceed,
    /// `ignore`: stop here and succeed.
    Stop,
}

/// Where a phase leaves the flow: go on with its output, or end the step here, successfully
/// (nothing to promote, a dry run, `merge: false`, or a failure the strategy says to ignore).
enum Next<T> {
    Go(T),
    End,
}

/// Runs a step under the failure strategy: retries it, or ends the phase (and so the flow) on
/// ignore, or yields `None` when a maintainer chose to proceed past it.
macro_rules! guarded {
    ($self:ident, $step:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $step.await {
                Ok(v) => break Some(v),
                Err(e) => match $self.decide(e, &mut attempt).await? {
                    Decision::Retry => continue,
                    Decision::Proceed => break None,
                    Decision::Stop => return Ok(Next::End),
                },
            }
        }
    }};
}

/// Takes a phase's output, or ends the flow successfully when the phase said so.
macro_rules! go {
    ($phase:expr) => {
        match $phase.await? {
            Next::Go(v) => v,
            Next::End => return Ok(()),
        }
    };
}

/// What the flow knows once the edit is made, before anything remote has changed.
struct Prepared {
    base: String,
    /// The Argo CD client and the apps to sync, when `argocd-server` is set.
    argo: Option<(ArgoCd, Vec<AppRef>)>,
    checkout: Arc<Mutex<Checkout>>,
    edit: Edit,
}

impl Promotion<'_> {
    /// The steps of DESIGN.md §2, as phases: each one's output feeds the next.
    async fn steps(&mut self) -> Result<(), StepError> {
        let ready = go!(self.prepare());
        let (branch, pr) = go!(self.propose(&ready));
        let merged = go!(self.land(&ready, &branch, pr));
        go!(self.deploy(&ready, &merged));
        go!(self.verify_gate());
        self.record.phase = Some(Phase::Done);
        self.save()
    }

    /// Steps 1 to 3: the base, Argo CD and its apps, the clone and the edit; nothing remote changes.
    async fn prepare(&mut self) -> Result<Next<Prepared>, StepError> {
        let cfg = self.cfg;
        let base = resolve_base(self.gh, cfg).await?;
        self.record.repo = cfg.repository.to_string();
        self.record.base = base.clone();
        self.record.on_failure = "rollback".into();
        // Argo CD is checked before anything is pushed: a missing app, a wrong token or a server
        // that is not Argo CD must stop the promotion here, not after a merge it would then revert.
        let argo = match cfg.argocd.as_ref() {
            Some(settings) => {
                let argo = self
                    .timed("connect to Argo CD", connect_argocd(settings))
                    .await?;
                let apps = self.find_apps(&argo, settings).await?;
                Some((argo, apps))
            }
            None => None,
        };
        let repo = self.record.repo.clone();
        let checkout = self.timed("clone", clone(cfg, &repo, &base)).await?;
        self.record.base_sha = checkout.base_sha().to_string();

        let edit = self.timed("edit", async { edit(&checkout, cfg) }).await?;
        self.print_diff(&edit);
        self.timeline.changes = edit.describe();
        if !edit.changed() && !cfg.allow_empty {
            self.rt.info(&format!(
                "every value is already set on {base}: nothing to promote"
            ));
            self.rt.output("changed", "false")?;
            return Ok(Next::End);
        }
        self.rt.output("changed", "true")?;
        if cfg.dry_run {
            self.rt.info(&plan(cfg, &base, &edit));
            return Ok(Next::End);
        }
        Ok(Next::Go(Prepared {
            base,
            argo,
            checkout: Arc::new(Mutex::new(checkout)),
            edit,
        }))
    }

    /// Steps 4 to 6: commit, push our branch, open (or take over) the PR.
    async fn propose(&mut self, ready: &Prepared) -> Result<Next<(String, PrRef)>, StepError> {
        let (cfg, base, edit) = (self.cfg, &ready.base, &ready.edit);
        let branch = render(cfg, &cfg.branch, base, edit);
        let commit = self
            .timed("commit", commit(&ready.checkout, cfg, base, edit))
            .await?;
        // A cancellation lets the push and the PR finish and be recorded: the post step cleans up
        // only what the state names.
        let section = cancel::critical();
        // Forced, and only ever to our own branch (git refuses the base): a re-run of the job
        // rebuilds it from the current base and takes over its PR.
        self.timed("push", push(&ready.checkout, commit, &branch, true))
            .await?;
        self.record.branch = branch.clone();
        self.record.phase = Some(Phase::Pushed);
        self.save()?;

        let gh = self.gh;
        let pr = self
            .timed("open PR", open_pr(gh, cfg, base, &branch, edit))
            .await?;
        self.record.pr_number = Some(pr.number);
        self.record.phase = Some(Phase::PrOpen);
        self.save()?;
        self.rt.output("pr-number", &pr.number.to_string())?;
        self.rt.output("pr-url", &pr.url)?;
        drop(section);
        for w in &pr.warnings {
            self.rt.warning("pull request", w);
        }
        if !cfg.merge {
            self.rt.info(&format!(
                "merge: false, so PR #{} stays open for review: {}",
                pr.number, pr.url
            ));
            self.record.on_failure = "skip".into();
            self.save()?;
            return Ok(Next::End);
        }
        Ok(Next::Go((branch, pr)))
    }

    /// Steps 7 and 8: the gate, then the merge with the head-SHA guard; a PR that conflicts with a
    /// newer base is rebuilt on it.
    async fn land(
        &mut self,
        ready: &Prepared,
        branch: &str,
        mut pr: PrRef,
    ) -> Result<Next<Merged>, StepError> {
        let mut rebuilds = 0;
        let mut section;
        let merged = loop {
            // A maintainer's /proceed past the gate still leads to the merge below.
            match guarded!(self, self.gate(&pr, rebuilds < MAX_REBUILDS)) {
                Some(Gated::Dirty) => {
                    rebuilds += 1;
                    pr = self.rebuild(&pr, &ready.checkout, branch).await?;
                    continue;
                }
                Some(Gated::Ready) | None => {}
            }
            // A merge in flight when the job is cancelled is let finish and recorded, so that the
            // post step knows what to revert.
            section = Some(cancel::critical());
            match guarded!(self, self.merge(&pr, &ready.edit, &ready.checkout, branch)) {
                Some(MergeStep::Merged(m)) => break m,
                Some(MergeStep::Rebased(new_pr)) => {
                    pr = new_pr;
                    // The gate comes next: a wait, which a cancellation may stop at once.
                    drop(section.take());
                }
                None => {
                    self.rt.warning(
                        "merge",
                        &format!("PR #{} was not merged; it stays open", pr.number),
                    );
                    self.record.on_failure = "skip".into();
                    self.save()?;
                    return Ok(Next::End);
                }
            }
        };
        self.record.merge_sha = merged.sha.clone();
        self.record.merged_commits = merged.commits.clone();
        self.record.phase = Some(Phase::Merged);
        self.save()?;
        drop(section);
        self.rt.output("merge-sha", &merged.sha)?;
        delete_merged_branch(self.rt, self.gh, pr.number, branch).await;
        Ok(Next::Go(merged))
    }

    /// Steps 9 and 10: sync every app and wait until each is Synced at a revision containing the
    /// merge, and Healthy.
    async fn deploy(&mut self, ready: &Prepared, merged: &Merged) -> Result<Next<()>, StepError> {
        let Some((argo, apps)) = ready.argo.as_ref() else {
            self.rt.info("no argocd-server: skipping sync and wait");
            return Ok(Next::Go(()));
        };
        if guarded!(self, self.sync(argo, apps, &merged.sha)).is_none() {
            return Ok(Next::Go(()));
        }
        if let Some(statuses) = guarded!(self, self.wait(argo, apps, &merged.sha, &ready.checkout))
        {
            self.record.phase = Some(Phase::Synced);
            self.save()?;
            app_outputs(self.rt, &statuses)?;
            self.timeline.apps = statuses;
        }
        Ok(Next::Go(()))
    }

    /// Step 11: the metrics gate, when `prometheus-url` is set.
    async fn verify_gate(&mut self) -> Result<Next<()>, StepError> {
        if self.cfg.verify.prometheus_url.is_some() && guarded!(self, self.verify()).is_some() {
            self.record.phase = Some(Phase::Verified);
            self.save()?;
        }
        Ok(Next::Go(()))
    }

    /// Writes the record to `$GITHUB_STATE` now: the post step must see it even if we die next.
    fn save(&mut self) -> Result<(), StepError> {
        save(self.rt, &self.record)
    }

    /// Runs `fut` as a named step: a log group, a timeline entry and a typed error.
    async fn timed<T>(
        &mut self,
        name: &'static str,
        fut: impl std::future::Future<Output = Result<T, StepError>>,
    ) -> Result<T, StepError> {
        let start = Instant::now();
        let group = self.rt.group(name);
        let r = fut.await;
        drop(group);
        self.timeline
            .push(name, start, r.as_ref().err().map(|e| e.kind));
        r
    }

    fn print_diff(&mut self, edit: &Edit) {
        for f in &edit.files {
            if !f.changes.is_empty() {
                self.rt.info(&values::unified_diff(&f.path, &f.old, &f.new));
            }
        }
    }

    /// Waits for approvals and checks; a PR that conflicts with a newer base is reported as
    /// [`Gated::Dirty`] (while `may_rebuild`) so that the flow re-applies the edit on it.
    async fn gate(&mut self, pr: &PrRef, may_rebuild: bool) -> Result<Gated, StepError> {
        let gate = crate::clients::github::Gate {
            required_approvals: self.cfg.required_approvals,
            approval_timeout: self.cfg.approval_timeout,
            wait_for_checks: self.cfg.wait_for_checks,
            poll: Duration::from_secs(2),
        };
        let rt = &*self.rt;
        let start = Instant::now();
        let r = self
            .gh
            .wait_ready(pr, &gate, &|line: &str| rt.info(line))
            .await;
        self.timeline
            .push("gate", start, r.as_ref().err().map(|e| e.kind()));
        match r {
            Ok(_) => Ok(Gated::Ready),
            Err(e)
                if may_rebuild
                    && e.kind() == ErrorKind::Conflict
                    && self.is_dirty(pr.number).await =>
            {
                self.rt.info(&format!(
                    "PR #{} conflicts with a newer {}: applying the edit again on it",
                    pr.number, self.record.base
                ));
                Ok(Gated::Dirty)
            }
            Err(e) => Err(StepError::new("gate", &e)),
        }
    }

    async fn merge(
        &mut self,
        pr: &PrRef,
        edit: &Edit,
        checkout: &Arc<Mutex<Checkout>>,
        branch: &str,
    ) -> Result<MergeStep, StepError> {
        let start = Instant::now();
        let message = commit_message(self.cfg, &self.record.base, edit);
        let rt = &*self.rt;
        let r = match merge(self.gh, self.cfg, pr, &message, &|l: &str| rt.info(l)).await {
            Err(e) if e.kind == ErrorKind::Conflict && self.is_dirty(pr.number).await => {
                self.rt.info(&format!(
                    "PR #{} conflicts with a newer {}: applying the edit again on it",
                    pr.number, self.record.base
                ));
                self.rebuild(pr, checkout, branch)
                    .await
                    .map(MergeStep::Rebased)
            }
            other => other,
        };
        self.timeline
            .push("merge", start, r.as_ref().err().map(|e| e.kind));
        r
    }

    /// Finds the apps and records each one's revision before the promotion.
    async fn find_apps(
        &mut self,
        argo: &ArgoCd,
        settings: &ArgoSettings,
    ) -> Result<Vec<AppRef>, StepError> {
        let start = Instant::now();
        let r = find_apps(argo, settings).await;
        if let Ok(apps) = &r {
            self.record.apps = apps.iter().map(|a| a.name.clone()).collect();
            self.record.previous_revisions = apps
                .iter()
                .map(|a| {
                    (
                        a.name.clone(),
                        a.synced_revision.clone().unwrap_or_default(),
                    )
                })
                .collect();
            self.save()?;
        }
        self.timeline
            .push("find apps", start, r.as_ref().err().map(|e| e.kind));
        r
    }

    async fn sync(
        &mut self,
        argo: &ArgoCd,
        apps: &[AppRef],
        revision: &str,
    ) -> Result<(), StepError> {
        let start = Instant::now();
        let group = self.rt.group("sync");
        let r = sync_apps(self.cfg, self.rt, argo, apps, revision).await;
        drop(group);
        self.timeline
            .push("sync", start, r.as_ref().err().map(|e| e.kind));
        r
    }

    async fn wait(
        &mut self,
        argo: &ArgoCd,
        apps: &[AppRef],
        merge_sha: &str,
        checkout: &Arc<Mutex<Checkout>>,
    ) -> Result<Vec<AppStatus>, StepError> {
        let start = Instant::now();
        let group = self.rt.group("wait for Synced and Healthy");
        let target = merge_target(checkout, merge_sha);
        let r = wait_apps(self.cfg, self.rt, argo, apps, |_| target.clone()).await;
        drop(group);
        self.timeline
            .push("wait", start, r.as_ref().err().map(|e| e.kind));
        r
    }

    async fn verify(&mut self) -> Result<(), StepError> {
        let start = Instant::now();
        let r = verify::gate(&self.cfg.verify, self.rt).await.map(|_| ());
        self.timeline
            .push("verify", start, r.as_ref().err().map(|e| e.kind));
        r
    }

    /// Whether GitHub says the PR conflicts with its base (rather than being blocked).
    async fn is_dirty(&self, number: u64) -> bool {
        matches!(self.gh.pr(number).await, Ok(pr) if pr.mergeable_state == "dirty")
    }

    /// Re-applies the `set` lines on the base's new head and force-pushes our own branch: the
    /// values on our branch are only ours, so nothing of anyone else's is lost.
    async fn rebuild(
        &mut self,
        pr: &PrRef,
        checkout: &Arc<Mutex<Checkout>>,
        branch: &str,
    ) -> Result<PrRef, StepError> {
        let cfg = self.cfg;
        let c = checkout.clone();
        tokio::task::spawn_blocking(move || c.lock().unwrap().fetch_base())
            .await
            .expect("fetch task")
            .map_err(|e| StepError::new("merge", &e))?;
        let edit = edit(&checkout.lock().unwrap(), cfg)?;
        if !edit.changed() {
            return Err(StepError::msg(
                "merge",
                ErrorKind::Conflict,
                format!(
                    "{} already holds these values; PR #{} is not needed",
                    self.record.base, pr.number
                ),
            ));
        }
        let base = self.record.base.clone();
        let commit = commit(checkout, cfg, &base, &edit).await?;
        push(checkout, commit, branch, true).await?;
        let refreshed = self
            .gh
            .pr(pr.number)
            .await
            .map_err(|e| StepError::new("merge", &e))?;
        Ok(PrRef {
            head_sha: commit.to_string(),
            url: refreshed.url,
            ..pr.clone()
        })
    }

    /// Applies the failure strategy to `err` (DESIGN.md §6).
    async fn decide(&mut self, err: StepError, attempt: &mut u32) -> Result<Decision, StepError> {
        let mut action = self.cfg.failure_strategy.action_for(err.kind);
        loop {
            match action {
                Action::Retry {
                    retries,
                    interval,
                    then,
                } => {
                    if err.kind != ErrorKind::Config && *attempt < retries {
                        *attempt += 1;
                        self.rt.warning(
                            &format!("retrying {}", err.step),
                            &format!(
                                "{err}; again in {} ({} of {retries})",
                                humantime(interval),
                                *attempt
                            ),
                        );
                        tokio::time::sleep(interval).await;
                        return Ok(Decision::Retry);
                    }
                    action = *then;
                }
                Action::Rollback => return Err(self.roll_back(err).await),
                Action::Ignore => {
                    self.rt.warning(
                        &format!("{} error ignored", err.kind),
                        &format!("{err}; the strategy says ignore: the step succeeds and nothing is rolled back"),
                    );
                    self.record.on_failure = "skip".into();
                    self.save()?;
                    self.note_left_open(&err, "ignored").await;
                    return Ok(Decision::Stop);
                }
                Action::Abort => {
                    self.record.on_failure = "skip".into();
                    self.save()?;
                    self.rt.warning("aborted", "the strategy says abort: nothing is rolled back, and the post step will do nothing");
                    self.note_left_open(&err, "aborted").await;
                    return Err(err);
                }
                Action::Manual { timeout, then } => match self.ask_maintainer(&err, timeout).await?
                {
                    Answer::Proceed => return Ok(Decision::Proceed),
                    Answer::Rollback => action = Action::Rollback,
                    Answer::TimedOut => action = *then,
                },
            }
        }
    }

    /// Says on our PR why it stays open, when the strategy leaves it unmerged (ignore, abort): no PR
    /// of ours is left open without a word.
    async fn note_left_open(&self, err: &StepError, how: &str) {
        let Some(n) = self
            .record
            .pr_number
            .filter(|_| self.record.phase() == Phase::PrOpen)
        else {
            return;
        };
        let body = format!(
            "gitops-promote {how} this promotion: {err}. The PR is left open and unmerged for a human to finish or close. Run: {}",
            self.cfg.run.run_url
        );
        if let Err(e) = self.gh.comment(n, &body).await {
            self.rt.warning(
                "pull request",
                &format!("could not comment on PR #{n}: {e}"),
            );
        }
    }

    /// Rolls back at once inside the main step, so `revert-sha` is an output later steps can read,
    /// and returns the original error so the step fails.
    async fn roll_back(&mut self, err: StepError) -> StepError {
        // The annotation for `err` comes once, from `main`, when the step fails.
        self.rt.info(&format!(
            "{err}\nrolling back: the strategy for {} errors says rollback",
            err.kind
        ));
        let group = self.rt.group("rollback");
        let why = format!("the promotion's {} step failed: {}", err.step, err.message);
        let undone = rollback::undo(self.cfg, self.rt, self.gh, &mut self.record, &why).await;
        drop(group);
        match undone {
            Ok(()) => err,
            Err(rb) => {
                self.rt.info(&format!("the rollback failed: {rb}"));
                StepError {
                    message: format!("{}; the rollback failed too: {}", err.message, rb.message),
                    ..err
                }
            }
        }
    }

    async fn ask_maintainer(
        &mut self,
        err: &StepError,
        timeout: Duration,
    ) -> Result<Answer, StepError> {
        let Some(pr) = self.record.pr_number else {
            return Ok(Answer::TimedOut);
        };
        let asked_at = chrono::Utc::now();
        let body = format!(
            "**gitops-promote** needs a decision: {err}\n\nA user with write access can answer `/rollback` or `/proceed` within {}. Without an answer the action does what `then` says.",
            humantime(timeout)
        );
        self.gh
            .comment(pr, &body)
            .await
            .map_err(|e| StepError::new("ask for a decision", &e))?;
        let deadline = Instant::now() + timeout;
        let mut last_progress = Instant::now();
        while Instant::now() < deadline {
            let comments = self
                .gh
                .comments_since(pr, asked_at)
                .await
                .map_err(|e| StepError::new("read decisions", &e))?;
            for c in comments {
                let word = c.body.trim();
                let answer = match word {
                    "/proceed" => Answer::Proceed,
                    "/rollback" => Answer::Rollback,
                    _ => continue,
                };
                let perm = self
                    .gh
                    .permission(&c.user)
                    .await
                    .map_err(|e| StepError::new("read decisions", &e))?;
                if matches!(perm.as_str(), "admin" | "maintain" | "write") {
                    self.rt.info(&format!("{} answered {word}", c.user));
                    return Ok(answer);
                }
                self.rt.info(&format!(
                    "ignoring {word} from {}: needs write access, has {perm}",
                    c.user
                ));
            }
            if last_progress.elapsed() >= Duration::from_secs(15) {
                last_progress = Instant::now();
                self.rt.info(&format!(
                    "waiting for /rollback or /proceed on PR #{pr}: {} left",
                    humantime(deadline - Instant::now())
                ));
            }
            tokio::time::sleep(
                Duration::from_secs(2).min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        self.rt.info("no decision came in time");
        Ok(Answer::TimedOut)
    }

    /// Writes the job summary; the failed step's annotation is printed by `main`.
    fn finish(&mut self, result: &Result<(), StepError>) {
        let summary = summary(self.cfg, &self.record, &self.timeline, result);
        self.rt.summary(&summary);
    }
}

/// How often a PR that conflicts with a newer base is rebuilt before the conflict is an error:
/// a base that keeps changing under us needs a human.
const MAX_REBUILDS: u32 = 3;

/// What the gate found.
enum Gated {
    /// Approved, checks green, mergeable.
    Ready,
    /// Conflicts with a newer base: rebuild our branch on it.
    Dirty,
}

/// What a maintainer answered to a `manual` strategy.
enum Answer {
    Proceed,
    Rollback,
    TimedOut,
}

/// What one merge attempt came to.
enum MergeStep {
    /// Merged: the SHA and every commit it put on the base.
    Merged(Merged),
    /// The base moved and conflicted; our branch was rebuilt on the new base.
    Rebased(PrRef),
}

/// A finished merge.
struct Merged {
    sha: String,
    commits: Vec<String>,
}

/// The `base` input, or the repo's default branch when it is empty.
pub async fn resolve_base(gh: &GitHub, cfg: &Config) -> Result<String, StepError> {
    match &cfg.base {
        Some(b) => Ok(b.clone()),
        None => gh
            .default_branch()
            .await
            .map_err(|e| StepError::new("resolve base", &e)),
    }
}

/// Deletes our branch after its PR merged. When GitHub will not, the step goes on (the merge is
/// what counts) but says so in a warning and on the PR, so nobody wonders whose branch it is.
pub async fn delete_merged_branch(rt: &Runtime, gh: &GitHub, pr: u64, branch: &str) {
    let Err(e) = gh.delete_branch(branch).await else {
        return;
    };
    let msg = format!("could not delete its branch {branch} after merging #{pr}: {e}");
    rt.warning("cleanup", &format!("gitops-promote {msg}"));
    let note = format!(
        "gitops-promote merged this PR but {msg}. Nothing else uses the branch: delete it by hand."
    );
    if let Err(e) = gh.comment(pr, &note).await {
        rt.warning("cleanup", &format!("could not say so on #{pr} either: {e}"));
    }
}

/// The GitHub client for the release repo.
pub fn connect_github(cfg: &Config) -> Result<GitHub, StepError> {
    let mut gh = GitHub::new(
        cfg.run.api_url.as_str(),
        cfg.github_token.expose(),
        &cfg.repository.to_string(),
    )
    .map_err(|e| StepError::new("connect to GitHub", &e))?;
    gh.call_timeout = cfg.request_timeout;
    gh.retry_budget = cfg.retry_budget;
    Ok(gh)
}

/// The clone URL of `repo` on the git host (`GITHUB_SERVER_URL`), with no credentials in it.
pub fn remote(cfg: &Config, repo: &str) -> git::Remote {
    git::Remote {
        url: format!(
            "{}/{repo}.git",
            cfg.run.server_url.as_str().trim_end_matches('/')
        ),
        token: cfg.github_token.expose().to_string(),
        retry_budget: cfg.retry_budget,
    }
}

/// Writes `record` to `$GITHUB_STATE`.
pub fn save(rt: &mut Runtime, record: &Record) -> Result<(), StepError> {
    for (k, v) in record.to_pairs() {
        rt.state(k, &v)?;
    }
    Ok(())
}

async fn clone(cfg: &Config, repo: &str, base: &str) -> Result<Checkout, StepError> {
    let remote = remote(cfg, repo);
    let base = base.to_string();
    tokio::task::spawn_blocking(move || git::clone_base(&remote, &base, 1))
        .await
        .expect("clone task")
        .map_err(|e| StepError::new("clone", &e))
}

/// Applies every `set` line to the files on the base, checking each result against its schema.
pub fn edit(checkout: &Checkout, cfg: &Config) -> Result<Edit, StepError> {
    let mut by_file: Vec<(String, Vec<SetOp>)> = Vec::new();
    for line in &cfg.sets {
        let op = SetOp::parse(line).map_err(|e| StepError::new("edit", &e))?;
        let file = op.file.clone().unwrap_or_else(|| cfg.file.clone());
        let file = safe_repo_path(&file)?;
        match by_file.iter_mut().find(|(f, _)| *f == file) {
            Some((_, ops)) => ops.push(op),
            None => by_file.push((file, vec![op])),
        }
    }
    let opts = values::EditOptions {
        create_missing: cfg.create_missing,
        ..values::EditOptions::default()
    };
    let mut files = Vec::new();
    for (path, ops) in by_file {
        let old = checkout
            .read_file(checkout.base_sha(), &path)
            .map_err(|e| StepError::new("edit", &e))?
            .ok_or_else(|| {
                StepError::msg(
                    "edit",
                    ErrorKind::Config,
                    format!("input 'file': {path} does not exist on {}", checkout.base()),
                )
            })?;
        let in_file = |e: values::ValuesError| {
            let mut err = StepError::new("edit", &e);
            err.message = format!("{path}: {}", err.message);
            err
        };
        let edited = values::apply(&old, &ops, &opts).map_err(in_file)?;
        let schema_path = schema_beside(&path);
        if let Some(schema) = checkout
            .read_file(checkout.base_sha(), &schema_path)
            .map_err(|e| StepError::new("edit", &e))?
        {
            values::validate_schema(&edited.bytes, &schema).map_err(in_file)?;
        }
        files.push(FileEdit {
            path,
            old,
            new: edited.bytes,
            changes: edited.changes,
        });
    }
    Ok(Edit { files })
}

/// `values.schema.json` in the folder of `path`, as Helm looks for it.
fn schema_beside(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/values.schema.json"),
        None => "values.schema.json".to_string(),
    }
}

/// Checks that `path` stays inside the repo: relative, no `..`, no empty parts.
fn safe_repo_path(path: &str) -> Result<String, StepError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        return Err(StepError::msg(
            "edit",
            ErrorKind::Config,
            format!("input 'file': expected a path inside the repository like charts/app/values.yaml, got '{path}'"),
        ));
    }
    Ok(path.to_string())
}

async fn commit(
    checkout: &Arc<Mutex<Checkout>>,
    cfg: &Config,
    base: &str,
    edit: &Edit,
) -> Result<git2::Oid, StepError> {
    let message = commit_message(cfg, base, edit);
    let files: Vec<(String, Vec<u8>)> = edit
        .files
        .iter()
        .map(|f| (f.path.clone(), f.new.clone()))
        .collect();
    let author = git::Identity {
        name: cfg.author_name.clone(),
        email: cfg.author_email.clone(),
    };
    let checkout = checkout.clone();
    tokio::task::spawn_blocking(move || {
        let c = checkout.lock().unwrap();
        c.commit_files(c.base_sha(), &files, &message, &author)
    })
    .await
    .expect("commit task")
    .map_err(|e| StepError::new("commit", &e))
}

async fn push(
    checkout: &Arc<Mutex<Checkout>>,
    commit: git2::Oid,
    branch: &str,
    force: bool,
) -> Result<(), StepError> {
    let checkout = checkout.clone();
    let branch = branch.to_string();
    tokio::task::spawn_blocking(move || {
        checkout.lock().unwrap().push_branch(commit, &branch, force)
    })
    .await
    .expect("push task")
    .map_err(|e| StepError::new("push", &e))
}

async fn open_pr(
    gh: &GitHub,
    cfg: &Config,
    base: &str,
    branch: &str,
    edit: &Edit,
) -> Result<PrRef, StepError> {
    let new = NewPr {
        head: branch.to_string(),
        base: base.to_string(),
        title: render(cfg, &cfg.pr_title, base, edit),
        body: render(cfg, &cfg.pr_body, base, edit),
        draft: cfg.draft,
        labels: cfg.labels.clone(),
        reviewers: cfg.reviewers.clone(),
        assignees: cfg.assignees.clone(),
    };
    gh.open_or_reuse_pr(&new)
        .await
        .map_err(|e| StepError::new("open PR", &e))
}

/// Merges with the head-SHA guard; a moved base is retried, a conflict is left to the caller. A
/// merge a rule refuses for now (a required check expected, a review missing) is tried again every
/// few seconds within `approval-timeout`, as the gate would have waited had it known the rule.
async fn merge(
    gh: &GitHub,
    cfg: &Config,
    pr: &PrRef,
    message: &str,
    progress: &dyn Fn(&str),
) -> Result<MergeStep, StepError> {
    // The merge (or squash) commit carries our trailers, so the base's history says which
    // promotion it was whatever the repo's default merge message is.
    let title = format!(
        "{} (#{})",
        message.lines().next().unwrap_or_default(),
        pr.number
    );
    let body: String = message.lines().skip(2).collect::<Vec<_>>().join("\n");
    let mut moved = 0u32;
    let mut blocked_since: Option<Instant> = None;
    loop {
        match gh
            .merge_with(
                pr.number,
                cfg.merge_method,
                &pr.head_sha,
                Some((&title, &body)),
            )
            .await
            .map_err(|e| StepError::new("merge", &e))?
        {
            Merge::Merged { sha, commits } => {
                return Ok(MergeStep::Merged(Merged { sha, commits }))
            }
            Merge::BaseModified => {
                moved += 1;
                if moved >= 5 {
                    return Err(StepError::msg(
                        "merge",
                        ErrorKind::Conflict,
                        "the base branch kept moving during five merge attempts",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(moved))).await;
            }
            Merge::Blocked(why) => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
                if since.elapsed() >= cfg.approval_timeout {
                    return Err(rule_block_error(pr.number, &why, cfg.approval_timeout));
                }
                progress(&format!(
                    "PR #{}: GitHub refuses the merge for now: {why}; trying again, {}s left",
                    pr.number,
                    cfg.approval_timeout
                        .saturating_sub(since.elapsed())
                        .as_secs()
                ));
                tokio::time::sleep(RULE_RETRY).await;
            }
            Merge::HeadModified => {
                return Err(StepError::msg("merge", ErrorKind::Conflict, format!("someone pushed to our branch of PR #{} after it was opened; not merging what we did not write", pr.number)));
            }
            Merge::NotMergeable(why) => {
                return Err(StepError::msg(
                    "merge",
                    ErrorKind::Conflict,
                    format!("PR #{} cannot be merged: {why}", pr.number),
                ));
            }
        }
    }
}

/// How often a merge a rule refuses is tried again.
pub const RULE_RETRY: Duration = Duration::from_secs(5);

/// The error for a merge a rule still refused at the end of `approval-timeout`: an `approval`
/// error when reviews are missing, else a `timeout` (a required check never came), with GitHub's
/// words.
pub fn rule_block_error(pr: u64, why: &str, waited: Duration) -> StepError {
    let kind = if why.contains("review") {
        ErrorKind::Approval
    } else {
        ErrorKind::Timeout
    };
    StepError {
        hint: Some(
            "a branch protection rule or ruleset on the base requires it, and the token cannot bypass it".into(),
        ),
        ..StepError::msg(
            "merge",
            kind,
            format!(
                "GitHub still refuses to merge PR #{pr} after {}: {why}",
                humantime(waited)
            ),
        )
    }
}

/// The wait target for `sha`: that commit or a descendant of it on the base, as git says.
pub fn merge_target(checkout: &Arc<Mutex<Checkout>>, sha: &str) -> Target {
    Target {
        merge_sha: sha.to_string(),
        contains: contains_fn(checkout.clone(), sha.to_string()),
        from_history: false,
    }
}

/// Answers "does revision `rev` contain the merge" from git, caching answers.
fn contains_fn(
    checkout: Arc<Mutex<Checkout>>,
    merge_sha: String,
) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
    let cache: Mutex<BTreeMap<String, bool>> = Mutex::new(BTreeMap::new());
    Arc::new(move |rev: &str| {
        if rev == merge_sha {
            return true;
        }
        if let Some(&known) = cache.lock().unwrap().get(rev) {
            return known;
        }
        let answer =
            tokio::task::block_in_place(|| checkout.lock().unwrap().contains(rev, &merge_sha))
                .unwrap_or(false);
        cache.lock().unwrap().insert(rev.to_string(), answer);
        answer
    })
}

/// What a run would do, for `dry-run` and the summary.
pub fn plan(cfg: &Config, base: &str, edit: &Edit) -> String {
    let mut steps = vec![format!(
        "1. commit the edit below on a new branch from `{base}` and push it"
    )];
    steps.push(format!("2. open a PR into `{base}`"));
    if cfg.merge {
        if cfg.required_approvals > 0 {
            steps.push(format!(
                "3. wait for {} approving review(s)",
                cfg.required_approvals
            ));
        }
        steps.push(format!(
            "{}. merge it ({})",
            steps.len() + 1,
            cfg.merge_method.as_str()
        ));
        if let Some(a) = &cfg.argocd {
            let which = match &a.selector {
                Some(sel) => format!("matching `{sel}`"),
                None => a.apps.join(", "),
            };
            steps.push(format!(
                "{}. sync Argo CD apps {which} and wait until Synced and Healthy",
                steps.len() + 1
            ));
        }
        if cfg.verify.prometheus_url.is_some() {
            steps.push(format!("{}. run the metrics gate", steps.len() + 1));
        }
    }
    format!(
        "dry run: nothing remote was changed. Plan:\n{}\n\nChanges:\n{}",
        steps.join("\n"),
        edit.describe()
    )
}

/// Steps and how long each took, what changed and where the apps ended, for the summary.
#[derive(Default)]
struct Timeline {
    /// The `{changes}` text, once the edit is known.
    changes: String,
    /// One row per app: name, revision, sync, health.
    apps: Vec<AppStatus>,
    start: Option<Instant>,
    events: Vec<(String, Duration, Duration, Option<ErrorKind>)>,
}

impl Timeline {
    fn push(&mut self, name: &str, start: Instant, err: Option<ErrorKind>) {
        let t0 = *self.start.get_or_insert(start);
        self.events
            .push((name.to_string(), start - t0, start.elapsed(), err));
    }
}

fn summary(cfg: &Config, rec: &Record, tl: &Timeline, result: &Result<(), StepError>) -> String {
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

/// The promotion's commit message: the `commit-message` template plus the trailers that make the
/// base's history a deployment history (and let `guard` find the last promotion).
fn commit_message(cfg: &Config, base: &str, edit: &Edit) -> String {
    git::append_trailers(
        &render(cfg, &cfg.commit_message, base, edit),
        &[
            ("Promoted-by", "gitops-promote"),
            ("Promotion-run", &cfg.run.run_url),
        ],
    )
}

/// Renders a template input with this promotion's values.
fn render(cfg: &Config, t: &Template, base: &str, edit: &Edit) -> String {
    let repo = cfg.repository.to_string();
    let changes = edit.describe();
    t.render(&cfg.template_vars(&repo, base, &changes))
}

/// The Argo CD client settings from the inputs.
pub fn argo_config(s: &ArgoSettings) -> ArgoConfig {
    ArgoConfig {
        server: s.server.to_string(),
        token: s.token.as_ref().map(|t| t.expose().to_string()),
        username: s.username.clone(),
        password: s.password.as_ref().map(|p| p.expose().to_string()),
        insecure: s.insecure,
        ca_cert: s.ca_cert.as_ref().map(std::path::PathBuf::from),
        app_namespace: s.app_namespace.clone(),
        project: s.project.clone(),
        call_timeout: Some(s.request_timeout),
        retry_budget: Some(s.retry_budget),
    }
}

/// Connects (and logs in, with a username) to Argo CD.
pub async fn connect_argocd(s: &ArgoSettings) -> Result<ArgoCd, StepError> {
    ArgoCd::connect(&argo_config(s))
        .await
        .map_err(|e| StepError::new("connect to Argo CD", &e))
}

/// The apps the inputs name (by name or selector); none is a `config` error.
pub async fn find_apps(argo: &ArgoCd, s: &ArgoSettings) -> Result<Vec<AppRef>, StepError> {
    let apps = argo
        .resolve_apps(&s.apps, s.selector.as_deref())
        .await
        .map_err(|e| StepError::new("find apps", &e))?;
    if apps.is_empty() {
        return Err(StepError::msg(
            "find apps",
            ErrorKind::Config,
            "input 'argocd-app' / 'argocd-selector': no Argo CD application matched",
        ));
    }
    Ok(apps)
}

/// Syncs every app concurrently (DESIGN.md §2.9): auto-sync apps get a hard refresh (and with
/// `sync: always` a sync without revision, as Argo CD refuses another one); the others a sync to
/// `revision`.
pub async fn sync_apps(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    apps: &[AppRef],
    revision: &str,
) -> Result<(), StepError> {
    if cfg.sync == SyncMode::Never {
        rt.info("sync: never, so only waiting");
        return Ok(());
    }
    let syncs = apps.iter().map(|app| async move {
        if app.auto_sync && cfg.sync == SyncMode::Auto {
            rt.info(&format!(
                "{}: auto-sync is on; refreshing so it picks up {}",
                app.name,
                short(revision)
            ));
            argo.refresh(&app.name, true)
                .await
                .map(|_| ())
                .map_err(|e| StepError::new("sync", &e))
        } else {
            let req = argocd::SyncRequest {
                revision: (!app.auto_sync).then(|| revision.to_string()),
                prune: cfg.prune,
                sync_options: cfg.sync_options.clone(),
            };
            rt.info(&format!("{}: syncing to {}", app.name, short(revision)));
            argo.sync(app, &req)
                .await
                .map_err(|e| StepError::new("sync", &e))
        }
    });
    futures_util::future::try_join_all(syncs).await.map(|_| ())
}

/// Waits for every app concurrently until it is Synced at a revision containing `sha`, and Healthy.
pub async fn wait_apps(
    cfg: &Config,
    rt: &Runtime,
    argo: &ArgoCd,
    apps: &[AppRef],
    target: impl Fn(&AppRef) -> Target,
) -> Result<Vec<AppStatus>, StepError> {
    let opts = WaitOptions {
        health_timeout: cfg.health_timeout,
        degraded_grace: cfg.degraded_grace,
        poll: Duration::from_secs(2),
    };
    let progress = |line: &str| rt.info(line);
    let waits = apps.iter().map(|app| {
        let (target, opts, progress) = (target(app), &opts, &progress);
        async move {
            argo.wait(&app.name, &target, opts, progress)
                .await
                .map_err(|e| StepError::new("wait", &e))
        }
    });
    futures_util::future::try_join_all(waits).await
}

/// Writes `apps` (JSON), `synced-revision` (the first app's) and `health`.
pub fn app_outputs(rt: &mut Runtime, statuses: &[AppStatus]) -> Result<(), StepError> {
    let apps: Vec<_> = statuses
        .iter()
        .map(|s| serde_json::json!({"name": s.name, "revision": s.revision, "health": s.health, "sync": s.sync}))
        .collect();
    rt.output(
        "apps",
        &serde_json::to_string(&apps).expect("JSON of strings"),
    )?;
    if let Some(first) = statuses.first() {
        rt.output("synced-revision", &first.revision)?;
    }
    // Healthy, or the first other health seen: a summary a workflow can branch on.
    let health = statuses
        .iter()
        .map(|s| s.health.as_str())
        .find(|h| *h != "Healthy")
        .unwrap_or("Healthy");
    rt.output("health", health)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
