//! The error every [`GitHub`](super::GitHub) call returns, how the failure strategy classifies it,
//! and which of them may be sent again.

use crate::base::{Classify, ErrorKind};
use http::Method;
use std::time::Duration;

/// The error returned by every [`GitHub`](super::GitHub) call; each variant names the call that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub answered with an error status.
    #[error("GitHub answered {status} to {method} {path}: {message}")]
    Api {
        /// Request method.
        method: Method,
        /// Request path (no host, no token).
        path: String,
        /// HTTP status.
        status: u16,
        /// GitHub's `message`.
        message: String,
        /// How long GitHub asked us to wait (`Retry-After` or `x-ratelimit-reset`).
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer (refused, reset, DNS).
    #[error("could not reach GitHub for {method} {path}")]
    Connect {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// The transport error.
        #[source]
        source: Box<octocrab::Error>,
    },
    /// The request could not be built here, so it never left this machine: a bad path, header or
    /// body is a setting to fix, and sending it again cannot help.
    #[error("could not build the request {method} {path}: {detail}")]
    Build {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// What octocrab or http refused.
        detail: String,
    },
    /// One call took longer than the per-call timeout.
    #[error("{method} {path} got no answer within {after:?}")]
    Timeout {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// The per-call timeout.
        after: Duration,
    },
    /// The answer was not the JSON GitHub documents.
    #[error("unexpected answer to {method} {path}: {detail}")]
    Decode {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// What did not parse.
        detail: String,
    },
    /// A setting is invalid (repository name, merge method, URL).
    #[error("invalid GitHub setting: {0}")]
    Config(String),
    /// The approval gate failed: changes requested, or approvals missing when time ran out.
    #[error("pull request #{number}: {reason}")]
    Approval {
        /// The PR.
        number: u64,
        /// What blocked it.
        reason: String,
    },
    /// A check or status on the PR's head failed.
    #[error("pull request #{number}: check {name} on {sha} concluded {conclusion}")]
    CheckFailed {
        /// The PR.
        number: u64,
        /// Check run name or status context.
        name: String,
        /// The head SHA it ran on.
        sha: String,
        /// failure, cancelled, timed_out, error, ...
        conclusion: String,
    },
    /// The PR cannot be merged as it stands (conflicts, closed by someone).
    #[error("pull request #{number}: {reason}")]
    Conflict {
        /// The PR.
        number: u64,
        /// Why.
        reason: String,
    },
    /// Waiting for checks or mergeability ran out of time.
    #[error("pull request #{number}: still waiting after {waited:?}: {what}")]
    WaitTimeout {
        /// The PR.
        number: u64,
        /// How long we waited.
        waited: Duration,
        /// What was still missing.
        what: String,
    },
}

impl GitHubError {
    /// A request that octocrab failed to send: `Build` when the failure came from building it here
    /// (octocrab wraps those the same as a refused connection), else `Connect`.
    pub(super) fn transport(method: &Method, path: &str, e: octocrab::Error) -> GitHubError {
        if built_here(&e) {
            // The outer message ("HTTP Error: ...") only repeats its source's.
            let detail =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            return GitHubError::Build {
                method: method.clone(),
                path: path.to_string(),
                detail,
            };
        }
        GitHubError::Connect {
            method: method.clone(),
            path: path.to_string(),
            source: Box::new(e),
        }
    }

    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// GitHub's secondary limits answer 403, as a refusal does: only the message tells them apart.
    pub(super) fn is_secondary_rate_limit(&self) -> bool {
        matches!(self, GitHubError::Api { status: 403, message, .. } if message.to_ascii_lowercase().contains("rate limit"))
    }

    /// Whether sending the same request again may succeed.
    pub(super) fn retryable(&self) -> bool {
        match self {
            GitHubError::Api { status, .. } => {
                *status >= 500 || *status == 429 || self.is_secondary_rate_limit()
            }
            GitHubError::Connect { .. } | GitHubError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether GitHub refused the request before acting on it (rate limits): safe to resend.
    pub(super) fn rejected_unprocessed(&self) -> bool {
        matches!(self, GitHubError::Api { status: 429, .. }) || self.is_secondary_rate_limit()
    }
}

impl Classify for GitHubError {
    fn kind(&self) -> ErrorKind {
        match self {
            GitHubError::Api { .. } if self.is_secondary_rate_limit() => ErrorKind::RateLimit,
            GitHubError::Api { status, .. } => match status {
                401 => ErrorKind::Authentication,
                403 | 404 => ErrorKind::Authorization,
                405 | 409 => ErrorKind::Conflict,
                429 => ErrorKind::RateLimit,
                408 | 504 => ErrorKind::Timeout,
                400..=499 => ErrorKind::Config,
                _ => ErrorKind::Connectivity,
            },
            GitHubError::Connect { .. } | GitHubError::Decode { .. } => ErrorKind::Connectivity,
            GitHubError::Timeout { .. } | GitHubError::WaitTimeout { .. } => ErrorKind::Timeout,
            GitHubError::Config(_) | GitHubError::Build { .. } => ErrorKind::Config,
            GitHubError::Approval { .. } | GitHubError::CheckFailed { .. } => ErrorKind::Approval,
            GitHubError::Conflict { .. } => ErrorKind::Conflict,
        }
    }

    fn hint(&self) -> Option<String> {
        if matches!(self, GitHubError::Api { message, .. } if message.contains("not permitted to create or approve pull requests"))
        {
            return Some("the repository (or its organization) does not let GitHub Actions open pull requests: turn on \"Allow GitHub Actions to create and approve pull requests\" under Settings → Actions → General → Workflow permissions, or pass a GitHub App token or a PAT as github-token".into());
        }
        match self.kind() {
            ErrorKind::Authentication => Some("the token was refused: check the `github-token` input and that it has not expired".into()),
            ErrorKind::Authorization => Some(
                "the github-token cannot see or change this: it needs contents: write and pull-requests: write on the release repo (a fine-grained token or an app token for another repo)".into(),
            ),
            ErrorKind::RateLimit => Some("GitHub rate-limited the token; retry later or use an app token with its own quota".into()),
            ErrorKind::Approval => Some("approve the PR (a user with write access, on its current head) or raise approval-timeout".into()),
            _ => None,
        }
    }
}

/// Whether octocrab's error arose before anything was sent: the request builder's (path, header,
/// body) or one a middleware met rebuilding it. `Service` also carries every network failure, so
/// only the http errors in its chain count.
fn built_here(e: &octocrab::Error) -> bool {
    use octocrab::Error as E;
    match e {
        E::Http { .. }
        | E::Uri { .. }
        | E::UriParse { .. }
        | E::InvalidHeaderValue { .. }
        | E::Serde { .. }
        | E::SerdeUrlEncoded { .. } => true,
        E::Service { .. } => {
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                if c.is::<http::Error>()
                    || c.is::<http::uri::InvalidUri>()
                    || c.is::<http::header::InvalidHeaderValue>()
                {
                    return true;
                }
                cause = c.source();
            }
            false
        }
        _ => false,
    }
}

/// Whether a 405 merge answer names a protection rule or ruleset not met yet, as GitHub words
/// them (cli/cli pkg/cmd/pr/merge; reitermarkus/automerge#4031): these clear by themselves or by a
/// reviewer, unlike a conflict.
pub(super) fn is_rule_block(message: &str) -> bool {
    [
        "Repository rule violations found",
        "Required status check",
        "required status checks",
        "approving review",
        "code owner review",
        "Review required",
        "review is required",
        "Head branch was not up to date",
        "protected branch",
    ]
    .iter()
    .any(|p| message.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> GitHubError {
        GitHubError::Api {
            method: Method::PUT,
            path: "/repos/acme/deploy/pulls/1/merge".into(),
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_classify_as_the_failure_strategy_names_them() {
        let cases = [
            (401, "Bad credentials", ErrorKind::Authentication),
            (
                403,
                "Resource not accessible by integration",
                ErrorKind::Authorization,
            ),
            (404, "Not Found", ErrorKind::Authorization),
            (
                403,
                "You have exceeded a secondary rate limit.",
                ErrorKind::RateLimit,
            ),
            (429, "API rate limit exceeded", ErrorKind::RateLimit),
            (405, "Pull Request is not mergeable", ErrorKind::Conflict),
            (409, "Head branch was modified.", ErrorKind::Conflict),
            (422, "Validation Failed", ErrorKind::Config),
            (502, "Bad Gateway", ErrorKind::Connectivity),
        ];
        for (status, message, kind) in cases {
            assert_eq!(api(status, message).kind(), kind, "{status} {message}");
        }
        assert!(api(502, "").retryable());
        assert!(!api(422, "").retryable());
        assert!(api(403, "secondary rate limit").rejected_unprocessed());
        assert!(
            !api(502, "").rejected_unprocessed(),
            "a 502 may have been acted on"
        );
    }
}
