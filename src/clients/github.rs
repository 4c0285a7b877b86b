//! The GitHub side of a promotion: open or reuse the PR, wait for approvals, checks and a mergeable
//! state, merge it, and clean up. It stops at the REST API: git itself is `git.rs`.
//!
//! Retry safety (DESIGN.md §10): octocrab runs with `RetryConfig::None`. GETs and set-like writes
//! (labels, reviewers, assignees, ref deletion, closing) are retried with backoff and jitter,
//! honouring `Retry-After` and `x-ratelimit-reset`, within a bounded total time. A create or a merge is
//! sent again only after reading back that it did not happen. Every call runs under
//! `tokio::time::timeout`. The token never appears in `Debug` output or in errors.

use crate::base::{Classify, ErrorKind, MergeMethod};
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::models::pulls::{PullRequest, Review, ReviewState};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    fn is_secondary_rate_limit(&self) -> bool {
        matches!(self, GitHubError::Api { status: 403, message, .. } if message.to_ascii_lowercase().contains("rate limit"))
    }

    /// Whether sending the same request again may succeed.
    fn retryable(&self) -> bool {
        match self {
            GitHubError::Api { status, .. } => {
                *status >= 500 || *status == 429 || self.is_secondary_rate_limit()
            }
            GitHubError::Connect { .. } | GitHubError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether GitHub refused the request before acting on it (rate limits): safe to resend.
    fn rejected_unprocessed(&self) -> bool {
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

/// Whether `s` is a full hex commit SHA (SHA-1 or SHA-256).
/// Whether a 405 merge answer names a protection rule or ruleset not met yet, as GitHub words
/// them (cli/cli pkg/cmd/pr/merge; reitermarkus/automerge#4031): these clear by themselves or by a
/// reviewer, unlike a conflict.
fn is_rule_block(message: &str) -> bool {
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

fn looks_like_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a PR to open looks like.
#[derive(Debug, Clone, Default)]
pub struct NewPr {
    /// Our branch (no owner prefix).
    pub head: String,
    /// The base branch.
    pub base: String,
    /// PR title.
    pub title: String,
    /// PR body.
    pub body: String,
    /// Open as a draft.
    pub draft: bool,
    /// Labels to add.
    pub labels: Vec<String>,
    /// Users asked to review.
    pub reviewers: Vec<String>,
    /// Users assigned.
    pub assignees: Vec<String>,
}

/// The PR a promotion works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    /// PR number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
    /// Head SHA when opened or found.
    pub head_sha: String,
    /// Whether this run opened it (false: reused from an earlier attempt).
    pub created: bool,
    /// What could not be applied (e.g. a reviewer who is not a collaborator), for the log.
    pub warnings: Vec<String>,
}

/// What the promotion reads back about a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrInfo {
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Web URL.
    pub url: String,
    /// open or closed.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge (or last rebased) commit once merged.
    pub merge_commit_sha: Option<String>,
    /// Head branch.
    pub head_ref: String,
    /// Head SHA.
    pub head_sha: String,
    /// Base branch.
    pub base_ref: String,
    /// Author login.
    pub user: String,
    /// Draft PR.
    pub draft: bool,
    /// `mergeable` (null while GitHub computes it; only on a single-PR read).
    pub mergeable: Option<bool>,
    /// `mergeable_state` (clean, unstable, has_hooks, dirty, blocked, behind, draft, unknown).
    pub mergeable_state: String,
    /// Number of commits (only on a single-PR read).
    pub commits: Option<u64>,
}

impl PrInfo {
    fn from_model(p: &PullRequest) -> PrInfo {
        let state = match &p.state {
            Some(octocrab::models::IssueState::Open) => "open",
            Some(_) => "closed",
            None => "unknown",
        };
        let ms = p
            .mergeable_state
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        PrInfo {
            number: p.number,
            title: p.title.clone().unwrap_or_default(),
            url: p
                .html_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            state: state.into(),
            merged: p.merged.unwrap_or(false) || p.merged_at.is_some(),
            merge_commit_sha: p.merge_commit_sha.clone(),
            head_ref: p.head.ref_field.clone(),
            head_sha: p.head.sha.clone(),
            base_ref: p.base.ref_field.clone(),
            user: p.user.as_ref().map(|u| u.login.clone()).unwrap_or_default(),
            draft: p.draft.unwrap_or(false),
            mergeable: p.mergeable,
            mergeable_state: ms,
            commits: p.commits,
        }
    }
}

/// What the approval and checks gate waits for.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Approvals needed from distinct users with write access, on the current head.
    pub required_approvals: u32,
    /// How long to wait for the whole gate.
    pub approval_timeout: Duration,
    /// Wait for checks and statuses on the head to succeed.
    pub wait_for_checks: bool,
    /// Time between polls.
    pub poll: Duration,
}

/// What a merge attempt led to. "Not yet" outcomes are values (STYLE.md #5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Merged: the commit now on the base, and every commit the merge added (rebase: all, oldest first).
    Merged {
        /// `merge_commit_sha` as GitHub reports it.
        sha: String,
        /// Commits added to the base, oldest first.
        commits: Vec<String>,
    },
    /// 405 "Base branch was modified": try again.
    BaseModified,
    /// 405 because a protection rule or ruleset is not met yet (a required check expected, an
    /// approving review missing, the head behind), with GitHub's message: wait, it may clear.
    Blocked(String),
    /// 405 for any other reason (conflicts, a draft), with GitHub's message.
    NotMergeable(String),
    /// 409: the head is not the SHA we checked; someone pushed to our branch.
    HeadModified,
}

/// An issue comment on the PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Author login.
    pub user: String,
    /// Markdown body.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A raw answer: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: bytes::Bytes,
}

/// The GitHub client for one repository.
pub struct GitHub {
    octo: Octocrab,
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

fn decode<T: DeserializeOwned>(method: &Method, path: &str, body: &[u8]) -> Result<T, GitHubError> {
    serde_json::from_slice(body).map_err(|e| GitHubError::Decode {
        method: method.clone(),
        path: path.to_string(),
        detail: e.to_string(),
    })
}

/// How long GitHub asks us to wait: `Retry-After`, else the rate-limit reset when none remain.
fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let num = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(d) = crate::base::retry_after(headers) {
        return Some(d);
    }
    if num("x-ratelimit-remaining") == Some(0) {
        let reset = num("x-ratelimit-reset")?;
        return Some(Duration::from_secs(
            (reset - Utc::now().timestamp()).max(1) as u64
        ));
    }
    None
}

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api_url` (e.g. `https://api.github.com`).
    ///
    /// Call it inside a tokio runtime (octocrab spawns its worker there) and use it on that runtime.
    ///
    /// # Errors
    /// `Config` when the URL or the repository name is malformed.
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHub, GitHubError> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                GitHubError::Config(format!(
                    "repository must be owner/name (got {repository:?})"
                ))
            })?;
        let octo = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .map_err(|_| GitHubError::Config(format!("invalid GitHub API URL {api_url:?}")))?
            .personal_token(token.to_string())
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            // The whole call is bounded by `call_timeout` (request-timeout) in `once`; a read
            // timeout here would cut a longer request-timeout short.
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| GitHubError::Config(format!("building the GitHub client: {e}")))?;
        Ok(GitHub {
            octo,
            api_url: api_url.to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            call_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(120),
            backoff: Duration::from_millis(500),
            etags: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.repo)
    }

    /// One request, no retry; statuses >= 400 become `Api` errors. GETs carry `If-None-Match`
    /// when we hold an ETag for the path, and a 304 answers from the cached body.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        let cached = if *method == Method::GET {
            self.etags.lock().unwrap().get(path).cloned()
        } else {
            None
        };
        if let Some((etag, _)) = &cached {
            builder = builder.header("if-none-match", etag.as_str());
        }
        let fut = async {
            let req = self
                .octo
                .build_request(builder, body)
                .map_err(|e| GitHubError::Connect {
                    method: method.clone(),
                    path: path.to_string(),
                    source: Box::new(e),
                })?;
            let resp = self
                .octo
                .execute(req)
                .await
                .map_err(|e| GitHubError::Connect {
                    method: method.clone(),
                    path: path.to_string(),
                    source: Box::new(e),
                })?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| GitHubError::Connect {
                method: method.clone(),
                path: path.to_string(),
                source: Box::new(e),
            })?;
            Ok::<_, GitHubError>(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        let mut a = tokio::time::timeout(self.call_timeout, fut)
            .await
            .map_err(|_| GitHubError::Timeout {
                method: method.clone(),
                path: path.to_string(),
                after: self.call_timeout,
            })??;
        if a.status == StatusCode::NOT_MODIFIED.as_u16() {
            if let Some((_, body)) = cached {
                a.status = 200;
                a.body = body;
                return Ok(a);
            }
        }
        if a.status >= 400 {
            let message = serde_json::from_slice::<Value>(&a.body)
                .ok()
                .and_then(|v| {
                    let m = v["message"].as_str()?.to_string();
                    // 422s carry the useful part in errors[].message.
                    let detail: Vec<String> = v["errors"]
                        .as_array()
                        .map(|e| {
                            e.iter()
                                .filter_map(|x| x["message"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(if detail.is_empty() {
                        m
                    } else {
                        format!("{m}: {}", detail.join("; "))
                    })
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&a.body).chars().take(200).collect());
            return Err(GitHubError::Api {
                method: method.clone(),
                path: path.to_string(),
                status: a.status,
                message,
                retry_after: wait_hint(&a.headers),
            });
        }
        if *method == Method::GET {
            if let Some(etag) = a.headers.get("etag").and_then(|v| v.to_str().ok()) {
                self.etags
                    .lock()
                    .unwrap()
                    .insert(path.to_string(), (etag.to_string(), a.body.clone()));
            }
        }
        Ok(a)
    }

    /// A request that is safe to repeat, retried with backoff and jitter within `retry_budget`.
    async fn idempotent(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        self.retrying(method, path, body, GitHubError::retryable)
            .await
    }

    /// A request that must not be repeated blindly: resent only when GitHub rate-limited it
    /// (rejected before acting). Other failures go back to the caller, which reads back.
    async fn write_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        self.retrying(method, path, body, GitHubError::rejected_unprocessed)
            .await
    }

    /// Sends the request again, after `pause`, while `retry_on` says so and `retry_budget` lasts.
    async fn retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry_on: fn(&GitHubError) -> bool,
    ) -> Result<Answer, GitHubError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match self.once(&method, path, body).await {
                Err(e) if retry_on(&e) => {
                    let wait = self.pause(&e, attempt);
                    if started.elapsed() + wait > self.retry_budget {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn pause(&self, e: &GitHubError, attempt: u32) -> Duration {
        if let GitHubError::Api {
            retry_after: Some(d),
            ..
        } = e
        {
            return *d;
        }
        if e.is_secondary_rate_limit() {
            // GitHub asks for at least a minute when it gives no Retry-After.
            return Duration::from_secs(60);
        }
        let base = self
            .backoff
            .saturating_mul(1 << attempt.min(6))
            .min(Duration::from_secs(20));
        base.mul_f64(0.5 + fastrand::f64())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GitHubError> {
        let a = self.idempotent(Method::GET, path, None).await?;
        decode(&Method::GET, path, &a.body)
    }

    /// Every page of a list (`per_page=100`), following pages until a short one.
    async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, GitHubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for page in 1.. {
            let items: Vec<T> = self
                .get(&format!("{path}{sep}per_page=100&page={page}"))
                .await?;
            let n = items.len();
            out.extend(items);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// The repository's default branch.
    ///
    /// # Errors
    /// Authorization when the token cannot see the repo (404), as every call.
    pub async fn default_branch(&self) -> Result<String, GitHubError> {
        let v: Value = self.get(&self.path("")).await?;
        v["default_branch"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| GitHubError::Decode {
                method: Method::GET,
                path: self.path(""),
                detail: "no default_branch".into(),
            })
    }

    /// The PR whose head is our branch `head`, in `state` (open, closed, all); the newest one.
    pub async fn find_pr_by_head(
        &self,
        head: &str,
        state: &str,
    ) -> Result<Option<PrInfo>, GitHubError> {
        let path = self.path(&format!(
            "/pulls?head={}:{head}&state={state}&per_page=100",
            self.owner
        ));
        let prs: Vec<PullRequest> = self.get(&path).await?;
        Ok(prs.iter().map(PrInfo::from_model).max_by_key(|p| p.number))
    }

    /// Opens the PR, or takes over the open PR for the same head (a re-run), then applies labels,
    /// reviewers and assignees. Reviewers GitHub refuses (not collaborators, the author) become
    /// warnings rather than failures.
    ///
    /// # Errors
    /// Any API error; a create that got no answer is read back before it is sent again.
    pub async fn open_or_reuse_pr(&self, new: &NewPr) -> Result<PrRef, GitHubError> {
        let mut pr = None;
        if let Some(p) = self.find_pr_by_head(&new.head, "open").await? {
            pr = Some((p.number, p.url, p.head_sha, false));
        }
        let body = json!({"title": new.title, "head": new.head, "base": new.base, "body": new.body, "draft": new.draft});
        let path = self.path("/pulls");
        let mut tries = 0;
        while pr.is_none() {
            tries += 1;
            match self.write_once(Method::POST, &path, Some(&body)).await {
                Ok(a) => {
                    let p: PullRequest = decode(&Method::POST, &path, &a.body)?;
                    let i = PrInfo::from_model(&p);
                    pr = Some((i.number, i.url, i.head_sha, true));
                }
                Err(e) => {
                    let exists = matches!(&e, GitHubError::Api { status: 422, message, .. } if message.contains("already exists"));
                    if !(exists || e.retryable()) {
                        return Err(e);
                    }
                    // Did the create happen anyway (lost answer) or race with another run?
                    match self.find_pr_by_head(&new.head, "open").await? {
                        Some(p) => pr = Some((p.number, p.url, p.head_sha, !exists)),
                        None if tries < 3 && !exists => {
                            tokio::time::sleep(self.pause(&e, tries)).await
                        }
                        None => return Err(e),
                    }
                }
            }
        }
        let (number, url, head_sha, created) = pr.expect("set above");
        let mut warnings = Vec::new();
        if !new.labels.is_empty() {
            let p = self.path(&format!("/issues/{number}/labels"));
            self.idempotent(Method::POST, &p, Some(&json!({"labels": new.labels})))
                .await?;
        }
        if !new.reviewers.is_empty() {
            let p = self.path(&format!("/pulls/{number}/requested_reviewers"));
            match self
                .idempotent(Method::POST, &p, Some(&json!({"reviewers": new.reviewers})))
                .await
            {
                Err(GitHubError::Api {
                    status: 422,
                    message,
                    ..
                }) => warnings.push(format!(
                    "reviewers {:?} not requested: {message}",
                    new.reviewers
                )),
                other => {
                    other?;
                }
            }
        }
        if !new.assignees.is_empty() {
            let p = self.path(&format!("/issues/{number}/assignees"));
            self.idempotent(Method::POST, &p, Some(&json!({"assignees": new.assignees})))
                .await?;
        }
        Ok(PrRef {
            number,
            url,
            head_sha,
            created,
            warnings,
        })
    }

    /// The PR as GitHub reports it now (conditional GET: an unchanged PR costs no quota).
    pub async fn pr(&self, number: u64) -> Result<PrInfo, GitHubError> {
        let p: PullRequest = self.get(&self.path(&format!("/pulls/{number}"))).await?;
        Ok(PrInfo::from_model(&p))
    }

    /// Whether `user` may approve: admin, maintain or write.
    /// Whether the author of `review` may approve: admin, maintain or write. When the token may
    /// not read permissions (403), the review's author association stands in for them.
    async fn writer(
        &self,
        review: &Review,
        user: &str,
        cache: &mut HashMap<String, bool>,
    ) -> Result<bool, GitHubError> {
        use octocrab::models::AuthorAssociation as A;
        if let Some(w) = cache.get(user) {
            return Ok(*w);
        }
        let w = match self.permission(user).await {
            Ok(p) => matches!(p.as_str(), "admin" | "maintain" | "write"),
            Err(GitHubError::Api { status: 403, .. }) => matches!(
                review.author_association,
                Some(A::Owner | A::Member | A::Collaborator)
            ),
            Err(e) => return Err(e),
        };
        cache.insert(user.to_string(), w);
        Ok(w)
    }

    /// Waits until the PR may be merged: `required_approvals` distinct writers whose latest decisive
    /// review approves the current head, no writer requesting changes, checks green (when asked),
    /// and a `mergeable_state` that allows a try (DESIGN.md §2 step 7). Prints a progress line
    /// whenever the state changes and at least every 15 s. A PR merged meanwhile is returned as is.
    ///
    /// # Errors
    /// `Approval` for changes requested or approvals missing at the deadline; `CheckFailed`;
    /// `Conflict` for a dirty or closed PR; `WaitTimeout` for checks or mergeability still pending.
    pub async fn wait_ready(
        &self,
        pr: &PrRef,
        gate: &Gate,
        progress: &dyn Fn(&str),
    ) -> Result<PrInfo, GitHubError> {
        let started = Instant::now();
        let mut last_line = String::new();
        let mut last_at = Instant::now();
        let mut writers = HashMap::new();
        let mut missing_since: Option<Instant> = None;
        let mut warned = false;
        let required = self.required_contexts(pr, progress).await;
        loop {
            let info = self.pr(pr.number).await?;
            if info.merged {
                return Ok(info);
            }
            if info.state != "open" {
                return Err(GitHubError::Conflict {
                    number: pr.number,
                    reason: "was closed before it could be merged".into(),
                });
            }
            // Approvals: the latest decisive review of each writer, on the current head.
            let mut approved = 0u32;
            // Reviews are read even with no approvals required: a writer's CHANGES_REQUESTED blocks.
            {
                let reviews: Vec<Review> = self
                    .get_all(&self.path(&format!("/pulls/{}/reviews", pr.number)))
                    .await?;
                let mut latest: HashMap<String, &Review> = HashMap::new();
                for r in &reviews {
                    let decisive = matches!(
                        r.state,
                        Some(
                            ReviewState::Approved
                                | ReviewState::ChangesRequested
                                | ReviewState::Dismissed
                        )
                    );
                    if let (true, Some(u)) = (decisive, &r.user) {
                        latest.insert(u.login.clone(), r);
                    }
                }
                let mut users: Vec<_> = latest.into_iter().collect();
                users.sort_by(|a, b| a.0.cmp(&b.0));
                for (user, r) in users {
                    if !self.writer(r, &user, &mut writers).await? {
                        continue;
                    }
                    match r.state {
                        Some(ReviewState::ChangesRequested) => {
                            return Err(GitHubError::Approval {
                                number: pr.number,
                                reason: format!("{user} requested changes"),
                            })
                        }
                        Some(ReviewState::Approved)
                            if r.commit_id.as_deref() == Some(info.head_sha.as_str()) =>
                        {
                            approved += 1
                        }
                        _ => {}
                    }
                }
            }
            let approvals_ok = approved >= gate.required_approvals;
            // Checks: statuses and check runs on the head; required contexts that never reported.
            let mut pending: Vec<String> = Vec::new();
            if gate.wait_for_checks {
                pending = self
                    .checks_pending(pr.number, &info.head_sha, &required)
                    .await?;
                let none_reported =
                    !required.is_empty() && required.iter().all(|c| pending.contains(c));
                if none_reported && info.user == "github-actions[bot]" {
                    let since = *missing_since.get_or_insert_with(Instant::now);
                    // A minute is plenty for a workflow to start; short gates warn sooner.
                    let grace = Duration::from_secs(60).min(gate.approval_timeout / 4);
                    if !warned && since.elapsed() >= grace {
                        warned = true;
                        progress(&format!(
                            "warning: required checks {required:?} have not started on PR #{}: a PR opened with GITHUB_TOKEN does not trigger workflows; use an app token or a PAT",
                            pr.number
                        ));
                    }
                }
            }
            let state = info.mergeable_state.as_str();
            if state == "dirty" || info.mergeable == Some(false) {
                return Err(GitHubError::Conflict {
                    number: pr.number,
                    reason: "has conflicts with its base (mergeable_state dirty)".into(),
                });
            }
            let known = info.mergeable.is_some() && !matches!(state, "unknown" | "draft");
            if approvals_ok && pending.is_empty() && known {
                // clean/unstable/has_hooks merge; blocked/behind try, the token may bypass.
                return Ok(info);
            }
            let elapsed = started.elapsed();
            let remaining = gate.approval_timeout.saturating_sub(elapsed);
            let line = format!(
                "PR #{}: approvals {approved}/{}, checks {}, mergeable_state {state}",
                pr.number,
                gate.required_approvals,
                if pending.is_empty() {
                    "done".to_string()
                } else {
                    format!("pending ({})", pending.join(", "))
                },
            );
            if line != last_line || last_at.elapsed() >= Duration::from_secs(15) {
                progress(&format!(
                    "{line}; {}s elapsed, {}s left",
                    elapsed.as_secs(),
                    remaining.as_secs()
                ));
                last_line = line;
                last_at = Instant::now();
            }
            if remaining.is_zero() {
                if !approvals_ok {
                    return Err(GitHubError::Approval {
                        number: pr.number,
                        reason: format!(
                            "{approved} of {} required approvals after {:?}",
                            gate.required_approvals, gate.approval_timeout
                        ),
                    });
                }
                let what = if pending.is_empty() {
                    format!("mergeable_state {state}")
                } else {
                    format!("checks {}", pending.join(", "))
                };
                return Err(GitHubError::WaitTimeout {
                    number: pr.number,
                    waited: elapsed,
                    what,
                });
            }
            tokio::time::sleep(gate.poll.min(remaining)).await;
        }
    }

    /// Required status check contexts on the base branch, from what a token without
    /// administration may read: the branch's protection summary (`GET /branches/{b}`) and the
    /// rules of the rulesets on it (`GET /rules/branches/{b}`, metadata: read). The classic
    /// protection endpoint is not used: it answers 403 to most tokens, and that is no "none".
    async fn required_contexts(&self, pr: &PrRef, progress: &dyn Fn(&str)) -> Vec<String> {
        let Ok(info) = self.pr(pr.number).await else {
            return vec![];
        };
        let base = &info.base_ref;
        let mut contexts: Vec<String> = Vec::new();
        let mut add = |c: &str| {
            if !c.is_empty() && !contexts.iter().any(|x| x == c) {
                contexts.push(c.to_string());
            }
        };
        let branch = self
            .get::<Value>(&self.path(&format!("/branches/{base}")))
            .await;
        if let Ok(b) = &branch {
            let rsc = &b["protection"]["required_status_checks"];
            for c in rsc["contexts"].as_array().into_iter().flatten() {
                add(c.as_str().unwrap_or_default());
            }
            for c in rsc["checks"].as_array().into_iter().flatten() {
                add(c["context"].as_str().unwrap_or_default());
            }
        }
        let rules = self
            .get_all::<Value>(&self.path(&format!("/rules/branches/{base}")))
            .await;
        if let Ok(rules) = &rules {
            for r in rules
                .iter()
                .filter(|r| r["type"] == "required_status_checks")
            {
                let checks = r["parameters"]["required_status_checks"].as_array();
                for c in checks.into_iter().flatten() {
                    add(c["context"].as_str().unwrap_or_default());
                }
            }
        }
        if let (Err(e), _) | (_, Err(e)) = (&branch, &rules) {
            progress(&format!(
                "warning: cannot read the required checks of {base} ({e}); waiting for the checks that report and for GitHub's mergeable_state"
            ));
        }
        contexts
    }

    /// Names of checks and statuses still pending on `sha`, plus required contexts never reported.
    async fn checks_pending(
        &self,
        number: u64,
        sha: &str,
        required: &[String],
    ) -> Result<Vec<String>, GitHubError> {
        let combined: Value = self
            .get(&self.path(&format!("/commits/{sha}/status")))
            .await?;
        let runs: octocrab::models::checks::ListCheckRuns = self
            .get(&self.path(&format!("/commits/{sha}/check-runs?per_page=100")))
            .await?;
        let mut pending = Vec::new();
        let mut seen = Vec::new();
        for s in combined["statuses"].as_array().into_iter().flatten() {
            let ctx = s["context"].as_str().unwrap_or("").to_string();
            match s["state"].as_str().unwrap_or("") {
                "success" => {}
                "pending" => pending.push(ctx.clone()),
                other => {
                    return Err(GitHubError::CheckFailed {
                        number,
                        name: ctx,
                        sha: sha.into(),
                        conclusion: other.into(),
                    })
                }
            }
            seen.push(ctx);
        }
        for r in &runs.check_runs {
            match r.conclusion.as_deref() {
                None => pending.push(r.name.clone()),
                Some("success" | "neutral" | "skipped") => {}
                Some(other) => {
                    return Err(GitHubError::CheckFailed {
                        number,
                        name: r.name.clone(),
                        sha: sha.into(),
                        conclusion: other.into(),
                    })
                }
            }
            seen.push(r.name.clone());
        }
        pending.extend(required.iter().filter(|c| !seen.contains(c)).cloned());
        Ok(pending)
    }

    /// Merges PR `number` with `method` if its head is still `head_sha`. A merge whose answer was
    /// lost is read back (the PR shows `merged`) before it is sent again, so it never merges twice.
    /// For a rebase merge, `commits` lists every replayed commit, oldest first.
    ///
    /// # Errors
    /// Errors other than the [`Merge`] outcomes (authorization, validation, connectivity after
    /// read-back).
    pub async fn merge(
        &self,
        number: u64,
        method: MergeMethod,
        head_sha: &str,
    ) -> Result<Merge, GitHubError> {
        self.merge_with(number, method, head_sha, None).await
    }

    /// [`GitHub::merge`] with the merge or squash commit's title and message set, so trailers
    /// reach the base whatever the repo's default squash message is (rebase merges ignore it).
    ///
    /// # Errors
    /// As [`GitHub::merge`].
    pub async fn merge_with(
        &self,
        number: u64,
        method: MergeMethod,
        head_sha: &str,
        commit: Option<(&str, &str)>,
    ) -> Result<Merge, GitHubError> {
        let path = self.path(&format!("/pulls/{number}/merge"));
        let mut body = json!({"merge_method": method.as_str(), "sha": head_sha});
        if let Some((title, message)) = commit {
            body["commit_title"] = json!(title);
            body["commit_message"] = json!(message);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            match self.write_once(Method::PUT, &path, Some(&body)).await {
                // The answer names the merge (or squash) commit: no need to read the PR back.
                // A rebase merge still reads it for the number of replayed commits.
                Ok(a) if method != MergeMethod::Rebase => {
                    let answer: Value = serde_json::from_slice(&a.body).unwrap_or_default();
                    if let (Some(true), Some(sha)) =
                        (answer["merged"].as_bool(), answer["sha"].as_str())
                    {
                        if looks_like_sha(sha) {
                            let sha = sha.to_string();
                            return Ok(Merge::Merged {
                                commits: vec![sha.clone()],
                                sha,
                            });
                        }
                    }
                    break;
                }
                Ok(_) => break,
                Err(GitHubError::Api {
                    status: 405,
                    message,
                    ..
                }) => {
                    return Ok(if message.contains("Base branch was modified") {
                        Merge::BaseModified
                    } else if is_rule_block(&message) {
                        Merge::Blocked(message)
                    } else {
                        Merge::NotMergeable(message)
                    })
                }
                Err(GitHubError::Api { status: 409, .. }) => return Ok(Merge::HeadModified),
                Err(e) if e.retryable() => {
                    // The merge may have happened: read back before sending it again.
                    let info = self.pr(number).await?;
                    if info.merged {
                        break;
                    }
                    if tries >= 3 || info.state != "open" {
                        return Err(e);
                    }
                    tokio::time::sleep(self.pause(&e, tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.merged_commits(number, method).await
    }

    /// Reads the merged PR for `merge_commit_sha` and, for rebase, walks back over the replayed commits.
    async fn merged_commits(&self, number: u64, method: MergeMethod) -> Result<Merge, GitHubError> {
        let info = self.pr(number).await?;
        let sha = info
            .merge_commit_sha
            .clone()
            .ok_or_else(|| GitHubError::Decode {
                method: Method::GET,
                path: self.path(&format!("/pulls/{number}")),
                detail: "merged PR without merge_commit_sha".into(),
            })?;
        let mut commits = vec![sha.clone()];
        if method == MergeMethod::Rebase {
            let n = info.commits.unwrap_or(1);
            let mut cur = sha.clone();
            for _ in 1..n {
                let c: Value = self.get(&self.path(&format!("/commits/{cur}"))).await?;
                match c["parents"][0]["sha"].as_str() {
                    Some(p) => {
                        cur = p.to_string();
                        commits.push(cur.clone());
                    }
                    None => break,
                }
            }
            commits.reverse();
        }
        Ok(Merge::Merged { sha, commits })
    }

    /// Deletes our branch; a branch already gone (404/422) is fine.
    pub async fn delete_branch(&self, branch: &str) -> Result<(), GitHubError> {
        match self
            .idempotent(
                Method::DELETE,
                &self.path(&format!("/git/refs/heads/{branch}")),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(GitHubError::Api {
                status: 404 | 422, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Comments why, then closes the PR (closing twice is harmless).
    pub async fn close_pr(&self, number: u64, comment: &str) -> Result<(), GitHubError> {
        if !comment.is_empty() {
            self.comment(number, comment).await?;
        }
        let path = self.path(&format!("/pulls/{number}"));
        self.idempotent(Method::PATCH, &path, Some(&json!({"state": "closed"})))
            .await?;
        Ok(())
    }

    /// Adds an issue comment. A comment whose answer was lost is looked for (same body, written
    /// since we sent it) before it is sent again, so it is not written twice.
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), GitHubError> {
        let path = self.path(&format!("/issues/{number}/comments"));
        // GitHub's clock and ours may differ a little; look back a minute.
        let sent = Utc::now() - chrono::Duration::seconds(60);
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .write_once(Method::POST, &path, Some(&json!({"body": body})))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.retryable() && tries < 3 => {
                    let written = self.comments_since(number, sent).await?;
                    if written.iter().any(|c| c.body == body) {
                        return Ok(());
                    }
                    tokio::time::sleep(self.pause(&e, tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Comments written at or after `since`, oldest first.
    pub async fn comments_since(
        &self,
        number: u64,
        since: DateTime<Utc>,
    ) -> Result<Vec<Comment>, GitHubError> {
        let since = since.format("%Y-%m-%dT%H:%M:%SZ");
        let list: Vec<octocrab::models::issues::Comment> = self
            .get_all(&self.path(&format!("/issues/{number}/comments?since={since}")))
            .await?;
        Ok(list
            .into_iter()
            .map(|c| Comment {
                user: c.user.login,
                body: c.body.unwrap_or_default(),
                created_at: c.created_at,
            })
            .collect())
    }

    /// The PRs that merged commit `sha` (or contain it while open), as GitHub lists them.
    ///
    /// # Errors
    /// Any API error; a SHA GitHub does not know answers 422.
    pub async fn prs_for_commit(&self, sha: &str) -> Result<Vec<PrInfo>, GitHubError> {
        let prs: Vec<PullRequest> = self
            .get_all(&self.path(&format!("/commits/{sha}/pulls")))
            .await?;
        Ok(prs.iter().map(PrInfo::from_model).collect())
    }

    /// `user`'s permission on the repo: admin, maintain, write, triage, read or none.
    pub async fn permission(&self, user: &str) -> Result<String, GitHubError> {
        match self
            .get::<Value>(&self.path(&format!("/collaborators/{user}/permission")))
            .await
        {
            Ok(v) => Ok(v["permission"].as_str().unwrap_or("none").to_string()),
            Err(GitHubError::Api { status: 404, .. }) => Ok("none".into()),
            Err(e) => Err(e),
        }
    }
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

    #[test]
    fn wait_hint_prefers_retry_after_then_the_reset_time() {
        let mut h = HeaderMap::new();
        assert_eq!(wait_hint(&h), None);
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = Utc::now().timestamp() + 30;
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let d = wait_hint(&h).unwrap();
        assert!(
            d >= Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn new_rejects_a_repository_that_is_not_owner_slash_name() {
        for bad in ["acme", "acme/", "/deploy", "a/b/c"] {
            let err = GitHub::new("https://api.github.com", "t", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }
}
