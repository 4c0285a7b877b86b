//! The shallow, bare clone of the base branch: cloning, fetching and deepening it, and reading
//! files.

use super::error::{local, GitError};
use super::http::with_session;
use super::remote::{with_retries, CallState, Remote};
use super::validate::{check_branch, check_path, check_url, parse_sha};
use git2::{FetchOptions, Oid, Repository};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// How deep each successive fetch goes when a commit is not yet in the shallow clone; after the last
/// step the history is fetched whole.
const DEEPEN_STEPS: [u32; 4] = [10, 50, 250, 1000];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: fetch the whole history of a shallow clone.
pub(super) const UNSHALLOW: i32 = i32::MAX;

/// A bare clone of the base branch in a temp dir, removed on drop. It holds no work tree and no
/// remote configuration.
pub struct Checkout {
    /// Reopened after every fetch (see `fetch_depth_once`), so never hold it across one.
    pub(super) repo: Repository,
    pub(super) remote: Remote,
    pub(super) base: String,
    /// The base head as of the clone, [`Checkout::fetch_base`] or [`Checkout::find_revert_of`];
    /// deepening fetches the base again but leaves this where it was.
    pub(super) base_sha: Oid,
    /// The depth of the last base fetch; `None` once the whole history is present.
    pub(super) depth: Option<u32>,
    // Declared last so that the repository is closed before its directory goes.
    _dir: tempfile::TempDir,
}

/// By hand: `Repository` is not `Debug`, so the clone shows as its path.
impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("path", &self.repo.path())
            .field("remote", &self.remote)
            .field("base", &self.base)
            .field("base_sha", &self.base_sha)
            .field("depth", &self.depth)
            .finish()
    }
}

/// Fetches only `refs/heads/<base>` of `remote` at `depth` (at least 1) into a new temp dir.
///
/// # Errors
/// `BadUrl` when the URL is not http(s) or carries credentials; `Authentication` when the token is
/// rejected (after one attempt, libgit2 would otherwise ask again and again); `MissingBranch`;
/// `Transport` for network failures (connectivity) and 403 (authorization).
pub fn clone_base(remote: &Remote, base: &str, depth: u32) -> Result<Checkout, GitError> {
    check_url(&remote.url)?;
    check_branch(base)?;
    let dir = tempfile::Builder::new()
        .prefix("gitops-promote-")
        .tempdir()
        .map_err(GitError::TempDir)?;
    // No templates: libgit2 would copy the system's hooks and info/exclude into every clone.
    let repo = Repository::init_opts(
        dir.path(),
        git2::RepositoryInitOptions::new()
            .bare(true)
            .external_template(false),
    )
    .map_err(local("create the local clone"))?;
    let mut checkout = Checkout {
        repo,
        remote: remote.clone(),
        base: base.to_string(),
        base_sha: Oid::ZERO_SHA1,
        depth: Some(depth.max(1)),
        _dir: dir,
    };
    checkout.base_sha = checkout.fetch_depth(depth.max(1) as i32)?;
    Ok(checkout)
}

impl Checkout {
    /// The base branch this clone follows.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The base head as of the clone or the last [`Checkout::fetch_base`].
    pub fn base_sha(&self) -> Oid {
        self.base_sha
    }

    /// The directory of the bare clone (for tests and diagnostics).
    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    /// The remote this clone fetches from and pushes to.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Reads commit `id`, naming it in the error.
    pub(super) fn read_commit(&self, id: Oid) -> Result<git2::Commit<'_>, GitError> {
        self.repo
            .find_commit(id)
            .map_err(local(format!("read commit {id}")))
    }

    /// Reads the tree of `commit`, naming the commit in the error.
    pub(super) fn tree_at(&self, commit: Oid) -> Result<git2::Tree<'_>, GitError> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(local(format!("read commit {commit}")))
    }

    /// An unnamed remote for one fetch or push: nothing about it, URL or token, is written to the
    /// repository's config.
    pub(super) fn anonymous_remote(&self) -> Result<git2::Remote<'_>, GitError> {
        self.repo
            .remote_anonymous(&self.remote.url)
            .map_err(local(format!("set up the remote {}", self.remote.url)))
    }

    /// One fetch of `refspec` at `depth` over an anonymous remote: no tags, no FETCH_HEAD.
    fn fetch_refspec(&self, refspec: &str, depth: i32) -> Result<(), GitError> {
        let state = CallState::default();
        let mut remote = self.anonymous_remote()?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(state.callbacks())
            .depth(depth)
            .download_tags(git2::AutotagOption::None)
            .update_fetchhead(false);
        with_session(&self.remote, || {
            remote.fetch(&[refspec], Some(&mut opts), None)
        })
        .map_err(|e| state.error("fetch from", &self.remote.url, e))
    }

    /// The ref the base head is fetched into.
    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.base)
    }

    /// Fetches the base branch at `depth` (`UNSHALLOW` for all of it) and returns its head,
    /// retried on a dropped connection or a 5xx (a fetch changes nothing remote).
    pub(super) fn fetch_depth(&mut self, depth: i32) -> Result<Oid, GitError> {
        with_retries(self.remote.retry_budget, || self.fetch_depth_once(depth))
    }

    /// One attempt of [`Checkout::fetch_depth`], with fresh callback state.
    fn fetch_depth_once(&mut self, depth: i32) -> Result<Oid, GitError> {
        let refspec = format!("+refs/heads/{}:{}", self.base, self.tracking_ref());
        // A refspec that matches nothing is no error to libgit2; dropping the old tracking ref
        // first makes a base branch deleted on the server show as missing, not as its old head.
        if let Ok(mut old) = self.repo.find_reference(&self.tracking_ref()) {
            old.delete()
                .map_err(local(format!("reset {}", self.tracking_ref())))?;
        }
        self.fetch_refspec(&refspec, depth)?;
        // libgit2 keeps commits parsed before the fetch in its cache, with the parents the old
        // shallow boundary cut off: a deepened merge commit would still show none. Reopen, with
        // `open_ext`: `open_bare` does not load `shallow`, and a push from a handle without the
        // shallow grafts walks into missing parents ("object not found").
        self.repo = Repository::open_ext(
            self.repo.path(),
            git2::RepositoryOpenFlags::NO_SEARCH | git2::RepositoryOpenFlags::BARE,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
        .map_err(local("reopen the local clone after a fetch"))?;
        let head =
            self.repo
                .refname_to_id(&self.tracking_ref())
                .map_err(|_| GitError::MissingBranch {
                    url: self.remote.url.clone(),
                    branch: self.base.clone(),
                })?;
        Ok(head)
    }

    /// Fetches one step deeper than now. Returns `false` once the whole history is present.
    pub(super) fn deepen(&mut self) -> Result<bool, GitError> {
        let Some(current) = self.depth else {
            return Ok(false);
        };
        if !self.repo.is_shallow() {
            self.depth = None;
            return Ok(false);
        }
        match DEEPEN_STEPS.iter().find(|&&d| d > current) {
            Some(&next) => {
                self.fetch_depth(next as i32)?;
                self.depth = Some(next);
            }
            None => {
                self.fetch_depth(UNSHALLOW)?;
                self.depth = None;
            }
        }
        Ok(true)
    }

    /// The commits whose parents were cut off by the shallow fetch; libgit2 shows them with no
    /// parents at all, so they must never be taken for root commits.
    pub(super) fn shallow_roots(&self) -> HashSet<Oid> {
        std::fs::read_to_string(self.repo.path().join("shallow"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .collect()
    }

    /// Whether `id` and all its parents are present, with its true parent list: the parents
    /// written in the commit object, not the ones a shallow graft leaves visible.
    fn complete(&self, id: Oid) -> bool {
        let Ok(commit) = self.repo.find_commit(id) else {
            return false;
        };
        if self.shallow_roots().contains(&id) {
            return false;
        }
        let recorded = recorded_parents(&commit);
        commit.parent_count() == recorded.len()
            && recorded.iter().all(|p| self.repo.find_commit(*p).is_ok())
    }

    /// Reads `path` at `commit`, or `None` when no file is there.
    ///
    /// # Errors
    /// `Invalid` for a bad path or one naming a directory; `Local` when the commit is not present.
    pub fn read_file(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        check_path(path)?;
        let tree = self.tree_at(commit)?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(local(format!("read {path} at {commit}"))(e)),
        };
        match entry.kind() {
            // A symlink's blob is its target's name: editing it would edit the link, and following
            // it could leave the repo. Refuse it by name rather than parse "/etc/passwd" as YAML.
            Some(git2::ObjectType::Blob) if entry.filemode() == i32::from(git2::FileMode::Link) => {
                Err(GitError::Invalid {
                    what: "path",
                    value: path.to_string(),
                    reason: "is a symbolic link; name the file it points to",
                })
            }
            Some(git2::ObjectType::Blob) => {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .map_err(local(format!("read {path} at {commit}")))?;
                Ok(Some(blob.content().to_vec()))
            }
            _ => Err(GitError::Invalid {
                what: "path",
                value: path.to_string(),
                reason: "names a directory or submodule, not a file",
            }),
        }
    }

    /// The message of `branch`'s head on the remote, `None` when there is no such branch: read
    /// before a force-push, so that a branch that is not this promotion's is never overwritten.
    ///
    /// # Errors
    /// Fetch errors as [`clone_base`].
    pub fn branch_message(&mut self, branch: &str) -> Result<Option<String>, GitError> {
        with_retries(self.remote.retry_budget, || {
            self.branch_message_once(branch)
        })
    }

    /// One attempt of [`Checkout::branch_message`]: `branch` fetched at depth 1 into a ref of its
    /// own (a refspec that matches nothing leaves it absent).
    fn branch_message_once(&mut self, branch: &str) -> Result<Option<String>, GitError> {
        const PEEK: &str = "refs/gitops-promote/peek";
        if let Ok(mut old) = self.repo.find_reference(PEEK) {
            old.delete().map_err(local(format!("reset {PEEK}")))?;
        }
        let refspec = format!("+refs/heads/{branch}:{PEEK}");
        // GitHub's "Update branch" (update-branch for a strict rule) puts its merge of the base on
        // top of our commit: look through those to the commit that says whose branch it is.
        let mut depth = 1;
        loop {
            self.fetch_refspec(&refspec, depth)?;
            let Ok(id) = self.repo.refname_to_id(PEEK) else {
                return Ok(None);
            };
            let mut commit = self.read_commit(id)?;
            for _ in 1..depth {
                // The graft of the first, shallower fetch would hide the parents `parent_ids` sees.
                let Some(&first) = recorded_parents(&commit).first() else {
                    break;
                };
                commit = self.read_commit(first)?;
            }
            let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            if depth > MAX_UPDATE_MERGES || !is_update_merge(&message, branch) {
                return Ok(Some(message));
            }
            depth += 1;
        }
    }

    /// Fetches the base branch again (at the current depth) and returns its new head.
    ///
    /// # Errors
    /// As [`clone_base`].
    pub fn fetch_base(&mut self) -> Result<Oid, GitError> {
        let depth = self.depth.map_or(UNSHALLOW, |d| d as i32);
        self.base_sha = self.fetch_depth(depth)?;
        Ok(self.base_sha)
    }

    /// Deepens the clone until commit `sha` and all its parents are present, and checks its parent
    /// count against `expected_parents` (from GitHub or the merge method) when given.
    ///
    /// A commit on the shallow boundary reports no parents; this never takes it for a root commit.
    ///
    /// # Errors
    /// `Invalid` for a malformed SHA; `CommitNotFound` when it is not in the base's history;
    /// `ParentCount` (conflict) when the count differs; fetch errors as [`clone_base`].
    pub fn ensure_commit(
        &mut self,
        sha: &str,
        expected_parents: Option<usize>,
    ) -> Result<(), GitError> {
        let id = parse_sha(sha)?;
        while !self.complete(id) {
            if !self.deepen()? {
                break;
            }
        }
        if !self.complete(id) {
            return Err(GitError::CommitNotFound {
                sha: id.to_string(),
                branch: self.base.clone(),
                url: self.remote.url.clone(),
            });
        }
        let commit = self.read_commit(id)?;
        let actual = recorded_parents(&commit).len();
        match expected_parents {
            Some(expected) if expected != actual => Err(GitError::ParentCount {
                sha: id.to_string(),
                actual,
                expected,
            }),
            _ => Ok(()),
        }
    }
}

/// The parents written in a commit object's header. Unlike `parent_ids`, a shallow graft cannot
/// hide them.
pub(super) fn recorded_parents(commit: &git2::Commit<'_>) -> Vec<Oid> {
    String::from_utf8_lossy(commit.raw_header_bytes())
        .lines()
        .filter_map(|l| l.strip_prefix("parent "))
        .filter_map(|p| Oid::from_str(p.trim()).ok())
        .collect()
}

/// How many of GitHub's update merges [`Checkout::branch_message`] looks through (the merge step
/// brings a head up to date a few times at most).
const MAX_UPDATE_MERGES: i32 = 5;

/// Whether `message` is the commit GitHub's "Update branch" makes on `branch`:
/// "Merge branch 'BASE' into BRANCH" (REST `PUT /pulls/{n}/update-branch`, merge method).
fn is_update_merge(message: &str, branch: &str) -> bool {
    let first = message.lines().next().unwrap_or_default();
    first.starts_with("Merge branch '") && first.ends_with(&format!("' into {branch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_githubs_update_merge_on_this_branch_is_looked_through() {
        let b = "gitops-promote/main/x";
        assert!(is_update_merge(
            "Merge branch 'main' into gitops-promote/main/x\n",
            b
        ));
        assert!(!is_update_merge("Merge branch 'main' into other\n", b));
        assert!(!is_update_merge(
            "Promote image.tag\n\nMerge branch 'main' into gitops-promote/main/x",
            b
        ));
    }
    use crate::base::{Classify, ErrorKind};
    use crate::clients::git::RETRY_BUDGET;

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let r = Remote {
            url: "https://x-access-token:ghs_secret@github.com/acme/deploy.git".into(),
            token: "t".into(),
            retry_budget: RETRY_BUDGET,
            trust: Default::default(),
        };
        let err = clone_base(&r, "main", 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("ghs_secret"), "{err}");
    }

    #[test]
    fn checkout_can_move_into_spawn_blocking() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Checkout>();
        assert_send::<GitError>();
    }
}
