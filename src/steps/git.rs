//! Clone, commit and push through git2, off the async runtime (libgit2 blocks).

use super::message::commit_message;
use super::Edit;
use crate::base::StepError;
use crate::clients::git::{self, Checkout};
use crate::config::Config;
use std::sync::{Arc, Mutex};

pub async fn clone(cfg: &Config, repo: &str, base: &str) -> Result<Checkout, StepError> {
    let remote = super::remote(cfg, repo);
    let base = base.to_string();
    tokio::task::spawn_blocking(move || git::clone_base(&remote, &base, 1))
        .await
        .expect("clone task")
        .map_err(|e| StepError::new("clone", &e))
}

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
