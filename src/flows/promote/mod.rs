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

mod strategy;

use crate::base::cancel;
use crate::base::state::{Phase, Record};
use crate::base::{humantime, Classify, ErrorKind, StepError};
use crate::clients::argocd::{AppRef, AppStatus, ArgoCd};
use crate::clients::git::Checkout;
use crate::clients::github::{GitHub, PrRef};
use crate::clients::runtime::Runtime;
use crate::clients::values;
use crate::config::{ArgoSettings, Config};
use crate::steps::git::{claim_branch, clone, commit, push};
use crate::steps::merge::{self, MergeRequest, Merged};
use crate::steps::message::{changed_files, commit_message, plan, render};
use crate::steps::pr::open_pr;
use crate::steps::summary::{headline, summary, Timeline};
use crate::steps::{
    self, app_outputs, connect_argocd, connect_github, delete_merged_branch, edit, find_apps,
    merge_target, resolve_base, save, sync_apps, wait_apps, Edit,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strategy::Decision;

/// Runs the whole promotion for `cfg`, writing outputs, state and summary through `rt`.
///
/// # Errors
/// The failed step's [`StepError`], after the failure strategy has run (a rollback included).
pub async fn run(cfg: &Config, rt: &mut Runtime) -> Result<(), StepError> {
    if let Some(w) = token_lifetime_warning(cfg) {
        rt.warning("token lifetime", &w);
    }
    let gh = connect_github(cfg)?;
    let mut p = Promotion {
        cfg,
        rt,
        gh: &gh,
        record: Record::default(),
        timeline: Timeline::default(),
        headline_written: false,
    };
    let result = p.steps().await;
    p.finish(&result);
    result
}

/// How long a GitHub App installation token lives (actions/create-github-app-token).
const APP_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A warning when the waits this promotion may spend outlast a GitHub App installation token
/// (`ghs_`): the merge, the rollback's revert PR and its comments would then fail with 401.
/// `GITHUB_TOKEN` is an installation token too but lives as long as the job, so this only warns.
fn token_lifetime_warning(cfg: &Config) -> Option<String> {
    if !cfg.github_token.expose().starts_with("ghs_") {
        return None;
    }
    let verify = cfg
        .verify
        .as_ref()
        .map_or(Duration::ZERO, |v| v.initial_delay + v.interval * v.count);
    let waits = cfg.approval_timeout + cfg.health_timeout + verify;
    (waits > APP_TOKEN_LIFETIME).then(|| {
        format!(
            "approval-timeout, health-timeout and the metrics gate may take {} together; a GitHub App installation token lives one hour, so a promotion (or its rollback) past that fails with 401. Shorten the waits, or create the token later in the job (GITHUB_TOKEN lives as long as the job).",
            humantime(waits)
        )
    })
}

/// What one promotion carries from step to step.
struct Promotion<'a> {
    cfg: &'a Config,
    rt: &'a mut Runtime,
    gh: &'a GitHub,
    record: Record,
    timeline: Timeline,
    /// The summary's outcome line went out already, ahead of an inline rollback's section.
    headline_written: bool,
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
        self.timeline.files = changed_files(&edit);
        if !edit.changed() && !cfg.allow_empty {
            let why = format!("Nothing to promote: every value is already set on `{base}`");
            self.rt.info(&format!(
                "every value is already set on {base}: nothing to promote"
            ));
            self.timeline.ended = Some(why);
            self.rt.output("changed", "false")?;
            self.rt.output("pr-operation", "none")?;
            return Ok(Next::End);
        }
        self.rt.output("changed", "true")?;
        if cfg.dry_run {
            self.timeline.ended = Some("Dry run: nothing remote was changed".into());
            self.rt.output("pr-operation", "none")?;
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
        self.timed(
            "check branch",
            claim_branch(&ready.checkout, &branch, &cfg.scope().key()),
        )
        .await?;
        if cfg.merge {
            // A ruleset that refuses our merge method is found before anything is pushed.
            self.timed(
                "check rules",
                merge::check_rules(self.gh, base, cfg.merge_method, "merge-method"),
            )
            .await?;
        }
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
        self.rt.output("head-branch", &branch)?;
        self.rt.output("head-sha", &commit.to_string())?;
        // The names a person paged at night looks for first: the branch, the PR, the merge.
        self.rt.info(&format!("pushed {branch} at {commit}"));

        let gh = self.gh;
        let pr = self
            .timed(
                "open PR",
                open_pr(gh, cfg, base, &branch, &commit.to_string(), edit),
            )
            .await?;
        self.record.pr_number = Some(pr.number);
        self.record.phase = Some(Phase::PrOpen);
        self.save()?;
        self.rt.output("pr-number", &pr.number.to_string())?;
        self.rt.output("pr-url", &pr.url)?;
        self.rt.info(&format!(
            "{} PR #{}: {}",
            if pr.created { "opened" } else { "took over" },
            pr.number,
            pr.url
        ));
        self.rt.output(
            "pr-operation",
            if pr.created { "created" } else { "updated" },
        )?;
        drop(section);
        for w in &pr.warnings {
            self.rt.warning("pull request", w);
        }
        if !cfg.merge {
            self.rt.info(&format!(
                "merge: false, so PR #{} stays open for review: {}",
                pr.number, pr.url
            ));
            self.timeline.ended = Some(format!(
                "PR #{} opened for review (merge: false): {}",
                pr.number, pr.url
            ));
            self.record.on_failure = "skip".into();
            self.save()?;
            return Ok(Next::End);
        }
        Ok(Next::Go((branch, pr)))
    }

    /// Steps 7 and 8: the gate, then the merge with the head-SHA guard; a PR that conflicts with a
    /// newer base, found at the gate or at the merge, is rebuilt on it at most [`MAX_REBUILDS`]
    /// times.
    async fn land(
        &mut self,
        ready: &Prepared,
        branch: &str,
        mut pr: PrRef,
    ) -> Result<Next<Landed>, StepError> {
        let mut rebuilds = 0;
        let mut section;
        let merged = loop {
            let may_rebuild = rebuilds < MAX_REBUILDS;
            // A maintainer's /proceed past the gate still leads to the merge below.
            if let Some(Gated::Dirty) = guarded!(self, self.gate(&pr, may_rebuild)) {
                rebuilds += 1;
                pr = self.rebuild(&pr, &ready.checkout, branch).await?;
                continue;
            }
            // A merge in flight when the job is cancelled is let finish and recorded, so that the
            // post step knows what to revert.
            section = Some(cancel::critical());
            match guarded!(self, self.merge(&pr, &ready.edit, may_rebuild)) {
                Some(Landing::Merged(m)) => break m,
                Some(Landing::Dirty) => {
                    // The gate comes next: a wait, which a cancellation may stop at once.
                    drop(section.take());
                    rebuilds += 1;
                    pr = self.rebuild(&pr, &ready.checkout, branch).await?;
                }
                None => {
                    self.rt.warning(
                        "merge",
                        &format!("PR #{} was not merged; it stays open", pr.number),
                    );
                    self.timeline.ended =
                        Some(format!("PR #{} was not merged; it stays open", pr.number));
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
        self.rt.info(&format!(
            "merged PR #{} into {} as {} ({}): {}",
            pr.number,
            self.record.base,
            merged.sha,
            self.cfg.merge_method.as_str(),
            pr.url
        ));
        delete_merged_branch(self.rt, self.gh, pr.number, branch).await;
        Ok(Next::Go(merged))
    }

    /// Steps 9 and 10: sync every app and wait until each is Synced at a revision containing the
    /// merge, and Healthy.
    async fn deploy(&mut self, ready: &Prepared, merged: &Landed) -> Result<Next<()>, StepError> {
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
        if self.cfg.verify.is_some() && guarded!(self, self.verify()).is_some() {
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
        // The gate's warnings (an optional check failed, checks never started) also go to the
        // summary, where a reviewer of the run sees them.
        let warnings = std::cell::RefCell::new(Vec::new());
        let r = self
            .gh
            .wait_ready(pr, &gate, &|line: &str| {
                if let Some(w) = line.strip_prefix("warning: ") {
                    warnings.borrow_mut().push(w.to_string());
                }
                rt.info(line)
            })
            .await;
        self.timeline.warnings.extend(warnings.into_inner());
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

    /// Merges `pr`; a PR that conflicts with a newer base is [`Landing::Dirty`] while
    /// `may_rebuild`.
    async fn merge(
        &mut self,
        pr: &PrRef,
        edit: &Edit,
        may_rebuild: bool,
    ) -> Result<Landing, StepError> {
        let start = Instant::now();
        let message = commit_message(self.cfg, &self.record.base, edit);
        let req = MergeRequest {
            step: "merge",
            label: "PR",
            pr,
            method: self.cfg.merge_method,
            message: &message,
            rule_wait: self.cfg.approval_timeout,
        };
        let rt = &*self.rt;
        // A merge the base's rules send through the merge queue says so in the summary too.
        let queued = std::cell::Cell::new(false);
        let progress = |l: &str| {
            queued.set(queued.get() || l.contains("merge queue"));
            rt.info(l)
        };
        let r = match merge::merge(self.gh, &req, &progress).await {
            Ok(Merged::Done { sha, commits }) => Ok(Landing::Merged(Landed { sha, commits })),
            Ok(Merged::NotMergeable(_)) if may_rebuild && self.is_dirty(pr.number).await => {
                self.rt.info(&format!(
                    "PR #{} conflicts with a newer {}: applying the edit again on it",
                    pr.number, self.record.base
                ));
                Ok(Landing::Dirty)
            }
            Ok(Merged::NotMergeable(why)) => {
                Err(merge::not_mergeable_error("merge", "PR", pr.number, &why))
            }
            Err(e) => Err(e),
        };
        let step = if queued.get() {
            "merge (through the merge queue)"
        } else {
            "merge"
        };
        self.timeline
            .push(step, start, r.as_ref().err().map(|e| e.kind));
        r
    }

    /// Finds the apps and records each one's revision before the promotion.
    async fn find_apps(
        &mut self,
        argo: &ArgoCd,
        settings: &ArgoSettings,
    ) -> Result<Vec<AppRef>, StepError> {
        let start = Instant::now();
        // In a group as every other step, so its retry lines fold under the step that retried.
        let group = self.rt.group("find apps");
        let r = find_apps(argo, settings).await;
        drop(group);
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
        let r = sync_apps(self.cfg, self.rt, argo, apps, revision, &self.record.base).await;
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
        let r = steps::verify::gate(self.cfg.verify.as_ref(), self.rt)
            .await
            .map(|_| ());
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
        // The runner keeps the last value written for a name.
        self.rt.output("head-sha", &commit.to_string())?;
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

    /// Writes the job summary; the failed step's annotation is printed by `main`.
    fn finish(&mut self, result: &Result<(), StepError>) {
        let summary = summary(
            self.cfg,
            &self.record,
            &self.timeline,
            result,
            self.headline_written,
        );
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

/// What one merge attempt came to.
enum Landing {
    /// Merged.
    Merged(Landed),
    /// Conflicts with a newer base: rebuild our branch on it.
    Dirty,
}

/// A finished merge of our PR.
struct Landed {
    sha: String,
    commits: Vec<String>,
}
