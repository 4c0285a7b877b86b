//! The rules GitHub applies to pull requests, apart from the routes that serve them: who may
//! write, which reviews count, what a required context's state is, what protection and rulesets
//! forbid, mergeability, and what refuses a merge. Functions over the state and the bare repo that
//! answer in GitHub's words and serve nothing: the handlers turn the answers into status codes and
//! bodies. The only state they write is what GitHub itself tracks per PR: the live head and base,
//! and which pair mergeability was computed for.

use super::git::{self, Method};
use super::{CheckRun, CommitStatus, Protection, Pull, Review, State, TOKEN_USER};
use git2::Repository;
use std::collections::HashMap;

/// Refreshes open PR `idx`'s head and base SHAs from the refs (a closed PR keeps its last ones).
/// The head follows a push only [`State::head_delay`] after it was first seen: GitHub updates a
/// PR after a push asynchronously, and until then its `head.sha` and the merge's `sha` guard
/// name the commit before (cli/cli `pkg/cmd/pr/merge`: "Head branch is out of date" right after
/// a push; issue #13).
pub(super) fn refresh(repo: &Repository, st: &mut State, idx: usize) {
    let delay = st.head_delay;
    let p = &mut st.pulls[idx];
    if !p.open {
        return;
    }
    if let Some(h) = git::branch_sha(repo, &p.head_ref) {
        if h == p.head_sha {
            p.pushed = None;
        } else {
            let since = match &p.pushed {
                Some((sha, at)) if *sha == h => *at,
                _ => std::time::Instant::now(),
            };
            if since.elapsed() >= delay {
                p.head_sha = h;
                p.pushed = None;
            } else {
                p.pushed = Some((h, since));
            }
        }
    }
    if let Some(b) = git::branch_sha(repo, &p.base_ref) {
        p.base_sha = b;
    }
}

/// The user's role on `repo`, as the collaborator permission route names it.
pub(super) fn permission(st: &State, repo: &str, user: &str) -> String {
    if user == TOKEN_USER {
        return "write".into();
    }
    // Users nobody configured count as collaborators with write access, so tests stay short.
    st.permissions
        .get(&(repo.to_string(), user.to_string()))
        .cloned()
        .unwrap_or_else(|| "write".into())
}

/// Whether a role counts for protection: only writers' reviews approve or block.
pub(super) fn can_write(p: &str) -> bool {
    matches!(p, "admin" | "maintain" | "write")
}

/// Each reviewer's latest decisive review of PR `p` (a comment-only review decides nothing).
fn latest_decisive<'a>(st: &'a State, p: &Pull) -> HashMap<&'a str, &'a Review> {
    let mut latest: HashMap<&str, &Review> = HashMap::new();
    for r in st
        .reviews
        .iter()
        .filter(|r| r.repo == p.repo && r.number == p.number)
    {
        if matches!(
            r.state.as_str(),
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
        ) {
            latest.insert(&r.user, r);
        }
    }
    latest
}

/// (approvals from writers, whether a writer's latest decisive review requests changes).
fn approvals(st: &State, p: &Pull, current_only: bool) -> (u32, bool) {
    let latest = latest_decisive(st, p);
    let mut n = 0;
    let mut changes = false;
    for r in latest.values() {
        if !can_write(&permission(st, &p.repo, &r.user)) {
            continue;
        }
        match r.state.as_str() {
            "APPROVED" if !current_only || r.commit_id == p.head_sha => n += 1,
            "CHANGES_REQUESTED" => changes = true,
            _ => {}
        }
    }
    (n, changes)
}

/// Where GitHub looks for CODEOWNERS on the base, in its order (docs.github.com, "About code
/// owners": `.github/`, then the root, then `docs/`; the first found is used).
const CODEOWNERS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// The owners still to approve PR `p`, as GitHub lists them ("@alice and/or @bob"), or `None`
/// when every changed file with owners has an approving review from one of them. The last
/// matching CODEOWNERS line of a file names its owners, as in GitHub's docs; teams are
/// listed but cannot approve here (the sandbox has no team members).
fn code_owners_waiting(
    st: &State,
    repo: &Repository,
    p: &Pull,
    current_only: bool,
) -> Option<String> {
    let text = CODEOWNERS.iter().find_map(|f| {
        crate::world::read_file_at(repo, &p.base_sha, f)
            .ok()
            .flatten()
    })?;
    let rules: Vec<(&str, Vec<&str>)> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?, parts.collect()))
        })
        .collect();
    let approvers = approving_writers(st, p, current_only);
    let mut waiting: Vec<String> = Vec::new();
    for file in git::changed_files(repo, &p.base_sha, &p.head_sha).unwrap_or_default() {
        let Some((_, owners)) = rules.iter().rev().find(|(pat, _)| owns(pat, &file)) else {
            continue;
        };
        let approved = owners.iter().any(|o| {
            approvers
                .iter()
                .any(|a| o.strip_prefix('@') == Some(a.as_str()))
        });
        if !approved && !owners.is_empty() {
            for o in owners {
                if !waiting.iter().any(|w| w == o) {
                    waiting.push(o.to_string());
                }
            }
        }
    }
    (!waiting.is_empty()).then(|| waiting.join(" and/or "))
}

/// Whether CODEOWNERS pattern `pat` matches `path`, for the gitignore-style forms GitHub
/// documents: `*`, `*.ext`, `/anchored/path`, `dir/` and a plain path.
fn owns(pat: &str, path: &str) -> bool {
    if pat == "*" {
        return true;
    }
    let anchored = pat.starts_with('/');
    let pat = pat.trim_start_matches('/');
    if let Some(ext) = pat.strip_prefix("*.") {
        return path.ends_with(&format!(".{ext}"));
    }
    if let Some(dir) = pat.strip_suffix('/') {
        return path.starts_with(&format!("{dir}/"))
            || (!anchored && path.contains(&format!("/{dir}/")));
    }
    path == pat || path.starts_with(&format!("{pat}/"))
}

/// Writers whose latest decisive review approves PR `p` (on its head when `current_only`).
fn approving_writers(st: &State, p: &Pull, current_only: bool) -> Vec<String> {
    latest_decisive(st, p)
        .values()
        .filter(|r| r.state == "APPROVED" && (!current_only || r.commit_id == p.head_sha))
        .filter(|r| can_write(&permission(st, &p.repo, &r.user)))
        .map(|r| r.user.clone())
        .collect()
}

/// success, pending, failure or missing for one context on `sha` (statuses and check runs).
fn context_state(st: &State, repo: &str, sha: &str, ctx: &str) -> &'static str {
    let key = (repo.to_string(), sha.to_string());
    if let Some(c) = st
        .checks
        .get(&key)
        .and_then(|v| v.iter().find(|c| c.name == ctx))
    {
        return check_outcome(c);
    }
    match st
        .statuses
        .get(&key)
        .and_then(|v| v.iter().rev().find(|s| s.context == ctx))
    {
        Some(s) if s.state == "success" => "success",
        Some(s) if s.state == "pending" => "pending",
        Some(_) => "failure",
        None => "missing",
    }
}

/// A check run as a required context sees it: pending until completed, and neutral or skipped
/// pass like success.
fn check_outcome(c: &CheckRun) -> &'static str {
    if c.status != "completed" {
        return "pending";
    }
    match c.conclusion.as_deref() {
        Some("success" | "neutral" | "skipped") => "success",
        _ => "failure",
    }
}

/// What a strict rule says of a head behind its base; the merge answers it as
/// [`git::OUT_OF_DATE`].
const BEHIND: &str = "Head branch was not up to date with the base branch.";

/// Why classic protection or a ruleset forbids merging now, as GitHub words it on a 405; `None`
/// when both allow it. A ruleset's reasons come as "Repository rule violations found" and the rule
/// (the answer the issue tracker quotes: `Required status check "ci/test" is expected.`).
fn protection_block(st: &State, repo: &Repository, p: &Pull) -> Option<String> {
    let key = (p.repo.clone(), p.base_ref.clone());
    if let Some(why) = st
        .protection
        .get(&key)
        .and_then(|r| requirement_block(st, repo, p, r))
    {
        return Some(why);
    }
    let rules = st.rulesets.get(&key)?;
    let why = requirement_block(st, repo, p, rules)?;
    Some(format!("Repository rule violations found\n\n{why}\n\n"))
}

/// The first requirement of `prot` that `p` does not meet, in GitHub's words.
fn requirement_block(st: &State, repo: &Repository, p: &Pull, prot: &Protection) -> Option<String> {
    let (n, changes) = approvals(st, p, prot.dismiss_stale_reviews);
    if changes {
        return Some(
            "Changes must be made through a pull request. Review changes requested.".into(),
        );
    }
    let need = prot.required_approving_review_count;
    if n < need {
        return Some(if need == 1 {
            "At least 1 approving review is required by reviewers with write access.".into()
        } else {
            format!(
                "At least {need} approving reviews are required by reviewers with write access."
            )
        });
    }
    if prot.require_code_owner_review {
        if let Some(waiting) = code_owners_waiting(st, repo, p, prot.dismiss_stale_reviews) {
            return Some(format!("Waiting on code owner review from {waiting}."));
        }
    }
    for ctx in &prot.required_status_checks {
        match context_state(st, &p.repo, &p.head_sha, ctx) {
            "success" => {}
            "failure" => return Some(format!("Required status check \"{ctx}\" is failing.")),
            _ => return Some(format!("Required status check \"{ctx}\" is expected.")),
        }
    }
    if prot.strict && !git::contains(repo, &p.head_sha, &p.base_sha) {
        return Some(BEHIND.into());
    }
    None
}

/// `mergeable` and `mergeable_state` for a read of the PR: null/unknown for the first reads after
/// head or base move (as GitHub computes in the background), then computed with a real merge.
pub(super) fn mergeability(
    st: &mut State,
    repo: &Repository,
    idx: usize,
) -> (Option<bool>, &'static str) {
    let reads = st.mergeable_reads;
    let p = &mut st.pulls[idx];
    if !p.open {
        return (None, "unknown");
    }
    let key = (p.head_sha.clone(), p.base_sha.clone());
    if p.computed_for.as_ref() != Some(&key) {
        p.computed_for = Some(key);
        p.pending_reads = reads;
    }
    if p.pending_reads > 0 {
        p.pending_reads -= 1;
        return (None, "unknown");
    }
    let p = st.pulls[idx].clone();
    if git::conflicts(repo, &p.base_sha, &p.head_sha).unwrap_or(true) {
        return (Some(false), "dirty");
    }
    if p.draft {
        return (Some(true), "draft");
    }
    if let Some(why) = protection_block(st, repo, &p) {
        return (
            Some(true),
            if why.contains(BEHIND) {
                "behind"
            } else {
                "blocked"
            },
        );
    }
    let key = (p.repo.clone(), p.head_sha.clone());
    let failing = st
        .statuses
        .get(&key)
        .is_some_and(|v| v.iter().any(|s| s.state != "success"))
        || st
            .checks
            .get(&key)
            .is_some_and(|v| v.iter().any(|c| check_outcome(c) != "success"));
    (Some(true), if failing { "unstable" } else { "clean" })
}

/// The combined state of a commit's statuses: pending while there are none or one is pending,
/// success when all are, else failure.
pub(super) fn combined_state(list: &[CommitStatus]) -> &'static str {
    if list.is_empty() || list.iter().any(|s| s.state == "pending") {
        "pending"
    } else if list.iter().all(|s| s.state == "success") {
        "success"
    } else {
        "failure"
    }
}

/// Whether GitHub merges PR `idx` now: the method to merge with, or why not as (status, message)
/// in GitHub's words, checked in GitHub's order. `method` is `None` when the request named an
/// unknown one, `sha` the head the caller expects.
pub(super) fn may_merge(
    st: &mut State,
    repo: &Repository,
    idx: usize,
    method: Option<Method>,
    sha: Option<&str>,
) -> Result<Method, (u16, String)> {
    let p = st.pulls[idx].clone();
    if !p.open {
        return Err((405, "Pull Request is not mergeable".into()));
    }
    let Some(method) = method else {
        return Err((422, "Invalid merge_method".into()));
    };
    let allowed = st.methods.get(&p.repo).cloned().unwrap_or_default();
    let refused = match method {
        Method::Merge if !allowed.merge => {
            Some("Merge commits are not allowed on this repository.")
        }
        Method::Squash if !allowed.squash => {
            Some("Squash merges are not allowed on this repository.")
        }
        Method::Rebase if !allowed.rebase => {
            Some("Rebase merges are not allowed on this repository.")
        }
        _ => None,
    };
    if let Some(msg) = refused {
        return Err((405, msg.into()));
    }
    let key = (p.repo.clone(), p.base_ref.clone());
    if let Some(rules) = st.rulesets.get(&key) {
        // A ruleset's allowed_merge_methods refuses the others in the repository setting's own
        // words (apstndb/spanner-mycli#307: a squash-only ruleset answered `405 Merge commits
        // are not allowed on this repository.`).
        let name = match method {
            Method::Merge => "merge",
            Method::Squash => "squash",
            Method::Rebase => "rebase",
        };
        if rules
            .allowed_merge_methods
            .as_ref()
            .is_some_and(|m| !m.iter().any(|x| x == name))
        {
            let msg = match method {
                Method::Merge => "Merge commits are not allowed on this repository.",
                Method::Squash => "Squash merges are not allowed on this repository.",
                Method::Rebase => "Rebase merges are not allowed on this repository.",
            };
            return Err((405, msg.into()));
        }
        // Only a squash lands a commit GitHub makes and signs (web-flow); a merge commit brings
        // the PR's unsigned commits along, and GitHub does not sign rebased ones (refined-github
        // #3140, ejoffe/spr#195). The rule's words: "Commits must have verified signatures."
        if rules.required_signatures && method != Method::Squash {
            return Err((
                405,
                "Repository rule violations found\n\nCommits must have verified signatures.\n\n"
                    .into(),
            ));
        }
    }
    // The guard is checked against the branch itself; a PR that has not caught up with a push
    // yet (see `refresh`) is refused as out of date until it has (issue #13: both are 409s,
    // told apart only by the message).
    let live = git::branch_sha(repo, &p.head_ref).unwrap_or_else(|| p.head_sha.clone());
    if sha.is_some_and(|sha| sha != live) {
        return Err((
            409,
            "Head branch was modified. Review and try the merge again.".into(),
        ));
    }
    if live != p.head_sha {
        return Err((409, git::OUT_OF_DATE.into()));
    }
    // The base moved since mergeability was last computed: GitHub refuses once and recomputes.
    if let Some((h, base)) = &p.computed_for {
        if *base != p.base_sha {
            st.pulls[idx].computed_for = Some((h.clone(), p.base_sha.clone()));
            st.pulls[idx].pending_reads = 0;
            return Err((405, git::BASE_MODIFIED.into()));
        }
    }
    if p.draft {
        return Err((405, "Pull Request is still a draft".into()));
    }
    if git::conflicts(repo, &p.base_sha, &p.head_sha).unwrap_or(true) {
        return Err((405, "Pull Request is not mergeable".into()));
    }
    match protection_block(st, repo, &p) {
        // A strict rule refuses a head behind its base with a 409, not a 405.
        Some(why) if why.contains(BEHIND) => Err((409, git::OUT_OF_DATE.into())),
        Some(why) => Err((405, why)),
        None => Ok(method),
    }
}

/// Whether `/commits/{sha}/pulls` lists `p`: GitHub lists the PRs that merged this commit, or
/// contain it while open.
pub(super) fn lists_commit(repo: &Repository, p: &Pull, sha: &str) -> bool {
    p.merge_commit_sha.as_deref() == Some(sha)
        || (p.open
            && git::contains(repo, &p.head_sha, sha)
            && !git::contains(repo, &p.base_sha, sha))
}
