//! [`GitError`], what kind of failure each variant is, and the wrappers for libgit2's errors.

use crate::base::{Classify, ErrorKind};

/// The error returned by every function of this module; each variant names what failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The remote URL is not a usable https URL, or it carries credentials.
    #[error("invalid remote URL: {reason}")]
    BadUrl {
        /// Why; never the URL itself when it carries credentials.
        reason: String,
    },
    /// The server rejected the token.
    #[error("failed to {action} {url}: the server rejected the token (authentication failed)")]
    Authentication {
        /// `fetch from` or `push to`.
        action: &'static str,
        /// The remote URL, without credentials.
        url: String,
    },
    /// A fetch or push failed for another reason.
    #[error("failed to {action} {url}")]
    Transport {
        /// `fetch from` or `push to`.
        action: &'static str,
        /// The remote URL, without credentials.
        url: String,
        /// The type worked out from libgit2's error.
        kind: ErrorKind,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The base branch does not exist on the remote.
    #[error("branch {branch} does not exist on {url}")]
    MissingBranch {
        /// The remote URL.
        url: String,
        /// The branch.
        branch: String,
    },
    /// The server refused to update a ref (protected branch, hook, non-fast-forward).
    #[error("push of {branch} to {url} was rejected: {reason}")]
    PushRejected {
        /// The remote URL.
        url: String,
        /// The branch.
        branch: String,
        /// The server's reason.
        reason: String,
    },
    /// A force push or delete aimed at the base branch; refused before any network call.
    #[error(
        "refusing to {action} the base branch {branch}: only gitops-promote's own branches may be"
    )]
    ProtectBase {
        /// `force-push` or `delete`.
        action: &'static str,
        /// The base branch.
        branch: String,
    },
    /// A repository path or branch name that cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// `path`, `branch`, `commit SHA`, `commit list` or `tree`.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A commit is not in the base branch's history, even after fetching all of it.
    #[error("commit {sha} is not in the history of {branch} on {url}")]
    CommitNotFound {
        /// The commit.
        sha: String,
        /// The base branch.
        branch: String,
        /// The remote URL.
        url: String,
    },
    /// A commit's parent count is not what GitHub or the merge method says.
    #[error("commit {sha} has {actual} parent(s), expected {expected}")]
    ParentCount {
        /// The commit.
        sha: String,
        /// Parents found.
        actual: usize,
        /// Parents expected.
        expected: usize,
    },
    /// The mainline does not fit the commit: a merge commit takes 1 up to its parent count, a
    /// single-parent one any, a root commit none.
    #[error("cannot revert {sha} with mainline {mainline}: it has {parents} parent(s)")]
    Mainline {
        /// The commit.
        sha: String,
        /// The mainline given.
        mainline: u32,
        /// Its parent count.
        parents: usize,
    },
    /// A revert would change files the reverted commits never touched; refused.
    #[error("refusing the revert of {commits}: it would change {paths} outside the files those commits changed")]
    UnsafeRevert {
        /// The reverted commits, comma-separated.
        commits: String,
        /// The unexpected paths, comma-separated.
        paths: String,
    },
    /// A read or write in the local clone failed.
    #[error("failed to {action}")]
    Local {
        /// What was being done, naming the commit or path.
        action: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The temp dir for the clone could not be created.
    #[error("failed to create a temp dir for the clone")]
    TempDir(#[source] std::io::Error),
}

impl Classify for GitError {
    fn kind(&self) -> ErrorKind {
        match self {
            GitError::Authentication { .. } => ErrorKind::Authentication,
            GitError::Transport { kind, .. } => *kind,
            GitError::PushRejected { .. }
            | GitError::ParentCount { .. }
            | GitError::UnsafeRevert { .. } => ErrorKind::Conflict,
            GitError::BadUrl { .. }
            | GitError::MissingBranch { .. }
            | GitError::ProtectBase { .. }
            | GitError::Invalid { .. }
            | GitError::CommitNotFound { .. }
            | GitError::Mainline { .. }
            | GitError::Local { .. }
            | GitError::TempDir(_) => ErrorKind::Config,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            GitError::Authentication { .. } => Some(
                "check `github-token`: it needs contents:write on the release repo".to_string(),
            ),
            GitError::Transport {
                kind: ErrorKind::Authorization,
                ..
            } => Some("the token lacks access: grant it contents:write on the release repo".to_string()),
            GitError::PushRejected { .. } => Some(
                "someone pushed to the branch meanwhile, or a branch protection rule refused the push"
                    .to_string(),
            ),
            GitError::UnsafeRevert { .. } | GitError::ParentCount { .. } => Some(
                "the history is not what the merge recorded; revert by hand and check the result"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// Whether libgit2 looked for an object the local repository does not hold.
pub(super) fn is_missing_object(e: &git2::Error) -> bool {
    e.class() == git2::ErrorClass::Odb && e.code() == git2::ErrorCode::NotFound
}

/// Wraps a local libgit2 error with what was being done.
pub(super) fn local(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let action = action.into();
    move |source| GitError::Local { action, source }
}
