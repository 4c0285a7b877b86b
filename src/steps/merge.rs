//! The merge: with the head-SHA guard, a moved base tried again, a merge a rule refuses for now
//! waited out, a head a strict rule finds behind brought up to date by GitHub, someone else's
//! push to our branch never merged. Shared by the promotion and the revert, which differ only in what they merge.

use crate::base::{humantime, ErrorKind, MergeMethod, StepError};

use crate::clients::git::Checkout;
use crate::clients::github::{queue, GitHub, GitHubError, Merge, PrRef};
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
    let mut updates = 0u32;
    let mut blocked_since: Option<Instant> = None;
    // The head the merge names: our commit, then GitHub's merge of the base into it.
    let mut head = pr.head_sha.clone();
    loop {
        match gh
            .merge_with(pr.number, req.method, &head, Some((&title, rest)))
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
            Merge::Blocked(why) | Merge::NotMergeable(why) if never_clears(&why) => {
                let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
                let input = if req.step == "merge" {
                    "merge-method"
                } else {
                    "rollback-merge-method"
                };
                return Err(StepError {
                    hint: Some(format!(
                        "this rule does not clear by waiting: set {input} to a method the base allows; with required signatures, squash (GitHub signs the squash commit it makes)"
                    )),
                    ..StepError::msg(
                        req.step,
                        ErrorKind::Config,
                        format!(
                            "input '{input}': GitHub refuses to merge {label} #{} with {}: {why}",
                            pr.number,
                            req.method.as_str()
                        ),
                    )
                });
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
            Merge::OutOfDate => {
                let info = gh
                    .pr(pr.number)
                    .await
                    .map_err(|e| StepError::new(req.step, &e))?;
                if info.mergeable_state != "behind" || info.head_sha != head {
                    // GitHub answers so for a while after a push it has not caught up with.
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= req.rule_wait {
                        return Err(rule_block_error(
                            req.step,
                            pr.number,
                            "Head branch is out of date",
                            req.rule_wait,
                        ));
                    }
                    tokio::time::sleep(RULE_RETRY).await;
                    continue;
                }
                updates += 1;
                if updates > MAX_BASE_MOVES {
                    return Err(StepError::msg(
                        req.step,
                        ErrorKind::Conflict,
                        format!("the base branch kept moving: {label} #{} was brought up to date {MAX_BASE_MOVES} times and is behind again", pr.number),
                    ));
                }
                head = update_branch(gh, req, &head, progress).await?;
            }
            Merge::HeadModified => {
                return Err(StepError {
                    hint: Some(format!(
                        "look at the commits on the PR's branch: gitops-promote leaves {label} #{} open and its branch as it is; merge it by hand, or close it and run the promotion again",
                        pr.number
                    )),
                    ..StepError::msg(
                        req.step,
                        ErrorKind::Conflict,
                        format!("someone else pushed to the branch of {label} #{} (GitHub: Head branch was modified); not merging what we did not write", pr.number),
                    )
                });
            }
            Merge::NotMergeable(why) if why.contains(queue::THROUGH_THE_QUEUE) => {
                return through_queue(gh, req, progress).await;
            }
            Merge::NotMergeable(why) => return Ok(Merged::NotMergeable(why)),
        }
    }
}

/// Whether GitHub's refusal names a rule that no wait can meet: the merge method (the repository
/// setting's or a ruleset's `allowed_merge_methods`) or verified signatures on our commits.
fn never_clears(why: &str) -> bool {
    why.contains("are not allowed on this repository") || why.contains("verified signatures")
}

/// Brings the PR's head up to date with its base for a strict required-checks rule: GitHub
/// merges the base into `head` (`update-branch`, only if the head is still `head`), then the new
/// head is waited for until the PR shows it. Returns it: GitHub's merge commit, whose parent is
/// `head`, so nothing of anyone else's is merged with it.
///
/// # Errors
/// `conflict` when the head moved (someone pushed) or the update conflicts; API errors as
/// classified.
async fn update_branch(
    gh: &GitHub,
    req: &MergeRequest<'_>,
    head: &str,
    progress: &dyn Fn(&str),
) -> Result<String, StepError> {
    let n = req.pr.number;
    let label = req.label;
    let short = |s: &str| s.get(..7).unwrap_or(s).to_string();
    progress(&format!(
        "{label} #{n} is behind its base and a required-checks rule wants it up to date: asking GitHub to merge the base into it"
    ));
    match gh.update_branch(n, head).await {
        Ok(()) => {}
        Err(e @ GitHubError::Api { status: 422, .. }) => {
            return Err(StepError::msg(
                req.step,
                ErrorKind::Conflict,
                format!(
                    "GitHub would not bring {label} #{n} up to date with its base: {}",
                    crate::base::chain(&e)
                ),
            ))
        }
        Err(e) => return Err(StepError::new(req.step, &e)),
    }
    let start = Instant::now();
    loop {
        tokio::time::sleep(HEAD_POLL).await;
        let info = gh.pr(n).await.map_err(|e| StepError::new(req.step, &e))?;
        if info.head_sha != head {
            let parents = gh
                .parents(&info.head_sha)
                .await
                .map_err(|e| StepError::new(req.step, &e))?;
            if parents.first().map(String::as_str) != Some(head) {
                return Err(StepError::msg(
                    req.step,
                    ErrorKind::Conflict,
                    format!("the head of {label} #{n} moved to {}, which is not GitHub's update of {}: someone else pushed; not merging what we did not write", short(&info.head_sha), short(head)),
                ));
            }
            progress(&format!(
                "{label} #{n}: GitHub merged the base into it as {}; the required checks run again on it",
                short(&info.head_sha)
            ));
            return Ok(info.head_sha);
        }
        if start.elapsed() >= HEAD_SYNC {
            return Err(StepError::msg(
                req.step,
                ErrorKind::Timeout,
                format!("GitHub accepted to bring {label} #{n} up to date but its head is still {} after {}", short(head), humantime(HEAD_SYNC)),
            ));
        }
    }
}

/// How often the PR is read while GitHub pushes its update of the head.
const HEAD_POLL: Duration = Duration::from_secs(1);

/// How long GitHub may take to push the update it accepted.
const HEAD_SYNC: Duration = Duration::from_secs(60);

/// Checks, before anything is pushed, that the rulesets on `base` let `method` merge our PR:
/// a `pull_request` rule's `allowed_merge_methods` must name it, and a `required_signatures`
/// rule takes a squash (GitHub signs the squash commit it makes; a merge commit brings our
/// unsigned git2 commit along, and GitHub does not sign rebased commits). Rules the token may not
/// read are no answer: the merge then says what GitHub refuses.
///
/// # Errors
/// `config` naming `input` (`merge-method`), the rule, and what to set instead.
pub async fn check_rules(
    gh: &GitHub,
    base: &str,
    method: MergeMethod,
    input: &str,
) -> Result<(), StepError> {
    let Ok(rules) = gh.branch_rules(base).await else {
        return Ok(());
    };
    refused_by_rules(&rules, base, method, input)
}

/// What [`check_rules`] decides over the rules as GitHub lists them.
fn refused_by_rules(
    rules: &[serde_json::Value],
    base: &str,
    method: MergeMethod,
    input: &str,
) -> Result<(), StepError> {
    let name = method.as_str();
    let error = |message: String, hint: String| StepError {
        hint: Some(hint),
        ..StepError::msg("check rules", ErrorKind::Config, message)
    };
    for r in rules.iter().filter(|r| r["type"] == "pull_request") {
        let Some(allowed) = r["parameters"]["allowed_merge_methods"].as_array() else {
            continue;
        };
        let allowed: Vec<&str> = allowed.iter().filter_map(|m| m.as_str()).collect();
        if !allowed.contains(&name) {
            return Err(error(
                format!(
                    "input '{input}': {name} is not allowed on {base} by ruleset {} (allowed_merge_methods: {}); nothing was pushed",
                    r["ruleset_id"],
                    allowed.join(", ")
                ),
                format!("set {input} to one of {}", allowed.join(", ")),
            ));
        }
    }
    let signed = rules.iter().any(|r| r["type"] == "required_signatures");
    if signed && method != MergeMethod::Squash {
        return Err(error(
            format!(
                "input '{input}': a ruleset on {base} requires verified signatures (required_signatures), and gitops-promote's commits are unsigned: a {name} merge would put them on {base} as they are, and GitHub would refuse it; nothing was pushed"
            ),
            format!("set {input} to squash: GitHub signs the squash commit it makes"),
        ));
    }
    Ok(())
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
    let hint = if why.contains("code owner review") {
        "the base requires a review from a code owner of each changed file (require_code_owner_review, with CODEOWNERS on the base): ask one of the owners named to approve the PR, or raise approval-timeout"
    } else {
        "a branch protection rule or ruleset on the base requires it, and the token cannot bypass it"
    };
    StepError {
        hint: Some(hint.into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Rules as `/rules/branches/{b}` lists them (repository-rule-detailed).
    fn rules(methods: Option<&[&str]>, signatures: bool) -> Vec<serde_json::Value> {
        let mut pr = json!({"type": "pull_request", "ruleset_id": 7, "parameters": {"required_approving_review_count": 0}});
        if let Some(m) = methods {
            pr["parameters"]["allowed_merge_methods"] = json!(m);
        }
        let mut all = vec![pr];
        if signatures {
            all.push(json!({"type": "required_signatures", "ruleset_id": 7}));
        }
        all
    }

    #[test]
    fn a_merge_method_a_ruleset_forbids_is_a_config_error_naming_the_allowed_ones() {
        let squash_only = rules(Some(&["squash"]), false);
        let e =
            refused_by_rules(&squash_only, "main", MergeMethod::Merge, "merge-method").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(
            e.message
                .starts_with("input 'merge-method': merge is not allowed on main by ruleset 7 (allowed_merge_methods: squash)"),
            "{e}"
        );
        assert!(
            refused_by_rules(&squash_only, "main", MergeMethod::Squash, "merge-method").is_ok()
        );
        assert!(refused_by_rules(
            &rules(None, false),
            "main",
            MergeMethod::Rebase,
            "merge-method"
        )
        .is_ok());
    }

    #[test]
    fn required_signatures_take_a_squash_only() {
        let signed = rules(None, true);
        for m in [MergeMethod::Merge, MergeMethod::Rebase] {
            let e = refused_by_rules(&signed, "main", m, "merge-method").unwrap_err();
            assert!(e.message.contains("required_signatures"), "{e}");
            assert_eq!(
                e.hint.as_deref(),
                Some("set merge-method to squash: GitHub signs the squash commit it makes")
            );
        }
        assert!(refused_by_rules(&signed, "main", MergeMethod::Squash, "merge-method").is_ok());
    }
}
