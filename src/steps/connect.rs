//! Connecting to the outside systems from the checked inputs: GitHub, the git remote, Argo CD and
//! its apps, and the base branch. Each failure is a typed [`StepError`] before anything changed.

use crate::base::{ErrorKind, StepError};
use crate::clients::argocd::{AppRef, ArgoCd};
use crate::clients::git;
use crate::clients::github::GitHub;
use crate::config::{ArgoSettings, Config};

/// The `base` input, or the repo's default branch when it is empty.
pub async fn resolve_base(gh: &GitHub, cfg: &Config) -> Result<String, StepError> {
    match &cfg.base {
        Some(b) => Ok(b.clone()),
        None => gh
            .default_branch()
            .await
            .map_err(|e| StepError::new("resolve base", &e)),
    }
}

/// The GitHub client for the release repo.
pub fn connect_github(cfg: &Config) -> Result<GitHub, StepError> {
    let mut gh = GitHub::with_trust(
        cfg.run.api_url.as_str(),
        cfg.github_token.expose(),
        &cfg.repository.to_string(),
        cfg.trust.clone(),
    )
    .map_err(|e| StepError::new("connect to GitHub", &e))?;
    gh.call_timeout = cfg.request_timeout;
    gh.retry_budget = cfg.retry_budget;
    Ok(gh)
}

/// The clone URL of `repo` on the git host (`GITHUB_SERVER_URL`), with no credentials in it.
pub fn remote(cfg: &Config, repo: &str) -> git::Remote {
    git::Remote {
        url: format!(
            "{}/{repo}.git",
            cfg.run.server_url.as_str().trim_end_matches('/')
        ),
        token: cfg.github_token.expose().to_string(),
        retry_budget: cfg.retry_budget,
        trust: cfg.trust.clone(),
    }
}

/// Connects (and logs in, with a username) to Argo CD.
pub async fn connect_argocd(s: &ArgoSettings) -> Result<ArgoCd, StepError> {
    ArgoCd::connect(&s.client)
        .await
        .map_err(|e| StepError::new("connect to Argo CD", &e))
}

/// The apps the inputs name (by name or selector); none is a `config` error.
pub async fn find_apps(argo: &ArgoCd, s: &ArgoSettings) -> Result<Vec<AppRef>, StepError> {
    let apps = argo
        .resolve_apps(&s.apps, s.selector.as_deref())
        .await
        .map_err(|e| StepError::new("find apps", &e))?;
    if apps.is_empty() {
        return Err(StepError::msg(
            "find apps",
            ErrorKind::Config,
            "input 'argocd-app' / 'argocd-selector': no Argo CD application matched",
        ));
    }
    Ok(apps)
}
