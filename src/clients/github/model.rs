//! The values the GitHub client takes and returns: what a PR to open looks like, what is read
//! back about one, the gate's settings and a merge's outcome.

use chrono::{DateTime, Utc};
use octocrab::models::pulls::PullRequest;
use std::time::Duration;

/// What a PR to open looks like.
#[derive(Debug, Clone, Default)]
pub struct NewPr {
    /// Our branch (no owner prefix).
    pub head: String,
    /// The base branch.
    pub base: String,
    /// PR title.
    pub title: String,
    /// PR body.
    pub body: String,
    /// Open as a draft.
    pub draft: bool,
    /// Labels to add.
    pub labels: Vec<String>,
    /// Users asked to review.
    pub reviewers: Vec<String>,
    /// Team slugs asked to review.
    pub team_reviewers: Vec<String>,
    /// Users assigned.
    pub assignees: Vec<String>,
    /// The commit we just pushed to `head`: the PR's head is taken to be it, whatever GitHub
    /// still reports (it updates a PR after a push asynchronously).
    pub pushed: Option<String>,
}

/// The PR a promotion works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    /// PR number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
    /// The head the merge must find: our pushed commit, or the head when opened or found.
    pub head_sha: String,
    /// Whether this run opened it (false: reused from an earlier attempt).
    pub created: bool,
    /// What could not be applied (e.g. a reviewer who is not a collaborator), for the log.
    pub warnings: Vec<String>,
}

/// What the promotion reads back about a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrInfo {
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Web URL.
    pub url: String,
    /// open or closed.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge (or last rebased) commit once merged.
    pub merge_commit_sha: Option<String>,
    /// Head branch.
    pub head_ref: String,
    /// Head SHA.
    pub head_sha: String,
    /// Base branch.
    pub base_ref: String,
    /// Author login.
    pub user: String,
    /// Draft PR.
    pub draft: bool,
    /// `mergeable` (null while GitHub computes it; only on a single-PR read).
    pub mergeable: Option<bool>,
    /// `mergeable_state` (clean, unstable, has_hooks, dirty, blocked, behind, draft, unknown).
    pub mergeable_state: String,
    /// Number of commits (only on a single-PR read).
    pub commits: Option<u64>,
}

impl PrInfo {
    /// What the promotion reads of octocrab's model, with GitHub's absent fields made explicit.
    pub(super) fn from_model(p: &PullRequest) -> PrInfo {
        let state = match &p.state {
            Some(octocrab::models::IssueState::Open) => "open",
            Some(_) => "closed",
            None => "unknown",
        };
        let ms = p
            .mergeable_state
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        PrInfo {
            number: p.number,
            title: p.title.clone().unwrap_or_default(),
            url: p
                .html_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            state: state.into(),
            merged: p.merged.unwrap_or(false) || p.merged_at.is_some(),
            merge_commit_sha: p.merge_commit_sha.clone(),
            head_ref: p.head.ref_field.clone(),
            head_sha: p.head.sha.clone(),
            base_ref: p.base.ref_field.clone(),
            user: p.user.as_ref().map(|u| u.login.clone()).unwrap_or_default(),
            draft: p.draft.unwrap_or(false),
            mergeable: p.mergeable,
            mergeable_state: ms,
            commits: p.commits,
        }
    }
}

/// What the approval and checks gate waits for.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Approvals needed from distinct users with write access, on the current head.
    pub required_approvals: u32,
    /// How long to wait for the whole gate.
    pub approval_timeout: Duration,
    /// Wait for checks and statuses on the head to succeed.
    pub wait_for_checks: bool,
    /// Time between polls.
    pub poll: Duration,
}

/// What a merge attempt led to. "Not yet" outcomes are values (STYLE.md #5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Merged: the commit now on the base, and every commit the merge added (rebase: all, oldest first).
    Merged {
        /// `merge_commit_sha` as GitHub reports it.
        sha: String,
        /// Commits added to the base, oldest first.
        commits: Vec<String>,
    },
    /// 405 "Base branch was modified": try again.
    BaseModified,
    /// 405 because a protection rule or ruleset is not met yet (a required check expected, an
    /// approving review missing, the head behind), with GitHub's message: wait, it may clear.
    Blocked(String),
    /// 405 for any other reason (conflicts, a draft), with GitHub's message.
    NotMergeable(String),
    /// 409 "Head branch was modified": the head is not the SHA we checked; someone pushed to
    /// our branch.
    HeadModified,
    /// 409 "Head branch is out of date": a strict rule wants the base merged into the head first
    /// (or GitHub has not yet caught up with a push).
    OutOfDate,
}

/// An issue comment on the PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Author login.
    pub user: String,
    /// Markdown body.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}
