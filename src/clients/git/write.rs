//! What gitops-promote writes: commits built from blobs over a parent's tree, and pushes.

use super::checkout::Checkout;
use super::error::{is_missing_object, local, GitError};
use super::remote::{with_retries, CallState};
use super::validate::{check_branch, check_path};
use git2::{Oid, PushOptions};
use std::path::Path;

/// Author and committer of the commits gitops-promote writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name, e.g. `github-actions[bot]`.
    pub name: String,
    /// The email address.
    pub email: String,
}

impl Default for Identity {
    /// The GitHub Actions bot, as `actions/checkout` users commit.
    fn default() -> Identity {
        Identity {
            name: "github-actions[bot]".to_string(),
            email: "41898282+github-actions[bot]@users.noreply.github.com".to_string(),
        }
    }
}

impl Checkout {
    /// Writes `files` (path, content) over the tree of `parent` and commits it with `parent` as the
    /// only parent, without a work tree and without moving any ref. Existing files keep their mode.
    ///
    /// # Errors
    /// `Invalid` for a bad path; `Local` when `parent` is not present.
    pub fn commit_files(
        &self,
        parent: Oid,
        files: &[(String, Vec<u8>)],
        message: &str,
        author: &Identity,
    ) -> Result<Oid, GitError> {
        for (path, _) in files {
            check_path(path)?;
        }
        let parent_commit = self
            .repo
            .find_commit(parent)
            .map_err(local(format!("find commit {parent}")))?;
        let parent_tree = parent_commit
            .tree()
            .map_err(local(format!("read the tree of {parent}")))?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, content) in files {
            let blob = self
                .repo
                .blob(content)
                .map_err(local(format!("write {path}")))?;
            let mode = match parent_tree.get_path(Path::new(path)) {
                Ok(e) if e.filemode() == i32::from(git2::FileMode::BlobExecutable) => {
                    git2::FileMode::BlobExecutable
                }
                _ => git2::FileMode::Blob,
            };
            update.upsert(path.as_str(), blob, mode);
        }
        let tree = update
            .create_updated(&self.repo, &parent_tree)
            .map_err(local("build the new tree"))?;
        self.commit_tree(parent, tree, message, author)
    }

    /// Commits `tree` with `parent` as the only parent, without moving any ref.
    ///
    /// # Errors
    /// `Invalid` for an empty tree over a non-empty parent; `Local` when `parent` or `tree` is not
    /// present.
    pub fn commit_tree(
        &self,
        parent: Oid,
        tree: Oid,
        message: &str,
        author: &Identity,
    ) -> Result<Oid, GitError> {
        let sig = git2::Signature::now(&author.name, &author.email).map_err(local(format!(
            "use the identity {} <{}>",
            author.name, author.email
        )))?;
        let parent = self
            .repo
            .find_commit(parent)
            .map_err(local(format!("find commit {parent}")))?;
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(local(format!("find tree {tree}")))?;
        // Last line of defence against the shallow-boundary revert: never commit a tree that
        // deletes every file of the repo.
        let parent_empty = parent.tree().map(|t| t.is_empty()).unwrap_or(true);
        if tree.is_empty() && !parent_empty {
            return Err(GitError::Invalid {
                what: "tree",
                value: tree.id().to_string(),
                reason: "it is empty: committing it would delete every file of the repo",
            });
        }
        self.repo
            .commit(None, &sig, &sig, message, &tree, &[&parent])
            .map_err(local("write the commit"))
    }

    /// Pushes `commit` to `refs/heads/<branch>` on the remote. `force` is for gitops-promote's own
    /// branch only (a re-applied edit); forcing the base branch is refused before any network call.
    ///
    /// # Errors
    /// `ProtectBase`; `PushRejected` (conflict) when the branch moved on the server (non-fast-forward)
    /// or the server refused the update (protection, hooks); `Authentication`; `Transport`.
    pub fn push_branch(&mut self, commit: Oid, branch: &str, force: bool) -> Result<(), GitError> {
        check_branch(branch)?;
        if force {
            self.refuse_base(branch, "force-push")?;
        }
        let plus = if force { "+" } else { "" };
        let refspec = format!("{plus}{commit}:refs/heads/{branch}");
        // libgit2 (1.9) leaves out of the pack what the remote's tips reach by walking their
        // parents; with the shallow grafts loaded (see `fetch_depth_once`) that walk stops at the
        // shallow boundary. Should it still run out of history ("object not found"), deepen and
        // push again rather than fail: a fetch per push costs time only when it is needed.
        loop {
            match self.push(branch, &refspec) {
                Err(GitError::Local { ref source, .. })
                    if is_missing_object(source) && self.deepen()? => {}
                result => return result,
            }
        }
    }

    /// Deletes `refs/heads/<branch>` on the remote; deleting a branch that is already gone succeeds.
    ///
    /// # Errors
    /// `ProtectBase` for the base branch; `PushRejected`; `Authentication`; `Transport`.
    pub fn delete_remote_branch(&self, branch: &str) -> Result<(), GitError> {
        check_branch(branch)?;
        self.refuse_base(branch, "delete")?;
        self.push(branch, &format!(":refs/heads/{branch}"))
    }

    /// `ProtectBase` when `branch` is the base: forcing or deleting it would drop commits that are
    /// not gitops-promote's to drop.
    fn refuse_base(&self, branch: &str, action: &'static str) -> Result<(), GitError> {
        if branch == self.base {
            return Err(GitError::ProtectBase {
                action,
                branch: branch.to_string(),
            });
        }
        Ok(())
    }

    /// Runs one push, retried on a dropped connection or a 5xx: pushing the same commit to the
    /// same ref again is a no-op if the first push landed, and deleting a gone branch succeeds.
    fn push(&self, branch: &str, refspec: &str) -> Result<(), GitError> {
        with_retries(self.remote.retry_budget, || self.push_once(branch, refspec))
    }

    /// Runs one push and checks the server's per-ref answer, which libgit2 does not turn into an
    /// error by itself.
    fn push_once(&self, branch: &str, refspec: &str) -> Result<(), GitError> {
        let state = CallState::default();
        let rejected = |reason: String| GitError::PushRejected {
            url: self.remote.url.clone(),
            branch: branch.to_string(),
            reason,
        };
        let result = {
            let mut remote = self.anonymous_remote()?;
            let mut opts = PushOptions::new();
            opts.remote_callbacks(state.callbacks());
            super::http::with_session(&self.remote, || remote.push(&[refspec], Some(&mut opts)))
        };
        match result {
            Ok(()) => {}
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                return Err(rejected(format!("non-fast-forward: {}", e.message())))
            }
            // Local, not in transit: no retry; push_branch deepens the clone instead.
            Err(e) if is_missing_object(&e) => {
                return Err(local(
                    "build the pack to push (history cut off by the shallow clone)",
                )(e))
            }
            Err(e) => return Err(state.error("push to", &self.remote.url, e)),
        }
        if let Some((_, reason)) = state.rejected.borrow().first() {
            return Err(rejected(reason.clone()));
        }
        Ok(())
    }
}
