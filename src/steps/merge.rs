//! The merge: with the head-SHA guard, a moved base tried again, a merge a rule refuses for now
//! waited out. Shared by the promotion and the revert, which differ only in what they merge.

use crate::base::{humantime, ErrorKind, MergeMethod, StepError};
use crate::clients::git::Checkout;
use crate::clients::github::{queue, GitHub, Merge, PrRef};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a merge a rule refuses is tried again.
pub const RULE_RETRY: Duration = Duration::from_secs(5);

/// How many times a base that moved under the merge is tried again before it is a conflict.
const MAX_BASE_MOVES: u32 = 5;

/// One PR to merge, and how.
pub struct MergeRequest<'a> {
    /// The step errors name: `merge` or `merge revert`.
    pub step: &'static str,
    /// How messages name the PR: `PR` or `revert PR`.
    pub label: &'static str,
    /// The PR, at the head we pushed.
    pub pr: &'a PrRef,
    /// The merge method.
    pub method: MergeMethod,
    /// Our commit message: its first line titles the merge commit, the rest (trailers included)
    /// is its body, so the base's history says which promotion it was whatever the repo's default.
    pub message: &'a str,
    /// How long a merge a rule refuses (a required check expected, a review missing) is waited
    /// for: `approval-timeout`, as the gate would have waited had it known the rule.
    pub rule_wait: Duration,
}

/// What a merge came to, short of an error.
pub enum Merged {
    /// Merged: the SHA and every commit it put on the base.
    Done {
        /// The merge (or squash, or last rebased) commit.
        sha: String,
        /// Every commit the merge put on the base.
        commits: Vec<String>,
    },
    /// GitHub says the PR is not mergeable as it stands (it conflicts with a newer base, or was
    /// closed): the caller decides whether to rebuild it.
    NotMergeable(String),
}

/// Merges `req.pr` with the head-SHA guard; a base that moved is tried again a few times, a merge
/// a rule refuses is tried every [`RULE_RETRY`] within `req.rule_wait`, reported through
/// `progress`.
///
/// # Errors
/// GitHub's refusal as a typed error: `conflict` when someone pushed to our branch or the base kept
/// moving, `approval` or `timeout` when a rule still refuses at the end of the wait.
pub async fn merge(
    gh: &GitHub,
    req: &MergeRequest<'_>,
    progress: &dyn Fn(&str),
) -> Result<Merged, StepError> {
    let (pr, label) = (req.pr, req.label);
    let (first, rest) = req.message.split_once("\n\n").unwrap_or((req.message, ""));
    let title = format!(
        "{} (#{})",
        first.lines().next().unwrap_or_default(),
        pr.number
    );
    let mut moved = 0u32;
    let mut blocked_since: Option<Instant> = None;
    loop {
        match gh
            .merge_with(pr.number, req.method, &pr.head_sha, Some((&title, rest)))
            .await
            .map_err(|e| StepError::new(req.step, &e))?
        {
            Merge::Merged { sha, commits } => return Ok(Merged::Done { sha, commits }),
            Merge::BaseModified => {
                moved += 1;
                if moved >= MAX_BASE_MOVES {
                    return Err(StepError::msg(
                        req.step,
                        ErrorKind::Conflict,
                        format!("the base branch kept moving during {MAX_BASE_MOVES} attempts to merge {label} #{}", pr.number),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(moved))).await;
            }
            Merge::Blocked(why) => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
                if since.elapsed() >= req.rule_wait {
                    return Err(rule_block_error(req.step, pr.number, &why, req.rule_wait));
                }
                progress(&format!(
                    "{label} #{}: GitHub refuses the merge for now: {why}; trying again, {}s left",
                    pr.number,
                    req.rule_wait.saturating_sub(since.elapsed()).as_secs()
                ));
                tokio::time::sleep(RULE_RETRY).await;
            }
            Merge::HeadModified => {
                return Err(StepError::msg(
                    req.step,
                    ErrorKind::Conflict,
                    format!("someone pushed to our branch of {label} #{} after it was opened; not merging what we did not write", pr.number),
                ));
            }
            Merge::NotMergeable(why) if why.contains(queue::THROUGH_THE_QUEUE) => {
                return through_queue(gh, req, progress).await;
            }
            Merge::NotMergeable(why) => return Ok(Merged::NotMergeable(why)),
        }
    }
}

/// The base's rules require the merge queue: enqueue `req.pr` and wait within `req.rule_wait`
/// until GitHub merges its merge group, or fail naming why it left the queue.
async fn through_queue(
    gh: &GitHub,
    req: &MergeRequest<'_>,
    progress: &dyn Fn(&str),
) -> Result<Merged, StepError> {
    use queue::QueueOutcome;
    let n = req.pr.number;
    let outcome = queue::merge_through_queue(
        gh,
        n,
        &req.pr.head_sha,
        req.rule_wait,
        Duration::from_secs(2),
        progress,
    )
    .await
    .map_err(|e| StepError::new(req.step, &e))?;
    match outcome {
        QueueOutcome::Merged(sha) => Ok(Merged::Done {
            commits: vec![sha.clone()],
            sha,
        }),
        QueueOutcome::Removed(why) => Err(StepError::msg(
            req.step,
            ErrorKind::Conflict,
            format!(
                "GitHub removed {} #{n} from the merge queue: {why}",
                req.label
            ),
        )),
        QueueOutcome::StillQueued(state) => Err(StepError::msg(
            req.step,
            ErrorKind::Timeout,
            format!(
                "{} #{n} was still in the merge queue ({state}) after {}",
                req.label,
                humantime(req.rule_wait)
            ),
        )),
    }
}

/// The error for a merge a rule still refused at the end of the wait: an `approval` error when
/// reviews are missing, else a `timeout` (a required check never came), with GitHub's words.
pub fn rule_block_error(step: &'static str, pr: u64, why: &str, waited: Duration) -> StepError {
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
            step,
            kind,
            format!(
                "GitHub still refuses to merge PR #{pr} after {}: {why}",
                humantime(waited)
            ),
        )
    }
}

/// The error for a PR GitHub will not merge as it stands, with its reason.
pub fn not_mergeable_error(step: &'static str, label: &str, pr: u64, why: &str) -> StepError {
    StepError::msg(
        step,
        ErrorKind::Conflict,
        format!("{label} #{pr} cannot be merged: {why}"),
    )
}

/// The wait target for `sha`: that commit or a descendant of it on the base, as git says.
pub fn merge_target(checkout: &Arc<Mutex<Checkout>>, sha: &str) -> crate::clients::argocd::Target {
    crate::clients::argocd::Target {
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
