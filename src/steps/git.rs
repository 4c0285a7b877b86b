//! Clone, commit and push through git2, off the async runtime (libgit2 blocks).

use super::message::{commit_message, PROMOTION_KEY};
use super::Edit;
use crate::base::{ErrorKind, StepError};
use crate::clients::git::{self, Checkout};
use crate::config::Config;
use std::sync::{Arc, Mutex};

/// Clones the base of `repo` shallowly.
pub async fn clone(cfg: &Config, repo: &str, base: &str) -> Result<Checkout, StepError> {
    let remote = super::remote(cfg, repo);
    let base = base.to_string();
    tokio::task::spawn_blocking(move || git::clone_base(&remote, &base, 1))
        .await
        .expect("clone task")
        .map_err(|e| StepError::new("clone", &e))
}

/// Commits the edited files on the base head, with the promotion's message and trailers.
pub async fn commit(
    checkout: &Arc<Mutex<Checkout>>,
    cfg: &Config,
    base: &str,
    edit: &Edit,
) -> Result<git2::Oid, StepError> {
    let message = commit_message(cfg, base, edit);
    let files: Vec<(String, Vec<u8>)> = edit
        .files
        .iter()
        .map(|f| (f.path.clone(), f.new.clone()))
        .collect();
    let author = git::Identity {
        name: cfg.author_name.clone(),
        email: cfg.author_email.clone(),
    };
    let checkout = checkout.clone();
    tokio::task::spawn_blocking(move || {
        let c = checkout.lock().unwrap();
        c.commit_files(c.base_sha(), &files, &message, &author)
    })
    .await
    .expect("commit task")
    .map_err(|e| StepError::new("commit", &e))
}

/// Pushes `commit` to our `branch`; git refuses the base before any network call.
pub async fn push(
    checkout: &Arc<Mutex<Checkout>>,
    commit: git2::Oid,
    branch: &str,
    force: bool,
) -> Result<(), StepError> {
    let checkout = checkout.clone();
    let branch = branch.to_string();
    tokio::task::spawn_blocking(move || {
        checkout.lock().unwrap().push_branch(commit, &branch, force)
    })
    .await
    .expect("push task")
    .map_err(|e| StepError::new("push", &e))
}

/// Checks, before our force-push, that `branch` is free or holds this same promotion: a branch
/// someone else pushed, or another change set's (a sibling matrix leg, another job), is never
/// overwritten or taken over.
///
/// # Errors
/// `conflict` naming the branch, what holds it, and how to give this promotion a branch of its
/// own; fetch errors as they are classified.
pub async fn claim_branch(
    checkout: &Arc<Mutex<Checkout>>,
    branch: &str,
    key: &str,
) -> Result<(), StepError> {
    let c = checkout.clone();
    let b = branch.to_string();
    let head = tokio::task::spawn_blocking(move || c.lock().unwrap().branch_message(&b))
        .await
        .expect("branch task")
        .map_err(|e| StepError::new("push", &e))?;
    match head {
        None => Ok(()),
        Some(message) => may_take_over(branch, &message, key),
    }
}

/// Whether a branch whose head commit says `message` may be taken over by the promotion `key`.
///
/// # Errors
/// `conflict` when the head is not a promotion, or one of another change set.
pub fn may_take_over(branch: &str, message: &str, key: &str) -> Result<(), StepError> {
    let trailers = git::trailers(message);
    let value = |k: &str| git::trailer(&trailers, k);
    let own_name = "give `branch` a name of its own (the default has {job} and {key})";
    if value("Promoted-by") != Some("gitops-promote") {
        return Err(StepError::msg(
            "push",
            ErrorKind::Conflict,
            format!("branch {branch} exists and its head is not a gitops-promote commit: not overwriting it; {own_name}"),
        ));
    }
    if value(PROMOTION_KEY) != Some(key) {
        let what = match (value("Promoted-files"), value("Promoted-apps")) {
            (Some(f), Some(a)) => format!("{f} for {a}"),
            (Some(f), None) => f.to_string(),
            _ => "an older gitops-promote".to_string(),
        };
        return Err(StepError::msg(
            "push",
            ErrorKind::Conflict,
            format!("branch {branch} holds another promotion ({what}): not taking it over; two jobs or matrix legs share the branch name, so {own_name}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "Promote x\n\nPromoted-by: gitops-promote\nPromoted-files: charts/dev/values.yaml\nPromotion-key: 1234abcd\n";

    #[test]
    fn only_a_branch_holding_the_same_change_set_is_taken_over() {
        assert!(may_take_over("b", OURS, "1234abcd").is_ok());
        let sibling = may_take_over("b", OURS, "99999999").unwrap_err();
        assert_eq!(sibling.kind, ErrorKind::Conflict);
        assert!(
            sibling
                .message
                .contains("holds another promotion (charts/dev/values.yaml)"),
            "{sibling}"
        );
        let theirs = may_take_over("b", "WIP: my own work\n", "1234abcd").unwrap_err();
        assert!(
            theirs.message.contains("not a gitops-promote commit"),
            "{theirs}"
        );
        let old = may_take_over(
            "b",
            "Promote x\n\nPromoted-by: gitops-promote\n",
            "1234abcd",
        )
        .unwrap_err();
        assert!(old.message.contains("an older gitops-promote"), "{old}");
    }
}
