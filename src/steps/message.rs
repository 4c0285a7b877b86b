//! The promotion's words: the templates rendered with its values, the commit message with its
//! trailers, and the plan a dry run prints.

use super::Edit;
use crate::clients::git;
use crate::config::{Config, Template};

/// The promotion's commit message: the `commit-message` template plus the trailers that make the
/// base's history a deployment history (and let `guard` find the last promotion).
pub fn commit_message(cfg: &Config, base: &str, edit: &Edit) -> String {
    git::append_trailers(
        &render(cfg, &cfg.commit_message, base, edit),
        &[
            ("Promoted-by", "gitops-promote"),
            ("Promotion-run", &cfg.run.run_url),
        ],
    )
}

/// Renders a template input with this promotion's values.
pub fn render(cfg: &Config, t: &Template, base: &str, edit: &Edit) -> String {
    let repo = cfg.repository.to_string();
    let changes = edit.describe();
    t.render(&cfg.template_vars(&repo, base, &changes))
}

/// What a run would do, for `dry-run` and the summary.
pub fn plan(cfg: &Config, base: &str, edit: &Edit) -> String {
    let mut steps = vec![format!(
        "1. commit the edit below on a new branch from `{base}` and push it"
    )];
    steps.push(format!("2. open a PR into `{base}`"));
    if cfg.merge {
        if cfg.required_approvals > 0 {
            steps.push(format!(
                "3. wait for {} approving review(s)",
                cfg.required_approvals
            ));
        }
        steps.push(format!(
            "{}. merge it ({})",
            steps.len() + 1,
            cfg.merge_method.as_str()
        ));
        if let Some(a) = &cfg.argocd {
            let which = match &a.selector {
                Some(sel) => format!("matching `{sel}`"),
                None => a.apps.join(", "),
            };
            steps.push(format!(
                "{}. sync Argo CD apps {which} and wait until Synced and Healthy",
                steps.len() + 1
            ));
        }
        if cfg.verify.is_some() {
            steps.push(format!("{}. run the metrics gate", steps.len() + 1));
        }
    }
    format!(
        "dry run: nothing remote was changed. Plan:\n{}\n\nChanges:\n{}",
        steps.join("\n"),
        edit.describe()
    )
}
