//! The GitHub side of a promotion: open or reuse the PR, wait for approvals, checks and a mergeable
//! state, merge it, and clean up. It stops at the REST API: git itself is `git.rs`.
//!
//! Retry safety (DESIGN.md §10): octocrab runs with `RetryConfig::None`. GETs and set-like writes
//! (labels, reviewers, assignees, ref deletion, closing) are retried with backoff and jitter,
//! honouring `Retry-After` and `x-ratelimit-reset`, within a bounded total time. A create or a merge is
//! sent again only after reading back that it did not happen. Every call runs under
//! `tokio::time::timeout`. The token never appears in `Debug` output or in errors.
//!
//! One client, its calls grouped by what they touch: `transport` (sending, retrying, decoding),
//! `pulls`, `repo` and `gate`; `error` and `model` hold the types, re-exported here so that every
//! path stays `clients::github::X`.

mod error;
mod gate;
mod model;
mod pulls;
pub mod queue;
mod repo;
mod transport;

pub use error::GitHubError;
pub use model::{Comment, Gate, Merge, NewPr, PrInfo, PrRef};

use super::net::{self, Trust};
use octocrab::Octocrab;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// The GitHub client for one repository.
pub struct GitHub {
    octo: Octocrab,
    /// The same stack based at the GraphQL endpoint's parent ([`queue::graphql_base`]).
    gql: Octocrab,
    api_url: String,
    owner: String,
    repo: String,
    /// Per-call timeout.
    pub call_timeout: Duration,
    /// Total time a call may spend retrying.
    pub retry_budget: Duration,
    /// Pause after the first failure, doubled each time (with jitter).
    pub backoff: Duration,
    etags: Mutex<HashMap<String, (String, bytes::Bytes)>>,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token stays out of Debug output on purpose.
        f.debug_struct("GitHub")
            .field("api_url", &self.api_url)
            .field("repository", &format_args!("{}/{}", self.owner, self.repo))
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api_url` (e.g. `https://api.github.com`),
    /// trusting the system's CA bundle.
    ///
    /// Call it inside a tokio runtime (octocrab spawns its worker there) and use it on that runtime.
    ///
    /// # Errors
    /// `Config` when the URL, the token or the repository name is malformed.
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHub, GitHubError> {
        GitHub::with_trust(api_url, token, repository, Trust::default())
    }

    /// [`GitHub::new`] trusting `trust` (`ca-cert`, for GitHub Enterprise Server behind an
    /// internal CA), over the one HTTP stack ([`crate::clients::net`]).
    ///
    /// # Errors
    /// `Config` when the URL, the token or the repository name is malformed.
    pub fn with_trust(
        api_url: &str,
        token: &str,
        repository: &str,
        trust: Trust,
    ) -> Result<GitHub, GitHubError> {
        use octocrab::service::middleware::{
            auth_header::AuthHeaderLayer, base_uri::BaseUriLayer, extra_headers::ExtraHeadersLayer,
        };
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                GitHubError::Config(format!(
                    "repository must be owner/name (got {repository:?})"
                ))
            })?;
        // octocrab takes the URL as an http::Uri, which also takes "host:port" or a path alone;
        // its requests would then fail as if GitHub were unreachable.
        let url = url::Url::parse(api_url).ok();
        if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return Err(GitHubError::Config(format!(
                "GitHub API URL must be an http(s) URL with a host (got {api_url:?})"
            )));
        }
        let base: http::Uri = api_url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| GitHubError::Config(format!("invalid GitHub API URL {api_url:?}")))?;
        let Ok(mut auth) = http::HeaderValue::from_str(&format!("Bearer {token}")) else {
            return Err(GitHubError::Config(
                "the GitHub token is not a valid HTTP header value (a newline or other control character in it?)".into(),
            ));
        };
        auth.set_sensitive(true);
        let agent =
            http::HeaderValue::from_static(concat!("gitops-promote/", env!("CARGO_PKG_VERSION")));
        // octocrab's own stack, in its order (lib.rs `build`), over our client: redirects are
        // followed (GitHub answers 301 for a renamed repository) and the token is sent only to
        // the API's own host. No retry layer: `transport` retries what is safe to retry; no
        // timeout layer: `transport` bounds every whole call by `request-timeout`.
        let stack = |base: http::Uri| {
            octocrab::OctocrabBuilder::new_empty()
                .with_service(net::client::<octocrab::OctoBody>(trust.clone()))
                .with_layer(&tower_http::follow_redirect::FollowRedirectLayer::new())
                .with_layer(&ExtraHeadersLayer::new(std::sync::Arc::new(vec![(
                    http::header::USER_AGENT,
                    agent.clone(),
                )])))
                .with_layer(&BaseUriLayer::new(base.clone()))
                .with_layer(&AuthHeaderLayer::new(
                    Some(auth.clone()),
                    base.clone(),
                    base,
                ))
                .with_auth(octocrab::AuthState::None)
                .build()
                .map_err(|e| GitHubError::Config(format!("building the GitHub client: {e}")))
        };
        let octo = stack(base)?;
        // GraphQL lives beside REST, not under it on GHES (/api/graphql next to /api/v3), and
        // octocrab joins every path onto its base: a second stack over the same client settings.
        let gql_base: http::Uri = queue::graphql_base(api_url)
            .parse()
            .map_err(|_| GitHubError::Config(format!("invalid GitHub API URL {api_url:?}")))?;
        let gql = stack(gql_base)?;
        Ok(GitHub {
            octo,
            gql,
            api_url: api_url.to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            call_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(120),
            backoff: Duration::from_millis(500),
            etags: Mutex::new(HashMap::new()),
        })
    }

    /// The API path of `rest` in this repository: every call is about the one repo.
    pub(super) fn path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{Classify, ErrorKind};

    #[test]
    fn new_rejects_a_repository_that_is_not_owner_slash_name() {
        for bad in ["acme", "acme/", "/deploy", "a/b/c"] {
            let err = GitHub::new("https://api.github.com", "t", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn new_rejects_an_api_url_requests_could_not_be_sent_to() {
        for bad in ["localhost:8080", "/api/v3", "ftp://ghe.example", "https://"] {
            let err = GitHub::new(bad, "t", "acme/deploy").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn new_rejects_a_token_that_is_no_header_value_without_showing_it() {
        let err = GitHub::new("https://api.github.com", "s3cr3t\n", "acme/deploy").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        let said = format!("{err} {err:?}");
        assert!(said.contains("header value"), "{said}");
        assert!(!said.contains("s3cr3t"), "{said}");
    }
}
