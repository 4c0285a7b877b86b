//! Git operations on the release repo with git2 (DESIGN.md §2 steps 2-5, §3 steps 3-5): a shallow,
//! work-tree-less clone of the base branch, commits built from blobs, pushes, and in-memory reverts.
//!
//! Everything here is blocking; the async flows call it through `tokio::task::spawn_blocking`. It
//! stops at git: pull requests, merges and Argo CD belong to `github` and `argocd`.
//!
//! The token never reaches libgit2: our HTTP transport (`http`, over [`crate::clients::net`]) sends
//! it, and the clone is a bare repository in a temp dir with no remote configured (every fetch and
//! push uses an anonymous remote), so no URL, token or credential helper is ever written under it.
//!
//! The module is split by what each part knows: [`GitError`] (`error`), the remote, its credentials
//! callback and transport retries (`remote`), the checks on names before they reach libgit2
//! (`validate`), the shallow clone and its fetches (`checkout`), commits and pushes (`write`), the
//! history walks and trailers (`history`) and the in-memory revert (`revert`).

mod checkout;
mod error;
mod history;
mod http;
mod remote;
mod revert;
mod validate;
mod write;

pub use checkout::{clone_base, Checkout};
pub use error::GitError;
pub use history::{append_trailers, landed_pr, reverted_pr, trailer, trailers, LogCommit};
pub use remote::{set_network_timeouts, Remote, RETRY_BUDGET};
pub use revert::Revert;
pub use write::Identity;
