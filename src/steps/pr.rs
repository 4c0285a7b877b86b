//! The pull request: opened (or taken over on a re-run), and its branch deleted once merged.

use super::message::render;
use super::Edit;
use crate::base::StepError;
use crate::clients::github::{GitHub, NewPr, PrRef};
use crate::clients::runtime::Runtime;
use crate::config::Config;

/// Opens the PR for our `branch`, or takes over the open one (a re-run); its head is `pushed`,
/// our commit, whatever GitHub still reports right after the push.
pub async fn open_pr(
    gh: &GitHub,
    cfg: &Config,
    base: &str,
    branch: &str,
    pushed: &str,
    edit: &Edit,
) -> Result<PrRef, StepError> {
    let new = NewPr {
        head: branch.to_string(),
        base: base.to_string(),
        title: render(cfg, &cfg.pr_title, base, edit),
        body: render(cfg, &cfg.pr_body, base, edit),
        draft: cfg.draft,
        labels: cfg.labels.clone(),
        reviewers: cfg.reviewers.clone(),
        team_reviewers: cfg.team_reviewers.clone(),
        assignees: cfg.assignees.clone(),
        pushed: Some(pushed.to_string()),
    };
    gh.open_or_reuse_pr(&new)
        .await
        .map_err(|e| StepError::new("open PR", &e))
}

/// Deletes our branch after its PR merged. When GitHub will not, the step goes on (the merge is
/// what counts) but says so in a warning and on the PR, so nobody wonders whose branch it is.
pub async fn delete_merged_branch(rt: &Runtime, gh: &GitHub, pr: u64, branch: &str) {
    let Err(e) = gh.delete_branch(branch).await else {
        return;
    };
    let msg = format!("could not delete its branch {branch} after merging #{pr}: {e}");
    rt.warning("cleanup", &format!("gitops-promote {msg}"));
    let note = format!(
        "gitops-promote merged this PR but {msg}. Nothing else uses the branch: delete it by hand."
    );
    if let Err(e) = gh.comment(pr, &note).await {
        rt.warning("cleanup", &format!("could not say so on #{pr} either: {e}"));
    }
}
