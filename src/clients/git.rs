//! Git operations on the release repo with git2 (DESIGN.md §2 steps 2-5, §3 steps 3-5): a shallow,
//! work-tree-less clone of the base branch, commits built from blobs, pushes, and in-memory reverts.
//!
//! Everything here is blocking; the async flows call it through `tokio::task::spawn_blocking`. It
//! stops at git: pull requests, merges and Argo CD belong to `github` and `argocd`.
//!
//! The token reaches libgit2 only through the credentials callback: the clone is a bare repository
//! in a temp dir with no remote configured (every fetch and push uses an anonymous remote), so no URL,
//! token or credential helper is ever written under it.

use crate::base::{Classify, ErrorKind};
use git2::{FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// How deep each successive fetch goes when a commit is not yet in the shallow clone; after the last
/// step the history is fetched whole.
const DEEPEN_STEPS: [u32; 4] = [10, 50, 250, 1000];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: fetch the whole history of a shallow clone.
const UNSHALLOW: i32 = i32::MAX;

/// How long a fetch or push is retried when `Remote::retry_budget` is not set otherwise.
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);

/// Runs `f` again after a transient transport failure (connection, timeout, 5xx, 429), with
/// backoff and jitter (about 0.5, 1, 2, 4, 8 s), for up to `budget`; other errors
/// (authentication, rejection, a missing branch) return at once.
fn with_retries<T>(
    budget: Duration,
    mut f: impl FnMut() -> Result<T, GitError>,
) -> Result<T, GitError> {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Connectivity | ErrorKind::Timeout | ErrorKind::RateLimit
                ) =>
            {
                let wait =
                    Duration::from_millis(500 << attempt.min(4)).mul_f64(0.5 + fastrand::f64());
                if started.elapsed() + wait > budget {
                    return Err(e);
                }
                std::thread::sleep(wait);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Where the release repo lives and the token that opens it.
#[derive(Clone)]
pub struct Remote {
    /// The https clone URL; it must not carry credentials.
    pub url: String,
    /// The token sent as the Basic auth password of `x-access-token`; never printed.
    pub token: String,
    /// How long a fetch or push is retried after transient failures (`retry-budget`).
    pub retry_budget: Duration,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

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

/// The result of [`Checkout::revert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// The reverted tree, not yet committed, and the paths it changes relative to `onto`.
    Tree {
        /// The tree to commit with [`Checkout::commit_tree`].
        commit_tree: Oid,
        /// Paths that differ between `onto` and `commit_tree`, sorted; empty when already reverted.
        files: Vec<String>,
    },
    /// A later commit changed the same lines; nothing was written.
    Conflict {
        /// The conflicting paths, sorted.
        files: Vec<String>,
    },
}

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
        /// `path`, `branch` or `commit SHA`.
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
    /// The mainline does not fit the commit (mainline 1 for a merge commit, 0 otherwise).
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
fn is_missing_object(e: &git2::Error) -> bool {
    e.class() == git2::ErrorClass::Odb && e.code() == git2::ErrorCode::NotFound
}

/// Wraps a local libgit2 error with what was being done.
fn local(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let action = action.into();
    move |source| GitError::Local { action, source }
}

/// A bare clone of the base branch in a temp dir, removed on drop. It holds no work tree and no
/// remote configuration.
pub struct Checkout {
    repo: Repository,
    remote: Remote,
    base: String,
    base_sha: Oid,
    /// The depth of the last base fetch; `None` once the whole history is present.
    depth: Option<u32>,
    // Declared last so that the repository is closed before its directory goes.
    _dir: tempfile::TempDir,
}

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
    let repo = Repository::init_bare(dir.path()).map_err(local("create the local clone"))?;
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

/// Bounds how long libgit2 waits to connect and for each read or write, so that a stalled git host
/// fails as a connectivity error instead of hanging the job (libgit2 waits forever by default).
///
/// # Safety
/// It sets libgit2 globals without synchronization: call it from `main` before any thread is
/// spawned (before the tokio runtime starts).
pub unsafe fn set_network_timeouts(connect: std::time::Duration, io: std::time::Duration) {
    let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the caller guarantees no other thread uses libgit2 yet. Both calls cannot fail.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms(connect));
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms(io));
    }
}

/// Parses git trailers (`Key: value` lines of the message's last paragraph), in order. A message
/// without trailers gives an empty list.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    match git2::message_trailers_strs(message) {
        Ok(t) => t
            .iter()
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Appends `trailers` (key, value) to `message` as git does: in the last paragraph when that is
/// already a trailer block, else in a new one after a blank line.
pub fn append_trailers(message: &str, new: &[(&str, &str)]) -> String {
    let mut out = message.trim_end().to_string();
    if new.is_empty() {
        return out + "\n";
    }
    let last_paragraph = out.rsplit("\n\n").next().unwrap_or("");
    let ends_in_trailers = out.contains("\n\n")
        && !last_paragraph.is_empty()
        && trailers(&out).len() == last_paragraph.lines().count();
    out.push_str(if ends_in_trailers { "\n" } else { "\n\n" });
    for (key, value) in new {
        out.push_str(&format!("{key}: {value}\n"));
    }
    out
}

/// Accepts `http(s)://host/...` without user or password.
fn check_url(url: &str) -> Result<(), GitError> {
    let parsed = url::Url::parse(url).map_err(|e| GitError::BadUrl {
        // A malformed URL with an `@` may still hold a secret: do not echo it.
        reason: if url.contains('@') {
            format!("not a URL ({e})")
        } else {
            format!("{url}: {e}")
        },
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo the URL: it holds a secret.
        return Err(GitError::BadUrl {
            reason: "it carries credentials; pass the token separately".to_string(),
        });
    }
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(GitError::BadUrl {
            reason: format!("{url}: only https (or http for local tests) is supported"),
        });
    }
    Ok(())
}

/// Rejects branch names git would refuse, before they reach a refspec.
fn check_branch(branch: &str) -> Result<(), GitError> {
    let valid = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.contains(':')
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if valid {
        Ok(())
    } else {
        Err(GitError::Invalid {
            what: "branch",
            value: branch.to_string(),
            reason: "not a valid git branch name",
        })
    }
}

/// Rejects paths that could escape the tree or write into git's own files.
fn check_path(path: &str) -> Result<(), GitError> {
    let reason = if path.is_empty() {
        Some("empty")
    } else if path.starts_with('/') || path.ends_with('/') {
        Some("must be relative to the repo root and name a file")
    } else if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"))
    {
        Some("must not contain empty, `.`, `..` or `.git` components")
    } else if path.contains('\0') || path.contains('\\') {
        Some("must not contain NUL or backslashes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(GitError::Invalid {
            what: "path",
            value: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Parses a full 40-hex commit SHA; a short one would silently be padded with zeros by libgit2.
fn parse_sha(sha: &str) -> Result<Oid, GitError> {
    let sha = sha.trim();
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GitError::Invalid {
            what: "commit SHA",
            value: sha.to_string(),
            reason: "expected 40 hex digits",
        });
    }
    Oid::from_str(sha).map_err(|_| GitError::Invalid {
        what: "commit SHA",
        value: sha.to_string(),
        reason: "expected 40 hex digits",
    })
}

/// Works out the error type of a failed fetch or push from libgit2's error.
fn transport_kind(e: &git2::Error) -> ErrorKind {
    // libgit2 reports HTTP failures as "unexpected http status code: 403"; match the status, not
    // any digits (a port such as 127.0.0.1:40312 must not read as 403).
    let status = e
        .message()
        .split_once("status code: ")
        .and_then(|(_, rest)| rest.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    match (e.code(), status) {
        (git2::ErrorCode::NotFastForward, _) => ErrorKind::Conflict,
        (git2::ErrorCode::Auth, _) | (_, Some(401)) => ErrorKind::Authentication,
        (_, Some(403)) => ErrorKind::Authorization,
        // GitHub answers 404 for a repo the token cannot see as well as for a missing one.
        (_, Some(404)) => ErrorKind::Config,
        (_, Some(429)) => ErrorKind::RateLimit,
        _ => ErrorKind::Connectivity,
    }
}

/// State shared between the callbacks of one fetch or push.
#[derive(Default)]
struct CallState {
    auth_asked: Cell<u32>,
    rejected: RefCell<Vec<(String, String)>>,
}

impl CallState {
    /// Callbacks that answer the first credentials request with the token and give up on the
    /// second one: libgit2 asks again after every 401, forever.
    fn callbacks<'a>(&'a self, token: &'a str) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |_url, _user, allowed| {
            let n = self.auth_asked.get() + 1;
            self.auth_asked.set(n);
            if n > 1 {
                return Err(git2::Error::from_str("the token was rejected"));
            }
            if !allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
                return Err(git2::Error::from_str(
                    "the server does not accept a user and password",
                ));
            }
            git2::Cred::userpass_plaintext("x-access-token", token)
        });
        cb.push_update_reference(move |refname, status| {
            if let Some(reason) = status {
                self.rejected
                    .borrow_mut()
                    .push((refname.to_string(), reason.to_string()));
            }
            Ok(())
        });
        cb
    }

    /// Turns libgit2's error into ours; a second credentials request means the token was rejected.
    fn error(&self, action: &'static str, url: &str, source: git2::Error) -> GitError {
        if self.auth_asked.get() > 1 {
            GitError::Authentication {
                action,
                url: url.to_string(),
            }
        } else {
            let kind = transport_kind(&source);
            if kind == ErrorKind::Authentication {
                GitError::Authentication {
                    action,
                    url: url.to_string(),
                }
            } else {
                GitError::Transport {
                    action,
                    url: url.to_string(),
                    kind,
                    source,
                }
            }
        }
    }
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

    /// The ref the base head is fetched into.
    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.base)
    }

    /// Fetches the base branch at `depth` (`UNSHALLOW` for all of it) and returns its head,
    /// retried on a dropped connection or a 5xx (a fetch changes nothing remote).
    fn fetch_depth(&mut self, depth: i32) -> Result<Oid, GitError> {
        with_retries(self.remote.retry_budget, || self.fetch_depth_once(depth))
    }

    fn fetch_depth_once(&mut self, depth: i32) -> Result<Oid, GitError> {
        let state = CallState::default();
        let refspec = format!("+refs/heads/{}:{}", self.base, self.tracking_ref());
        // A refspec that matches nothing is no error to libgit2; dropping the old tracking ref
        // first makes a base branch deleted on the server show as missing, not as its old head.
        if let Ok(mut old) = self.repo.find_reference(&self.tracking_ref()) {
            old.delete()
                .map_err(local(format!("reset {}", self.tracking_ref())))?;
        }
        let result = {
            let mut remote = self
                .repo
                .remote_anonymous(&self.remote.url)
                .map_err(local(format!("set up the remote {}", self.remote.url)))?;
            let mut opts = FetchOptions::new();
            opts.remote_callbacks(state.callbacks(&self.remote.token))
                .depth(depth)
                .download_tags(git2::AutotagOption::None)
                .update_fetchhead(false);
            remote.fetch(&[refspec.as_str()], Some(&mut opts), None)
        };
        result.map_err(|e| state.error("fetch from", &self.remote.url, e))?;
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
    fn deepen(&mut self) -> Result<bool, GitError> {
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
    fn shallow_roots(&self) -> HashSet<Oid> {
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
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(local(format!("read commit {commit}")))?;
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
    /// `Local` when `parent` or `tree` is not present.
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
        if force && branch == self.base {
            return Err(GitError::ProtectBase {
                action: "force-push",
                branch: branch.to_string(),
            });
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
        if branch == self.base {
            return Err(GitError::ProtectBase {
                action: "delete",
                branch: branch.to_string(),
            });
        }
        self.push(branch, &format!(":refs/heads/{branch}"))
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
        let result = {
            let mut remote = self
                .repo
                .remote_anonymous(&self.remote.url)
                .map_err(local(format!("set up the remote {}", self.remote.url)))?;
            let mut opts = PushOptions::new();
            opts.remote_callbacks(state.callbacks(&self.remote.token));
            remote.push(&[refspec], Some(&mut opts))
        };
        match result {
            Ok(()) => {}
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                return Err(GitError::PushRejected {
                    url: self.remote.url.clone(),
                    branch: branch.to_string(),
                    reason: format!("non-fast-forward: {}", e.message()),
                })
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
            return Err(GitError::PushRejected {
                url: self.remote.url.clone(),
                branch: branch.to_string(),
                reason: reason.clone(),
            });
        }
        Ok(())
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
        let commit = self
            .repo
            .find_commit(id)
            .map_err(local(format!("read commit {id}")))?;
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

    /// Whether `descendant` is `ancestor` or has it in its history. Both are looked up in the base
    /// branch's history, fetching and deepening as needed (an unknown `descendant` refreshes the base
    /// head first, see [`Checkout::base_sha`]); a commit not on the base gives `false`.
    ///
    /// # Errors
    /// `Invalid` for a malformed SHA; fetch errors as [`clone_base`].
    pub fn contains(&mut self, descendant: &str, ancestor: &str) -> Result<bool, GitError> {
        let desc = parse_sha(descendant)?;
        let anc = parse_sha(ancestor)?;
        if desc == anc {
            return Ok(true);
        }
        // The descendant may be newer than our fetch (Argo CD synced a later commit).
        if self.repo.find_commit(desc).is_err() {
            self.fetch_base()?;
        }
        loop {
            if let Some(answer) = self.reaches(desc, anc)? {
                return Ok(answer);
            }
            if !self.deepen()? {
                return Ok(false);
            }
        }
    }

    /// Walks back from `from` looking for `target`. `None` when the answer needs more history:
    /// `from` is missing, or the walk hit the shallow boundary without finding `target`.
    fn reaches(&self, from: Oid, target: Oid) -> Result<Option<bool>, GitError> {
        if self.repo.find_commit(from).is_err() {
            return Ok(None);
        }
        let mut truncated = false;
        let found = self.walk(from, usize::MAX, &mut truncated, |c| c.id() == target)?;
        Ok(match (found, truncated) {
            (Some(_), _) => Some(true),
            (None, true) => None,
            (None, false) => Some(false),
        })
    }

    /// Visits up to `limit` commits reachable from `from`, newest first, until `stop` says so, and
    /// returns that commit. Follows the parents recorded in each commit and never crosses the
    /// shallow boundary (libgit2's own revwalk fails or stops early there); `truncated` is set when
    /// the walk reached it.
    fn walk(
        &self,
        from: Oid,
        limit: usize,
        truncated: &mut bool,
        mut stop: impl FnMut(&git2::Commit<'_>) -> bool,
    ) -> Result<Option<Oid>, GitError> {
        let roots = self.shallow_roots();
        let mut queue = std::collections::BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut visited = 0;
        // Queues `id` by commit time; `false` when the commit is not in the clone.
        let mut push = |queue: &mut std::collections::BinaryHeap<(i64, Oid)>, id: Oid| {
            if !seen.insert(id) {
                return true;
            }
            match self.repo.find_commit(id) {
                Ok(c) => {
                    queue.push((c.time().seconds(), id));
                    true
                }
                Err(_) => false,
            }
        };
        *truncated |= !push(&mut queue, from);
        while let Some((_, id)) = queue.pop() {
            if visited == limit {
                break;
            }
            visited += 1;
            let commit = self
                .repo
                .find_commit(id)
                .map_err(local(format!("read commit {id}")))?;
            if stop(&commit) {
                return Ok(Some(id));
            }
            if roots.contains(&id) {
                *truncated = true;
                continue;
            }
            for parent in recorded_parents(&commit) {
                *truncated |= !push(&mut queue, parent);
            }
        }
        Ok(None)
    }

    /// Reverts `commits` (newest first) onto `onto` in memory and returns the resulting tree, or the
    /// conflicting files. `mainline` picks the parent of merge commits (1: the base side);
    /// single-parent commits (squash and rebase merges) have only one. Nothing is committed or pushed.
    ///
    /// Each commit is made complete first (see [`Checkout::ensure_commit`]), and the result is checked:
    /// a revert that would change any path the reverted commits did not change is refused, which is
    /// what stops a shallow-boundary merge from being reverted into an empty tree.
    ///
    /// # Errors
    /// `Mainline` when the mainline does not fit a commit; `UnsafeRevert`; the errors of
    /// [`Checkout::ensure_commit`].
    pub fn revert(
        &mut self,
        onto: Oid,
        commits: &[String],
        mainline: u32,
    ) -> Result<Revert, GitError> {
        if commits.is_empty() {
            return Err(GitError::Invalid {
                what: "commit list",
                value: String::new(),
                reason: "nothing to revert",
            });
        }
        let mut ids = Vec::with_capacity(commits.len());
        for sha in commits {
            self.ensure_commit(sha, None)?;
            ids.push(parse_sha(sha)?);
        }
        let mut steps = Vec::with_capacity(ids.len());
        for &id in &ids {
            let commit = self
                .repo
                .find_commit(id)
                .map_err(local(format!("read commit {id}")))?;
            let parents = commit.parent_count();
            let parent_index = match (parents, mainline) {
                // A single-parent commit has one mainline whatever was asked, so one call can
                // revert a mix (e.g. a merge found by PR number whose shape is not recorded).
                (1, _) => 0,
                (n, m) if n > 1 && m >= 1 && (m as usize) <= n => m as usize - 1,
                _ => {
                    return Err(GitError::Mainline {
                        sha: id.to_string(),
                        mainline,
                        parents,
                    })
                }
            };
            let commit_tree = commit
                .tree()
                .map_err(local(format!("read the tree of {id}")))?;
            let parent_tree = commit
                .parent(parent_index)
                .and_then(|p| p.tree())
                .map_err(local(format!("read the parent of {id}")))?;
            steps.push((id, commit_tree, parent_tree));
        }
        let onto_tree = self
            .repo
            .find_commit(onto)
            .and_then(|c| c.tree())
            .map_err(local(format!("read commit {onto}")))?;
        revert_trees(&self.repo, &onto_tree, &steps)
    }

    /// Looks through the last `max_commits` commits of the base (fetching them as needed) for one
    /// whose message has the trailer `Reverts: <merge_sha>`, or the line `This reverts commit
    /// <merge_sha>.` that `git revert` and GitHub's Revert button write, newest first.
    ///
    /// # Errors
    /// `Invalid` for a malformed SHA; fetch errors as [`clone_base`].
    pub fn find_revert_of(
        &mut self,
        merge_sha: &str,
        max_commits: usize,
    ) -> Result<Option<Oid>, GitError> {
        let merge = parse_sha(merge_sha)?;
        let wanted = u32::try_from(max_commits).unwrap_or(u32::MAX);
        if self.depth.is_some_and(|d| d < wanted) {
            let depth = i32::try_from(wanted).unwrap_or(UNSHALLOW);
            self.base_sha = self.fetch_depth(depth)?;
            self.depth = if depth == UNSHALLOW {
                None
            } else {
                Some(wanted)
            };
        }
        let mut truncated = false;
        self.walk(self.base_sha, max_commits, &mut truncated, |commit| {
            let message = String::from_utf8_lossy(commit.message_bytes());
            let by_trailer = trailers(&message).iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("Reverts") && parse_sha(v).is_ok_and(|v| v == merge)
            });
            // A squash merge of a Revert-button PR keeps its commit's message in the body, so
            // the line may stand anywhere, indented as GitHub lists the squashed commits.
            by_trailer
                || message.lines().any(|l| {
                    l.trim()
                        .strip_prefix("This reverts commit ")
                        .map(|r| r.trim_end_matches('.'))
                        .is_some_and(|r| parse_sha(r).is_ok_and(|r| r == merge))
                })
        })
    }
}

/// One commit of the base's first-parent history, as [`Checkout::find_first_parent`] visits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCommit {
    /// The commit.
    pub id: Oid,
    /// Committer time, seconds since the epoch (when it landed on the base, for merges).
    pub time: i64,
    /// The full message, trailers included.
    pub message: String,
}

impl Checkout {
    /// Walks the base's first-parent history from its head, newest first, handing each commit to
    /// `stop` until it says so; visits at most `max_commits`, deepening the shallow clone as it goes.
    /// `None` when the history ends or the bound is reached first.
    ///
    /// # Errors
    /// Fetch errors as [`clone_base`].
    pub fn find_first_parent(
        &mut self,
        max_commits: usize,
        mut stop: impl FnMut(&LogCommit) -> bool,
    ) -> Result<Option<LogCommit>, GitError> {
        let mut id = self.base_sha;
        for _ in 0..max_commits {
            let (entry, first_parent) = {
                let commit = self
                    .repo
                    .find_commit(id)
                    .map_err(local(format!("read commit {id}")))?;
                let entry = LogCommit {
                    id,
                    time: commit.committer().when().seconds(),
                    message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
                };
                (entry, recorded_parents(&commit).first().copied())
            };
            if stop(&entry) {
                return Ok(Some(entry));
            }
            let Some(parent) = first_parent else {
                return Ok(None);
            };
            // The shallow boundary hides the parent: fetch deeper until it is there.
            while self.repo.find_commit(parent).is_err() {
                if !self.deepen()? {
                    return Ok(None);
                }
            }
            id = parent;
        }
        Ok(None)
    }
}

/// Reverts each `(commit, its tree, its mainline parent's tree)` in order onto `onto`, then refuses
/// a result that changes any path outside the paths those commits changed.
fn revert_trees(
    repo: &Repository,
    onto: &git2::Tree<'_>,
    steps: &[(Oid, git2::Tree<'_>, git2::Tree<'_>)],
) -> Result<Revert, GitError> {
    let mut tree = onto.clone();
    let mut allowed = BTreeSet::new();
    for (id, commit_tree, parent_tree) in steps {
        // A promotion never creates the repository: an empty parent tree means the parent is
        // missing (a shallow boundary) and the revert would delete every file.
        if parent_tree.is_empty() && !commit_tree.is_empty() {
            return Err(GitError::UnsafeRevert {
                commits: id.to_string(),
                paths: "every file (its parent tree is empty)".to_string(),
            });
        }
        allowed.extend(changed_paths(repo, parent_tree, commit_tree)?);
        // What `revert_commit` does, on trees: merge the parent's tree into ours with the commit as
        // the merge base. Trees chain without writing intermediate commits.
        let mut index = repo
            .merge_trees(commit_tree, &tree, parent_tree, None)
            .map_err(local(format!("revert {id}")))?;
        if index.has_conflicts() {
            let mut files = BTreeSet::new();
            for conflict in index.conflicts().map_err(local(format!("revert {id}")))? {
                let conflict = conflict.map_err(local(format!("revert {id}")))?;
                for entry in [conflict.our, conflict.their, conflict.ancestor]
                    .into_iter()
                    .flatten()
                {
                    files.insert(String::from_utf8_lossy(&entry.path).into_owned());
                }
            }
            return Ok(Revert::Conflict {
                files: files.into_iter().collect(),
            });
        }
        let new_tree = index
            .write_tree_to(repo)
            .map_err(local(format!("write the tree reverting {id}")))?;
        tree = repo
            .find_tree(new_tree)
            .map_err(local(format!("read the tree reverting {id}")))?;
    }
    let files = changed_paths(repo, onto, &tree)?;
    let outside: Vec<&str> = files
        .iter()
        .filter(|f| !allowed.contains(*f))
        .map(String::as_str)
        .collect();
    if !outside.is_empty() || (tree.is_empty() && !onto.is_empty()) {
        let commits: Vec<String> = steps.iter().map(|(id, ..)| id.to_string()).collect();
        return Err(GitError::UnsafeRevert {
            commits: commits.join(", "),
            paths: if outside.is_empty() {
                "every file".to_string()
            } else {
                outside.join(", ")
            },
        });
    }
    Ok(Revert::Tree {
        commit_tree: tree.id(),
        files: files.into_iter().collect(),
    })
}

/// The parents written in a commit object's header. Unlike `parent_ids`, a shallow graft cannot
/// hide them.
fn recorded_parents(commit: &git2::Commit<'_>) -> Vec<Oid> {
    String::from_utf8_lossy(commit.raw_header_bytes())
        .lines()
        .filter_map(|l| l.strip_prefix("parent "))
        .filter_map(|p| Oid::from_str(p.trim()).ok())
        .collect()
}

/// The paths (old and new sides) that differ between two trees, sorted.
fn changed_paths(
    repo: &Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
) -> Result<BTreeSet<String>, GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), None)
        .map_err(local(format!("diff {} against {}", old.id(), new.id())))?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path() {
                paths.insert(p.to_string_lossy().into_owned());
            }
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph() {
        let msg = "Promote app to 1.2.3\n\nBody text: not a trailer here\n\nPromoted-by: gitops-promote\nPromotion-run: https://github.com/acme/app/actions/runs/1\n";
        assert_eq!(
            trailers(msg),
            vec![
                ("Promoted-by".to_string(), "gitops-promote".to_string()),
                (
                    "Promotion-run".to_string(),
                    "https://github.com/acme/app/actions/runs/1".to_string()
                ),
            ]
        );
        assert!(trailers("Just a subject").is_empty());
    }

    #[test]
    fn transient_failures_are_retried_within_the_budget_and_refusals_are_not() {
        let transient = || GitError::Transport {
            action: "fetch from",
            url: "u".into(),
            kind: ErrorKind::Connectivity,
            source: git2::Error::from_str("unexpected http status code: 502"),
        };
        let mut tries = 0;
        let r = with_retries(Duration::from_secs(30), || {
            tries += 1;
            if tries < 3 {
                Err(transient())
            } else {
                Ok(tries)
            }
        });
        assert_eq!(r.unwrap(), 3, "two blips, then success");
        let mut tries = 0;
        let r: Result<(), _> = with_retries(Duration::from_secs(30), || {
            tries += 1;
            Err(GitError::Authentication {
                action: "fetch from",
                url: "u".into(),
            })
        });
        assert_eq!(
            (r.unwrap_err().kind(), tries),
            (ErrorKind::Authentication, 1)
        );
        let mut tries = 0;
        let r: Result<(), _> = with_retries(Duration::ZERO, || {
            tries += 1;
            Err(transient())
        });
        assert_eq!(
            (r.unwrap_err().kind(), tries),
            (ErrorKind::Connectivity, 1),
            "no budget, no retry"
        );
    }

    #[test]
    fn remote_debug_hides_the_token() {
        let r = Remote {
            url: "https://github.com/acme/deploy.git".into(),
            token: "ghs_secret".into(),
            retry_budget: RETRY_BUDGET,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("ghs_secret"), "{shown}");
        assert!(shown.contains("github.com/acme/deploy.git"));
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let r = Remote {
            url: "https://x-access-token:ghs_secret@github.com/acme/deploy.git".into(),
            token: "t".into(),
            retry_budget: RETRY_BUDGET,
        };
        let err = clone_base(&r, "main", 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("ghs_secret"), "{err}");
    }

    #[test]
    fn paths_that_escape_the_tree_are_refused() {
        for bad in ["", "/etc/passwd", "a/../b", ".git/config", "a//b", "dir/"] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        check_path("charts/app/values.yaml").unwrap();
    }

    #[test]
    fn short_shas_are_refused() {
        assert!(parse_sha("abc123").is_err());
        assert!(parse_sha(&"g".repeat(40)).is_err());
        parse_sha(&"a".repeat(40)).unwrap();
    }

    #[test]
    fn bad_branch_names_are_refused() {
        for bad in ["", "-x", "a..b", "a:b", "a b"] {
            assert!(check_branch(bad).is_err(), "{bad:?} accepted");
        }
        check_branch("gitops-promote/main/1-1").unwrap();
    }

    #[test]
    fn revert_that_would_drop_files_outside_the_commit_is_refused() {
        // A merge on the shallow boundary shows no parents; reverting it against the empty tree
        // ("as a root commit") would delete every file. That result must be refused.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let tree_with = |files: &[(&str, &str)]| {
            let mut b = git2::build::TreeUpdateBuilder::new();
            for (p, c) in files {
                b.upsert(*p, repo.blob(c.as_bytes()).unwrap(), git2::FileMode::Blob);
            }
            let empty = repo
                .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
                .unwrap();
            repo.find_tree(b.create_updated(&repo, &empty).unwrap())
                .unwrap()
        };
        let merged = tree_with(&[("values.yaml", "tag: 2\n"), ("Chart.yaml", "name: app\n")]);
        let empty = tree_with(&[]);
        let before = tree_with(&[("values.yaml", "tag: 1\n"), ("Chart.yaml", "name: app\n")]);
        // The base moved on: a later commit added a file. Reverting "as a root" would leave only it.
        let onto = tree_with(&[
            ("values.yaml", "tag: 2\n"),
            ("Chart.yaml", "name: app\n"),
            ("api.yaml", "replicas: 3\n"),
        ]);

        let id = Oid::from_str(&"b".repeat(40)).unwrap();
        let err = revert_trees(&repo, &onto, &[(id, merged.clone(), empty.clone())]).unwrap_err();
        assert!(matches!(err, GitError::UnsafeRevert { .. }), "{err}");
        let err = revert_trees(&repo, &merged, &[(id, merged.clone(), empty)]).unwrap_err();
        assert!(matches!(err, GitError::UnsafeRevert { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Conflict);

        // With the true parent the same revert touches only the edited file.
        match revert_trees(&repo, &onto, &[(id, merged.clone(), before)]).unwrap() {
            Revert::Tree { files, .. } => assert_eq!(files, vec!["values.yaml".to_string()]),
            other => panic!("{other:?}"),
        };
    }

    #[test]
    fn transport_errors_are_classified() {
        let http = |msg: &str| {
            git2::Error::new(git2::ErrorCode::GenericError, git2::ErrorClass::Http, msg)
        };
        let kind = |e: git2::Error| transport_kind(&e);
        assert_eq!(
            kind(http("unexpected http status code: 403")),
            ErrorKind::Authorization
        );
        assert_eq!(
            kind(http("unexpected http status code: 401")),
            ErrorKind::Authentication
        );
        assert_eq!(
            kind(http("unexpected http status code: 404")),
            ErrorKind::Config
        );
        assert_eq!(
            kind(http("unexpected http status code: 502")),
            ErrorKind::Connectivity
        );
        assert_eq!(
            kind(git2::Error::new(
                git2::ErrorCode::GenericError,
                git2::ErrorClass::Net,
                "failed to connect to 127.0.0.1:40312: Connection refused"
            )),
            ErrorKind::Connectivity
        );
        assert_eq!(
            kind(git2::Error::new(
                git2::ErrorCode::NotFastForward,
                git2::ErrorClass::Reference,
                "cannot push non-fastforwardable reference"
            )),
            ErrorKind::Conflict
        );
    }

    #[test]
    fn checkout_can_move_into_spawn_blocking() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Checkout>();
        assert_send::<GitError>();
    }

    #[test]
    fn trailers_are_appended_in_one_block() {
        let msg = append_trailers(
            "Promote app to 1.2.3\n",
            &[
                ("Promoted-by", "gitops-promote"),
                ("Promotion-run", "https://x/runs/1"),
            ],
        );
        assert_eq!(
            msg,
            "Promote app to 1.2.3\n\nPromoted-by: gitops-promote\nPromotion-run: https://x/runs/1\n"
        );
        let more = append_trailers(&msg, &[("Reverts", "abc")]);
        assert!(more.ends_with("runs/1\nReverts: abc\n"), "{more}");
        assert_eq!(trailers(&more).len(), 3);
        // A body paragraph that is not a trailer block gets a blank line after it.
        let body = append_trailers("Subject\n\nSome body text.", &[("Reverts", "abc")]);
        assert_eq!(body, "Subject\n\nSome body text.\n\nReverts: abc\n");
    }
}
