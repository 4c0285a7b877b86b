//! The error every [`GitHub`](super::GitHub) call returns, how the failure strategy classifies it,
//! and which of them may be sent again.

use crate::base::{Classify, ErrorKind};
use http::Method;
use std::time::Duration;

/// The error returned by every [`GitHub`] call; each variant names the call that failed.
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
    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

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
            GitHubError::Config(_) => ErrorKind::Config,
            GitHubError::Approval { .. } | GitHubError::CheckFailed { .. } => ErrorKind::Approval,
            GitHubError::Conflict { .. } => ErrorKind::Conflict,
        }
    }

    fn hint(&self) -> Option<String> {
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

/// Whether a 405 merge answer names a protection rule or ruleset not met yet, as GitHub words
/// them (cli/cli pkg/cmd/pr/merge; reitermarkus/automerge#4031): these clear by themselves or by a
/// reviewer, unlike a conflict.
pub(super) fn is_rule_block(message: &str) -> bool {
    [
        "Repository rule violations found",
        "Required status check",
        "required status checks",
        "approving review",
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
