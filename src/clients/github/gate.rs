//! The gate before a merge: approvals, checks and a mergeable state. Each poll fetches one
//! [`Observation`]; [`assess`] holds every decision over it, so the rules are tested on recorded
//! bodies without a server, and [`crate::base::wait::until`] runs the loop.

use super::{Gate, GitHub, GitHubError, PrInfo, PrRef};
use crate::base::wait::{self, Pending, Wait};
use octocrab::models::checks::ListCheckRuns;
use octocrab::models::pulls::{Review, ReviewState};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// What one poll sees of the PR: all the gate decides on.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The PR as read this poll.
    pub pr: PrInfo,
    /// The latest decisive review of each reviewer, by login; none read once the PR is closed.
    pub reviews: Vec<Verdict>,
    /// Statuses, then check runs, on the head; none read when the gate does not wait for checks.
    pub checks: Vec<Check>,
    /// The base's required check contexts, read once a wait.
    pub required: Vec<String>,
    /// The head the merge will name: our pushed commit. Until GitHub shows it as the PR's head
    /// (it updates a PR after a push asynchronously), the merge's `sha` guard would refuse it.
    pub ours: String,
    /// The permissions (`checks`, `statuses`) the token lacks to read the head's checks: the
    /// gate then goes by GitHub's `mergeable_state` and the merge's answer instead.
    pub unreadable: Vec<&'static str>,
}

/// A reviewer's latest decisive review, and whether they may approve (a reader's does not count).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// Reviewer login.
    pub user: String,
    /// Approved, changes requested or dismissed.
    pub state: ReviewState,
    /// The head the review was written on: an approval counts on that head only.
    pub commit_id: Option<String>,
    /// Admin, maintain or write on the repo.
    pub writer: bool,
}

impl Verdict {
    /// The latest review of each reviewer that decides something, by login: a comment after an
    /// approval leaves the approval standing, a dismissal ends it.
    pub(crate) fn latest(reviews: &[Review]) -> Vec<(String, &Review)> {
        let mut latest: HashMap<String, &Review> = HashMap::new();
        for r in reviews {
            let decisive = matches!(
                r.state,
                Some(
                    ReviewState::Approved | ReviewState::ChangesRequested | ReviewState::Dismissed
                )
            );
            if let (true, Some(u)) = (decisive, &r.user) {
                latest.insert(u.login.clone(), r);
            }
        }
        let mut users: Vec<_> = latest.into_iter().collect();
        users.sort_by(|a, b| a.0.cmp(&b.0));
        users
    }

    /// `user`'s `review`, with `writer` looked up apart: a permission read may be cached or refused.
    pub(crate) fn new(user: String, review: &Review, writer: bool) -> Verdict {
        Verdict {
            user,
            // `latest` keeps decisive reviews only, which all have a state.
            state: review.state.unwrap_or(ReviewState::Dismissed),
            commit_id: review.commit_id.clone(),
            writer,
        }
    }
}

/// A commit status or a check run on the head, in one shape: GitHub keeps the two apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// Status context or check run name: what required contexts name.
    pub name: String,
    /// `None` while it runs; a status's state or a run's conclusion once done.
    pub conclusion: Option<String>,
}

impl Check {
    /// The statuses of a combined status (`GET /commits/{sha}/status`), then the check runs
    /// (`GET /commits/{sha}/check-runs`).
    pub(crate) fn all(combined: &Value, runs: &ListCheckRuns) -> Vec<Check> {
        let statuses = combined["statuses"].as_array().into_iter().flatten();
        let mut checks: Vec<Check> = statuses
            .map(|s| {
                let state = s["state"].as_str().unwrap_or("");
                Check {
                    name: s["context"].as_str().unwrap_or("").to_string(),
                    conclusion: (state != "pending").then(|| state.to_string()),
                }
            })
            .collect();
        checks.extend(runs.check_runs.iter().map(|r| Check {
            name: r.name.clone(),
            conclusion: r.conclusion.clone(),
        }));
        checks
    }
}

/// What the gate carries from one poll to the next: when required checks were first seen missing.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    missing_since: Option<Duration>,
    /// When GitHub was first seen showing a head other than ours.
    head_since: Option<Duration>,
    warned: bool,
    /// Optional checks already reported as failed.
    optional_failed: Vec<String>,
    /// Permissions already reported missing.
    unreadable: Vec<&'static str>,
    /// Lines to print before the progress line, once each.
    pub warnings: Vec<String>,
}

/// Fetches one [`Observation`] a poll; the writer cache and the required contexts outlive a poll.
struct Observer<'a> {
    gh: &'a GitHub,
    number: u64,
    ours: String,
    wait_for_checks: bool,
    progress: &'a dyn Fn(&str),
    writers: HashMap<String, bool>,
    required: Option<Vec<String>>,
}

impl Observer<'_> {
    /// One poll's reads: the PR and, while it is open, its reviews, their authors' permissions and
    /// the head's checks.
    async fn observe(&mut self) -> Result<Observation, GitHubError> {
        let pr = self.gh.pr(self.number).await?;
        let mut seen = Observation {
            pr,
            reviews: Vec::new(),
            checks: Vec::new(),
            required: Vec::new(),
            ours: self.ours.clone(),
            unreadable: Vec::new(),
        };
        if seen.pr.merged || seen.pr.state != "open" {
            // Nothing else decides a merged or closed PR.
            return Ok(seen);
        }
        if self.required.is_none() {
            // The base of the PR just read: no read of its own.
            let required = self
                .gh
                .required_contexts(&seen.pr.base_ref, self.progress)
                .await;
            self.required = Some(required);
        }
        seen.required = self.required.clone().unwrap_or_default();
        // Reviews are read even with no approvals required: a writer's CHANGES_REQUESTED blocks.
        let reviews: Vec<Review> = self
            .gh
            .get_all(&self.gh.path(&format!("/pulls/{}/reviews", self.number)))
            .await?;
        for (user, r) in Verdict::latest(&reviews) {
            let writer = self.gh.writer(r, &user, &mut self.writers).await?;
            seen.reviews.push(Verdict::new(user, r, writer));
        }
        if self.wait_for_checks {
            let (checks, denied) = self.gh.checks(&seen.pr.head_sha).await?;
            seen.checks = checks;
            seen.unreadable = denied;
        }
        Ok(seen)
    }
}

/// Whether the gate is through, `elapsed` into the wait: the PR to merge, what it still waits for
/// (the progress line), or why it never will.
///
/// # Errors
/// `Approval` for a writer's changes requested or approvals missing at the deadline;
/// `CheckFailed`; `Conflict` for a dirty or closed PR; `WaitTimeout` for checks or mergeability
/// still pending at the deadline.
pub(crate) fn assess(
    seen: Observation,
    gate: &Gate,
    elapsed: Duration,
    memo: &mut Memo,
) -> Result<Wait<PrInfo>, GitHubError> {
    let Observation {
        pr: info,
        reviews,
        checks,
        required,
        ours,
        unreadable,
    } = seen;
    let number = info.number;
    if info.merged {
        return Ok(Wait::Done(info));
    }
    if info.state != "open" {
        return Err(GitHubError::Conflict {
            number,
            reason: "was closed before it could be merged".into(),
        });
    }
    // Until GitHub shows our push as the head, the merge's `sha` guard would refuse it.
    let head_wait = head_wait(&info, &ours, elapsed, memo)?;
    // Approvals: the latest decisive review of each writer, on the current head.
    let mut approved = 0u32;
    for v in reviews.iter().filter(|v| v.writer) {
        match v.state {
            ReviewState::ChangesRequested => {
                return Err(GitHubError::Approval {
                    number,
                    reason: format!("{} requested changes", v.user),
                })
            }
            ReviewState::Approved if v.commit_id.as_deref() == Some(info.head_sha.as_str()) => {
                approved += 1
            }
            _ => {}
        }
    }
    let approvals_ok = approved >= gate.required_approvals;
    // Checks: statuses and check runs on the head; required contexts that never reported.
    let mut pending: Vec<String> = Vec::new();
    for perm in &unreadable {
        if !memo.unreadable.contains(perm) {
            memo.unreadable.push(perm);
            let what = if *perm == "checks" {
                "check runs"
            } else {
                "commit statuses"
            };
            memo.warnings.push(format!(
                "warning: the github-token may not read {what} (GitHub answered 403 Resource not accessible by integration): give the workflow `permissions: {perm}: read`; until then the gate goes by GitHub's mergeable_state, and a merge a required check refuses is waited out"
            ));
        }
    }
    if gate.wait_for_checks && unreadable.is_empty() {
        pending = pending_checks(number, &info.head_sha, &checks, &required, memo)?;
        let none_reported = !required.is_empty() && required.iter().all(|c| pending.contains(c));
        if none_reported && info.user == "github-actions[bot]" {
            let since = *memo.missing_since.get_or_insert(elapsed);
            // A minute is plenty for a workflow to start; short gates warn sooner.
            let grace = Duration::from_secs(60).min(gate.approval_timeout / 4);
            if !memo.warned && elapsed.saturating_sub(since) >= grace {
                memo.warned = true;
                memo.warnings.push(format!(
                    "warning: required checks {required:?} have not started on PR #{number}: a PR opened with GITHUB_TOKEN does not trigger workflows; use an app token or a PAT"
                ));
            }
        }
    }
    let state = info.mergeable_state.as_str();
    if state == "dirty" || info.mergeable == Some(false) {
        return Err(GitHubError::Conflict {
            number,
            reason: "has conflicts with its base (mergeable_state dirty)".into(),
        });
    }
    let known = info.mergeable.is_some() && !matches!(state, "unknown" | "draft");
    if approvals_ok && pending.is_empty() && known && head_wait.is_none() {
        // clean/unstable/has_hooks merge; blocked/behind try, the token may bypass.
        return Ok(Wait::Done(info));
    }
    let remaining = gate.approval_timeout.saturating_sub(elapsed);
    if remaining.is_zero() {
        if !approvals_ok {
            return Err(GitHubError::Approval {
                number,
                reason: format!(
                    "{approved} of {} required approvals after {:?}",
                    gate.required_approvals, gate.approval_timeout
                ),
            });
        }
        let what = if let Some(head) = &head_wait {
            head.clone()
        } else if pending.is_empty() {
            format!("mergeable_state {state}")
        } else {
            format!("checks {}", pending.join(", "))
        };
        return Err(GitHubError::WaitTimeout {
            number,
            waited: elapsed,
            what,
        });
    }
    let checks = if pending.is_empty() {
        "done".to_string()
    } else {
        format!("pending ({})", pending.join(", "))
    };
    Ok(Wait::Pending(
        Pending::new(format!(
            "PR #{number}: approvals {approved}/{}, checks {checks}, mergeable_state {state}{}",
            gate.required_approvals,
            head_wait.map(|h| format!(", {h}")).unwrap_or_default(),
        ))
        .with_tail(format!(
            "; {}s elapsed, {}s left",
            elapsed.as_secs(),
            remaining.as_secs()
        )),
    ))
}

/// How long GitHub may take to show our push as the PR's head before another head is taken for
/// someone else's push: it usually takes seconds (issue #13).
pub(crate) const HEAD_SYNC: Duration = Duration::from_secs(60);

/// What the gate still waits for about the head: `None` once GitHub shows our push as the PR's
/// head, else a note for the progress line, for at most [`HEAD_SYNC`]; after that the head is
/// someone else's.
///
/// # Errors
/// `Conflict` once another head has been shown for [`HEAD_SYNC`].
fn head_wait(
    info: &PrInfo,
    ours: &str,
    elapsed: Duration,
    memo: &mut Memo,
) -> Result<Option<String>, GitHubError> {
    if info.head_sha == ours {
        memo.head_since = None;
        return Ok(None);
    }
    let short = |s: &str| s.get(..7).unwrap_or(s).to_string();
    let theirs = short(&info.head_sha);
    let since = *memo.head_since.get_or_insert(elapsed);
    let waited = elapsed.saturating_sub(since);
    if waited >= HEAD_SYNC {
        return Err(GitHubError::Conflict {
            number: info.number,
            reason: format!(
                "GitHub shows head {theirs}, not our commit {}, after {}s: someone else pushed to our branch, or GitHub never saw our push; not merging what we did not write",
                short(ours),
                waited.as_secs()
            ),
        });
    }
    Ok(Some(format!(
        "waiting for GitHub to show our push {} as the PR's head (it shows {theirs})",
        short(ours)
    )))
}

/// Names of the checks still running on `sha`, then of the required contexts never reported.
/// When the base names required checks, only they gate the merge (as GitHub's own merge button
/// does): an optional check is not waited for, and its failure is a warning, said once.
///
/// # Errors
/// `CheckFailed` for the first gating check that concluded other than success, neutral or skipped.
fn pending_checks(
    number: u64,
    sha: &str,
    checks: &[Check],
    required: &[String],
    memo: &mut Memo,
) -> Result<Vec<String>, GitHubError> {
    let mut pending = Vec::new();
    for c in checks {
        let optional = !required.is_empty() && !required.contains(&c.name);
        match c.conclusion.as_deref() {
            None if optional => {}
            None => pending.push(c.name.clone()),
            Some("success" | "neutral" | "skipped") => {}
            Some(other) if optional => {
                if !memo.optional_failed.contains(&c.name) {
                    memo.optional_failed.push(c.name.clone());
                    memo.warnings.push(format!(
                        "warning: optional check {} concluded {other} on PR #{number}; only the base's required checks gate the merge",
                        c.name
                    ));
                }
            }
            Some(other) => {
                return Err(GitHubError::CheckFailed {
                    number,
                    name: c.name.clone(),
                    sha: sha.into(),
                    conclusion: other.into(),
                })
            }
        }
    }
    let reported = |r: &String| checks.iter().any(|c| &c.name == r);
    pending.extend(required.iter().filter(|r| !reported(r)).cloned());
    Ok(pending)
}

impl GitHub {
    /// Waits until the PR may be merged: `required_approvals` distinct writers whose latest decisive
    /// review approves the current head, no writer requesting changes, checks green (when asked),
    /// and a `mergeable_state` that allows a try (DESIGN.md §2 step 7). Prints a progress line
    /// whenever the state changes and at least every 15 s. A PR merged meanwhile is returned as is.
    /// `pr.head_sha` is the head to merge: until GitHub shows it, the gate waits.
    ///
    /// # Errors
    /// `Approval` for changes requested or approvals missing at the deadline; `CheckFailed`;
    /// `Conflict` for a dirty or closed PR, or a head other than ours for [`HEAD_SYNC`];
    /// `WaitTimeout` for checks or mergeability still pending.
    pub async fn wait_ready(
        &self,
        pr: &PrRef,
        gate: &Gate,
        progress: &dyn Fn(&str),
    ) -> Result<PrInfo, GitHubError> {
        let mut observer = Observer {
            gh: self,
            number: pr.number,
            ours: pr.head_sha.clone(),
            wait_for_checks: gate.wait_for_checks,
            progress,
            writers: HashMap::new(),
            required: None,
        };
        let mut memo = Memo::default();
        wait::until(
            gate.poll,
            async || observer.observe().await,
            |seen, elapsed| {
                let verdict = assess(seen, gate, elapsed, &mut memo);
                for w in memo.warnings.drain(..) {
                    progress(&w);
                }
                verdict
            },
            progress,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    //! `assess` on observations built the way `Observer` builds them, from GitHub's documented
    //! example answers (testdata/, from the REST API description) edited per case.
    use super::*;
    use crate::base::{Classify, ErrorKind};
    use serde_json::json;

    /// The head SHA of testdata/pull-request.json.
    const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
    /// An older head, the one the recorded review was written on.
    const OLD: &str = "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091";

    fn recorded(body: &str) -> Value {
        serde_json::from_str(body).unwrap()
    }

    /// The recorded PR (#1347, open, mergeable_state clean, by octocat) with `edit` applied.
    fn pr(edit: impl FnOnce(&mut Value)) -> PrInfo {
        let mut v = recorded(include_str!("testdata/pull-request.json"));
        edit(&mut v);
        PrInfo::from_model(&serde_json::from_value(v).unwrap())
    }

    /// The recorded review, by `user` in `state` on `commit`.
    fn review(user: &str, state: &str, commit: &str) -> Value {
        let mut r = recorded(include_str!("testdata/pull-request-reviews.json"))[0].take();
        r["user"]["login"] = json!(user);
        r["state"] = json!(state);
        r["commit_id"] = json!(commit);
        r
    }

    /// The verdicts on `reviews` (oldest first), `writers` being who may approve.
    fn verdicts(reviews: Vec<Value>, writers: &[&str]) -> Vec<Verdict> {
        let reviews: Vec<Review> = serde_json::from_value(Value::Array(reviews)).unwrap();
        Verdict::latest(&reviews)
            .into_iter()
            .map(|(user, r)| {
                let writer = writers.contains(&user.as_str());
                Verdict::new(user, r, writer)
            })
            .collect()
    }

    /// The recorded combined status and check runs, with their entries replaced by `statuses`
    /// (context, state) and `runs` (name, conclusion).
    fn checks(statuses: &[(&str, &str)], runs: &[(&str, Option<&str>)]) -> Vec<Check> {
        let mut combined = recorded(include_str!("testdata/combined-commit-status.json"));
        let status = combined["statuses"][0].take();
        combined["statuses"] = statuses
            .iter()
            .map(|(context, state)| {
                let mut s = status.clone();
                s["context"] = json!(context);
                s["state"] = json!(state);
                s
            })
            .collect();
        let mut list = recorded(include_str!("testdata/check-runs.json"));
        let run = list["check_runs"][0].take();
        list["check_runs"] = runs
            .iter()
            .map(|(name, conclusion)| {
                let mut r = run.clone();
                r["name"] = json!(name);
                r["status"] = json!(if conclusion.is_some() {
                    "completed"
                } else {
                    "in_progress"
                });
                r["conclusion"] = json!(conclusion);
                r
            })
            .collect();
        list["total_count"] = json!(runs.len());
        Check::all(&combined, &serde_json::from_value(list).unwrap())
    }

    fn seen(
        pr: PrInfo,
        reviews: Vec<Verdict>,
        checks: Vec<Check>,
        required: &[&str],
    ) -> Observation {
        Observation {
            unreadable: Vec::new(),
            ours: pr.head_sha.clone(),
            pr,
            reviews,
            checks,
            required: required.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn gate(approvals: u32, wait_for_checks: bool) -> Gate {
        Gate {
            required_approvals: approvals,
            approval_timeout: Duration::from_secs(60),
            wait_for_checks,
            poll: Duration::from_secs(2),
        }
    }

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn assess_at(o: Observation, g: &Gate, secs: u64) -> Result<Wait<PrInfo>, GitHubError> {
        assess(o, g, at(secs), &mut Memo::default())
    }

    fn pending(w: Wait<PrInfo>) -> Pending {
        match w {
            Wait::Pending(p) => p,
            Wait::Done(info) => panic!("done: {info:?}"),
        }
    }

    #[test]
    fn the_recorded_bodies_read_as_github_means_them() {
        let info = pr(|_| {});
        assert_eq!((info.number, info.head_sha.as_str()), (1347, HEAD));
        assert_eq!((info.state.as_str(), info.merged), ("open", false));
        assert_eq!(
            (info.mergeable, info.mergeable_state.as_str()),
            (Some(true), "clean")
        );
        let recorded = Check::all(
            &recorded(include_str!("testdata/combined-commit-status.json")),
            &serde_json::from_str(include_str!("testdata/check-runs.json")).unwrap(),
        );
        let names: Vec<_> = recorded
            .iter()
            .map(|c| (c.name.as_str(), c.conclusion.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("continuous-integration/jenkins", Some("success")),
                ("security/brakeman", Some("success")),
                ("mighty_readme", Some("neutral")),
            ]
        );
        let o = seen(info, vec![], recorded, &["security/brakeman"]);
        assert!(matches!(assess_at(o, &gate(0, true), 1), Ok(Wait::Done(_))));
    }

    #[test]
    fn an_approval_on_an_older_head_does_not_count() {
        let g = gate(1, false);
        let stale = verdicts(vec![review("alice", "APPROVED", OLD)], &["alice"]);
        let p = pending(assess_at(seen(pr(|_| {}), stale, vec![], &[]), &g, 4).unwrap());
        assert_eq!(
            p.state,
            "PR #1347: approvals 0/1, checks done, mergeable_state clean"
        );
        assert_eq!(p.tail, "; 4s elapsed, 56s left");
        let fresh = verdicts(
            vec![
                review("alice", "APPROVED", OLD),
                review("alice", "APPROVED", HEAD),
            ],
            &["alice"],
        );
        let done = assess_at(seen(pr(|_| {}), fresh, vec![], &[]), &g, 6).unwrap();
        assert!(matches!(done, Wait::Done(i) if i.head_sha == HEAD));
    }

    #[test]
    fn the_latest_decisive_review_stands_a_comment_is_none() {
        let g = gate(1, false);
        let commented = verdicts(
            vec![
                review("alice", "APPROVED", HEAD),
                review("alice", "COMMENTED", HEAD),
            ],
            &["alice"],
        );
        assert!(matches!(
            assess_at(seen(pr(|_| {}), commented, vec![], &[]), &g, 1),
            Ok(Wait::Done(_))
        ));
        let dismissed = verdicts(
            vec![
                review("alice", "APPROVED", HEAD),
                review("alice", "DISMISSED", HEAD),
            ],
            &["alice"],
        );
        let p = pending(assess_at(seen(pr(|_| {}), dismissed, vec![], &[]), &g, 1).unwrap());
        assert!(p.state.contains("approvals 0/1"), "{p:?}");
    }

    #[test]
    fn changes_requested_by_a_reader_are_ignored_by_a_writer_fail_the_gate() {
        let g = gate(1, false);
        let reviews = || {
            vec![
                review("alice", "APPROVED", HEAD),
                review("mallory", "CHANGES_REQUESTED", HEAD),
            ]
        };
        let by_reader = verdicts(reviews(), &["alice"]);
        assert!(matches!(
            assess_at(seen(pr(|_| {}), by_reader, vec![], &[]), &g, 1),
            Ok(Wait::Done(_))
        ));
        let by_writer = verdicts(reviews(), &["alice", "mallory"]);
        let err =
            assess_at(seen(pr(|_| {}), by_writer, vec![], &[]), &gate(0, false), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval);
        assert_eq!(
            err.to_string(),
            "pull request #1347: mallory requested changes"
        );
    }

    #[test]
    fn an_approval_by_a_reader_does_not_count_and_the_deadline_says_so() {
        let g = gate(1, false);
        let reader = || verdicts(vec![review("reader", "APPROVED", HEAD)], &[]);
        let p = pending(assess_at(seen(pr(|_| {}), reader(), vec![], &[]), &g, 59).unwrap());
        assert_eq!(
            p.line(),
            "PR #1347: approvals 0/1, checks done, mergeable_state clean; 59s elapsed, 1s left"
        );
        let err = assess_at(seen(pr(|_| {}), reader(), vec![], &[]), &g, 60).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Approval);
        assert_eq!(
            err.to_string(),
            "pull request #1347: 0 of 1 required approvals after 60s"
        );
    }

    #[test]
    fn a_dirty_pr_is_a_conflict() {
        let dirty = pr(|v| v["mergeable_state"] = json!("dirty"));
        let err = assess_at(seen(dirty, vec![], vec![], &[]), &gate(0, false), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("mergeable_state dirty"), "{err}");
        let unmergeable = pr(|v| v["mergeable"] = json!(false));
        let err =
            assess_at(seen(unmergeable, vec![], vec![], &[]), &gate(0, false), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn blocked_with_approvals_done_is_tried_the_token_may_bypass() {
        let blocked = pr(|v| v["mergeable_state"] = json!("blocked"));
        let approved = verdicts(vec![review("alice", "APPROVED", HEAD)], &["alice"]);
        let done = assess_at(seen(blocked, approved, vec![], &[]), &gate(1, false), 1).unwrap();
        assert!(matches!(done, Wait::Done(i) if i.mergeable_state == "blocked"));
    }

    #[test]
    fn unknown_mergeability_waits_then_times_out_naming_it() {
        let computing = || {
            pr(|v| {
                v["mergeable"] = Value::Null;
                v["mergeable_state"] = json!("unknown");
            })
        };
        let p =
            pending(assess_at(seen(computing(), vec![], vec![], &[]), &gate(0, false), 1).unwrap());
        assert_eq!(
            p.state,
            "PR #1347: approvals 0/0, checks done, mergeable_state unknown"
        );
        let err =
            assess_at(seen(computing(), vec![], vec![], &[]), &gate(0, false), 61).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(
            err.to_string(),
            "pull request #1347: still waiting after 61s: mergeable_state unknown"
        );
    }

    #[test]
    fn pending_checks_wait_then_time_out_and_a_failed_one_fails_at_once() {
        let g = gate(0, true);
        let running = || {
            checks(
                &[("lint", "pending")],
                &[("ci", None), ("docs", Some("skipped"))],
            )
        };
        let p = pending(
            assess_at(
                seen(pr(|_| {}), vec![], running(), &["ci", "deploy"]),
                &g,
                2,
            )
            .unwrap(),
        );
        // lint is not required: it is not waited for.
        assert_eq!(
            p.state,
            "PR #1347: approvals 0/0, checks pending (ci, deploy), mergeable_state clean"
        );
        let err = assess_at(seen(pr(|_| {}), vec![], running(), &["ci"]), &g, 60).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().ends_with("checks ci"), "{err}");
        // With no required checks known, every check gates.
        let p = pending(assess_at(seen(pr(|_| {}), vec![], running(), &[]), &g, 2).unwrap());
        assert!(p.state.contains("checks pending (lint, ci)"), "{p:?}");
        // Checks are not read when the gate does not wait for them: none pending then.
        assert!(matches!(
            assess_at(
                seen(pr(|_| {}), vec![], vec![], &["ci"]),
                &gate(0, false),
                2
            ),
            Ok(Wait::Done(_))
        ));
        for failed in [
            checks(&[("lint", "failure")], &[("ci", None)]),
            checks(&[("lint", "success")], &[("ci", Some("timed_out"))]),
        ] {
            let err = assess_at(seen(pr(|_| {}), vec![], failed, &[]), &g, 2).unwrap_err();
            assert!(
                matches!(&err, GitHubError::CheckFailed { sha, .. } if sha == HEAD),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::Approval);
        }
    }

    #[test]
    fn a_failed_optional_check_is_a_warning_said_once_not_a_failure() {
        let g = gate(0, true);
        let mut memo = Memo::default();
        for _ in 0..2 {
            let o = seen(
                pr(|_| {}),
                vec![],
                checks(&[("lint", "failure")], &[("ci", Some("success"))]),
                &["ci"],
            );
            assert!(matches!(assess(o, &g, at(2), &mut memo), Ok(Wait::Done(_))));
        }
        assert_eq!(memo.warnings.len(), 1, "{:?}", memo.warnings);
        assert!(memo.warnings[0].contains("optional check lint concluded failure"));
    }

    #[test]
    fn required_checks_never_started_on_a_github_token_pr_warn_once_after_the_grace() {
        let g = gate(0, true);
        let by_bot = || {
            pr(|v| {
                v["user"]["login"] = json!("github-actions[bot]");
                v["user"]["type"] = json!("Bot");
            })
        };
        let mut memo = Memo::default();
        let mut warned_at = Vec::new();
        // A quarter of the 60 s gate: 15 s after they were first seen missing.
        for secs in [1, 10, 15, 16, 30, 40] {
            let o = seen(by_bot(), vec![], checks(&[], &[]), &["ci"]);
            let p = pending(assess(o, &g, at(secs), &mut memo).unwrap());
            assert!(p.state.contains("checks pending (ci)"), "{p:?}");
            if !memo.warnings.is_empty() {
                warned_at.push(secs);
            }
            for w in memo.warnings.drain(..) {
                assert_eq!(w, "warning: required checks [\"ci\"] have not started on PR #1347: a PR opened with GITHUB_TOKEN does not trigger workflows; use an app token or a PAT");
            }
        }
        assert_eq!(warned_at, [16]);
        // A person's PR, or one with a required check done, is no token problem.
        let mut memo = Memo::default();
        for secs in [1, 40] {
            let o = seen(pr(|_| {}), vec![], vec![], &["ci"]);
            assess(o, &g, at(secs), &mut memo).unwrap();
            let o = seen(
                by_bot(),
                vec![],
                checks(&[], &[("ci", Some("success"))]),
                &["ci", "lint"],
            );
            assess(o, &g, at(secs), &mut memo).unwrap();
        }
        assert!(memo.warnings.is_empty(), "{:?}", memo.warnings);
    }

    #[test]
    fn a_head_other_than_our_push_waits_then_is_someone_elses() {
        let g = gate(0, false);
        let mut memo = Memo::default();
        let behind = |memo: &mut Memo, secs| {
            let mut o = seen(pr(|_| {}), vec![], vec![], &[]);
            o.ours = OLD.into();
            assess(o, &g, at(secs), memo)
        };
        let p = pending(behind(&mut memo, 1).unwrap());
        assert_eq!(
            p.state,
            "PR #1347: approvals 0/0, checks done, mergeable_state clean, waiting for GitHub to show our push ecdd80b as the PR's head (it shows 6dcb09b)"
        );
        // The wait counts from the first poll that saw it.
        let err = behind(&mut memo, 61).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("someone else pushed"), "{err}");
        // Once GitHub shows our head, the gate goes on as usual.
        let o = seen(pr(|_| {}), vec![], vec![], &[]);
        assert!(matches!(assess(o, &g, at(2), &mut memo), Ok(Wait::Done(_))));
    }

    #[test]
    fn unreadable_checks_warn_once_naming_the_permission_and_mergeable_state_decides() {
        let g = gate(0, true);
        let mut memo = Memo::default();
        for _ in 0..2 {
            let mut o = seen(pr(|_| {}), vec![], vec![], &["ci"]);
            o.unreadable = vec!["checks"];
            // clean: GitHub says the required checks passed.
            assert!(matches!(assess(o, &g, at(2), &mut memo), Ok(Wait::Done(_))));
        }
        assert_eq!(memo.warnings.len(), 1, "{:?}", memo.warnings);
        assert!(
            memo.warnings[0].contains("`permissions: checks: read`"),
            "{:?}",
            memo.warnings
        );
    }

    #[test]
    fn a_merged_pr_is_done_and_a_closed_one_is_a_conflict() {
        let merged = pr(|v| {
            v["state"] = json!("closed");
            v["merged"] = json!(true);
        });
        assert!(matches!(
            assess_at(seen(merged, vec![], vec![], &[]), &gate(1, true), 1),
            Ok(Wait::Done(i)) if i.merged
        ));
        let closed = pr(|v| v["state"] = json!("closed"));
        let err = assess_at(seen(closed, vec![], vec![], &[]), &gate(1, true), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("was closed"), "{err}");
    }
}
