//! The failure strategy carried out (DESIGN.md §6): retry, roll back at once, ignore, abort, or ask
//! a maintainer on the PR. The policy, which action an error type leads to, is
//! [`crate::config::strategy`]; this is what the promotion does about it.

use super::Promotion;
use crate::base::state::Phase;
use crate::base::wait::{self, Pending, Wait};
use crate::base::{humantime, ErrorKind, StepError};
use crate::config::strategy::Action;
use crate::flows::rollback;
use std::time::Duration;

/// Where a guarded step leaves the flow after the failure strategy ran.
pub(super) enum Decision {
    /// Run the step again.
    Retry,
    /// A maintainer said `/proceed`: go on as if the step had passed.
    Proceed,
    /// `ignore`: stop here and succeed.
    Stop,
}

/// What a maintainer answered to a `manual` strategy.
enum Answer {
    Proceed,
    Rollback,
    TimedOut,
}

/// How often the PR's comments are read for a maintainer's decision.
const DECISION_POLL: Duration = Duration::from_secs(2);

/// The log line of a strategy retry: the cause, when, how many tries are left and what follows
/// the last one, so a failed run's log says whether a rollback is still ahead (issue #16).
fn retry_line(
    err: &StepError,
    interval: Duration,
    attempt: u32,
    retries: u32,
    then: &Action,
) -> String {
    let left = retries - attempt;
    let after = match left {
        0 => format!("the last retry; if it fails too: {}", then.name()),
        1 => format!("1 more after it, then {}", then.name()),
        n => format!("{n} more after it, then {}", then.name()),
    };
    format!(
        "{err}; again in {} (retry {attempt} of {retries}, {after})",
        humantime(interval)
    )
}

impl Promotion<'_> {
    /// Applies the failure strategy to `err` (DESIGN.md §6).
    pub(super) async fn decide(
        &mut self,
        err: StepError,
        attempt: &mut u32,
    ) -> Result<Decision, StepError> {
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
                            &retry_line(&err, interval, *attempt, retries, &then),
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
                    self.timeline.ended = Some(format!(
                        "{} error ignored by the failure strategy: {err}; nothing was rolled back",
                        err.kind
                    ));
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
        // The outcome first: the rollback's own summary section follows this line.
        self.rt.summary(&super::headline(
            &self.record,
            &self.timeline,
            &Err(err.clone()),
        ));
        self.headline_written = true;
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
        let gh = self.gh;
        // Each decision word with its author's permission; the condition below picks the first
        // from a user with write access.
        let observe = async || -> Result<Vec<(String, &'static str, String)>, StepError> {
            let mut words = Vec::new();
            for c in gh
                .comments_since(pr, asked_at)
                .await
                .map_err(|e| StepError::new("read decisions", &e))?
            {
                let word = match c.body.trim() {
                    "/proceed" => "/proceed",
                    "/rollback" => "/rollback",
                    _ => continue,
                };
                let perm = gh
                    .permission(&c.user)
                    .await
                    .map_err(|e| StepError::new("read decisions", &e))?;
                words.push((c.user, word, perm));
            }
            Ok(words)
        };
        let judge = |words: Vec<(String, &'static str, String)>, elapsed: Duration| {
            let decided = words
                .iter()
                .find(|(_, _, perm)| matches!(perm.as_str(), "admin" | "maintain" | "write"));
            if let Some((user, word, _)) = decided {
                let answer = if *word == "/proceed" {
                    Answer::Proceed
                } else {
                    Answer::Rollback
                };
                return Ok(Wait::Done((answer, format!("{user} answered {word}"))));
            }
            if elapsed >= timeout {
                return Ok(Wait::Done((
                    Answer::TimedOut,
                    "no decision came in time".to_string(),
                )));
            }
            let mut state = format!("waiting for /rollback or /proceed on PR #{pr}");
            for (user, word, perm) in &words {
                state.push_str(&format!(
                    "; ignoring {word} from {user}: needs write access, has {perm}"
                ));
            }
            let left = format!(": {} left", humantime(timeout.saturating_sub(elapsed)));
            Ok(Wait::Pending(Pending::new(state).with_tail(left)))
        };
        let rt = &*self.rt;
        let (answer, line) =
            wait::until(DECISION_POLL, observe, judge, &|l: &str| rt.info(l)).await?;
        self.rt.info(&line);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_line_says_what_follows_the_last_try() {
        let err = StepError::msg("sync", ErrorKind::Connectivity, "Argo CD answered HTTP 502");
        let then = Action::Rollback;
        let line = |n| retry_line(&err, Duration::from_secs(10), n, 3, &then);
        assert!(line(1).ends_with("again in 10s (retry 1 of 3, 2 more after it, then rollback)"));
        assert!(line(3).ends_with("(retry 3 of 3, the last retry; if it fails too: rollback)"));
    }
}
