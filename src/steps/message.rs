//! The promotion's words: the templates rendered with its values, the commit message with its
//! trailers, and the plan a dry run prints.

use super::Edit;
use crate::clients::git;
use crate::config::{Config, Template};

/// The promotion's commit message: the `commit-message` template plus the trailers that make the
/// base's history a deployment history: `guard` finds the last promotion of its files and apps by
/// them, and a re-run knows its own branch by its key.
pub fn commit_message(cfg: &Config, base: &str, edit: &Edit) -> String {
    let scope = cfg.scope();
    let mut trailers = vec![
        ("Promoted-by", "gitops-promote".to_string()),
        ("Promotion-run", cfg.run.run_url.clone()),
        ("Promoted-files", changed_files(edit)),
    ];
    if !scope.apps.is_empty() {
        trailers.push(("Promoted-apps", scope.apps.join(", ")));
    }
    trailers.push((PROMOTION_KEY, scope.key()));
    let trailers: Vec<(&str, &str)> = trailers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    git::append_trailers(&render(cfg, &cfg.commit_message, base, edit), &trailers)
}

/// The trailer that names a promotion's change set ([`crate::config::Scope::key`]).
pub const PROMOTION_KEY: &str = "Promotion-key";

/// The files the edit changes, joined by `, ` (every file named when nothing changes).
pub fn changed_files(edit: &Edit) -> String {
    let changed: Vec<&str> = edit
        .files
        .iter()
        .filter(|f| !f.changes.is_empty())
        .map(|f| f.path.as_str())
        .collect();
    if changed.is_empty() {
        edit.files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        changed.join(", ")
    }
}

/// Renders a template input with this promotion's values.
pub fn render(cfg: &Config, t: &Template, base: &str, edit: &Edit) -> String {
    let repo = cfg.repository.to_string();
    let changes = edit.describe();
    let files = changed_files(edit);
    let key = cfg.scope().key();
    t.render(&cfg.template_vars(&repo, base, &changes, &files, &key))
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
