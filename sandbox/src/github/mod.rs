//! GitHub REST emulator over the world's bare repos (issue #3): pull requests merged with real git
//! (merge commit, squash, rebase), reviews, checks, statuses, protection, labels, comments, refs,
//! with GitHub's error messages, rate-limit headers, ETag/304 and Link pagination.
//! It stops at what gitops-promote and its tests use; unknown routes answer 404 naming the route.

mod bypass;
mod control;
pub use control::{PrView, Target};
mod git;
mod graphql;
pub use graphql::THROUGH_THE_QUEUE;
mod json;
mod routes;
mod rules;

use crate::world::World;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The login the world's token belongs to; PRs opened with it are authored by this bot.
pub const TOKEN_USER: &str = "github-actions[bot]";

/// Emulator state: pull requests, reviews, checks, protection, comments.
pub struct GitHub {
    /// The repos it serves.
    pub world: Arc<World>,
    /// The git host base URL, for `clone_url` fields.
    pub git_url: String,
    /// The REST base URL, learnt from the first request's `Host` header, for `url` fields.
    api_url: Mutex<String>,
    state: Mutex<State>,
    /// Calls that used quota; the quota refills every 4000 calls so a long demo never runs dry
    /// (a real exhaustion is a fault rule: `rate_limit`).
    used: AtomicU64,
}

/// Branch protection, as the control API sets it and the protection route reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Protection {
    /// Approving reviews required from users with write access.
    #[serde(default)]
    pub required_approving_review_count: u32,
    /// Only approvals on the current head count.
    #[serde(default)]
    pub dismiss_stale_reviews: bool,
    /// Status check contexts (statuses or check-run names) that must succeed.
    #[serde(default)]
    pub required_status_checks: Vec<String>,
    /// The head must contain the base head ("Require branches to be up to date").
    #[serde(default)]
    pub strict: bool,
    /// A ruleset's `pull_request.allowed_merge_methods` (`merge`, `squash`, `rebase`); `None`
    /// allows every method the repository does.
    #[serde(default)]
    pub allowed_merge_methods: Option<Vec<String>>,
    /// A `required_signatures` rule: every commit landing on the branch must be verified. The
    /// sandbox's commits are unsigned, as git2's are; only GitHub's own squash commit is signed.
    #[serde(default)]
    pub required_signatures: bool,
    /// "Require review from Code Owners": a changed file with owners in the base's CODEOWNERS
    /// needs an approving review from one of them.
    #[serde(default)]
    pub require_code_owner_review: bool,
}

/// Which merge methods the repository allows (all by default).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeMethods {
    /// Merge commits.
    #[serde(default = "yes")]
    pub merge: bool,
    /// Squash merges.
    #[serde(default = "yes")]
    pub squash: bool,
    /// Rebase merges.
    #[serde(default = "yes")]
    pub rebase: bool,
}

fn yes() -> bool {
    true
}

impl Default for MergeMethods {
    fn default() -> Self {
        MergeMethods {
            merge: true,
            squash: true,
            rebase: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Pull {
    repo: String,
    number: u64,
    id: u64,
    title: String,
    body: Option<String>,
    user: String,
    head_ref: String,
    base_ref: String,
    /// Frozen head/base SHAs once the PR is closed; live from the refs while open.
    head_sha: String,
    base_sha: String,
    open: bool,
    draft: bool,
    merged: bool,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    closed_at: Option<String>,
    created_at: String,
    updated_at: String,
    labels: Vec<String>,
    assignees: Vec<String>,
    requested_reviewers: Vec<String>,
    /// Team slugs asked to review.
    requested_teams: Vec<String>,
    /// (head, base) the mergeability was last computed for, and reads left before it is known.
    computed_for: Option<(String, String)>,
    pending_reads: u32,
    /// A push to the head branch GitHub has not shown yet, and when it was first seen: the PR's
    /// `head.sha` follows its branch only after [`State::head_delay`].
    pushed: Option<(String, std::time::Instant)>,
}

impl Pull {
    /// Marks the PR merged as `sha`, now: what GitHub shows after a merge, REST or queue.
    fn mark_merged(&mut self, sha: &str) {
        let t = now();
        self.open = false;
        self.merged = true;
        self.merged_at = Some(t.clone());
        self.closed_at = Some(t.clone());
        self.updated_at = t;
        self.merge_commit_sha = Some(sha.to_string());
    }
}

#[derive(Debug, Clone)]
struct Review {
    id: u64,
    repo: String,
    number: u64,
    user: String,
    state: String,
    body: String,
    commit_id: String,
    submitted_at: String,
}

#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    repo: String,
    number: u64,
    user: String,
    body: String,
    created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CommitStatus {
    #[serde(default)]
    id: u64,
    context: String,
    state: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckRun {
    #[serde(default)]
    id: u64,
    name: String,
    /// queued, in_progress or completed.
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    started_at: String,
}

#[derive(Default)]
struct State {
    next_id: u64,
    numbers: HashMap<String, u64>,
    pulls: Vec<Pull>,
    reviews: Vec<Review>,
    comments: Vec<Comment>,
    permissions: HashMap<(String, String), String>,
    statuses: HashMap<(String, String), Vec<CommitStatus>>,
    checks: HashMap<(String, String), Vec<CheckRun>>,
    protection: HashMap<(String, String), Protection>,
    /// Repository rulesets by (repo, branch): the same requirements, answered by
    /// `/rules/branches/{b}` and enforced at merge with "Repository rule violations found".
    rulesets: HashMap<(String, String), Protection>,
    /// Whether the token may read classic branch protection (administration: read). Off by
    /// default, as for `GITHUB_TOKEN` and most app tokens: GitHub then answers 403.
    admin_token: bool,
    /// "Allow GitHub Actions to create and approve pull requests" (Settings → Actions → General
    /// → Workflow permissions), which new repositories have off: the token, GITHUB_TOKEN, then
    /// gets 403 on creating a PR. The seeded sandbox has it on, as a set-up repo would.
    actions_may_open_prs: bool,
    /// The organization's teams with access to the repo, by slug: only they may be asked to
    /// review; GitHub answers any other team as it answers a non-collaborator.
    teams: Vec<String>,
    methods: HashMap<String, MergeMethods>,
    /// Reads of `mergeable` answered null before it is computed (1 by default, as GitHub's first read).
    mergeable_reads: u32,
    /// How long after a push to a PR's branch its `head.sha` still names the commit before
    /// (zero by default, so tests of other things stay short).
    head_delay: std::time::Duration,
    /// Repository permissions the token lacks, by name (`checks`, `statuses`): GitHub answers
    /// 403 "Resource not accessible by integration" to the routes that need them.
    denied: Vec<String>,
    /// Bypass actors' tokens and the rulesets they may bypass.
    bypass: bypass::Bypass,
    /// Merge queues: the bases that require one, and the PRs in them.
    queue: graphql::Queue,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id + 1_000_000
    }
}

impl GitHub {
    /// A new emulator over `world`.
    pub fn new(world: Arc<World>, git_url: String) -> Arc<GitHub> {
        Arc::new(GitHub {
            world,
            git_url,
            api_url: Mutex::new("http://127.0.0.1".to_string()),
            state: Mutex::new(State {
                mergeable_reads: 1,
                actions_may_open_prs: true,
                ..State::default()
            }),
            used: AtomicU64::new(0),
        })
    }

    /// The quota left, as `x-ratelimit-remaining` reports it.
    fn remaining(&self) -> u64 {
        5000 - self.used.load(Ordering::Relaxed) % 4000
    }

    fn api(&self) -> String {
        self.api_url.lock().unwrap().clone()
    }

    /// The git host of the `clone_url` fields: the instance itself on GHES, whose git is served
    /// at `https://HOSTNAME/OWNER/REPO.git`, else the sandbox's git host.
    fn git(&self) -> String {
        match self.api().strip_suffix(GHES_PREFIX) {
            Some(host) => host.to_string(),
            None => self.git_url.clone(),
        }
    }
}

/// Where GitHub Enterprise Server serves REST on its host (docs.github.com, Enterprise Server
/// REST API "About the REST API": `http(s)://HOSTNAME/api/v3`).
pub const GHES_PREFIX: &str = "/api/v3";

/// The web host of the `html_url` fields for REST base `api`: github.com, or the instance
/// itself when REST is served under [`GHES_PREFIX`].
fn web_of(api: &str) -> String {
    api.strip_suffix(GHES_PREFIX)
        .unwrap_or("https://github.com")
        .to_string()
}

/// Current time in GitHub's format.
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A GitHub error answer.
fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(json::error(status, message))).into_response()
}

/// The REST API routes.
pub fn router(gh: Arc<GitHub>) -> axum::Router {
    routes::routes(gh.clone())
        .fallback(|req: Request| async move {
            let body = serde_json::json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest",
                "status": "404",
                "sandbox": if req.uri().path().starts_with("/_sandbox") {
                    format!("the sandbox has no control route {} {}", req.method(), req.uri().path())
                } else {
                    format!("the GitHub emulator has no route {} {}", req.method(), req.uri().path())
                },
            });
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        })
        .layer(axum::middleware::from_fn_with_state(gh, common))
}

/// The GraphQL endpoint at `path` (`/graphql`; `/api/graphql` on the GHES host), behind the same
/// token check as REST.
pub fn graphql_router(gh: Arc<GitHub>, path: &str) -> axum::Router {
    axum::Router::new()
        .route(path, axum::routing::post(graphql::endpoint))
        .with_state(gh.clone())
        .layer(axum::middleware::from_fn_with_state(gh, common))
}

/// Control routes, nested at `/_sandbox/github`.
pub fn control_routes(gh: Arc<GitHub>) -> axum::Router {
    control::routes(gh)
}

/// What every REST answer gets: the token check (401 "Bad credentials"), `x-ratelimit-*` headers,
/// and for GETs an ETag with 304 on a matching `If-None-Match` (which, as on GitHub, costs no quota).
async fn common(AxState(gh): AxState<Arc<GitHub>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    if let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) {
        // Nested under a prefix (the GHES host), the router sees the path without it.
        let prefix = req
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .and_then(|o| o.path().strip_suffix(req.uri().path()))
            .unwrap_or("")
            .to_string();
        *gh.api_url.lock().unwrap() = format!("http://{host}{prefix}");
    }
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // Basic auth with the token as password is accepted too (docs.github.com, "Authenticating to
    // the REST API": "use basic authentication ... with a token as the password"), as git sends it.
    let basic = auth
        .strip_prefix("Basic ")
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|up| up.split_once(':').map(|(_, p)| p.to_string()));
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("token "))
        .or(basic.as_deref())
        .unwrap_or("");
    let is_get = req.method() == axum::http::Method::GET;
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    // GitHub sends the rate-limit headers on a 401 too. A request with no credentials at all is
    // answered 404 (docs.github.com, "Authenticating to the REST API", failed login limit:
    // "without a token ... you will receive a 404 Not Found"); only wrong ones get 401. Git's
    // first request (libgit2's carries none; ours carries the token as Basic) meets a 404 on a server
    // URL that names /api/v3, as on GHES.
    let resp = if token == gh.world.token || gh.is_bypass_token(token) {
        let caller = bypass::Caller(token.to_string());
        let mut req = req;
        req.extensions_mut().insert(caller);
        next.run(req).await
    } else if auth.is_empty() {
        error(404, "Not Found")
    } else {
        error(401, "Bad credentials")
    };
    let (mut parts, body) = resp.into_parts();
    let mut body = Body::new(body);
    if is_get && parts.status == StatusCode::OK {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let etag = format!("W/\"{:016x}\"", fnv(&bytes));
        if if_none_match.as_deref() == Some(etag.as_str()) {
            parts.status = StatusCode::NOT_MODIFIED;
            parts.headers.remove("content-type");
            body = Body::empty();
        } else {
            gh.used.fetch_add(1, Ordering::Relaxed);
            body = Body::from(bytes);
        }
        parts
            .headers
            .insert("etag", HeaderValue::from_str(&etag).unwrap());
    } else {
        gh.used.fetch_add(1, Ordering::Relaxed);
    }
    let remaining = gh.remaining();
    let reset = chrono::Utc::now().timestamp() as u64 + 3600;
    let h = &mut parts.headers;
    h.insert("x-ratelimit-limit", HeaderValue::from(5000));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-used", HeaderValue::from(5000 - remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    h.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    Response::from_parts(parts, body)
}

/// FNV-1a: a stable content hash for ETags without another dependency.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}
